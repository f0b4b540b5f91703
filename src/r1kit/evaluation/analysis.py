"""The paper's analyses of reasoning behaviour (R1-SPEC section 5), as pure functions over completions.

- **Reflective words**: how often a response says "wait", "mistake", "however", "verify", "check",
  "retry", ... (the paper counts them to show reflection growing during RL).
- **Response lengths**: the distribution of completion token counts, and thinking tokens (inside
  `<think>...</think>`) against difficulty (`info["level"]`: MATH-500's levels 1-5, the carries of an
  `arithmetic` sum 0-3, the source numbers of a Countdown problem 3-4): harder problems get longer thoughts.
- **Language mixing**: the share of chains of thought not written in one language.
- **"Aha" samples** (`find_aha`): a reflective word followed by a changed answer that is correct, the
  paper's "aha moment" (its Table 3) as a rule one can grep for. A heuristic, not a judge: the answer
  "before" is the last `<answer>`, `\boxed{}` or number written before the word, so a reflective word
  after an intermediate number (`7+5=12, but ...`) counts when the final answer differs from 12.

`r1kit eval` reports all of them; the trainer's periodic evaluation logs the reflective-word rate and
lengths per step from the same functions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from r1kit.evaluation.benchmarks import last_boxed
from r1kit.evaluation.voting import same_answer

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
_WORD_ANY_CASE = re.compile(_WORD.pattern, re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


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


def reflective_spans(text: str, words: Sequence[str] = REFLECTIVE_WORDS) -> list[tuple[int, str]]:
    """(offset, word) of every reflective word in `text`, in order, matched as `reflective_counts` counts.

    >>> reflective_spans("So 5. Wait, 等等 check")
    [(6, 'wait'), (12, '等等'), (15, 'check')]
    """
    wanted = set(words)
    # Matched case-insensitively on `text` itself: lowercasing may change lengths, and so offsets.
    spans = [(m.start(), m.group().lower()) for m in _WORD_ANY_CASE.finditer(text) if m.group().lower() in wanted]
    for word in wanted:
        if not word.isascii():
            spans += [(m.start(), word) for m in re.finditer(re.escape(word), text)]
    return sorted(spans)


def answer_candidate(text: str, *, numbers: bool = True) -> str | None:
    r"""The answer `text` commits to so far: its last `<answer>` content, else its last `\boxed{}`, else
    (with `numbers`: the answer is a number) its last number; None when it holds none.

    >>> answer_candidate("7+5=12,4+8=12,3+2=5, so 522. "), answer_candidate(r"x=\boxed{1/2}, then 3")
    ('522', '1/2')
    """
    tags = _ANSWER_TAG.findall(text)
    if tags and tags[-1].strip():
        return tags[-1].strip()
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    found = _NUMBER.findall(text) if numbers else []
    return found[-1] if found else None


@dataclass(frozen=True)
class Aha:
    """Where a completion reflected and changed its answer to the right one."""

    word: str
    """The reflective word (as listed in `REFLECTIVE_WORDS`)."""
    offset: int
    """Its character offset in the completion."""
    before: str
    """The answer candidate written before the word."""
    after: str
    """The final (correct) answer."""


def find_aha(completion: str, *, final: str | None, correct: bool, same: Callable[[str, str], bool],
             words: Sequence[str] = REFLECTIVE_WORDS, numbers: bool = True) -> Aha | None:
    """The first reflective word after which the answer changed to the correct one, or None.

    `final` is the answer the sample was graded on (`voting.vote_answer`), `correct` its verdict and `same`
    the verifier's equivalence of two answers (`voting.same_answer`), so "0.5" then "1/2" is no change. A
    word counts when some answer candidate (`answer_candidate`) is written before it and differs from
    `final`; a reflection after the final answer finds that answer before it, so it never counts. Bare
    numbers are candidates only with `numbers` (a numeric answer): in a Countdown, logic or code sample
    the intermediate "3+5=8" is work, not an answer.

    >>> same = lambda a, b: a == b
    >>> find_aha(" <think>so 522. wait, recheck: so 632.</think> <answer>632</answer>", final="632",
    ...          correct=True, same=same)
    Aha(word='wait', offset=16, before='522', after='632')
    """
    if not correct or final is None:
        return None
    for offset, word in reflective_spans(completion, words):
        before = answer_candidate(completion[:offset], numbers=numbers)
        if before is not None and not same(before, final):
            return Aha(word=word, offset=offset, before=before, after=final)
    return None


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
    ahas = sum(aha is not None for r in rows for aha in row_ahas(r))
    out: dict[str, Any] = {
        "reflection": reflection_stats(completions),
        "response_tokens": {"mean": sum(lengths) / max(len(lengths), 1), "histogram": length_histogram(lengths)},
        "thinking_tokens_by_level": by_level(levels, [sum(t) / max(len(t), 1) for t in thinking]),
        "aha": {"count": ahas, "share": ahas / max(len(completions), 1)},
    }
    if is_mixed is not None:
        out["language_mixing_rate"] = mixing_rate(rows, is_mixed)
    return out


NUMERIC_VERIFIERS = frozenset({"integer", "number", "math"})
"""Verifiers whose answer is a number, so a bare number in the reasoning is a candidate answer."""


def row_ahas(row: Mapping[str, Any]) -> list[Aha | None]:
    """`find_aha` of each completion of a `samples.jsonl` row (its extracted answers and verdicts)."""
    same, numbers = same_answer(row["verifier"], row.get("info", {})), row["verifier"] in NUMERIC_VERIFIERS
    return [find_aha(text, final=final, correct=bool(ok), same=same, numbers=numbers)
            for text, final, ok in zip(row["completions"], row["extracted"], row["correct"], strict=True)]
