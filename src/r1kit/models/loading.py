"""Loading a policy and its tokenizer with transformers, from the embedded model, a directory or the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)
from transformers.utils import logging as hf_logging

from r1kit.hub import require_hub
from r1kit.models.device import DTYPES


class ModelLoadError(ValueError):
    """The model or tokenizer could not be loaded; the message says from where and why."""


def resolve_model_path(path: str) -> str:
    """`embedded` / `embedded-student` -> the shipped tiny base models; an existing directory -> itself;
    else a hub id."""
    if path in ("embedded", "embedded-student"):
        from r1kit.models.embedded import EMBEDDED_MODEL_DIR, EMBEDDED_STUDENT_DIR

        return str(EMBEDDED_MODEL_DIR if path == "embedded" else EMBEDDED_STUDENT_DIR)
    p = Path(path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"model path {path} has no config.json: not a Hugging Face model directory")
        return str(p)
    # Anything that looks like a filesystem path but does not exist is a typo, not a hub id.
    if path.startswith((".", "/", "~")) or path.count("/") > 1 or not path:
        raise ModelLoadError(f"model path not found: {path}")
    try:
        require_hub(f"model {path}", "pass a local model directory")
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    return path


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model")
"""One of these makes a local directory a tokenizer: without them transformers builds an empty one."""


def load_tokenizer(path: str) -> Any:
    resolved = resolve_model_path(path)
    if Path(resolved).is_dir() and not any((Path(resolved) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(f"no tokenizer in {path} (none of {', '.join(TOKENIZER_FILES)})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"cannot load tokenizer from {path}: {_first_line(e)}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"tokenizer of {path} has no EOS token; completions could never end")
    return tokenizer


def load_model(path: str, dtype: str = "float32", device: str | torch.device = "cpu") -> PreTrainedModel:
    """The causal LM at `path` (see `resolve_model_path`) with parameters in `dtype`, on `device`."""
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(resolve_model_path(path), dtype=DTYPES[dtype])
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"cannot load model from {path}: {_first_line(e)}") from None
    model.to(device)  # type: ignore[arg-type]  # transformers types `to` through a decorator
    return model


def load_reward_model(path: str, dtype: str = "float32", device: str | torch.device = "cpu", *,
                      pad_token_id: int | None = None) -> PreTrainedModel:
    """The reward model at `path`: `AutoModelForSequenceClassification` with one label. A causal LM
    (a base to train from) gets a new, randomly initialised scalar head (seed torch first); a model with
    a head of another size is refused. `pad_token_id` lets its forward find the last real token."""
    hf_logging.disable_progress_bar()
    resolved = resolve_model_path(path)
    try:
        config = AutoConfig.from_pretrained(resolved)
    except Exception as e:
        raise ModelLoadError(f"cannot load model from {path}: {_first_line(e)}") from None
    if getattr(config, "num_labels", 1) != 1 and any(a.endswith("ForSequenceClassification")
                                                     for a in config.architectures or []):
        raise ModelLoadError(f"{path} is a classifier with {config.num_labels} labels; a reward model has one")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: score.weight" is the point when training one
    try:
        model = AutoModelForSequenceClassification.from_pretrained(resolved, num_labels=1, dtype=DTYPES[dtype])
    except Exception as e:
        raise ModelLoadError(f"cannot load {path} as a reward model: {_first_line(e)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    model.to(device)
    return model


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
