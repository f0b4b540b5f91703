"""HumanEval (Chen et al. 2021): 164 Python functions to complete, judged by their unit tests.

Loaded from `HumanEval.jsonl.gz` or `.jsonl` (fields `task_id`, `prompt`, `canonical_solution`, `test`,
`entry_point`), a folder holding one, or, with no path, from the hub as `openai/openai_humaneval`
through `datasets`. There is only a test split.

The prompt asks for the completed function in a fenced Python block; the "code" verifier
(`r1kit.rewards.code`) runs the last such block after HumanEval's prompt, then the problem's
`check(entry_point)`, in the code sandbox: the official harness's program, so a completion that
restates the whole function and one that continues the body both work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.tasks.files import draw, read_hub, read_jsonl
from r1kit.types import Example

NAME = "humaneval"
VERIFIER = "code"
HUB_ID = "openai/openai_humaneval"
INSTRUCTION = "Complete the following Python function. Give the whole function in a ```python code block.\n\n"
_FIELDS = ("task_id", "prompt", "test", "entry_point")


def make_example(row: dict[str, Any], where: str = "row") -> Example:
    """One problem's record; `answer` is the canonical solution (not used to grade: the tests are).

    >>> e = make_example({"task_id": "HumanEval/0", "prompt": "def f():\\n", "canonical_solution": "    return 1\\n",
    ...                   "test": "def check(c):\\n    assert c() == 1\\n", "entry_point": "f"})
    >>> e.verifier, e.info["tests"]["entry_point"], "```python\\ndef f():" in e.prompt
    ('code', 'f', True)
    """
    missing = [f for f in _FIELDS if not isinstance(row.get(f), str) or not row[f]]
    if missing:
        raise ValueError(f"{where}: HumanEval row without {', '.join(missing)}")
    prompt = f"{INSTRUCTION}```python\n{row['prompt']}```"
    tests = {"prompt": row["prompt"], "test": row["test"], "entry_point": row["entry_point"]}
    return Example(prompt=prompt, answer=str(row.get("canonical_solution", "")), task=NAME, verifier=VERIFIER,
                   info={"task_id": row["task_id"], "tests": tests})


def load(split: str, *, n: int | None = None, seed: int = 0, path: str | None = None) -> list[Example]:
    """The problems in file order, or `n` of them drawn with `seed`."""
    if split != "test":
        raise ValueError(f"{NAME} has only a test split, not {split!r}")
    rows = _read_local(Path(path)) if path else read_hub(HUB_ID, split="test", fix="set a local path")
    return draw([make_example(row, where) for where, row in rows], n, seed, f"{NAME} problems")


def _read_local(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if path.is_dir():
        found = [path / f for f in ("HumanEval.jsonl.gz", "HumanEval.jsonl", "test.jsonl") if (path / f).is_file()]
        if not found:
            raise ValueError(f"{NAME} data not found: no HumanEval.jsonl.gz, HumanEval.jsonl or test.jsonl in {path}")
        path = found[0]
    return read_jsonl(path, f"{NAME} data")
