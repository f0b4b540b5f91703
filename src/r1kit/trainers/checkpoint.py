"""Atomic checkpoints and the metrics log, so a killed run resumes exactly where it stopped.

Layout under out_dir:
  checkpoints/step_000050/   policy (HF directory) + trainer_state.pt (optimizer, scheduler, reference)
  checkpoints/latest         the name of the newest complete checkpoint
  metrics.jsonl              one JSON row per step; rows past the resumed checkpoint are dropped

A checkpoint is written into a temporary directory, flushed to disk, then renamed into place; only
after that does `latest` move (itself replaced atomically). A kill at any instant leaves either the
old or the new checkpoint complete, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
STATE_FILE = "trainer_state.pt"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def policy_dir(self) -> Path:
        return self.path / "policy"

    def load_state(self) -> dict[str, Any]:
        return torch.load(self.path / STATE_FILE, map_location="cpu", weights_only=False)


def latest_checkpoint(out_dir: Path) -> Checkpoint | None:
    pointer = out_dir / CHECKPOINT_DIR / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    path = out_dir / CHECKPOINT_DIR / name
    if not (path / STATE_FILE).is_file():
        return None
    return Checkpoint(step=int(name.removeprefix("step_")), path=path)


def save_checkpoint(out_dir: Path, step: int, policy: Any, tokenizer: Any, state: dict[str, Any],
                    *, keep: int = 2) -> Checkpoint:
    """Write policy + trainer state for `step` atomically, move `latest`, keep the newest `keep`."""
    root = out_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    tmp, final = root / f".tmp-{name}", root / name
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp / "policy")
    tokenizer.save_pretrained(tmp / "policy")
    torch.save(state, tmp / STATE_FILE)
    _fsync_tree(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_atomic(root / LATEST, name)
    _prune(root, keep)
    return Checkpoint(step=step, path=final)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _prune(root: Path, keep: int) -> None:
    steps = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in root.glob(".tmp-step_*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MetricsLog:
    """metrics.jsonl: appended and flushed one row per step."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill; nothing after it can be trusted
        return rows

    def truncate(self, last_step: int) -> None:
        """Keep the rows of steps <= last_step (a resumed run rewrites the rest)."""
        kept = [r for r in self.rows() if r["step"] <= last_step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.append(row)
