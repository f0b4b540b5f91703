"""The KV cache across transformers releases: 5.24 renamed `past_key_values` to `cache`, in a model's
forward arguments and in its outputs, and will drop the old name in 5.40. r1kit supports both."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import transformers

_NEW_NAME = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (5, 24)
_ARGUMENT: dict[type, str] = {}


def _cache_argument(model: torch.nn.Module) -> str:
    kind = type(model)
    if kind not in _ARGUMENT:
        params = inspect.signature(model.forward).parameters
        if "cache" in params or "past_key_values" in params:
            _ARGUMENT[kind] = "cache" if "cache" in params else "past_key_values"
        else:  # a wrapper forwarding **kwargs (PEFT, DDP): the release's name
            _ARGUMENT[kind] = "cache" if _NEW_NAME else "past_key_values"
    return _ARGUMENT[kind]


def with_cache(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """The keyword that passes `cache` to `model`'s forward, under this release's name."""
    return {_cache_argument(model): cache}


def output_cache(out: Any) -> Any:
    """The KV cache a forward returned (`out.cache`, or `out.past_key_values` before 5.24)."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values
