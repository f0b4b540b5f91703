"""Evaluation metrics of the paper's protocol (R1-SPEC section 5). Pure functions, no torch."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k) for c correct among n samples.

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms a large binomial.

    >>> pass_at_k(8, 0, 1), pass_at_k(8, 8, 1), pass_at_k(4, 1, 1), pass_at_k(4, 1, 4)
    (0.0, 1.0, 0.25, 1.0)
    >>> round(pass_at_k(5, 2, 2), 4)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    0.7
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n samples drawn, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over prompts; `correct[p]` holds the verdicts of prompt p's samples."""
    if not correct:
        raise ValueError("no prompts to score")
    return sum(pass_at_k(len(row), sum(row), k) for row in correct) / len(correct)


def g_pass_at_k(n: int, c: int, k: int, tau: float) -> float:
    """G-Pass@k_tau (Liu et al. 2024, "Are your LLMs capable of stable reasoning?", eq. 3): the chance that
    at least ceil(tau * k) of k samples drawn without replacement from n (c correct) are correct.
    tau = 0 is pass@k.

        G-Pass@k_tau = sum_{j = ceil(tau k)}^{c} C(c, j) C(n - c, k - j) / C(n, k)

    >>> round(g_pass_at_k(4, 2, 2, 0.75), 4), round(g_pass_at_k(4, 2, 2, 0.0), 4)
    (0.1667, 0.8333)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if tau <= 0:
        return pass_at_k(n, c, k)
    low = max(math.ceil(tau * k), 1)
    return sum(math.comb(c, j) * math.comb(n - c, k - j) for j in range(low, min(c, k) + 1)) / math.comb(n, k)


def mg_pass_at_k(n: int, c: int, k: int) -> float:
    """mG-Pass@k (same paper, eq. 4): G-Pass@k_tau averaged over tau in (0.5, 1], i.e.
    (2 / k) * sum_{i = ceil(k/2) + 1}^{k} G-Pass@k_{i/k}.

    >>> round(mg_pass_at_k(8, 4, 5), 5), mg_pass_at_k(1, 1, 1)
    (0.02857, 0.0)
    """
    return 2 / k * sum(g_pass_at_k(n, c, k, i / k) for i in range(math.ceil(k / 2) + 1, k + 1))


def majority_index(answers: Sequence[Any], same: Callable[[Any, Any], bool]) -> int | None:
    """Index of the sample whose answer wins the majority vote (cons@k), or None if no sample has one.

    Answers are grouped by `same` (verifier equivalence, e.g. `1/2` and `0.5` together), each answer
    joining the first group whose first member it equals. The largest group wins; **ties go to the group
    whose first member came first** (lighteval's maj@k rule, so "Paris, London, Berlin" votes Paris).
    The winner is that group's first member. None answers (nothing extracted) do not vote.

    >>> majority_index(["4", None, "5", "4.0", "5"], lambda a, b: float(a) == float(b))
    0
    >>> majority_index([None, None], lambda a, b: a == b) is None
    True
    """
    groups: list[list[int]] = []
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        for group in groups:
            if same(answers[group[0]], answer):
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return best[0]


def bootstrap_ci(values: Sequence[float], *, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-prompt `values` (prompts resampled with
    replacement, `resamples` times, a fixed seed so reports are reproducible).

    >>> bootstrap_ci([1.0] * 10)
    (1.0, 1.0)
    >>> lo, hi = bootstrap_ci([0.0, 1.0] * 50); lo < 0.5 < hi
    True
    """
    if not values:
        raise ValueError("no values to bootstrap")
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - level) / 2
    return means[int(tail * (resamples - 1))], means[round((1 - tail) * (resamples - 1))]
