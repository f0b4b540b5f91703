"""SFT data: rows from JSONL, Parquet or the hub, as prompt and completion token ids.

A row is either
- `{"prompt": ..., "completion": ...}`: plain text, the completion continues the prompt exactly (TRL's
  standard prompt-completion format; no template is applied), or
- `{"messages": [{"role": ..., "content": ...}, ...]}`: a conversation, rendered with the tokenizer's
  chat template; the last assistant turn is the completion, everything before it the prompt.

A row that has `messages` is read as a conversation even when it also has `prompt`/`completion` (what
`r1kit sample` writes). EOS is appended to every completion. Several sources can be mixed with weights
(`weight` 2 repeats each row twice per epoch, 0.5 keeps a seeded half), and a held-out share of every
source (`eval_fraction`, drawn by seed) is kept out of training for the eval loss.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1kit.tasks.files import read_hub, read_jsonl


@dataclass(frozen=True)
class SFTExample:
    """One training sequence: prompt tokens (context) then completion tokens (learned), EOS included."""

    prompt_ids: list[int]
    completion_ids: list[int]
    where: str
    """file:line (or hub id[index]) of the row, for error messages."""

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids

    @property
    def learn(self) -> list[bool]:
        return [False] * len(self.prompt_ids) + [True] * len(self.completion_ids)


def read_rows(path: str, *, split: str = "train") -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs of a `.jsonl`/`.jsonl.gz` file, a `.parquet` file, or a hub data set id."""
    p = Path(path)
    if p.suffix == ".parquet":
        if not p.is_file():
            raise ValueError(f"SFT data not found: {p}")
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(p).to_pylist()
        except Exception as e:
            raise ValueError(f"{p}: cannot read the Parquet file ({type(e).__name__})") from None
        return [(f"{p}[{i}]", row) for i, row in enumerate(rows)]
    if p.exists() or path.endswith((".jsonl", ".jsonl.gz", ".json")) or path.startswith((".", "/", "~")):
        rows = read_jsonl(p.expanduser(), "SFT data")
        if not rows:
            raise ValueError(f"SFT data file {p} has no rows")
        return rows
    return read_hub(path, split=split, fix="pass a local JSONL or Parquet file")


def split_rows(rows: Sequence[tuple[str, dict[str, Any]]], eval_fraction: float,
               seed: int) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """(train, held-out): a seeded `eval_fraction` of the rows is held out (none when it is 0)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = round(len(rows) * eval_fraction)
    held = set(order[:cut])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


Row = tuple[str, dict[str, Any]]
"""(where, row): file:line (or hub id[index]) and the row."""


def read_sources(sources: Sequence[Any], eval_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """(train, held-out) rows of every source (`DataSource`: path, split, weight): a seeded
    `eval_fraction` of each held out, the training rest repeated by the source's weight. ValueError
    names a missing or bad file."""
    train: list[Row] = []
    held: list[Row] = []
    for i, source in enumerate(sources):
        rows = read_rows(source.path, split=source.split)
        source_train, source_held = split_rows(rows, eval_fraction, seed + i)
        train += weighted(source_train, source.weight, seed + i)
        held += source_held
    return train, held


def weighted(rows: Sequence[tuple[str, dict[str, Any]]], weight: float, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Each row int(weight) times, plus a seeded share of the rows for the fractional part."""
    whole, part = int(weight), weight - int(weight)
    extra = random.Random(seed).sample(list(rows), round(len(rows) * part)) if part > 0 else []
    return [r for _ in range(whole) for r in rows] + extra


def encode_row(where: str, row: Mapping[str, Any], tokenizer: Any, max_length: int) -> SFTExample:
    """Tokenize one row; raises ValueError naming `where` for missing fields or a prompt that does not
    fit the context. A completion running past `max_length` is cut (it keeps no EOS then)."""
    if "messages" in row:
        prompt, completion = _conversation(where, row["messages"], tokenizer)
    elif "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError(f"{where}: prompt and completion must be strings")
    else:
        raise ValueError(f"{where}: a row needs 'messages', or 'prompt' and 'completion' (has: {', '.join(row)})")
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    completion_ids = [*tokenizer(completion, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    if len(prompt_ids) >= max_length:
        raise ValueError(f"{where}: the prompt has {len(prompt_ids)} tokens, the context (max_length) "
                         f"{max_length}: nothing of the completion would fit")
    return SFTExample(prompt_ids, completion_ids[: max_length - len(prompt_ids)], where)


def _conversation(where: str, messages: Any, tokenizer: Any) -> tuple[str, str]:
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} strings")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{where}: the last message must be the assistant's (the completion to learn)")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{where}: a 'messages' row needs a tokenizer with a chat template")
    prompt = tokenizer.apply_chat_template(list(messages[:-1]), tokenize=False, add_generation_prompt=True)
    return str(prompt), str(messages[-1]["content"])
