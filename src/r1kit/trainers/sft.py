"""The SFT loop's pieces: which examples each step trains on, and one optimizer step over them.

Data order follows from (seed, epoch) alone, so a resumed run needs no loader state: each epoch is a
seeded permutation cut into batches. A step packs its batch with best fit (`r1kit.models.packing`) into
rows of 1.5 x its longest example (attention costs the square of a row's length, so much longer rows
cost more than the padding they save; `ROW_FACTOR`), sorts the rows by length into micro-batches (length-sorted
buckets: rows of similar length share a forward, so little is padded), and accumulates the token-mean
loss of the whole batch (`r1kit.algorithms.sft`). Without packing, each example is its own row.

In a distributed run each rank packs and trains its contiguous share of the batch; the loss stays divided
by the whole batch's completion tokens and gradients are summed over the ranks (`r1kit.distributed`), so
the update is the single-process one.

Batches are drawn at random, not by length: a first version dealt length-sorted examples into batches,
which made each batch mostly one kind of example (short additions, long Countdown searches) and ended
with an eval loss 49 % above TRL's random batches on the same data (`benchmarks/sft_vs_trl.py`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from r1kit import distributed as dist
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
    """The context: no example is longer, and no packed row."""
    packing: bool = True
    """Best-fit packing of several examples per row; off: one example per row, padded."""
    micro_batch_size: int = 0
    """Rows per forward pass; 0: all rows of the step at once."""


def epoch_batches(n_examples: int, b: Batching, seed: int, epoch: int) -> list[list[int]]:
    """The batches (example indices) of one epoch: a seeded permutation cut into batches (the last one
    may be smaller)."""
    order = list(range(n_examples))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return [order[i : i + b.batch_size] for i in range(0, n_examples, b.batch_size)]


def steps_per_epoch(n_examples: int, b: Batching) -> int:
    return math.ceil(n_examples / b.batch_size)


def batch_of_step(step: int, n_examples: int, b: Batching, seed: int) -> list[int]:
    """The example indices of optimizer step `step` (0-based)."""
    epoch, index = divmod(step, steps_per_epoch(n_examples, b))
    return epoch_batches(n_examples, b, seed, epoch)[index]


ROW_FACTOR = 1.5
"""Packed rows hold up to 1.5 x the step's longest example (at most max_length). Measured on the
cold-start data with the embedded model: 1.0 x left 26 % padding, 1.5 x 8 %, and 2-3 x cost more in
attention than they saved (10.1k, 11.4k, 10.1k and 9.2k tokens/s for 1, 1.5, 2 and 3 x)."""


def rows_of(examples: Sequence[SFTExample], b: Batching) -> list[list[int]]:
    """Rows of a step, shortest first: best-fit bins of `ROW_FACTOR` x the longest example, or one
    example per row."""
    lengths = [len(e.ids) for e in examples]
    if not b.packing:
        return [[i] for i in range(len(examples))]
    rows = best_fit(lengths, min(b.max_length, max(int(max(lengths) * ROW_FACTOR), max(lengths))))
    return sorted(rows, key=lambda r: sum(lengths[i] for i in r))


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
    """One optimizer step on `examples` (one batch; this rank's share of it); returns its metrics."""
    start = time.perf_counter()
    model.train()
    a, z = dist.spread(len(examples))
    mine = list(examples[a:z])
    rows = rows_of(mine, b) if mine else []
    learned = sum(len(e.completion_ids) for e in examples)  # the whole batch's: a global token mean
    real = sum(len(e.ids) for e in examples)
    optimizer.zero_grad(set_to_none=True)
    loss_sum, slots = 0.0, 0
    for part in dist.as_many(_micro_batches(rows, b)):
        if part is None:
            loss = _idle_forward(model, examples, pad_id, dtype)
        else:
            loss = forward_loss(model, mine, part, pad_id=pad_id, num_tokens=learned, dtype=dtype)
            slots += len(part) * max(sum(len(mine[i].ids) for i in r) for r in part)
        loss.backward()
        loss_sum += loss.item()
    sums = dist.total({"loss": loss_sum, "slots": float(slots), "rows": float(len(rows))})
    norm = dist.grad_norm(model, max_grad_norm if max_grad_norm > 0 else math.inf)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    seconds = time.perf_counter() - start
    return {"loss": sums["loss"], "grad_norm": norm, "lr": lr, "tokens": float(real),
            "completion_tokens": float(learned), "rows": sums["rows"],
            "padding_share": 1 - real / max(sums["slots"], 1), "step_seconds": seconds,
            "tokens_per_s": real / max(seconds, 1e-9)}


def _micro_batches(rows: list[list[int]], b: Batching) -> list[list[list[int]]]:
    """`rows` cut into micro-batches of `b.micro_batch_size` rows (0: all at once)."""
    micro = b.micro_batch_size or max(len(rows), 1)
    return [rows[at : at + micro] for at in range(0, len(rows), micro)]


def _idle_forward(model: torch.nn.Module, examples: Sequence[SFTExample], pad_id: int, dtype: str) -> torch.Tensor:
    """A forward whose loss is zero: a rank without work still joins the collectives of a forward."""
    return forward_loss(model, examples, [[0]], pad_id=pad_id, num_tokens=1, dtype=dtype) * 0.0


@torch.no_grad()
def eval_loss(model: torch.nn.Module, examples: Sequence[SFTExample], b: Batching, *, pad_id: int,
              dtype: str = "float32") -> float:
    """Token-mean loss of `examples` (the held-out split), in packed micro-batches of the step's size."""
    if not examples:
        return float("nan")
    was_training = model.training
    model.eval()
    total, tokens = 0.0, sum(len(e.completion_ids) for e in examples)
    a, z = dist.spread(len(examples))
    mine = examples[a:z]  # this rank's share; the sums are added over the ranks
    work = []
    for at in range(0, len(mine), b.batch_size):
        chunk = mine[at : at + b.batch_size]
        work += [(chunk, part) for part in _micro_batches(rows_of(chunk, b), b)]
    try:
        for item in dist.as_many(work):
            if item is None:
                _idle_forward(model, examples, pad_id, dtype)
            else:
                total += forward_loss(model, item[0], item[1], pad_id=pad_id, num_tokens=tokens, dtype=dtype).item()
    finally:
        model.train(was_training)
    return dist.total({"loss": total})["loss"]
