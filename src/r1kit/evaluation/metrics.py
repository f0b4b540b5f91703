"""Evaluation metrics of the paper's protocol (R1-SPEC section 5). Pure functions, no torch."""

from __future__ import annotations

from collections.abc import Sequence


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
