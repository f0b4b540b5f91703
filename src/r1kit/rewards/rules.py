"""Rule rewards of R1-Zero (R1-SPEC section 1): accuracy and format.

Each reward is a plain function with the signature a TRL user knows,
`(prompts, completions, **columns) -> list[float]`, where the columns are the examples' fields
(`answer`, `verifier`, `info`, ...). Completions are the decoded text after the prompt. No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from r1kit.rewards.extract import extract_answer

Verifier = Callable[[str, str, Mapping[str, Any]], bool]

# <think>...</think> then <answer>...</answer>, each exactly once, nothing but whitespace around them.
_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
_FORMAT = re.compile(rf"\s*<think>{_NO_TAG}</think>\s*<answer>{_NO_TAG}</answer>\s*", re.DOTALL)


def format_reward(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list[float]:
    """1.0 when the completion is `<think>...</think>` then `<answer>...</answer>` and nothing after.

    >>> format_reward(["q"] * 3, ["<think>a</think> <answer>1</answer>", "<answer>1</answer>",
    ...                            "<think>a</think><answer>1</answer> more"])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if _FORMAT.fullmatch(c) else 0.0 for c in completions]


def make_accuracy_reward(verifiers: Mapping[str, Verifier]) -> Callable[..., list[float]]:
    """The accuracy reward over a verifier registry: 1.0 when the last `<answer>` verifies."""

    def accuracy_reward(
        prompts: Sequence[str],
        completions: Sequence[str],
        *,
        answer: Sequence[str],
        verifier: Sequence[str],
        info: Sequence[Mapping[str, Any]],
        **_: Any,
    ) -> list[float]:
        scores = []
        for completion, ref, name, extra in zip(completions, answer, verifier, info, strict=True):
            pred = extract_answer(completion)
            ok = pred is not None and _safe_verify(verifiers[name], pred, ref, extra)
            scores.append(1.0 if ok else 0.0)
        return scores

    return accuracy_reward


def _safe_verify(verify: Verifier, pred: str, ref: str, info: Mapping[str, Any]) -> bool:
    # A verifier bug must cost one sample its reward, never the training run.
    try:
        return bool(verify(pred, ref, info))
    except Exception:
        return False
