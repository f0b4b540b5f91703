"""`r1kit.rewards.math.grade`: extraction, the corrections over math-verify 0.9.0, bad input, isolation."""

from __future__ import annotations

import threading
import time

import pytest

from r1kit.rewards.math import (
    extract_answer_text,
    grade,
    grade_in_process,
    grade_many,
    grade_outcome,
    normalize_unicode,
)


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        # Extraction from raw texts on both sides.
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "<think>24+48</think> <answer>72</answer>", True),
        ("\\frac{14}{3}", "<think>...</think><answer>\\frac{14}{3}</answer>", True),
        ("\\frac{14}{3}", "<answer>4.67</answer>", False),
        ("$\\frac{14}{3}$", "so the answer is $\\boxed{\\frac{14}{3}}$.", True),
        ("72", "we get 70 first, then the answer is 72", True),
        ("x+1", "so the answer is $\\boxed{1+x}$", True),  # a bare gold with a variable
        ("1,000", "1000", True),  # a bare number is not a LaTeX tuple
        ("1,-2", "the roots are $\\boxed{1,-2}$", True),  # but a bare list is a list
        ("\\text{Evelyn}", "Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.", True),
        ("9", "<answer>9.0</answer>", True),
        ("72", "<answer>71</answer> and later 72", False),  # the tag wins over a later number
        # Where math-verify 0.9.0 is wrong.
        ("$\\frac{1}{2004!}$", "$\\frac{1}{2006!}$", False),
        ("$\\frac{1}{2^{99}}$", "$\\frac{1}{2^{98}}$", False),
        ("0", "1e-9", False),
        ("$\\frac{1}{2004!}$", "$\\frac{2005 \\cdot 2006}{2006!}$", True),
        ("1", "1e999999", False),
        ("$1$", "1e999999", False),
        ("1e999999", "10e999998", True),
        ("1500", "1.5e3", True),
        ("0.00002", "the answer is 2e-5", True),
        ("$\\{3,5\\}$", "$(3,5)$", False),
        ("$(3,5)$", "$\\{3,5\\}$", False),
        ("$\\{3,5\\}$", "$\\{5,3\\}$", True),
        ("$\\sqrt{2}$", "√2", True),
        ("\\sqrt{2}", "the answer is √2", True),
        ("$\\frac12$", "½", True),
        ("\\frac{3}{2}", "1½", True),
        ("$\\sqrt[3]{5}$", "∛5", True),
        ("99", "Haley总共有99颗弹珠。", True),
        # Still right where math-verify is right.
        ("$\\frac{1}{3}$", "0.333333", True),
        ("$(1,3)$", "${1,3}$", True),  # LaTeX group braces are not set braces
        ("$x^2+2x+1$", "$(x+1)^2$", True),
        ("$2$", "$3$", False),
    ],
)
def test_grade(gold, pred, expected):
    assert grade(gold, pred) is expected
    assert grade_in_process(gold, pred) is expected  # the worker and the in-process path agree


def test_math_verify_is_wrong_where_r1kit_corrects_it():
    # Keeps the corrections honest: if math-verify fixes these, the docstring's claims must change.
    from math_verify import parse, verify

    assert verify(parse("$\\frac{1}{2004!}$"), parse("$\\frac{1}{2006!}$"))
    assert verify(parse("1"), parse("1e999999"))
    assert verify(parse("$\\{3,5\\}$"), parse("$(3,5)$"))
    assert parse("√2") == [] and parse("½") == []


def test_extract_answer_text():
    assert extract_answer_text("<answer>1</answer> <answer>2</answer>") == "2"
    assert extract_answer_text("<answer> 7 ") == "7"  # unclosed tag: what follows it
    assert extract_answer_text("#### 1\n#### 2,000\nmore") == "2,000"
    assert normalize_unicode("3 − 1 ≤ 5") == "3 - 1 \\le  5"


BAD = [None, "", "   ", 5, b"\xff\xfe", "\udcff\udcfe", "x" * 1_000_000, "{" * 10_000 + "}" * 10_000,
       "\\frac{" * 5_000, "10^10^10^10"]


@pytest.mark.parametrize("bad", BAD, ids=[repr(b)[:20] for b in BAD])
def test_bad_input_is_a_false_verdict_within_the_timeout(bad):
    for gold, pred in [("1", bad), (bad, "1")]:
        start = time.monotonic()
        outcome = grade_outcome(gold, pred, timeout_s=5.0)
        assert time.monotonic() - start < 8.0
        assert outcome.status in ("ok", "timeout")
        assert not outcome.value
        assert grade(gold, pred, timeout_s=5.0) is False


def test_a_hung_comparison_is_killed_and_the_worker_replaced():
    # sympy cannot evaluate 10^(10^(10^10)); math-verify in-process would sit on it (or need SIGALRM).
    start = time.monotonic()
    outcome = grade_outcome("$10^{10^{10^{10}}}$", "$1$", timeout_s=1.0)
    assert outcome.status == "timeout" and time.monotonic() - start < 4.0
    assert grade("$\\frac{1}{2}$", "0.5")  # the pool still answers


def test_grade_is_safe_from_threads():
    results: list[bool] = []

    def work(i: int) -> None:
        results.append(grade(f"${i}/7$", f"\\boxed{{\\frac{{{i}}}{{7}}}}") and not grade(f"{i}", f"{i + 1}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8


def test_grade_many_keeps_order_and_reports_timeouts():
    pairs = [("1", "1"), ("1", "2"), (None, "1"), ("$10^{10^{10^{10}}}$", "$1$"), ("$\\frac{1}{2}$", "0.5")]
    outcomes = grade_many(pairs, timeout_s=1.0)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok", "timeout", "ok"]
    assert [o.value for o in outcomes] == [True, False, False, None, True]
