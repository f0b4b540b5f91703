"""HumanEval through the sandbox: all 164 canonical solutions pass, and each one with its return value made
wrong fails on an assertion of the problem's own `check`.

How a solution is broken, generically: after the canonical code, the entry point is rebound to a wrapper
that returns a wrong value of the same type (`_WRONG` below): a bool flipped, a number plus one, a string
with a NUL appended, a list/tuple with a None appended, a dict with an extra key, None turned into 0.
Recursive solutions call the wrapper too, which only makes them more wrong."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.conftest import skip_without_sandbox

from r1kit.rewards.code import CodeTests, assert_program, grade_humaneval
from r1kit.sandbox import run_python

_WRONG = '''

def _r1kit_wrong(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "\\x00"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    if isinstance(value, dict):
        return {**value, "\\x00": None}
    if value is None:
        return 0
    return None


_r1kit_right = ENTRY_POINT


def ENTRY_POINT(*args, **kwargs):
    return _r1kit_wrong(_r1kit_right(*args, **kwargs))
'''


@pytest.fixture
def problems(shared_data: Path) -> list[dict]:
    skip_without_sandbox()
    path = shared_data / "humaneval" / "HumanEval.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 164
    return rows


def test_every_canonical_solution_passes(problems):
    with ThreadPoolExecutor(4) as pool:
        passed = list(pool.map(lambda p: grade_humaneval(p, p["canonical_solution"]), problems))
    assert [p["task_id"] for p, ok in zip(problems, passed) if not ok] == []


def test_every_solution_with_a_wrong_return_value_fails_its_check(problems):
    def run(problem: dict) -> tuple[str, str]:
        broken = problem["canonical_solution"] + _WRONG.replace("ENTRY_POINT", problem["entry_point"])
        tests = CodeTests(test=problem["test"], entry_point=problem["entry_point"], prompt=problem["prompt"])
        result = run_python(assert_program(tests, broken), timeout_s=10.0)
        last_line = (result.stderr.strip().splitlines() or [""])[-1]
        return result.status, last_line

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(run, problems))
    # Each fails, and on the problem's own assertion: not a crash of the wrapper, not a timeout.
    wrong = {p["task_id"]: o for p, o in zip(problems, outcomes)
             if o[0] != "error" or not o[1].startswith("AssertionError")}
    assert wrong == {}
    assert grade_humaneval(problems[0], problems[0]["canonical_solution"] + _WRONG.replace(
        "ENTRY_POINT", problems[0]["entry_point"])) is False
