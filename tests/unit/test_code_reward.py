"""The code reward: last-fence extraction, output comparison, test specs, scoring (all or nothing and partial
credit) on stdin/stdout cases and assert-style tests, and the refusal to run without the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from r1kit.rewards.code import CodeTests, IOCase, code_reward, extract_code, outputs_match, parse_tests


def fenced(code: str, tag: str = "python") -> str:
    return f"<think>plan</think>\nHere it is:\n```{tag}\n{code}\n```\n"


@pytest.mark.parametrize(("completion", "code"), [
    ("```python\na = 1\n```\nbetter:\n```python\nb = 2\n```", "b = 2\n"),
    ("```python\na = 1\n```\n```\nuntagged = 1\n```", "a = 1\n"),  # a tagged block beats a later untagged one
    ("```\nuntagged = 1\n```", "untagged = 1\n"),
    ("```py\nx = 1\n```", "x = 1\n"),
    ("```Python3 title\nx = 1\n```", "x = 1\n"),
    ("```python\nx = 1\n```\n```text\n1\n```", "x = 1\n"),  # an output block after the code is no code
    ("1. step\n   ```python\n   if x:\n       y()\n   ```", "if x:\n    y()\n"),  # a fence in a list item
    ("```python\n    return a\n```", "    return a\n"),  # a body continuing a prompt keeps its indent
    ("```python\r\nx = 1\r\n```", "x = 1\n"),
    ("```python\ns = '```'\nprint(s)\n```", "s = '```'\nprint(s)\n"),  # a fence ends only at a line start
    ("```python\nx = 1\n```\n```python\nunfinished = (", "x = 1\n"),  # truncated last block ignored
    ("no code at all", None),
    ("```bash\nls\n```", None),
    ("```python\nunfinished", None),
])
def test_extract_code_takes_the_last_complete_python_fence(completion, code):
    assert extract_code(completion) == code


@pytest.mark.parametrize(("actual", "expected", "same"), [
    ("3\n", "3", True),
    ("1 2 3\n", "1  2\t3 \n", True),  # whitespace runs and line ends normalised
    ("a\nb\n\n\n", "a\nb", True),  # trailing blank lines ignored
    ("a\r\nb\r\n", "a\nb\n", True),
    ("", "", True),
    ("1 2", "1\n2", False),  # line counts must agree
    ("\n1", "1", False),  # leading blank lines count
    ("a\n\nb", "a\nb", False),
    ("12", "1 2", False),
    ("3.0", "3", False),  # exact tokens: no numeric tolerance
])
def test_outputs_match(actual, expected, same):
    assert outputs_match(actual, expected) is same


def test_parse_tests_accepts_the_common_spellings():
    cases = (IOCase("1\n", "2"), IOCase("2\n", "3"))
    assert parse_tests({"cases": [{"input": "1\n", "output": "2"}, {"input": "2\n", "output": "3"}]}).cases == cases
    assert parse_tests(json.dumps({"test_cases": [{"input": "1\n", "output": "2", "type": "stdin_stdout"},
                                                  {"input": "2\n", "output": "3"}]})).cases == cases
    assert parse_tests({"inputs": ["1\n", "2\n"], "outputs": ["2", "3"]}).cases == cases
    row = {"task_id": "t/0", "prompt": "def f():\n", "test": "def check(c): pass", "entry_point": "f"}
    assert parse_tests(row) == CodeTests(test="def check(c): pass", entry_point="f", prompt="def f():\n")
    for bad in ({}, {"cases": []}, [1, 2], "not json", None):
        with pytest.raises(ValueError):
            parse_tests(bad)


ADD = "a, b = map(int, input().split())\nprint(a + b)"
CASES = {"cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10"},
                   {"input": "-1 -1\n", "output": "-2"}]}


@pytest.mark.usefixtures("needs_sandbox")
def test_stdin_stdout_cases_all_or_nothing_and_partial():
    completions = [
        fenced(ADD),  # right
        fenced("a, b = map(int, input().split())\nprint(abs(a + b))"),  # wrong on the negative case only
        fenced("print(3)"),  # right on the first case only
        fenced(ADD + "\nraise SystemExit(1)"),  # right output, then fails: a failed run
        fenced(ADD, tag="text"),  # not python
        "the answer is print(a + b)",  # no code
    ]
    tests = [CASES] * len(completions)
    assert code_reward(["p"] * 6, completions, tests=tests) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    partial = code_reward(["p"] * 6, completions, tests=tests, code_partial_credit=True)
    assert partial == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0, 0.0])


@pytest.mark.usefixtures("needs_sandbox")
def test_assert_style_tests_and_the_info_column():
    problem = {"prompt": "def add(a, b):\n    \"\"\"a + b\"\"\"\n",
               "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
               "entry_point": "add"}
    completions = [fenced("    return a + b"),  # a body continuing the prompt
                   fenced("def add(a, b):\n    return a + b"),  # the whole function
                   fenced("def add(a, b):\n    return a - b"),
                   fenced("def add(a, b):\n    while True:\n        pass")]
    info = [{"tests": problem}] * len(completions)
    assert code_reward(["p"] * 4, completions, info=info, code_timeout_s=1.0) == [1.0, 1.0, 0.0, 0.0]
    mbpp = {"test": "assert add(1, 1) == 2"}
    assert code_reward(["p"], [fenced("def add(a, b):\n    return a + b")], tests=[mbpp]) == [1.0]


@pytest.mark.usefixtures("needs_sandbox")
def test_failures_score_zero_and_never_raise():
    completions = [fenced("while True:\n    pass"), fenced("x = bytearray(1 << 40)"), fenced("print('y' * 10**7)"),
                   fenced("import os\nos.kill(os.getppid(), 9)"), fenced(ADD), fenced(ADD), fenced(ADD), None]
    tests = [CASES] * 4 + [{"cases": []}, "{broken json", None, CASES]
    scores = code_reward(["p"] * 8, completions, tests=tests, code_timeout_s=1.0, code_partial_credit=True)
    assert scores == [0.0] * 8
    assert code_reward(["p"] * 2, [fenced(ADD)] * 2, info=[None, {"other": 1}]) == [0.0, 0.0]


@pytest.mark.usefixtures("needs_sandbox")
def test_conversational_completions_are_read():
    completion = [{"role": "assistant", "content": fenced(ADD)}]
    assert code_reward(["p"], [completion], tests=[CASES]) == [1.0]


@pytest.mark.usefixtures("needs_sandbox")
def test_expected_outputs_never_reach_the_program():
    # The comparison happens outside: a program that looks for the expected output anywhere finds nothing.
    spy = textwrap.dedent("""
        import os, sys
        blob = sys.stdin.read() + repr(dict(os.environ)) + ''.join(sys.argv)
        for root, _, files in os.walk('/tmp'):
            for f in files:
                blob += open(os.path.join(root, f), errors='replace').read()
        print('SECRET-' + 'EXPECTED' in blob)
    """)
    tests = [{"cases": [{"input": "x\n", "output": "SECRET-EXPECTED"}]}]
    assert code_reward(["p"], [fenced(spy)], tests=tests) == [0.0]
    tests = [{"cases": [{"input": "x\n", "output": "False"}]}]
    assert code_reward(["p"], [fenced(spy)], tests=tests) == [1.0]


def test_without_bwrap_runs_are_refused_with_the_fix(tmp_path):
    # A real machine without bwrap: the same interpreter with a PATH where neither bwrap nor apt-get is.
    script = textwrap.dedent("""
        import warnings
        from r1kit.sandbox import SandboxUnavailableError, main_setup_sandbox, run_python, sandbox_available
        from r1kit.rewards.code import code_reward
        assert not sandbox_available()
        for call in (lambda: run_python("print(1)"),
                     lambda: code_reward(["p"], ["```python\\nprint(1)\\n```"], tests=[{"cases": []}])):
            try:
                call()
            except SandboxUnavailableError as e:
                assert "r1kit setup-sandbox" in str(e), e
            else:
                raise AssertionError("ran without the sandbox")
        assert main_setup_sandbox([]) == 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert run_python("print(1)", unsafe_local=True).stdout == "1\\n"
            tests = [{"cases": [{"input": "", "output": "1"}]}]
            assert code_reward(["p"], ["```python\\nprint(1)\\n```"], tests=tests, code_unsafe_local=True) == [1.0]
        assert any("WITHOUT isolation" in str(w.message) for w in caught)
        print("refused")
    """)
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "refused\n"
    assert "apt-get is not available" in done.stderr or "sudo apt-get install" in done.stderr
