"""The `Generator` interface: what the trainer and the evaluator ask of a sampling engine.

An engine turns prompt token ids into completions with their sampler log-probs. The HF engine
(`hf.py`) samples with the policy module itself; a vLLM engine implements the same call and receives
new weights through `update_weights` after each optimizer step.

Seeds are per prompt group: prompt i of a call is group `first_group + i`, and its completions are drawn
from a random stream seeded with `group_seed(seed, first_group + i)` alone. So the prompts of one call can
be split across calls (ranks, chunks, batches) without changing a sample: `generate(P, seed=s)` is
`generate(P[:k], seed=s)` followed by `generate(P[k:], seed=s, first_group=k)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 64


@dataclass(frozen=True)
class Generation:
    """N = B*G completions, group-major: rows g*G .. g*G+G-1 answer prompt g."""

    completion_ids: torch.Tensor
    """[N, T] token ids, padded with the pad id after the first EOS."""
    completion_mask: torch.Tensor
    """[N, T] 1 for completion tokens including the first EOS, 0 for padding after it."""
    logprobs: torch.Tensor
    """[N, T] log-probs of the sampled tokens under the sampling distribution (after temperature and
    top-p); 0 on padding."""
    finished: torch.Tensor
    """[N] bool: the completion ended with EOS before max_new_tokens."""


class Generator(Protocol):
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        num_samples: int = 1,
        seed: int = 0,
        first_group: int = 0,
    ) -> Generation:
        """Sample `num_samples` completions for each prompt; the same seed gives the same completions.

        `first_group` is the group index of the first prompt: prompt i samples from a stream seeded by
        `group_seed(seed, first_group + i)` only, whatever else the call holds or how it is batched."""
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights."""
        ...


_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64's finalizer: a bijection of 64-bit integers that spreads every input bit over the output."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def group_seed(seed: int, group: int) -> int:
    """The seed of prompt group `group` in a call seeded `seed`: a function of the two only, well mixed (nearby
    seeds and groups give unrelated streams), in [0, 2**62) so vLLM's child seeds `seed + j` stay below 2**63.

    >>> group_seed(0, 0) == group_seed(0, 0), group_seed(0, 1) != group_seed(1, 0)
    (True, True)
    """
    return _mix64(_mix64(seed & _MASK64) ^ (group & _MASK64)) >> 2


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to [n, P] ids and mask, so every row's last token sits in the last column."""
    width = max(len(p) for p in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, p in enumerate(sequences):
        ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids, mask


def concat(parts: Sequence[Generation], pad_id: int) -> Generation:
    """Stack generations of different lengths in order, padding on the right as the engines do."""
    if len(parts) == 1:
        return parts[0]
    width = max(p.completion_ids.shape[1] for p in parts)

    def pad(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    return Generation(completion_ids=torch.cat([pad(p.completion_ids, pad_id) for p in parts]),
                      completion_mask=torch.cat([pad(p.completion_mask, 0) for p in parts]),
                      logprobs=torch.cat([pad(p.logprobs, 0.0) for p in parts]),
                      finished=torch.cat([p.finished for p in parts]))
