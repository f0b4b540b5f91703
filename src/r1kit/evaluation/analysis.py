"""The paper's analyses of reasoning behaviour (R1-SPEC section 5), as pure functions over completions.

- **Reflective words**: how often a response says "wait", "mistake", "however", "verify", "check",
  "retry", ... (the paper counts them to show reflection growing during RL).
- **Response lengths**: the distribution of completion token counts, and thinking tokens (inside
  `<think>...</think>`) against difficulty (MATH-500 levels 1-5): harder problems get longer thoughts.
- **Language mixing**: the share of chains of thought not written in one language.

`r1kit eval` reports all of them; the trainer's periodic evaluation logs the reflective-word rate and
lengths per step from the same functions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

REFLECTIVE_WORDS = ("wait", "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate",
                    "check", "recheck", "re-check", "reconsider", "alternatively", "hmm", "actually",
                    "等等", "检查", "验证", "错误", "不对", "但是")
"""The words the paper tracks in its reflection analysis (plus the obvious inflection-free kin), and
their Chinese counterparts (wait, check, verify, mistake, wrong, but), counted as substrings."""
GLOSSES = {"等等": "zh:wait", "检查": "zh:check", "验证": "zh:verify", "错误": "zh:mistake", "不对": "zh:wrong",
           "但是": "zh:but"}
"""Plot labels of the Chinese words: matplotlib's default font has no CJK glyphs (they would be boxes)."""
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def reflective_counts(text: str, words: Sequence[str] = REFLECTIVE_WORDS) -> Counter[str]:
    """Occurrences of each reflective word in `text` (case-insensitive, whole words).

    >>> sorted(reflective_counts("Wait, that's wrong. Let me check: wait again.").items())
    [('check', 1), ('wait', 2), ('wrong', 1)]
    """
    wanted = set(words)
    counts = Counter(w for w in _WORD.findall(text.lower()) if w in wanted)
    for word in wanted:
        if not word.isascii():  # no spaces between Chinese words: count occurrences
            counts[word] += text.count(word)
    return +counts


def reflection_stats(completions: Sequence[str], words: Sequence[str] = REFLECTIVE_WORDS) -> dict[str, Any]:
    """Per-word counts, reflective words per response, and the share of responses with at least one."""
    total: Counter[str] = Counter()
    with_any = 0
    for text in completions:
        counts = reflective_counts(text, words)
        total.update(counts)
        with_any += bool(counts)
    n = max(len(completions), 1)
    return {"per_word": {w: total[w] for w in words}, "per_response": sum(total.values()) / n,
            "share_with_any": with_any / n}


def thinking_text(completion: str) -> str:
    """The chain of thought: what sits inside `<think>...</think>` (to the end if unclosed), else all."""
    match = _THINK.search(completion)
    return match.group(1) if match else completion


def length_histogram(lengths: Sequence[int], bins: int = 20) -> dict[str, Any]:
    """Equal-width histogram of token counts: bin edges and counts (for the report and plots).

    >>> length_histogram([1, 2, 2, 4], bins=3)
    {'edges': [1.0, 2.0, 3.0, 4.0], 'counts': [1, 2, 1]}
    """
    if not lengths:
        return {"edges": [], "counts": []}
    lo, hi = min(lengths), max(lengths)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for x in lengths:
        counts[min(int((x - lo) / width), bins - 1)] += 1
    return {"edges": [lo + i * width for i in range(bins + 1)], "counts": counts}


def by_level(levels: Sequence[Any], values: Sequence[float]) -> dict[str, float]:
    """Mean of `values` per difficulty level (levels missing -> skipped), keys sorted.

    >>> by_level([1, 2, 1, None], [10, 30, 20, 99])
    {'1': 15.0, '2': 30.0}
    """
    groups: dict[str, list[float]] = defaultdict(list)
    for level, value in zip(levels, values, strict=True):
        if level is not None:
            groups[str(level)].append(value)
    return {k: sum(v) / len(v) for k, v in sorted(groups.items())}


def mixing_rate(rows: Sequence[Mapping[str, Any]], is_mixed: Callable[[str, str | None], bool]) -> float:
    """Share of the rows' completions whose chain of thought `is_mixed(text, language)` judges as mixing
    languages, `language` being the row's own (`info["language"]`, None when it names none)."""
    verdicts = [bool(is_mixed(thinking_text(c), r.get("info", {}).get("language"))) for r in rows
                for c in r["completions"]]
    return sum(verdicts) / len(verdicts) if verdicts else 0.0


def summarize(rows: Sequence[Mapping[str, Any]], count_tokens: Callable[[str], int],
              is_mixed: Callable[[str, str | None], bool] | None = None) -> dict[str, Any]:
    """All analyses over `samples.jsonl` rows of one task (each with completions, tokens, info)."""
    completions = [c for r in rows for c in r["completions"]]
    lengths = [n for r in rows for n in r["tokens"]]
    thinking = [[count_tokens(thinking_text(c)) for c in r["completions"]] for r in rows]
    levels = [r.get("info", {}).get("level") for r in rows]
    out: dict[str, Any] = {
        "reflection": reflection_stats(completions),
        "response_tokens": {"mean": sum(lengths) / max(len(lengths), 1), "histogram": length_histogram(lengths)},
        "thinking_tokens_by_level": by_level(levels, [sum(t) / max(len(t), 1) for t in thinking]),
    }
    if is_mixed is not None:
        out["language_mixing_rate"] = mixing_rate(rows, is_mixed)
    return out
