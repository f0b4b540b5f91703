"""Arithmetic: 3-digit + 3-digit addition, the default task of `r1kit zero`, in English and Chinese.

The question is the bare sum ("347+285"), or in Chinese "347加285等于多少？" (`arithmetic_zh`, the same
problems); the reference is the integer ("632"), judged by the "integer" verifier. Problems are
procedural and seeded:

- the test split is a fixed pool of `TEST_POOL_SIZE` problems drawn from a constant seed (independent of
  `seed`); `n` takes the first n of the pool;
- the train split is drawn from `seed` and never contains a test problem, counting a+b and b+a as the same
  problem, so held-out accuracy is really held out.

Addition is the task the embedded base model (`r1kit.models.embedded`) was pre-trained on, with
deliberately flawed column-by-column traces, so R1-Zero RL has something to find on a CPU.
"""

from __future__ import annotations

import random

from r1kit.types import Example

NAME = "arithmetic"
NAME_ZH = "arithmetic_zh"
VERIFIER = "integer"
TEST_POOL_SIZE = 1000
DEFAULT_TRAIN_SIZE = 20_000
LOW, HIGH = 100, 999  # both operands have three digits
_TEST_SEED = 20_250_122  # constant: the test pool never depends on the caller's seed
# Unordered pairs {a, b}: the space a split can draw from without repeating a problem.
_NUM_PROBLEMS = (HIGH - LOW + 1) * (HIGH - LOW + 2) // 2

Pair = tuple[int, int]


def _key(a: int, b: int) -> Pair:
    """a+b and b+a are the same problem: train must not hold the commuted twin of a test problem."""
    return (min(a, b), max(a, b))


def _draw(rng: random.Random, n: int, exclude: set[Pair]) -> list[Pair]:
    """n distinct problems, none of them (in either order) in `exclude`."""
    seen: set[Pair] = set()
    pairs: list[Pair] = []
    while len(pairs) < n:
        a, b = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
        key = _key(a, b)
        if key in seen or key in exclude:
            continue
        seen.add(key)
        pairs.append((a, b))
    return pairs


def _test_pairs() -> list[Pair]:
    return _draw(random.Random(_TEST_SEED), TEST_POOL_SIZE, exclude=set())


def carries(a: int, b: int) -> int:
    """Columns of a+b that carry: the difficulty level of the problem (`info["level"]`, 0-3).

    Every problem has two 3-digit operands, so digits cannot grade difficulty here; carries do, and they
    are what the embedded base model gets wrong (its careless pass drops every carry).

    >>> carries(347, 285), carries(123, 456), carries(999, 1)
    (2, 0, 3)
    """
    count, carry = 0, 0
    while a or b:
        carry = int(a % 10 + b % 10 + carry >= 10)
        count += carry
        a, b = a // 10, b // 10
    return count


def make_example(a: int, b: int, language: str = "en") -> Example:
    """The record for the question "a+b" (English) or "a加b等于多少？" (Chinese).

    >>> make_example(347, 285).prompt, make_example(347, 285).answer, make_example(347, 285, "zh").prompt
    ('347+285', '632', '347加285等于多少？')
    """
    info = {"a": a, "b": b, "language": language, "level": carries(a, b)}
    if language == "zh":
        return Example(prompt=f"{a}加{b}等于多少？", answer=str(a + b), task=NAME_ZH, verifier=VERIFIER, info=info)
    return Example(prompt=f"{a}+{b}", answer=str(a + b), task=NAME, verifier=VERIFIER, info=info)


def load(split: str, *, n: int | None = None, seed: int = 0, language: str = "en") -> list[Example]:
    """Problems of one split: "test" (fixed pool, `seed` ignored) or "train" (drawn from `seed`).

    >>> [e.prompt for e in load("test", n=2)] == [e.prompt for e in load("test", n=2, seed=7)]
    True
    """
    if split == "test":
        size = TEST_POOL_SIZE if n is None else n
        if not 0 <= size <= TEST_POOL_SIZE:
            raise ValueError(f"{NAME}: the test pool holds {TEST_POOL_SIZE} problems; got n={n}")
        return [make_example(a, b, language) for a, b in _test_pairs()[:size]]
    if split == "train":
        size = DEFAULT_TRAIN_SIZE if n is None else n
        room = _NUM_PROBLEMS - TEST_POOL_SIZE
        if not 0 <= size <= room // 2:  # half the space, so rejection sampling stays fast
            raise ValueError(f"{NAME}: train n must be between 0 and {room // 2}; got n={n}")
        test = {_key(a, b) for a, b in _test_pairs()}
        return [make_example(a, b, language) for a, b in _draw(random.Random(seed), size, exclude=test)]
    raise ValueError(f"{NAME}: unknown split {split!r}; choose 'train' or 'test'")


def load_zh(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    """`arithmetic_zh`: the same problems as `arithmetic` (same seeds, same test pool), asked in Chinese."""
    return load(split, n=n, seed=seed, language="zh")


NAME_BILINGUAL = "arithmetic_bilingual"


def load_bilingual(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    """`arithmetic_bilingual`, the default task of `r1kit zero`: the problems of `arithmetic`, asked in
    English and Chinese alternately (even positions English). The examples keep the task name of their
    language (`arithmetic`, `arithmetic_zh`), so evaluations report each language too.

    >>> [e.task for e in load_bilingual("test", n=3)]
    ['arithmetic', 'arithmetic_zh', 'arithmetic']
    """
    english, chinese = load(split, n=n, seed=seed), load(split, n=n, seed=seed, language="zh")
    return [(english if i % 2 == 0 else chinese)[i] for i in range(len(english))]
