"""Code reward: run the completion's last fenced Python block against tests, in the code sandbox.

Two kinds of tests, one spec per example, given as the `tests` column (a TRL dataset column) or, for r1kit
examples, under `"tests"` in the example's `info`. A spec is a `CodeTests`, a mapping or its JSON text:

- stdin/stdout cases: `{"cases": [{"input": "1 2\\n", "output": "3\\n"}, ...]}` (also `"test_cases"`, as in
  open-r1's `verification_info`, or APPS-style parallel `"inputs"` / `"outputs"` lists). Each case is its
  own sandboxed run; it passes when the program exits 0 and its output matches (`outputs_match`), which is
  decided here, outside the sandbox, so the program never sees the expected output.
- assert-style (HumanEval, MBPP): `{"test": "...", "entry_point": "f", "prompt": "..."}`. One run of
  prompt + code + test, then `check(f)` when there is an entry point; it passes when it exits 0. A
  HumanEval row can be passed as is.

The score is 1.0 when every run passes, else 0.0 (R1's rule rewards); with `code_partial_credit=True` it is
the share of runs that pass. Runs go to a small thread pool (each is its own process). Anything that goes
wrong with one completion scores it 0.0; the only error raised is `SandboxUnavailableError`, up front,
when bubblewrap cannot run here and `code_unsafe_local` is not set: untrusted code is never run silently
without isolation.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from r1kit.sandbox import require_sandbox, run_python


@dataclass(frozen=True)
class IOCase:
    """One stdin/stdout case."""

    input: str
    output: str


@dataclass(frozen=True)
class CodeTests:
    """What a completion's code is checked against: stdin/stdout cases, an assert-style test, or both."""

    cases: tuple[IOCase, ...] = ()
    test: str = ""
    """Test code run after the completion's code (HumanEval's `test`: a `check(candidate)` function)."""
    entry_point: str = ""
    """When set, `check(<entry_point>)` is called after `test`."""
    prompt: str = ""
    """Code placed before the completion's code (HumanEval's prompt: imports, signature, docstring)."""

    @property
    def num_runs(self) -> int:
        return len(self.cases) + (1 if self.test else 0)


