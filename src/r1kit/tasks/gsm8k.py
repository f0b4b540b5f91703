"""GSM8K (Cobbe et al. 2021): grade-school math word problems with a numeric answer after `####`.

Loaded from a local directory holding train.jsonl / test.jsonl (fields `question`, `answer`), a single
JSONL file, or, with no path, from the hub as `openai/gsm8k` (config `main`) through `datasets`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.tasks.files import read_hub, read_jsonl
from r1kit.types import Example

NAME = "gsm8k"
HUB_ID = "openai/gsm8k"


def reference_answer(solution: str) -> str:
    """The number after the last `####`, without thousands separators.

    >>> reference_answer("Natalia sold 48/2 = 24 clips ... 48+24 = 72 clips.\\n#### 72")
    '72'
    >>> reference_answer("#### 1,000")
    '1000'
    """
    if "####" not in solution:
        raise ValueError("GSM8K answer has no '#### <number>' line")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def load(split: str, *, n: int | None = None, seed: int = 0, path: str | None = None) -> list[Example]:
    if split not in ("train", "test"):
        raise ValueError(f"gsm8k has splits train and test, not {split!r}")
    rows = _read_local(Path(path), split) if path else read_hub(HUB_ID, "main", split=split, fix="set task.path")
    examples = []
    for where, row in rows:
        try:
            examples.append(Example(prompt=row["question"].strip(), answer=reference_answer(row["answer"]),
                                    task=NAME, verifier="number", info={}))
        except (KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"{where}: bad GSM8K row ({e}); need fields question and answer") from None
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        examples = examples[:n]
    return examples


def _read_local(path: Path, split: str) -> list[tuple[str, dict[str, Any]]]:
    return read_jsonl(path / f"{split}.jsonl" if path.is_dir() else path, "gsm8k data")
