"""Rewards: rule verifiers and reward functions, by name, and their weighted sum.

`VERIFIERS` judge an extracted answer against a reference: `(pred, answer, info) -> bool`.
`REWARDS` score completions like TRL reward functions: `(prompts, completions, **columns) -> list[float]`.
To add one, write the function and add a line to the registry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from r1kit.rewards.choice import verify_choice
from r1kit.rewards.code import code_reward
from r1kit.rewards.countdown import verify_countdown
from r1kit.rewards.extract import extract_answer, verify_integer
from r1kit.rewards.general import GENERAL_VERIFIERS
from r1kit.rewards.language import language_consistency_reward
from r1kit.rewards.logic import verify_knights_knaves
from r1kit.rewards.math import grade, grade_many
from r1kit.rewards.numeric import verify_number
from r1kit.rewards.rules import (
    Verifier,
    format_reward,
    make_accuracy_reward,
    overlong_reward,
    readable_format_reward,
)
from r1kit.sandbox import SandboxUnavailableError, require_sandbox
from r1kit.types import Example, RewardResult


def verify_math(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """`r1kit.rewards.math.grade` (isolated, killable) with the gold answer first."""
    return grade(answer, pred, timeout_s=float(info.get("timeout_s", 5.0)))


def verify_math_batch(items: Sequence[tuple[str, str, Mapping[str, Any]]], **_: Any) -> list[bool]:
    """`verify_math` for many (pred, answer, info) at once, on all grading workers."""
    timeout = max((float(info.get("timeout_s", 5.0)) for _, _, info in items), default=5.0)
    outcomes = grade_many([(answer, pred) for pred, answer, _ in items], timeout_s=timeout)
    return [o.status == "ok" and bool(o.value) for o in outcomes]


def verify_code(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """The last fenced Python block of `pred` passes all of `info["tests"]`, run in the code sandbox."""
    return verify_code_batch([(pred, answer, info)])[0]


def verify_code_batch(items: Sequence[tuple[str, str, Mapping[str, Any]]], **options: Any) -> list[bool]:
    """`verify_code` for many samples at once, `code_max_workers` sandboxed runs at a time. Options are
    the code reward's settings (`code_timeout_s`, `code_memory_mb`, `code_unsafe_local`, ...). Without
    the sandbox this raises SandboxUnavailableError rather than score anything."""
    wanted = {k: v for k, v in options.items() if k.startswith("code_") and k != "code_partial_credit"}
    scores = code_reward([""] * len(items), [pred for pred, _, _ in items], info=[info for _, _, info in items],
                         **wanted)
    return [s == 1.0 for s in scores]


VERIFIERS: dict[str, Verifier] = {
    "integer": verify_integer,
    "number": verify_number,
    "countdown": verify_countdown,
    "math": verify_math,
    "choice": verify_choice,
    "knights_knaves": verify_knights_knaves,
    "code": verify_code,
    **GENERAL_VERIFIERS,
}
# Verifiers that find the answer in a whole completion themselves (\boxed{}, "the answer is (C)", a
# fenced code block): they get the completion when it has no <answer> tags, e.g. from a chat template.
WHOLE_TEXT_VERIFIERS = {"math", "choice", "code"}
# The gold rules of general prompts always judge the whole response (its summary, or all of it for
# harmlessness), whatever tags it holds (`r1kit.rewards.general`).
ALWAYS_WHOLE_TEXT = frozenset(GENERAL_VERIFIERS)

RewardFn = Callable[..., list[float]]

REWARDS: dict[str, RewardFn] = {
    "accuracy": make_accuracy_reward(VERIFIERS, WHOLE_TEXT_VERIFIERS,
                                     {"math": verify_math_batch, "code": verify_code_batch}, ALWAYS_WHOLE_TEXT),
    "format": format_reward,
    "readable_format": readable_format_reward,
    "overlong": overlong_reward,
    "language_consistency": language_consistency_reward,
    "code": code_reward,
}


def check_code_sandbox(weights: Mapping[str, float], verifiers: Sequence[str], *, unsafe_local: bool = False) -> None:
    """Refuse before any work when model-written code would run and the sandbox is not available here:
    raises SandboxUnavailableError saying how to install it (or to set the unsafe local mode explicitly)."""
    runs_code = "code" in weights or ("accuracy" in weights and "code" in verifiers)
    if runs_code and not unsafe_local:
        require_sandbox()


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
    *,
    settings: Mapping[str, Any] | None = None,
) -> RewardResult:
    """Score N completions with every weighted reward; total = sum of weight * reward (R1-SPEC s.3).

    Rewards get the examples' fields as columns (`answer`, `verifier`, `info`, `task`) and `settings`
    as keywords: `completion_lengths` (tokens per completion), `max_completion_tokens` and
    `overlong_cache` (the overlong reward), `language` (language consistency).
    """
    check_reward_names(weights)
    completions = [_as_text(c) for c in completions]
    columns: dict[str, Any] = {
        "answer": [e.answer for e in examples],
        "verifier": [e.verifier for e in examples],
        "info": [e.info for e in examples],
        "task": [e.task for e in examples],
        "completion_lengths": [0] * len(completions),
        **(settings or {}),
    }
    per_reward = {name: _safe_reward(name, prompts, completions, columns) for name in weights}
    return combine(per_reward, weights)


def _as_text(completion: Any) -> str:
    """Completions as valid text: None is empty, bytes and lone surrogates become U+FFFD."""
    if isinstance(completion, bytes):
        completion = completion.decode("utf-8", errors="replace")
    if not isinstance(completion, str):
        return ""
    return completion.encode("utf-8", errors="replace").decode("utf-8")


def _safe_reward(name: str, prompts: Sequence[str], completions: Sequence[str], columns: dict[str, Any]) -> list[float]:
    # A reward function that raises costs this batch that reward, never the training run.
    try:
        scores = [float(x) for x in REWARDS[name](prompts, completions, **columns)]
    except SandboxUnavailableError:
        raise  # the user must install the sandbox or ask for the unsafe mode; zeros would hide it
    except Exception:
        return [0.0] * len(completions)
    if len(scores) != len(completions):
        raise ValueError(f"reward {name!r} returned {len(scores)} scores for {len(completions)} completions")
    return scores


def combine(per_reward: Mapping[str, list[float]], weights: Mapping[str, float], *, timeouts: int = 0,
            errors: int = 0) -> RewardResult:
    """The weighted sum of named rewards, per completion."""
    n = len(next(iter(per_reward.values()), []))
    total = [sum(weights[name] * per_reward[name][i] for name in weights) for i in range(n)]
    return RewardResult(total=total, per_reward=dict(per_reward), timeouts=timeouts, errors=errors)


__all__ = [
    "REWARDS",
    "VERIFIERS",
    "WHOLE_TEXT_VERIFIERS",
    "RewardFn",
    "check_code_sandbox",
    "check_reward_names",
    "combine",
    "compute_rewards",
    "extract_answer",
    "format_reward",
]
