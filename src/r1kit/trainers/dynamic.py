"""DAPO's dynamic sampling (Yu et al. 2025, "DAPO", section 3.2, `grpo.dynamic_sampling`): over-sample
prompts, drop the groups whose rewards are all equal (their advantages are all zero: they teach nothing
but still cost a forward and a backward pass), and draw again until the batch holds `prompts_per_step`
informative groups, at most `grpo.max_sampling_rounds` draws per step.

Prompts come from the same seeded stream as without it, in draws of `draw_size(cfg)` prompts: draw d is
what step d would have used with that batch size. Since a step now consumes a variable number of draws,
the next draw (the prompt cursor) is part of the checkpoint, and a resumed run draws exactly what the
uninterrupted one did. Each draw's groups sample from their own seed streams (group index d * D + i), so
no two draws share a random stream.

When the cap is reached with fewer than B informative groups, the batch is completed with the latest
uninformative groups (zero advantage: they move only the KL term) and `dynamic/filled` says how many;
the batch size, and so the loss normalisation and the minibatch split, never change.

The step's reward and accuracy metrics are those of its first draw, an unbiased sample of the prompt
stream: the curves stay comparable with runs without dynamic sampling (the kept batch is biased towards
prompts of middling difficulty by construction).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from r1kit.algorithms import informative_groups
from r1kit.config import ZeroConfig

if TYPE_CHECKING:
    from r1kit.trainers.grpo import Rollout


@dataclass
class PromptCursor:
    """The next draw of the prompt stream; saved in checkpoints (`state()` / `restore()`)."""

    draw: int = 0

    def state(self) -> dict[str, int]:
        return {"draw": self.draw}

    @classmethod
    def restore(cls, state: dict[str, int] | None, step: int) -> PromptCursor:
        """The cursor of a checkpoint; a checkpoint from before dynamic sampling has none: `step` draws."""
        return cls(int(state["draw"])) if state else cls(step)


def draw_size(cfg: ZeroConfig) -> int:
    """Prompts per draw: prompts_per_step x grpo.oversample, rounded up."""
    return math.ceil(cfg.prompts_per_step * cfg.grpo.oversample)


def dynamic_rollout(cfg: ZeroConfig, cursor: PromptCursor, draw_prompts: Callable[[int, int], list[int]],
                    sample: Callable[[list[int], int], Rollout], pad_token_id: int) -> Rollout:
    """B informative groups for one step.

    draw_prompts(draw, count): the prompt indices of a draw; sample(indices, first_group): their scored
    rollout, groups seeded from `first_group` on. Advances `cursor` by the draws used.
    """
    B, D = cfg.prompts_per_step, draw_size(cfg)
    rollouts: list[Rollout] = []
    kept: list[tuple[int, int]] = []  # (draw, group) in draw order
    dropped: list[tuple[int, int]] = []
    generated = 0
    while len(kept) < B and len(rollouts) < cfg.grpo.max_sampling_rounds:
        draw = cursor.draw
        rollout = sample(draw_prompts(draw, D), draw * D)
        cursor.draw += 1
        mask = informative_groups(rollout.rewards).tolist()
        r = len(rollouts)
        rollouts.append(rollout)
        generated += len(mask)
        kept += [(r, g) for g, ok in enumerate(mask) if ok]
        dropped += [(r, g) for g, ok in enumerate(mask) if not ok]
    filled = max(B - len(kept), 0)
    picks = kept[:B] + dropped[len(dropped) - filled:] if filled else kept[:B]
    batch = select_groups(rollouts, picks, pad_token_id)
    first = rollouts[0].metrics
    metrics = {**first,
               "tokens": sum(r.metrics["tokens"] for r in rollouts),  # everything generated: the real cost
               "dynamic/rounds": float(len(rollouts)),
               "dynamic/dropped_share": len(dropped) / generated,
               "dynamic/filled": float(filled),
               "dynamic/prompts_drawn": float(generated),
               "dynamic/cursor": float(cursor.draw),
               "zero_variance_groups": first["zero_variance_groups"],
               "batch/zero_variance_groups": filled / B}
    return dataclasses.replace(batch, metrics=metrics)


def select_groups(rollouts: Sequence[Rollout], picks: Sequence[tuple[int, int]], pad_token_id: int) -> Rollout:
    """A rollout made of the groups `picks` ((rollout index, group index) pairs), in that order, re-padded
    to the widest prompt (left) and completion (right) among the rollouts."""
    P = max(r.prompt_ids.shape[1] for r in rollouts)
    T = max(r.completion_ids.shape[1] for r in rollouts)
    G = rollouts[0].group_size

    def left(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (P - t.shape[1], 0), value=value)

    def right(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, T - t.shape[1]), value=value)

    groups = [(rollouts[r], g) for r, g in picks]
    rows = [(ro, slice(g * G, (g + 1) * G)) for ro, g in groups]
    sampler = None
    if all(ro.sampler_logprobs is not None for ro, _ in groups):
        sampler = torch.cat([right(ro.sampler_logprobs[s], 0.0) for ro, s in rows])  # type: ignore[index]
    return dataclasses.replace(
        rollouts[0],
        prompt_ids=torch.stack([left(ro.prompt_ids[g : g + 1], pad_token_id)[0] for ro, g in groups]),
        prompt_mask=torch.stack([left(ro.prompt_mask[g : g + 1], 0)[0] for ro, g in groups]),
        completion_ids=torch.cat([right(ro.completion_ids[s], pad_token_id) for ro, s in rows]),
        completion_mask=torch.cat([right(ro.completion_mask[s], 0) for ro, s in rows]),
        rewards=torch.stack([ro.rewards[g] for ro, g in groups]),
        advantages=torch.cat([ro.advantages[s] for ro, s in rows]),
        ref_logprobs=None, old_logprobs=None, sampler_logprobs=sampler)
