"""Answer extraction and the exact-integer verifier ("integer"). Pure Python, no torch.

The R1-Zero template asks for `<think> ... </think> <answer> ... </answer>`; the reward reads only what
sits inside the last answer tag pair, so a completion that never closes its answer earns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

OPEN, CLOSE = "<answer>", "</answer>"
MAX_INTEGER_CHARS = 64  # longer "integers" are rejected before int() sees them
_INTEGER = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+|[+-]?[0-9]+")  # ASCII digits only


def extract_answer(completion: str) -> str | None:
    """The text inside the LAST `<answer>...</answer>`, stripped; None when there is no such pair.

    >>> extract_answer(" <think>7+5=12</think> <answer> 632 </answer>")
    '632'
    >>> extract_answer("<answer>1</answer> no, <answer>2</answer>")
    '2'
    >>> extract_answer("<answer>1<answer>2</answer>")
    '2'
    >>> extract_answer("<answer>unclosed") is None
    True
    >>> extract_answer("<answer></answer>")
    ''
    """
    end = completion.rfind(CLOSE)
    if end < 0:
        return None
    start = completion.rfind(OPEN, 0, end)
    if start < 0:
        return None
    return completion[start + len(OPEN) : end].strip()


def parse_integer(text: str) -> int | None:
    """An integer written plainly: optional sign, digits, optional thousands commas, optional ".0...".

    >>> parse_integer("1,458"), parse_integer(" -7 "), parse_integer("12.00"), parse_integer("12.5")
    (1458, -7, 12, None)
    """
    text = text.strip()
    if len(text) > MAX_INTEGER_CHARS:
        return None
    if "." in text:
        text, _, frac = text.partition(".")
        if frac.strip("0"):
            return None
    if not _INTEGER.fullmatch(text):
        return None
    return int(text.replace(",", ""))


def verify_integer(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """Exact integer equality of the extracted prediction and the reference; never raises.

    >>> verify_integer("632", "632", {}), verify_integer("0632", "632", {}), verify_integer("631", "632", {})
    (True, True, False)
    >>> verify_integer("six hundred", "600", {}), verify_integer(None, "1", {})  # type: ignore[arg-type]
    (False, False)
    """
    if not isinstance(pred, str) or not isinstance(answer, str):
        return False
    got, want = parse_integer(pred), parse_integer(answer)
    return got is not None and got == want
