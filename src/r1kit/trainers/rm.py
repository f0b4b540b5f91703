"""The reward-model loop's pieces: score sequences, one optimizer step on a batch of pairs, held-out
pair accuracy. The model is any `AutoModelForSequenceClassification` with one label; its forward reads
the score at the rightmost non-padding token (the EOS `r1kit.trainers.pairs` appends).

In a distributed run each rank scores its contiguous share of the pairs; the loss stays the mean over the
whole batch and gradients are summed over the ranks (`r1kit.distributed`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from r1kit import distributed as dist
from r1kit.algorithms.reward_model import bradley_terry_loss
from r1kit.models.device import autocast, model_device
from r1kit.trainers.pairs import PairExample, pad_right


def score_sequences(model: torch.nn.Module, sequences: Sequence[Sequence[int]], *, pad_id: int,
                    dtype: str = "float32") -> torch.Tensor:
    """The scalar reward of each sequence [N] (float32), in one right-padded forward pass."""
    ids, mask = pad_right(sequences, pad_id)
    device = model_device(model)
    with autocast(device, dtype):
        out = model(input_ids=torch.tensor(ids, device=device), attention_mask=torch.tensor(mask, device=device),
                    use_cache=False)
    return out.logits.squeeze(-1).float()


def pair_rewards(model: torch.nn.Module, pairs: Sequence[PairExample], *, pad_id: int,
                 dtype: str = "float32") -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards, rejected rewards), both scored in one forward pass as TRL does."""
    scores = score_sequences(model, [p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs],
                             pad_id=pad_id, dtype=dtype)
    return scores[: len(pairs)], scores[len(pairs) :]


def _margins(pairs: Sequence[PairExample]) -> torch.Tensor | None:
    if all(p.margin is None for p in pairs):
        return None
    return torch.tensor([p.margin or 0.0 for p in pairs])


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, pairs: Sequence[PairExample], *, pad_id: int,
               micro_batch_size: int, center_coefficient: float, max_grad_norm: float,
               dtype: str = "float32") -> dict[str, float]:
    """One AdamW step on a batch of pairs: the mean Bradley-Terry loss, accumulated over micro-batches
    of `micro_batch_size` pairs (0: all at once) so that the gradient does not depend on the split."""
    start = time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    a, z = dist.spread(len(pairs))
    mine = pairs[a:z]
    micro = micro_batch_size or max(len(mine), 1)
    sums = {"loss": 0.0, "right": 0.0, "lead": 0.0}
    for part in dist.as_many([mine[at : at + micro] for at in range(0, len(mine), micro)]):
        chosen, rejected = pair_rewards(model, part or pairs[:1], pad_id=pad_id, dtype=dtype)
        loss = bradley_terry_loss(chosen, rejected, margin=_margins(part or pairs[:1]),
                                  center_coefficient=center_coefficient).sum() / len(pairs)
        if part is None:  # an idle forward: this rank has no more pairs
            loss = loss * 0.0
        loss.backward()
        if part is not None:
            sums["loss"] += loss.item()
            sums["right"] += (chosen > rejected).sum().item()
            sums["lead"] += (chosen - rejected).sum().item()
    sums = dist.total(sums)
    norm = dist.grad_norm(model, max_grad_norm if max_grad_norm > 0 else math.inf)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return {"loss": sums["loss"], "accuracy": sums["right"] / len(pairs), "margin": sums["lead"] / len(pairs),
            "grad_norm": norm, "lr": lr, "step_seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate_pairs(model: torch.nn.Module, pairs: Sequence[PairExample], *, pad_id: int, batch_size: int,
                   dtype: str = "float32") -> dict[str, Any]:
    """Held-out pair accuracy (chosen scored above rejected), mean margin, loss (no centring term), and
    the rewards themselves (for the mean and std a user of the model normalises with)."""
    if not pairs:
        return {"accuracy": math.nan, "margin": math.nan, "loss": math.nan, "rewards": []}
    was_training = model.training
    model.eval()
    chosen_all, rejected_all = [], []
    a, z = dist.spread(len(pairs))  # this rank's share; the scores are gathered in rank order
    try:
        for part in dist.as_many([pairs[at : min(at + batch_size, z)] for at in range(a, z, batch_size)]):
            chosen, rejected = pair_rewards(model, part or pairs[:1], pad_id=pad_id, dtype=dtype)
            if part is not None:
                chosen_all.append(chosen.cpu())
                rejected_all.append(rejected.cpu())
    finally:
        model.train(was_training)
    shares = dist.gather((chosen_all, rejected_all))
    chosen = torch.cat([t for c, _ in shares for t in c])
    rejected = torch.cat([t for _, r in shares for t in r])
    return {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "loss": bradley_terry_loss(chosen, rejected, margin=_margins(pairs)).mean().item(),
            "rewards": [*chosen.tolist(), *rejected.tolist()]}
