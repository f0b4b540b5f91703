"""The paper's readability filters for rejection-sampled chains of thought (R1-SPEC section 3).

DeepSeek-R1 "filtered out chain-of-thought with mixed languages, long paragraphs, and code blocks"
before its rejection-sampling SFT, and kept only outputs in its readable pattern. `readability_issues`
names what is wrong with one completion; an empty list means readable:

- `mixed_language`: the chain of thought's share of words in the target language (the
  `language_consistency` reward's count, R1's stage-2 reward) is below `min_consistency` (0.95: a
  language switch of a few words in a short trace already fails it);
- `long_paragraph`: a paragraph of the chain of thought (text between blank lines) is longer than
  `max_paragraph_chars` (600 characters: a wall of text nobody reads);
- `code_block`: a fenced code block in the reasoning or the summary, for a task that is not about code;
- `format`: not the readable pattern. With a `<think>` block: exactly one, non-empty, closed, followed
  by a non-empty summary. Without one (a direct answer) the text must be non-empty and hold no stray
  think tag.

Runaway length (a completion cut at the token budget without its end-of-sequence token) needs token
counts, so `r1kit sample` checks it separately.
"""

from __future__ import annotations

import re

from r1kit.rewards.language import chain_of_thought, count_words, detect_language

MIN_CONSISTENCY = 0.95
MAX_PARAGRAPH_CHARS = 600
REASONS = ("mixed_language", "long_paragraph", "code_block", "format")

_CODE = re.compile(r"```")
_THINK_TAGS = re.compile(r"</?think>")
_PARAGRAPH = re.compile(r"\n\s*\n")


def readability_issues(completion: str, *, language: str | None = None, allow_code: bool = False,
                       min_consistency: float = MIN_CONSISTENCY,
                       max_paragraph_chars: int = MAX_PARAGRAPH_CHARS) -> list[str]:
    """The names (out of `REASONS`) of what makes `completion` unreadable; [] when it is readable.
    `language` is the target language (None: the language the completion itself is mostly in).

    >>> readability_issues("<think>7+5=12，4+8+1=13，所以632。</think> 答案是<answer>632</answer>", language="zh")
    []
    >>> readability_issues("<think>7+5=12，wait, let me check the carries: 7+5=12</think> 632", language="zh")
    ['mixed_language']
    >>> readability_issues("<think>```print(1)```</think>", language="en")
    ['code_block', 'format']
    """
    issues = []
    thought = chain_of_thought(completion) if "<think>" in completion or "</think>" in completion else ""
    if thought.strip():
        target = language or detect_language(thought) or "en"
        counted = count_words(completion, target)
        if counted.total and counted.share < min_consistency:
            issues.append("mixed_language")
    if any(len(p.strip()) > max_paragraph_chars for p in _PARAGRAPH.split(thought)):
        issues.append("long_paragraph")
    if not allow_code and _CODE.search(completion):
        issues.append("code_block")
    if not _well_formed(completion):
        issues.append("format")
    return issues


def _well_formed(completion: str) -> bool:
    tags = _THINK_TAGS.findall(completion)
    if not tags:
        return bool(completion.strip())
    if tags != ["<think>", "</think>"]:
        return False
    before, rest = completion.split("<think>", 1)
    reasoning, summary = rest.split("</think>", 1)
    return not before.strip() and bool(reasoning.strip()) and bool(summary.strip())
