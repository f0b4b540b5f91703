"""Rejection sampling's decision for one prompt: which of its k samples become SFT data, and why the
others do not (R1-SPEC section 3, stage 3).

A sample is kept when it is correct (its task's rule verifier, or the generative judge for judged
tasks), ended by itself (not cut at the token budget: `runaway_length`) and readable
(`readability_issues`); then at most `keep` *distinct* ones per prompt, in sampling order. Simple
prompts (`no_cot`) keep their answer without the chain of thought, as R1 gave "hello" no CoT. Every
sample not kept is counted under each reason it fails (`incorrect`, `runaway_length`, the readability
reasons, `duplicate`, `over_keep`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from r1kit.sampling.readability import MAX_PARAGRAPH_CHARS, MIN_CONSISTENCY, readability_issues

_THINK = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)


@dataclass(frozen=True)
class Filters:
    """The thresholds of the paper's filters (documented in `r1kit.sampling.readability`)."""

    keep: int = 4
    min_consistency: float = MIN_CONSISTENCY
    max_paragraph_chars: int = MAX_PARAGRAPH_CHARS


@dataclass
class Decision:
    """What happened to one prompt's samples."""

    kept: list[tuple[int, str]] = field(default_factory=list)
    """(sample index, the completion as it will be trained on)."""
    dropped: Counter[str] = field(default_factory=Counter)
    """reason -> samples dropped for it (a sample can count under several readability reasons)."""


def decide(completions: Sequence[str], correct: Sequence[bool | None], finished: Sequence[bool], *,
           language: str | None, allow_code: bool, no_cot: bool, filters: Filters) -> Decision:
    """Keep the correct, complete, readable, distinct samples of one prompt, at most `filters.keep`.

    >>> d = decide(["<think>2+2=4</think> <answer>4</answer>", "<answer>5</answer>",
    ...             "<think>2+2=4</think> <answer>4</answer>", "<think>2+2=4</think> 4 <answer>4</answer>"],
    ...            [True, False, True, True], [True] * 4, language="en", allow_code=False, no_cot=False,
    ...            filters=Filters(keep=1))
    >>> d.kept, dict(d.dropped)
    ([(0, '<think>2+2=4</think> <answer>4</answer>')], {'incorrect': 1, 'duplicate': 1, 'over_keep': 1})
    """
    decision, seen = Decision(), set()
    for i, (text, ok, done) in enumerate(zip(completions, correct, finished, strict=True)):
        if not ok:
            decision.dropped["incorrect"] += 1
            continue
        if not done:
            decision.dropped["runaway_length"] += 1
            continue
        issues = readability_issues(text, language=language, allow_code=allow_code,
                                    min_consistency=filters.min_consistency,
                                    max_paragraph_chars=filters.max_paragraph_chars)
        if issues:
            decision.dropped.update(issues)
            continue
        trained = _THINK.sub("", text).strip() if no_cot else text.strip()
        key = " ".join(trained.split())
        if key in seen:
            decision.dropped["duplicate"] += 1
            continue
        if len(decision.kept) >= filters.keep:
            decision.dropped["over_keep"] += 1
            continue
        seen.add(key)
        decision.kept.append((i, trained))
    return decision
