"""Packing for the RL forward passes: completions with their prompts in few rows, by a token budget.

R1-SPEC section 6: training "sorts by length and packs sequences (best-fit) to cut padding". The padded
path (`completion_logprobs`) pads every micro-batch to its longest completion; with completions of very
different lengths most of its compute is padding. Here a micro-batch is one packed row of at most
`capacity` tokens, filled best-fit, longest first (`r1kit.models.packing.best_fit`).

What a row holds is a list of units. A unit is a prompt once, then some of its completions:

- by "groups" (the default): the completions of one group that are in the minibatch (split into several
  units only when they do not fit). Each completion attends to the prompt and to itself (a shared-prefix
  mask, `Packed.segment_ids`), so the prompt is encoded once per group, as in the padded path.
- by "sequences": one completion per unit (prompt + completion). The only choice under FlashAttention,
  whose varlen kernel cannot share a prefix; `pack_plan` switches to it there.

Log-probs equal the padded path's (tests/unit/test_rl_packing.py checks loss and gradients to 1e-5 under
each aggregation), computed from hidden states in chunks like `completion_logprobs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from r1kit.models.logprobs import decoder_and_head, in_rows, softcap_of, token_logprobs
from r1kit.models.packing import Packed, attention_inputs, best_fit

PackBy = Literal["groups", "sequences"]


@dataclass(frozen=True)
class Unit:
    """A prompt and some of its completions, packed together."""

    prompt: int
    """Index into the prompts."""
    rows: tuple[int, ...]
    """Indices into the completions (the rollout's rows)."""


def pack_plan(prompt_lengths: Sequence[int], completion_lengths: Sequence[int], prompt_of: Sequence[int],
              rows: Sequence[int], *, capacity: int, by: PackBy) -> list[list[Unit]]:
    """Micro-batches (each one packed row of at most `capacity` tokens) covering `rows`, best fit, longest
    first. A group whose completions do not fit one row is split into several units, each with the prompt.

    >>> pack_plan([3, 2], [4, 4, 1, 1], [0, 0, 1, 1], [0, 1, 2, 3], capacity=16, by="groups")
    [[Unit(prompt=0, rows=(0, 1)), Unit(prompt=1, rows=(2, 3))]]
    """
    units: list[Unit] = []
    for p in dict.fromkeys(prompt_of[r] for r in rows):
        members = [r for r in rows if prompt_of[r] == p]
        for r in members:
            if prompt_lengths[p] + completion_lengths[r] > capacity:
                raise ValueError(f"a prompt of {prompt_lengths[p]} tokens and a completion of {completion_lengths[r]} "
                                 f"do not fit optim.max_tokens_per_micro_batch={capacity}")
        if by == "sequences":
            units += [Unit(p, (r,)) for r in members]
            continue
        current: list[int] = []
        for r in members:
            used = prompt_lengths[p] + sum(completion_lengths[x] for x in current)
            if current and used + completion_lengths[r] > capacity:
                units.append(Unit(p, tuple(current)))
                current = []
            current.append(r)
        units.append(Unit(p, tuple(current)))
    lengths = [prompt_lengths[u.prompt] + sum(completion_lengths[r] for r in u.rows) for u in units]
    return [[units[i] for i in b] for b in best_fit(lengths, capacity)]


@dataclass(frozen=True)
class PackedBatch:
    """One micro-batch's packed row and where each completion token's prediction comes from."""

    packed: Packed
    rows: torch.Tensor
    """[n] the rollout rows of this micro-batch, in output order."""
    source: torch.Tensor
    """[M] position in the packed row (flattened) whose hidden state predicts each completion token."""
    targets: torch.Tensor
    """[M] the completion tokens, row after row."""
    mask: torch.Tensor
    """[n, T'] 1 on each row's completion tokens; the log-probs [n, T'] fill it in row order."""


def build(units: Sequence[Unit], prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
          ) -> PackedBatch:
    """The packed row of one micro-batch (`pack_plan`'s element). Positions continue from the prompt in
    each completion, as in the unpacked sequence; segment ids keep sibling completions apart."""
    ids: list[int] = []
    pos: list[int] = []
    seq: list[int] = []
    seg: list[int] = []
    source: list[int] = []
    targets: list[int] = []
    rows: list[int] = []
    for u, unit in enumerate(units):
        prompt = list(prompts[unit.prompt])
        start, P = len(ids), len(prompt)
        ids += prompt
        pos += range(P)
        seq += [u] * P
        seg += [0] * P
        for j, r in enumerate(unit.rows, start=1):
            completion = list(completions[r])
            at = len(ids)
            ids += completion
            pos += range(P, P + len(completion))
            seq += [u] * len(completion)
            seg += [j] * len(completion)
            # token 0 is predicted by the prompt's last position, token t by the completion's token t - 1
            source += [start + P - 1, *range(at, at + len(completion) - 1)]
            targets += completion
            rows.append(r)
    T = max(len(completions[r]) for r in rows)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        mask[i, : len(completions[r])] = 1
    packed = Packed(input_ids=torch.tensor([ids]), labels=torch.full((1, len(ids)), -100),
                    position_ids=torch.tensor([pos]), sequence_ids=torch.tensor([seq]),
                    segment_ids=torch.tensor([seg]))
    return PackedBatch(packed, torch.tensor(rows), torch.tensor(source), torch.tensor(targets), mask)


def packed_logprobs(model: torch.nn.Module, batch: PackedBatch, *, temperature: float = 1.0,
                    with_entropy: bool = False, chunk_tokens: int = 512
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [n, T'] of the micro-batch's completions (0 on padding), and their entropy (no grad)."""
    device = next(model.parameters()).device
    split = decoder_and_head(model)
    if split is None:
        raise ValueError(f"{type(model).__name__} does not expose its decoder and output head: packing needs them "
                         "(set optim.max_tokens_per_micro_batch=0)")
    decoder, head = split
    out = decoder(input_ids=batch.packed.input_ids.to(device), **attention_inputs(model, batch.packed),
                  use_cache=False)
    hidden = out.last_hidden_state[0]
    chunk = chunk_tokens if chunk_tokens > 0 else max(len(batch.targets), 1)  # 0: every position at once
    logprobs, entropy = token_logprobs(hidden[batch.source.to(device)], batch.targets.to(device), head,
                                       temperature=temperature, chunk_tokens=chunk, with_entropy=with_entropy,
                                       softcap=softcap_of(model))
    keep = batch.mask.to(device).bool()
    return in_rows(keep, logprobs), (in_rows(keep, entropy) if entropy is not None else None)
