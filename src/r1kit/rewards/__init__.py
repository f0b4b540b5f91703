"""Rewards: rule verifiers and reward functions, by name, and their weighted sum.

`VERIFIERS` judge an extracted answer against a reference: `(pred, answer, info) -> bool`.
`REWARDS` score completions like TRL reward functions: `(prompts, completions, **columns) -> list[float]`.
To add one, write the function and add a line to the registry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from r1kit.rewards.countdown import verify_countdown
from r1kit.rewards.extract import extract_answer, verify_integer
from r1kit.rewards.numeric import verify_number
from r1kit.rewards.rules import Verifier, format_reward, make_accuracy_reward
from r1kit.types import Example, RewardResult

VERIFIERS: dict[str, Verifier] = {
    "integer": verify_integer,
    "number": verify_number,
    "countdown": verify_countdown,
}

RewardFn = Callable[..., list[float]]

REWARDS: dict[str, RewardFn] = {
    "accuracy": make_accuracy_reward(VERIFIERS),
    "format": format_reward,
}


def check_reward_names(weights: Mapping[str, float]) -> None:
    """Raise ValueError naming the first unknown reward."""
    for name in weights:
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; choose from {', '.join(REWARDS)}")


def compute_rewards(
    prompts: Sequence[str],
    completions: Sequence[str],
    examples: Sequence[Example],
    weights: Mapping[str, float],
) -> RewardResult:
    """Score N completions with every weighted reward; total = sum of weight * reward (R1-SPEC s.3)."""
    check_reward_names(weights)
    columns: dict[str, Any] = {
        "answer": [e.answer for e in examples],
        "verifier": [e.verifier for e in examples],
        "info": [e.info for e in examples],
        "task": [e.task for e in examples],
    }
    per_reward = {name: REWARDS[name](prompts, completions, **columns) for name in weights}
    total = [
        sum(weights[name] * per_reward[name][i] for name in weights) for i in range(len(completions))
    ]
    return RewardResult(total=total, per_reward=per_reward)


__all__ = [
    "REWARDS",
    "VERIFIERS",
    "RewardFn",
    "check_reward_names",
    "compute_rewards",
    "extract_answer",
    "format_reward",
]
