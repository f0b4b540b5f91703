"""The reward-model loop's pieces: score sequences, one optimizer step on a batch of pairs, held-out
pair accuracy. The model is any `AutoModelForSequenceClassification` with one label; its forward reads
the score at the rightmost non-padding token (the EOS `r1kit.trainers.pairs` appends)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

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
    micro = micro_batch_size or len(pairs)
    loss_sum, right, lead = 0.0, 0.0, 0.0
    for at in range(0, len(pairs), micro):
        part = pairs[at : at + micro]
        chosen, rejected = pair_rewards(model, part, pad_id=pad_id, dtype=dtype)
        loss = bradley_terry_loss(chosen, rejected, margin=_margins(part),
                                  center_coefficient=center_coefficient).sum() / len(pairs)
        loss.backward()
        loss_sum += loss.item()
        right += (chosen > rejected).sum().item()
        lead += (chosen - rejected).sum().item()
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm if max_grad_norm > 0 else math.inf))
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return {"loss": loss_sum, "accuracy": right / len(pairs), "margin": lead / len(pairs), "grad_norm": norm,
            "lr": lr, "step_seconds": time.perf_counter() - start}


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
    try:
        for at in range(0, len(pairs), batch_size):
            chosen, rejected = pair_rewards(model, pairs[at : at + batch_size], pad_id=pad_id, dtype=dtype)
            chosen_all.append(chosen)
            rejected_all.append(rejected)
    finally:
        model.train(was_training)
    chosen, rejected = torch.cat(chosen_all), torch.cat(rejected_all)
    return {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "loss": bradley_terry_loss(chosen, rejected, margin=_margins(pairs)).mean().item(),
            "rewards": [*chosen.tolist(), *rejected.tolist()]}
