"""The SFT loop's pieces: which examples each step trains on, and one optimizer step over them.

Data order follows from (seed, epoch) alone, so a resumed run needs no loader state: each epoch is a
seeded permutation, cut into chunks of `bucket` batches whose examples are sorted by length and dealt
into batches (length-sorted buckets: similar lengths share a batch, so little is padded or left over
when packing), and the batches of the epoch are shuffled. A step packs its batch with best fit into rows
of `max_length` tokens (`r1kit.models.packing`; one example per row when packing is off), runs the rows
in micro-batches, and accumulates the token-mean loss of the whole batch (`r1kit.algorithms.sft`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from r1kit.algorithms.sft import sft_loss
from r1kit.models.device import autocast, model_device
from r1kit.models.packing import attention_inputs, best_fit, pack
from r1kit.trainers.sft_data import SFTExample


@dataclass(frozen=True)
class Batching:
    """How examples become rows and micro-batches."""

    batch_size: int
    """Examples per optimizer step."""
    max_length: int
    """Tokens per packed row (the context)."""
    packing: bool = True
    """Best-fit packing of several examples per row; off: one example per row, padded."""
    micro_batch_size: int = 0
    """Rows per forward pass; 0: all rows of the step at once."""
    bucket: int = 8
    """Batches whose examples are sorted by length together."""


def epoch_batches(n_examples: int, lengths: Sequence[int], b: Batching, seed: int, epoch: int) -> list[list[int]]:
    """The batches (example indices) of one epoch; the last partial batch of a bucket is kept."""
    order = list(range(n_examples))
    rng = random.Random(seed * 1_000_003 + epoch)
    rng.shuffle(order)
    batches = []
    span = b.batch_size * b.bucket
    for start in range(0, n_examples, span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[j : j + b.batch_size] for j in range(0, len(chunk), b.batch_size)]
    rng.shuffle(batches)
    return batches


def steps_per_epoch(n_examples: int, b: Batching) -> int:
    return math.ceil(n_examples / b.batch_size)


def batch_of_step(step: int, n_examples: int, lengths: Sequence[int], b: Batching, seed: int) -> list[int]:
    """The example indices of optimizer step `step` (0-based)."""
    epoch, index = divmod(step, steps_per_epoch(n_examples, b))
    return epoch_batches(n_examples, lengths, b, seed, epoch)[index]


def rows_of(examples: Sequence[SFTExample], b: Batching) -> list[list[int]]:
    """Rows of a step: best-fit bins of `max_length` tokens, or one example per row."""
    if b.packing:
        return best_fit([len(e.ids) for e in examples], b.max_length)
    return [[i] for i in sorted(range(len(examples)), key=lambda i: len(examples[i].ids))]


def forward_loss(model: torch.nn.Module, examples: Sequence[SFTExample], rows: Sequence[Sequence[int]],
                 *, pad_id: int, num_tokens: int, dtype: str = "float32") -> torch.Tensor:
    """The loss contribution of `rows` (lists of indices into `examples`), divided by `num_tokens`."""
    packed = pack([e.ids for e in examples], [e.learn for e in examples], rows, pad_id=pad_id)
    device = model_device(model)
    with autocast(device, dtype):
        logits = model(input_ids=packed.input_ids.to(device), **attention_inputs(model, packed),
                       use_cache=False).logits
    return sft_loss(logits, packed.labels.to(device), num_tokens=num_tokens)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, examples: Sequence[SFTExample], b: Batching,
               *, pad_id: int, max_grad_norm: float, dtype: str = "float32") -> dict[str, float]:
    """One optimizer step on `examples` (one batch); returns its metrics."""
    start = time.perf_counter()
    model.train()
    rows = rows_of(examples, b)
    learned = sum(len(e.completion_ids) for e in examples)
    real = sum(len(e.ids) for e in examples)
    micro = b.micro_batch_size or len(rows)
    optimizer.zero_grad(set_to_none=True)
    loss_sum, slots = 0.0, 0
    for at in range(0, len(rows), micro):
        part = rows[at : at + micro]
        loss = forward_loss(model, examples, part, pad_id=pad_id, num_tokens=learned, dtype=dtype)
        loss.backward()
        loss_sum += loss.item()
        slots += len(part) * max(sum(len(examples[i].ids) for i in r) for r in part)
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm if max_grad_norm > 0 else math.inf))
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    seconds = time.perf_counter() - start
    return {"loss": loss_sum, "grad_norm": norm, "lr": lr, "tokens": float(real), "completion_tokens": float(learned),
            "rows": float(len(rows)), "padding_share": 1 - real / max(slots, 1), "step_seconds": seconds,
            "tokens_per_s": real / max(seconds, 1e-9)}


@torch.no_grad()
def eval_loss(model: torch.nn.Module, examples: Sequence[SFTExample], b: Batching, *, pad_id: int,
              dtype: str = "float32") -> float:
    """Token-mean loss of `examples` (the held-out split), in packed micro-batches of the step's size."""
    if not examples:
        return float("nan")
    was_training = model.training
    model.eval()
    total, tokens = 0.0, sum(len(e.completion_ids) for e in examples)
    try:
        for at in range(0, len(examples), b.batch_size):
            chunk = examples[at : at + b.batch_size]
            rows = rows_of(chunk, b)
            micro = b.micro_batch_size or len(rows)
            for r in range(0, len(rows), micro):
                total += forward_loss(model, chunk, rows[r : r + micro], pad_id=pad_id, num_tokens=tokens,
                                      dtype=dtype).item()
    finally:
        model.train(was_training)
    return total
