"""The Countdown verifier ("countdown"): is the predicted expression a valid way to reach the target?

Rule (TinyZero's): the expression uses every given number exactly once (as a multiset: a number given
twice may be used twice) and no other number, only the binary operators + - * / (also `x`, `X`, `×`
for multiplication, `÷` for division and `−` for minus) and parentheses, and its value, computed exactly
with `fractions.Fraction`, equals the target. No unary minus, no decimals, no "= 33" tail: the answer
is the expression alone.

The expression is read by a small hand-written recursive-descent parser, never by `eval` or `ast`:
model output is untrusted text. Limits against abuse: at most `MAX_CHARS` characters, parentheses
nested at most `MAX_DEPTH` deep, number literals at most `MAX_DIGITS` digits. Bad input of any kind
gives False; `verify` never raises.

Grammar:
    expr   := term   (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := NUMBER | "(" expr ")"
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

MAX_CHARS = 200
MAX_DEPTH = 16
MAX_DIGITS = 6
_SYMBOLS = {"+": "+", "-": "-", "−": "-", "*": "*", "x": "*", "X": "*", "×": "*", "/": "/", "÷": "/"}
_SYMBOLS.update({"(": "(", ")": ")"})


class _Invalid(Exception):
    """The text is not a well-formed expression under the rules above."""


def tokenize(text: str) -> list[str | int]:
    """Numbers become ints, operators their ASCII form; anything else is invalid.

    >>> tokenize("(7 − 3) × 12")
    ['(', 7, '-', 3, ')', '*', 12]
    """
    tokens: list[str | int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t":
            i += 1
        elif "0" <= ch <= "9":  # ASCII digits only: str.isdigit() also accepts "²" and other scripts
            j = i
            while j < len(text) and "0" <= text[j] <= "9":
                j += 1
            if j - i > MAX_DIGITS:
                raise _Invalid("number too long")
            tokens.append(int(text[i:j]))
            i = j
        elif ch in _SYMBOLS:
            tokens.append(_SYMBOLS[ch])
            i += 1
        else:
            raise _Invalid(f"unexpected character {ch!r}")
    return tokens


class _Parser:
    """Recursive descent over the tokens; collects the number literals it reads."""

    def __init__(self, tokens: list[str | int]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.numbers: list[int] = []

    def peek(self) -> str | int | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | int | None:
        token = self.peek()
        self.pos += 1
        return token

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term(depth)
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op, rhs = self.take(), self.factor(depth)
            if op == "*":
                value *= rhs
            elif rhs == 0:
                raise _Invalid("division by zero")
            else:
                value /= rhs
        return value

    def factor(self, depth: int) -> Fraction:
        token = self.take()
        if isinstance(token, int):
            self.numbers.append(token)
            return Fraction(token)
        if token == "(":
            if depth >= MAX_DEPTH:
                raise _Invalid("parentheses nested too deep")
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise _Invalid("unbalanced parentheses")
            return value
        raise _Invalid(f"expected a number or '(', got {token!r}")


def evaluate(text: str) -> tuple[Fraction, list[int]]:
    """The exact value of an expression and the numbers it uses, in order; raises ValueError if invalid.

    >>> evaluate("(7-3)*12")
    (Fraction(48, 1), [7, 3, 12])
    >>> evaluate("7/2")[0]
    Fraction(7, 2)
    """
    if len(text) > MAX_CHARS:
        raise ValueError("expression too long")
    try:
        parser = _Parser(tokenize(text))
        value = parser.expr(depth=0)
        if parser.peek() is not None:
            raise _Invalid(f"unexpected {parser.peek()!r} after the expression")
    except _Invalid as err:
        raise ValueError(str(err)) from None
    return value, parser.numbers


def verify_countdown(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """True when `pred` uses each of `info["numbers"]` exactly once and equals `info["target"]`.

    `answer` (one reference solution) is not needed: any valid expression counts. Never raises.

    >>> info = {"numbers": [3, 7, 12], "target": 48}
    >>> verify_countdown("(7-3)*12", "", info), verify_countdown("12*(7-3)", "", info)
    (True, True)
    >>> verify_countdown("(7-3)*12*1", "", info), verify_countdown("7*12", "", info)  # extra / missing
    (False, False)
    >>> verify_countdown("__import__('os')", "", info), verify_countdown("3/(7-7)", "", info)
    (False, False)
    """
    try:
        if not isinstance(pred, str):
            return False
        raw = [info["target"], *info["numbers"]]
        if any(isinstance(x, bool) for x in raw):
            return False
        # operator.index accepts Python and NumPy integers and rejects floats and strings.
        target, *numbers = (operator.index(x) for x in raw)
        value, used = evaluate(pred)
        return Counter(used) == Counter(numbers) and value == target
    except Exception:
        # Malformed info (missing keys, wrong types) or expression: a wrong answer, not a crash.
        return False
