"""Records that cross module boundaries. Plain frozen dataclasses, no torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One problem of a task: what the model is asked and what the verifier needs to judge it."""

    prompt: str
    """The question alone, before any template is applied."""
    answer: str
    """The reference answer as text (a number, an expression, a letter, ...)."""
    task: str
    """Name of the task this example comes from (a key of `r1kit.tasks.TASKS`)."""
    verifier: str
    """Name of the rule that judges an extracted answer (a key of `r1kit.rewards.VERIFIERS`)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the verifier needs (Countdown's numbers and target, a difficulty level, ...)."""


@dataclass(frozen=True)
class RewardResult:
    """Rewards for N completions: the weighted total and each named reward before weighting."""

    total: list[float]
    per_reward: Mapping[str, list[float]]
    timeouts: int = 0
    """Samples whose rewards ran past the per-sample timeout (scored 0)."""
    errors: int = 0
    """Samples whose reward raised or crashed its worker (scored 0)."""
