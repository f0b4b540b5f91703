"""Offload between phases (R1-SPEC section 6: "each module is offloaded when its phase ends").

On a GPU run, a module chosen in `offload` lives in CPU memory and comes to the GPU only for its phase:
the reference for its log-prob pass, the reward models while they score, AdamW's moments for the
optimizer step. What that frees is the rollout's KV cache and the training activations' room. On the
CPU it is a no-op. The moves go through `move`, so a test can record them with a fake device map.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from r1kit.config import OffloadConfig

CPU = torch.device("cpu")
PHASES = ("reference", "reward_models", "optimizer")


def move_to(what: str, obj: Any, device: torch.device) -> None:
    """Move a module's weights, or an optimizer's state tensors, to `device` (in place)."""
    if isinstance(obj, torch.optim.Optimizer):
        for state in obj.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and not (k == "step" and v.dim() == 0 and v.device.type == "cpu"):
                    state[k] = v.to(device, non_blocking=True)
    else:
        obj.to(device)


@dataclass
class Offload:
    """Which modules are offloaded, and the device their phases run on."""

    device: torch.device
    enabled: frozenset[str] = frozenset()
    move: Callable[[str, Any, torch.device], None] = move_to
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds spent moving each module (onload + offload), summed."""

    @classmethod
    def of(cls, cfg: OffloadConfig, device: torch.device) -> Offload:
        return cls(device, frozenset(p for p in PHASES if getattr(cfg, p)))

    def active(self, what: str) -> bool:
        return what in self.enabled and self.device.type != "cpu"

    def park(self, what: str, obj: Any) -> None:
        """Put an offloaded module in CPU memory until its first phase."""
        if obj is not None and self.active(what):
            self._move(what, obj, CPU)

    @contextlib.contextmanager
    def phase(self, what: str, obj: Any) -> Iterator[None]:
        """`obj` on the device inside the block, back in CPU memory after it (when `what` is offloaded)."""
        if obj is None or not self.active(what):
            yield
            return
        self._move(what, obj, self.device)
        try:
            yield
        finally:
            self._move(what, obj, CPU)

    def _move(self, what: str, obj: Any, device: torch.device) -> None:
        start = time.perf_counter()
        self.move(what, obj, device)
        if device.type == "cuda" and torch.cuda.is_initialized():  # the copy is asynchronous: time all of it
            torch.cuda.synchronize(device)
        self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - start
