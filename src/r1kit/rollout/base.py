"""The `Generator` interface: what the trainer and the evaluator ask of a sampling engine.

An engine turns prompt token ids into completions with their sampler log-probs. The HF engine
(`hf.py`) samples with the policy module itself; a vLLM engine implements the same call and receives
new weights through `update_weights` after each optimizer step.
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
    ) -> Generation:
        """Sample `num_samples` completions for each prompt; the same seed gives the same completions."""
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights."""
        ...


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to [n, P] ids and mask, so every row's last token sits in the last column."""
    width = max(len(p) for p in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, p in enumerate(sequences):
        ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids, mask