# An opening fence (its indentation when it starts a line, its tag), the body, a closing fence at a line start.
_FENCE = re.compile(r"(^[ \t]*)?```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def extract_code(completion: str) -> str | None:
    """The last complete fenced block tagged python (or py, python3), else the last untagged one.

    >>> extract_code("try\\n```python\\nx = 1\\n```\\nfinal:\\n```py\\nprint(2)\\n```\\n```text\\nout\\n```")
    'print(2)\\n'
    >>> extract_code("```\\nprint(3)\\n```") , extract_code("```python\\nprint(4)")
    ('print(3)\\n', None)
    """
    blocks = [(m.group(2).lower(), _unindent(m.group(3), m.group(1) or ""))
              for m in _FENCE.finditer(completion.replace("\r\n", "\n"))]
    for wanted in (_PYTHON_TAGS, {""}):
        chosen = [body for tag, body in blocks if tag in wanted]
        if chosen:
            return chosen[-1]
    return None


def _unindent(body: str, indent: str) -> str:
    """Remove the fence's own indentation (a fence inside a list item) and nothing more: an indented
    body under a flush fence is a function body continuing a HumanEval prompt."""
    if not indent:
        return body
    return "".join(line[len(indent):] if line.startswith(indent) else line.lstrip(" \t")
                   for line in body.splitlines(keepends=True))


def outputs_match(actual: str, expected: str) -> bool:
    """Line-by-line equality with whitespace normalised per line (ends stripped, runs collapsed) and
    trailing blank lines ignored; the numbers of lines must agree.

    >>> outputs_match("1  2 \\n3\\n\\n", "1 2\\n3"), outputs_match("1\\n2", "1 2"), outputs_match("\\n1", "1")
    (True, False, False)
    """
    return _lines(actual) == _lines(expected)


def _lines(text: str) -> list[str]:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def parse_tests(spec: Any) -> CodeTests:
    """A `CodeTests` from a spec (see the module docstring); raises ValueError when there is no test in it."""
    if isinstance(spec, CodeTests):
        tests = spec
    else:
        if isinstance(spec, str | bytes):
            spec = json.loads(spec)
        if not isinstance(spec, Mapping):
            raise ValueError(f"a code test spec is a mapping or its JSON text, not {type(spec).__name__}")
        raw = spec.get("cases", spec.get("test_cases"))
        if raw is None and "inputs" in spec:
            raw = [{"input": i, "output": o} for i, o in zip(spec["inputs"], spec["outputs"], strict=True)]
        cases = tuple(IOCase(str(c["input"]), str(c["output"])) for c in (raw or ()))
        tests = CodeTests(cases, str(spec.get("test") or ""), str(spec.get("entry_point") or ""),
                          str(spec.get("prompt") or ""))
    if not tests.num_runs:
        raise ValueError("code test spec without cases or test")
    return tests


def assert_program(tests: CodeTests, code: str) -> str:
    """prompt + code + test (+ `check(entry_point)`): the program an assert-style test runs."""
    program = f"{tests.prompt}{code}\n\n{tests.test}\n"
    if tests.entry_point:
        program += f"\ncheck({tests.entry_point})\n"
    return program


def grade_humaneval(problem: Mapping[str, Any], completion_code: str, *, timeout_s: float = 10.0,
                    memory_mb: int = 512, unsafe_local: bool = False) -> bool:
    """Whether `completion_code` (a body continuing the prompt, or a whole function) passes the problem's
    `check`: the HumanEval harness's program (prompt + completion + test + `check(entry_point)`), run
    sandboxed, passing when it exits 0."""
    tests = CodeTests(test=problem["test"], entry_point=problem["entry_point"], prompt=problem["prompt"])
    result = run_python(assert_program(tests, completion_code), timeout_s=timeout_s, memory_mb=memory_mb,
                        unsafe_local=unsafe_local)
    return result.status == "ok"


@dataclass(frozen=True)
class _Run:
    index: int
    """Which completion this run belongs to."""
    code: str
    stdin: str = ""
    expected: str | None = None
    """The expected stdout of a stdin/stdout case; None for an assert-style run (exit status only)."""


def code_reward(
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    tests: Sequence[Any] | None = None,
    info: Sequence[Mapping[str, Any] | None] | None = None,
    code_partial_credit: bool = False,
    code_timeout_s: float = 5.0,
    code_memory_mb: int = 256,
    code_unsafe_local: bool = False,
    code_max_workers: int = 4,
    **_: Any,
) -> list[float]:
    """Score each completion's last Python block on its tests (the `tests` column, else `info[i]["tests"]`).

    `code_timeout_s` and `code_memory_mb` bound each run; `code_max_workers` runs go at once; with
    `code_partial_credit` the score is the share of runs passed, else all or nothing (then a completion's
    remaining runs are skipped after its first failure).
    """
    if not code_unsafe_local:
        require_sandbox()
    if tests is None:
        rows: Sequence[Mapping[str, Any] | None] = info or [None] * len(completions)
        tests = [row.get("tests") if isinstance(row, Mapping) else None for row in rows]
    runs, totals = _plan(completions, tests)
    failed: set[int] = set()
    lock = threading.Lock()

    def execute(run: _Run) -> bool:
        if not code_partial_credit and run.index in failed:
            return False
        try:
            result = run_python(run.code, stdin=run.stdin, timeout_s=code_timeout_s, memory_mb=code_memory_mb,
                                unsafe_local=code_unsafe_local)
            ok = result.status == "ok" and (run.expected is None or outputs_match(result.stdout, run.expected))
        except Exception:
            ok = False
        if not ok:
            with lock:
                failed.add(run.index)
        return ok

    passed = [0] * len(completions)
    with ThreadPoolExecutor(max_workers=max(1, code_max_workers)) as pool:
        for run, ok in zip(runs, pool.map(execute, runs), strict=True):
            passed[run.index] += ok
    scores = []
    for i, total in enumerate(totals):
        if not total:
            scores.append(0.0)
        elif code_partial_credit:
            scores.append(passed[i] / total)
        else:
            scores.append(1.0 if passed[i] == total else 0.0)
    return scores


def _text(completion: Any) -> str:
    """A completion as text: TRL's conversational completions are lists of messages."""
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        completion = completion[-1].get("content", "")
    return completion if isinstance(completion, str) else ""


def _plan(completions: Sequence[str], specs: Sequence[Any]) -> tuple[list[_Run], list[int]]:
    """Every sandboxed run of the batch, and each completion's number of runs (0: no code or no tests)."""
    if len(specs) != len(completions):
        raise ValueError(f"{len(specs)} test specs for {len(completions)} completions")
    runs: list[_Run] = []
    totals: list[int] = []
    for i, (completion, spec) in enumerate(zip(completions, specs, strict=True)):
        try:
            code = extract_code(_text(completion))
            tests = parse_tests(spec)
        except Exception:
            code = None
        if code is None:
            totals.append(0)
            continue
        runs += [_Run(i, code, case.input, case.output) for case in tests.cases]
        if tests.test:
            runs.append(_Run(i, assert_program(tests, code)))
        totals.append(tests.num_runs)
    return runs, totals
