"""Rule rewards of R1-Zero (R1-SPEC section 1): accuracy and format.

Each reward is a plain function with the signature a TRL user knows,
`(prompts, completions, **columns) -> list[float]`, where the columns are the examples' fields
(`answer`, `verifier`, `info`, ...). Completions are the decoded text after the prompt. No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from r1kit.rewards.extract import extract_answer
from r1kit.sandbox import SandboxUnavailableError

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


BatchVerifier = Callable[..., list[bool]]
"""`(items, **settings) -> verdicts` for items of (pred, answer, info)."""


def make_accuracy_reward(verifiers: Mapping[str, Verifier], whole_text: Collection[str] = (),
                         batch: Mapping[str, BatchVerifier] | None = None,
                         always_whole: Collection[str] = ()) -> Callable[..., list[float]]:
    """The accuracy reward over a verifier registry: 1.0 when the last `<answer>` verifies.

    Verifiers named in `whole_text` get the whole completion when it has no answer tags, those in
    `always_whole` get it always. Those with a `batch` form (math: isolated workers, one per core) judge
    all their samples of the call at once.
    """
    batch = batch or {}

    def accuracy_reward(
        prompts: Sequence[str],
        completions: Sequence[str],
        *,
        answer: Sequence[str],
        verifier: Sequence[str],
        info: Sequence[Mapping[str, Any]],
        **settings: Any,
    ) -> list[float]:
        scores = [0.0] * len(completions)
        batched: dict[str, list[int]] = {}
        for i, (completion, ref, name, extra) in enumerate(zip(completions, answer, verifier, info, strict=True)):
            pred = completion if name in always_whole else extract_answer(completion)
            if pred is None and name in whole_text:
                pred = completion
            if pred is None:
                continue
            if name in batch:
                batched.setdefault(name, []).append(i)
            elif _safe_verify(verifiers[name], pred, ref, extra):
                scores[i] = 1.0
        for name, rows in batched.items():
            items = [(extract_answer(completions[i]) or completions[i], answer[i], info[i]) for i in rows]
            try:
                verdicts = batch[name](items, **settings)
            except SandboxUnavailableError:
                raise  # refusing to run code unsandboxed must reach the user, not score 0
            except Exception:
                continue
            for i, ok in zip(rows, verdicts, strict=True):
                scores[i] = 1.0 if ok else 0.0
        return scores

    return accuracy_reward


def _safe_verify(verify: Verifier, pred: str, ref: str, info: Mapping[str, Any]) -> bool:
    # A verifier bug must cost one sample its reward, never the training run.
    try:
        return bool(verify(pred, ref, info))
    except Exception:
        return False


# R1's cold-start pattern (R1-SPEC section 3): |special_token|<reasoning>|special_token|<summary>, with
# <think>...</think> as the special tokens, as in DeepSeek-R1's released chat template.
_READABLE = re.compile(r"\s*<think>(?P<reasoning>(?:(?!</?think>).)*\S(?:(?!</?think>).)*)</think>"
                       r"(?P<summary>(?:(?!</?think>).)*\S(?:(?!</?think>).)*)", re.DOTALL)


def readable_format_reward(prompts: Sequence[str], completions: Sequence[str], **_: Any) -> list[float]:
    """1.0 for the readable pattern of R1's cold start: non-empty reasoning in `<think>...</think>`,
    then a non-empty summary for the user, and no further think tags.

    >>> readable_format_reward(["q"] * 3, ["<think>2+2 is 4</think> The answer is 4.",
    ...                                     "<think>2+2</think>", "The answer is 4."])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if _READABLE.fullmatch(c) else 0.0 for c in completions]


def overlong_penalty(length: int, max_tokens: int, cache: int) -> float:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), a penalty in [-1, 0] added to the reward:

        0                                   if |y| <= L_max - L_cache
        ((L_max - L_cache) - |y|) / L_cache if L_max - L_cache < |y| <= L_max
        -1                                  if |y| > L_max

    >>> [overlong_penalty(n, max_tokens=100, cache=20) for n in (80, 90, 100, 101)]
    [0.0, -0.5, -1.0, -1.0]
    """
    if cache <= 0 or length <= max_tokens - cache:
        return 0.0
    if length > max_tokens:
        return -1.0
    return ((max_tokens - cache) - length) / cache


def overlong_reward(
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    completion_lengths: Sequence[int],
    max_completion_tokens: int,
    overlong_cache: int,
    **_: Any,
) -> list[float]:
    """`overlong_penalty` per completion; the trainer passes token lengths and the rollout budget."""
    return [overlong_penalty(n, max_completion_tokens, overlong_cache) for n in completion_lengths]
