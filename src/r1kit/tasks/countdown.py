"""Countdown (as in TinyZero): combine 3 or 4 given numbers with + - * / to reach a target.

Rule (the TinyZero one): every given number is used exactly once, any other number is forbidden,
parentheses are free, and division must be exact in the sense of exact rational arithmetic (the
"countdown" verifier in `r1kit.rewards.countdown` enforces this). Many expressions can be right; the
`answer` field holds one reference solution, built with the problem.

Problems are generated backwards: shuffle the numbers, fold them left to right with random operations
whose intermediate results stay positive integers, and keep the chain if its value lands in
[1, `MAX_TARGET`]. So every problem has at least one solution. Splits work as in `arithmetic`: a fixed
test pool from a constant seed, a seeded train split that never repeats a test problem (same multiset
of numbers and same target).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from r1kit.types import Example

NAME = "countdown"
VERIFIER = "countdown"
TEST_POOL_SIZE = 1000
DEFAULT_TRAIN_SIZE = 20_000
MAX_NUMBER = 20
MAX_TARGET = 100
_TEST_SEED = 20_250_123
_OPS = "+-*/"

Key = tuple[tuple[int, ...], int]


def _apply(op: str, x: int, y: int) -> int | None:
    """x op y when it is a positive integer, else None."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y if x > y else None
    if op == "*":
        return x * y
    return x // y if x % y == 0 else None


def fold_chain(first: int, ops: Sequence[tuple[str, int]]) -> tuple[list[str], int] | None:
    """The steps "x op y=z" of a left-to-right chain and its value; None if a step is not a positive
    integer (the traces only ever show whole-number arithmetic).

    >>> fold_chain(7, [("-", 3), ("*", 12)])
    (['7-3=4', '4*12=48'], 48)
    >>> fold_chain(7, [("/", 2)]) is None
    True
    """
    value, steps = first, []
    for op, y in ops:
        if (op == "-" and value <= y) or (op == "/" and value % y):
            return None
        new = {"+": value + y, "-": value - y, "*": value * y, "/": value // y}[op]
        steps.append(f"{value}{op}{y}={new}")
        value = new
    return steps, value


def chain_expression(first: int, steps: list[tuple[str, int]]) -> str:
    """Write ((first op y1) op y2) ... with only the parentheses precedence needs.

    >>> chain_expression(7, [("-", 3), ("*", 12)])
    '(7-3)*12'
    >>> chain_expression(7, [("*", 3), ("+", 12), ("/", 3)])
    '(7*3+12)/3'
    """
    expr, last_low = str(first), False  # last_low: the top operator of expr is + or -
    for op, y in steps:
        if op in "*/" and last_low:
            expr = f"({expr})"
        expr = f"{expr}{op}{y}"
        last_low = op in "+-"
    return expr


def _problem(rng: random.Random) -> tuple[list[int], int, str]:
    """(numbers in prompt order, target, a reference expression)."""
    while True:
        numbers = [rng.randint(1, MAX_NUMBER) for _ in range(rng.choice((3, 4)))]
        order = rng.sample(numbers, len(numbers))
        value: int | None = order[0]
        steps: list[tuple[str, int]] = []
        for y in order[1:]:
            op = rng.choice(_OPS)
            value = _apply(op, value, y) if value is not None else None
            steps.append((op, y))
        if value is not None and 1 <= value <= MAX_TARGET:
            return numbers, value, chain_expression(order[0], steps)


def make_example(numbers: list[int], target: int, answer: str) -> Example:
    """The record for one problem; the question states the numbers and the target tersely.

    >>> make_example([3, 7, 12], 48, "(7-3)*12").prompt
    'Make 48 from 3, 7, 12 with + - * /, each number once'
    """
    prompt = f"Make {target} from {', '.join(map(str, numbers))} with + - * /, each number once"
    return Example(
        prompt=prompt,
        answer=answer,
        task=NAME,
        verifier=VERIFIER,
        # Difficulty level for the analyses: how many numbers must be combined (3 or 4).
        info={"numbers": list(numbers), "target": target, "level": len(numbers)},
    )


def _draw(rng: random.Random, n: int, exclude: set[Key]) -> list[Example]:
    seen: set[Key] = set()
    out: list[Example] = []
    while len(out) < n:
        numbers, target, answer = _problem(rng)
        key = (tuple(sorted(numbers)), target)
        if key in seen or key in exclude:
            continue
        seen.add(key)
        out.append(make_example(numbers, target, answer))
    return out


def _test_pool() -> list[Example]:
    return _draw(random.Random(_TEST_SEED), TEST_POOL_SIZE, exclude=set())


def load(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    """Problems of one split: "test" (fixed pool, `seed` ignored) or "train" (drawn from `seed`)."""
    if split == "test":
        size = TEST_POOL_SIZE if n is None else n
        if not 0 <= size <= TEST_POOL_SIZE:
            raise ValueError(f"{NAME}: the test pool holds {TEST_POOL_SIZE} problems; got n={n}")
        return _test_pool()[:size]
    if split == "train":
        size = DEFAULT_TRAIN_SIZE if n is None else n
        if not 0 <= size <= 50_000:  # well below the number of distinct problems, so drawing ends
            raise ValueError(f"{NAME}: train n must be between 0 and 50000; got n={n}")
        test = {(tuple(sorted(e.info["numbers"])), int(e.info["target"])) for e in _test_pool()}
        return _draw(random.Random(seed), size, exclude=test)
    raise ValueError(f"{NAME}: unknown split {split!r}; choose 'train' or 'test'")
