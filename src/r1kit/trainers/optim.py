"""The optimizer every loop uses: AdamW with linear warmup, then a constant or cosine learning rate."""

from __future__ import annotations

import math
from typing import Any

import torch

from r1kit.config import OptimConfig


def adamw(optim: OptimConfig, model: torch.nn.Module, total_updates: int, state: dict[str, Any] | None = None
          ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `model`'s parameters and a per-update schedule: linear warmup from 0 to `optim.lr`
    over `warmup_steps` updates, then constant, or cosine decay to `min_lr_ratio * lr` at update
    `total_updates` (R1's SFT and distillation: cosine to 1/10). `state` (a checkpoint's trainer state,
    `optimizer_state`'s keys) restores both where a run left them."""
    o = optim
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters only
    optimizer = torch.optim.AdamW(trainable, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    total = max(total_updates, 1)

    def factor(i: int) -> float:
        if i < o.warmup_steps:
            return (i + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        progress = min((i - o.warmup_steps) / max(total - o.warmup_steps, 1), 1.0)
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    return optimizer, scheduler


def optimizer_state(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                    step: int) -> dict[str, Any]:
    """The trainer state a checkpoint keeps so that `adamw(..., state=)` resumes exactly."""
    return {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step}
