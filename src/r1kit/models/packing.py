"""Best-fit packing: many short sequences in few rows, each still attending only to itself.

R1-SPEC section 6: training "sorts by length and packs sequences (best-fit) to cut padding". A packed
row holds several sequences one after the other; its position ids restart at 0 for each sequence, and
the attention mask is block-diagonal (causal within a sequence, nothing across), so every sequence is
computed exactly as it would be alone. How the isolation is enforced depends on the attention kernel:

- FlashAttention (`flash_attention_2/3`, where installed): no mask; the kernel's variable-length path
  reads the sequence boundaries from the restarting position ids (transformers does this).
- SDPA, eager, flex (the CPU path): an explicit 4-D mask [R, 1, L, L], boolean for SDPA (True =
  attend), additive (0 / dtype minimum) for eager. Padding positions attend to themselves only, so no
  softmax row is empty (an empty one gives NaN, which would reach the gradient through 0 * NaN).

TRL's packing (`packing_strategy="bfd"`) builds no mask: without FlashAttention its packed examples
attend to each other (trl #3067, #1230). The tests here check packed against unpacked to 1e-5.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def best_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing bin packing: indices of `lengths` grouped into bins of total <= capacity.

    Longest first, each into the fullest bin it still fits (a new bin when none does). Within a bin the
    indices keep the order they were placed in.

    >>> best_fit([5, 3, 4, 2, 6], capacity=8)
    [[4, 3], [0, 1], [2]]
    """
    if any(n > capacity for n in lengths):
        raise ValueError(f"a sequence of {max(lengths)} tokens does not fit in rows of {capacity}")
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted: the first that fits is the fullest
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        at = bisect.bisect_left(free, (lengths[i], -1))
        if at == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - lengths[i], len(bins) - 1))
        else:
            room, b = free.pop(at)
            bins[b].append(i)
            bisect.insort(free, (room - lengths[i], b))
    return bins


@dataclass(frozen=True)
class Packed:
    """Sequences packed into rows: R rows of L tokens."""

    input_ids: torch.Tensor
    """[R, L] the sequences of each row one after the other, then padding."""
    labels: torch.Tensor
    """[R, L] the target of each position (the next token of its sequence), -100 where nothing is learned."""
    position_ids: torch.Tensor
    """[R, L] 0, 1, ... within each sequence; padding continues the last sequence's count."""
    sequence_ids: torch.Tensor
    """[R, L] which sequence of the row a position belongs to (0, 1, ...); -1 for padding."""
    segment_ids: torch.Tensor | None = None
    """[R, L] for sequences that share a prefix (RL's groups: a prompt, then several completions): 0 on
    the shared prefix, j on the j-th continuation, which sees the prefix and itself only. None: plain."""

    @property
    def tokens(self) -> int:
        return int((self.sequence_ids >= 0).sum())


def pack(sequences: Sequence[Sequence[int]], learn: Sequence[Sequence[bool]], bins: Sequence[Sequence[int]],
         *, pad_id: int, width: int | None = None) -> Packed:
    """Rows built from `bins` (lists of indices into `sequences`). `learn[i][t]` says whether token t of
    sequence i is a target (it is predicted from position t - 1 of the same sequence)."""
    width = width or max(sum(len(sequences[i]) for i in b) for b in bins)
    R = len(bins)
    ids = torch.full((R, width), pad_id, dtype=torch.long)
    labels = torch.full((R, width), -100, dtype=torch.long)
    positions = torch.zeros((R, width), dtype=torch.long)
    seq = torch.full((R, width), -1, dtype=torch.long)
    for r, members in enumerate(bins):
        at = 0
        for k, i in enumerate(members):
            tokens, n = torch.tensor(list(sequences[i]), dtype=torch.long), len(sequences[i])
            ids[r, at : at + n] = tokens
            positions[r, at : at + n] = torch.arange(n)
            seq[r, at : at + n] = k
            target = torch.tensor(list(learn[i][1:]), dtype=torch.bool)
            labels[r, at : at + n - 1] = torch.where(target, tokens[1:], -100)
            at += n
        positions[r, at:] = torch.arange(width - at) + (positions[r, at - 1] + 1 if at else 0)
    return Packed(ids, labels, positions, seq)


def attention_inputs(model: torch.nn.Module, packed: Packed) -> dict[str, torch.Tensor]:
    """The forward keywords that keep packed sequences apart, for the model's attention kernel."""
    config = getattr(model, "config", None)
    kernel = str(getattr(config, "_attn_implementation", "sdpa") or "sdpa")
    device = next(model.parameters()).device
    positions = packed.position_ids.to(device)
    if kernel.startswith("flash_attention"):
        if packed.segment_ids is not None and int(packed.segment_ids.max()) > 1:
            raise ValueError("FlashAttention's varlen path cannot share a prefix between sequences: "
                             "pack sequences, not groups")
        return {"position_ids": positions}  # varlen: boundaries where the positions restart
    seq = packed.sequence_ids.to(device)
    L = seq.shape[1]
    causal = torch.ones((L, L), dtype=torch.bool, device=device).tril()
    same = (seq[:, :, None] == seq[:, None, :]) & (seq[:, :, None] >= 0)
    allowed = same & causal
    if packed.segment_ids is not None:  # a continuation sees the shared prefix (segment 0) and itself
        segment = packed.segment_ids.to(device)
        allowed &= (segment[:, None, :] == 0) | (segment[:, None, :] == segment[:, :, None])
    allowed |= torch.eye(L, dtype=torch.bool, device=device)  # padding attends to itself: no empty row
    mask = allowed[:, None, :, :]
    if kernel != "eager":
        return {"position_ids": positions, "attention_mask": mask}
    dtype = next(model.parameters()).dtype
    additive = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    return {"position_ids": positions, "attention_mask": additive}
