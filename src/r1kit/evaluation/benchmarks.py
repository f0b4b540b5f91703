"""Evaluation benchmarks: a name -> `Example` records, from local files or the hub.

Math benchmarks (R1-SPEC section 5) are JSONL files with a question and an answer field, graded by the
`math` verifier (`r1kit.rewards.math.grade`). Where `data_dir` is given (tests use ../shared/data),
`<data_dir>/<folder>/<file>` is read; otherwise the hub id through `datasets`.

A benchmark of your own from a JSONL file, naming its fields (see the README):

    r1kit eval tasks=jsonl:my.jsonl?question=q&answer=a&verifier=math

`load_benchmark` raises `BenchmarkError` naming the file and line of a bad row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from r1kit.tasks import DATASET_TASKS, TASKS, files, load_task
from r1kit.types import Example


class BenchmarkError(ValueError):
    """A benchmark that cannot be loaded: unknown name, missing file, bad row (with file:line)."""


def last_boxed(text: str) -> str | None:
    r"""The content of the last `\boxed{...}` (balanced braces), or None.

    >>> last_boxed(r"so $x=\boxed{\frac{1}{2}}$ and \boxed{1.6} \mathrm{~cm}")
    '1.6'
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def _number_text(value: Any) -> str:
    """AMC's answers are JSON floats (27.0): written as the integer when they are one."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class JsonlBenchmark:
    """A JSONL benchmark: which fields hold the question and the answer, and how to grade it."""

    folder: str
    file: str
    question: str
    answer: str
    verifier: str = "math"
    hub_id: str | None = None
    hub_split: str = "test"
    level: str | None = None
    """Field holding a difficulty level (MATH-500's 1-5), kept in `info["level"]` for the analyses."""
    answer_from: Callable[[Any], str | None] = _number_text


MATH_BENCHMARKS: dict[str, JsonlBenchmark] = {
    "math500": JsonlBenchmark("math500", "test.jsonl", "problem", "answer", hub_id="HuggingFaceH4/MATH-500",
                              level="level"),
    "aime24": JsonlBenchmark("aime24", "test.jsonl", "problem", "answer", hub_id="HuggingFaceH4/aime_2024",
                             hub_split="train"),
    "amc23": JsonlBenchmark("amc23", "test.jsonl", "problem", "answer", hub_id="math-ai/amc23"),
    "minerva_math": JsonlBenchmark("minerva_math", "test.jsonl", "problem", "solution", hub_id="math-ai/minervamath",
                                   answer_from=lambda s: last_boxed(str(s))),
}
# Benchmarks that are r1kit tasks (their own loaders and verifiers).
TASK_BENCHMARKS = {"gsm8k": "gsm8k", "arithmetic": "arithmetic", "countdown": "countdown"}


def benchmark_names() -> list[str]:
    """Every name `tasks=` takes: the math benchmarks and all r1kit tasks."""
    return sorted({*MATH_BENCHMARKS, *TASK_BENCHMARKS, *TASKS})


def load_benchmark(name: str, *, data_dir: str | Path | None = None, n: int | None = None,
                   seed: int = 0) -> list[Example]:
    """The test examples of benchmark `name` (a built-in name or `jsonl:PATH?question=..&answer=..`)."""
    if name.startswith("jsonl:"):
        return _load_custom(name, n)
    if name in MATH_BENCHMARKS:
        spec = MATH_BENCHMARKS[name]
        if data_dir is not None:
            rows = read_jsonl(Path(data_dir) / spec.folder / spec.file)
        else:
            try:
                rows = files.read_hub(spec.hub_id or name, split=spec.hub_split, fix="pass data_dir=")
            except ValueError as e:
                raise BenchmarkError(str(e)) from None
        return _examples(name, spec, rows)[: n or None]
    task = TASK_BENCHMARKS.get(name, name if name in TASKS else None)
    if task is None:
        raise BenchmarkError(f"unknown task {name!r}; choose from {', '.join(benchmark_names())} "
                             "or jsonl:PATH?question=FIELD&answer=FIELD")
    path = None
    if data_dir is not None and task in DATASET_TASKS:  # generated tasks read no data
        path = str(Path(data_dir) / name)
    try:
        return load_task(task, "test", n=n, seed=seed, path=path)
    except ValueError as e:
        raise BenchmarkError(str(e)) from None


def read_jsonl(file: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs; `where` is `file:line` for error messages."""
    try:
        return files.read_jsonl(file, "benchmark data")
    except ValueError as e:
        raise BenchmarkError(str(e)) from None


def _examples(name: str, spec: JsonlBenchmark, rows: list[tuple[str, dict[str, Any]]]) -> list[Example]:
    examples = []
    for where, row in rows:
        for field in (spec.question, spec.answer):
            if field not in row or row[field] is None:
                raise BenchmarkError(f"{where}: missing field {field!r} (benchmark {name})")
        answer = spec.answer_from(row[spec.answer])
        if answer is None or not str(answer).strip():
            raise BenchmarkError(f"{where}: no answer in field {spec.answer!r} (benchmark {name})")
        info: dict[str, Any] = {}
        if spec.level and row.get(spec.level) is not None:
            info["level"] = row[spec.level]
        examples.append(Example(prompt=str(row[spec.question]).strip(), answer=str(answer), task=name,
                                verifier=spec.verifier, info=info))
    return examples


def _load_custom(name: str, n: int | None) -> list[Example]:
    path, _, query = name.removeprefix("jsonl:").partition("?")
    fields = dict(parse_qsl(query))
    unknown = set(fields) - {"question", "answer", "verifier", "level", "name"}
    if unknown or "question" not in fields or "answer" not in fields:
        raise BenchmarkError(f"{name!r}: write jsonl:PATH?question=FIELD&answer=FIELD[&verifier=math][&level=FIELD]"
                             + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
    spec = JsonlBenchmark("", path, fields["question"], fields["answer"], verifier=fields.get("verifier", "math"),
                          level=fields.get("level"))
    from r1kit.rewards import VERIFIERS

    if spec.verifier not in VERIFIERS:
        raise BenchmarkError(f"{name!r}: unknown verifier {spec.verifier!r}; choose from {', '.join(VERIFIERS)}")
    label = fields.get("name") or re.sub(r"\.jsonl$", "", Path(path).name)
    return _examples(label, spec, read_jsonl(Path(path)))[: n or None]
