"""Reading data files: JSONL rows with their `file:line`, so a bad row is named where it is; seeded draws."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any, TypeVar

from r1kit.hub import require_hub

T = TypeVar("T")


def jsonl_lines(text: str, *, keepends: bool = False) -> list[str]:
    """The lines of a JSONL text, split at "\\n" only. `json.dumps(ensure_ascii=False)` leaves U+2028,
    U+0085 and other characters that `str.splitlines` breaks at raw inside strings (a model writes them),
    so splitlines would cut such a row in two.

    >>> jsonl_lines('{"a": "x\u2028y"}\\n{"b": 1}'), jsonl_lines("1\\n2\\n", keepends=True)
    (['{"a": "x\u2028y"}', '{"b": 1}'], ['1\\n', '2\\n'])
    """
    lines = text.split("\n")
    if keepends:
        return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return lines[:-1] if lines[-1] == "" else lines


def read_jsonl(file: Path, what: str = "data") -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs of a `.jsonl` or `.jsonl.gz` file; `where` is `file:line`. Raises ValueError
    naming the file (missing) or the line (not JSON, not an object)."""
    if not file.is_file():
        raise ValueError(f"{what} not found: {file}")
    rows = []
    with (gzip.open(file, "rt", encoding="utf-8") if file.suffix == ".gz" else open(file, encoding="utf-8")) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{file}:{i}: not valid JSON") from None
            if not isinstance(row, dict):
                raise ValueError(f"{file}:{i}: a row must be a JSON object")
            rows.append((f"{file}:{i}", row))
    return rows


def draw(examples: list[T], n: int | None, seed: int, what: str) -> list[T]:
    """All `examples` in order (n None), or `n` of them drawn with `seed`: the same seed, the same draw.
    Raises ValueError naming `what` when n is not in 1..len(examples)."""
    if n is None:
        return examples
    if not 1 <= n <= len(examples):
        raise ValueError(f"{what}: asked for n={n}, there are {len(examples)}")
    return random.Random(seed).sample(examples, n)


def read_hub(hub_id: str, *args: str, split: str, fix: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs of a hub data set through `datasets.load_dataset(hub_id, *args, split=split)`.
    Raises ValueError naming `fix` (e.g. "set task.path") when it cannot be loaded; fails within seconds
    when the hub cannot be reached (`r1kit.hub`)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise ValueError(f"loading {hub_id} from the hub needs `pip install datasets`; or {fix}") from None
    what = f"{hub_id} ({', '.join([*args, split])})"
    require_hub(what, fix)
    try:
        data = load_dataset(hub_id, *args, split=split)
    except Exception as e:
        raise ValueError(f"cannot load {what} from the hub ({type(e).__name__}); {fix}") from None
    return [(f"{hub_id}/{'/'.join(args)}[{split}][{i}]" if args else f"{hub_id}[{split}][{i}]", dict(row))
            for i, row in enumerate(data)]
