"""A plain numeric verifier for data sets whose answers are numbers (GSM8K's `#### 72`).

The full math verifier (sympy equivalence, LaTeX, isolation) is a separate module; this one only reads
a decimal or a fraction, so it is exact, fast and cannot hang.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?")
_MAX_CHARS = 64


def parse_number(text: str) -> Fraction | None:
    """The last number in `text` as an exact fraction; thousands separators, $ and % are ignored.

    >>> parse_number("$1,234.50")
    Fraction(2469, 2)
    >>> parse_number("3/4") == Fraction(3, 4)
    True
    >>> parse_number("no number") is None
    True
    """
    cleaned = text.replace(",", "").replace("$", "").replace("%", "")
    matches = _NUMBER.findall(cleaned)
    if not matches:
        return None
    last = matches[-1]
    if len(last) > _MAX_CHARS:
        return None
    try:
        if "/" in last:
            num, den = last.split("/")
            return Fraction(num) / Fraction(den) if Fraction(den) != 0 else None
        return Fraction(last)
    except (ValueError, ZeroDivisionError):
        return None


def verify_number(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """True when the prediction and the reference are the same number, exactly.

    >>> verify_number("18", "18", {}), verify_number("18.0 dollars", "18", {}), verify_number("17", "18", {})
    (True, True, False)
    """
    try:
        got, want = parse_number(pred), parse_number(answer)
    except Exception:
        return False
    return got is not None and want is not None and got == want
