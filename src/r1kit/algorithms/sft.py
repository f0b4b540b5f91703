"""The SFT loss: next-token cross-entropy on completion tokens, averaged over the tokens of the batch.

    L = - (1 / N) * sum_{sequences s} sum_{t in completion(s)} log p(x_{s,t} | x_{s,<t})

N is the number of completion tokens in the whole optimizer batch, *not* in the micro-batch: with
gradient accumulation each micro-batch contributes its token sum divided by the batch's N, so the
gradient is the same however the batch is split or packed. This is TRL's default (SFTTrainer divides
the summed loss by `num_items_in_batch`, the token count of the accumulated batch); verl and OpenRLHF
default to a per-micro-batch token mean, which weighs tokens unequally across micro-batches.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sft_loss(logits: Tensor, labels: Tensor, *, num_tokens: int, chunk_size: int = 4096) -> Tensor:
    """Summed cross-entropy of `logits` [R, L, V] against `labels` [R, L] (-100 = not learned), divided by
    `num_tokens` (the learned tokens of the whole optimizer batch). The log-softmax runs in float32 over
    chunks of `chunk_size` positions, so no [R, L, V] float32 copy is ever made.

    A golden number: two learned tokens, each with probability 1/2 under a 2-way uniform softmax, in a
    batch of 4 learned tokens: loss = (log 2 + log 2) / 4 = 0.3466.

    >>> logits = torch.zeros(1, 3, 2)
    >>> round(sft_loss(logits, torch.tensor([[1, 0, -100]]), num_tokens=4).item(), 4)
    0.3466
    """
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = (flat_labels != -100).nonzero().squeeze(-1)
    total = logits.new_zeros((), dtype=torch.float32)
    for start in range(0, len(keep), chunk_size):
        rows = keep[start : start + chunk_size]
        total = total + torch.nn.functional.cross_entropy(flat_logits[rows].float(), flat_labels[rows],
                                                          reduction="sum")
    return total / num_tokens
