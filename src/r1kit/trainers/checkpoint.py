"""Atomic, verified checkpoints and the metrics log, so a killed run resumes exactly where it stopped.

Layout under out_dir:
  checkpoints/step_000050/   policy/ (HF directory) + trainer_state.pt (optimizer, scheduler, reference)
                             + manifest.json (size and sha256 of every other file, written last)
  checkpoints/latest         the name of the newest complete checkpoint (for people; resume scans)
  metrics.jsonl              one JSON row per step; rows past the resumed checkpoint are dropped

A checkpoint is written into a temporary directory, flushed to disk, then renamed into place; only
after that does `latest` move (itself replaced atomically). A kill at any instant leaves either the
old or the new checkpoint complete, never a half-written one. What a kill cannot do, a disk error or a
partial copy can: so resume verifies each checkpoint against its manifest, newest first, and falls
back to the newest one that verifies and loads (`resume_checkpoint`).

trainer_state.pt is read with `torch.load(weights_only=True)`: tensors and plain containers only, never
arbitrary pickled objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from r1kit.models.lora import save_policy

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
STATE_FILE = "trainer_state.pt"
MANIFEST = "manifest.json"

T = TypeVar("T")


class Reporter(Protocol):
    """Receives every metrics row as it is logged (`r1kit.trainers.reporting` has the implementations)."""

    def log(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class CheckpointError(ValueError):
    """out_dir has checkpoints but none of them is intact; the message names each and why."""


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def policy_dir(self) -> Path:
        return self.path / "policy"

    def load_state(self) -> dict[str, Any]:
        return torch.load(self.path / STATE_FILE, map_location="cpu", weights_only=True)

    def damage(self) -> str:
        """Why this checkpoint cannot be trusted ("" when every file matches its manifest entry)."""
        try:
            files = json.loads((self.path / MANIFEST).read_text())["files"]
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"{MANIFEST} is unreadable"
        for name, want in files.items():
            file = self.path / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != want["size"]:
                return f"{name} has {file.stat().st_size} bytes, the manifest says {want['size']}"
            if _sha256(file) != want["sha256"]:
                return f"{name} does not match its checksum"
        return ""


def checkpoints(out_dir: Path) -> list[Checkpoint]:
    """Every complete-looking checkpoint directory under out_dir, newest first (none verified yet)."""
    root = out_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [Checkpoint(int(p.name.removeprefix("step_")), p) for p in root.iterdir()
             if p.is_dir() and p.name.startswith("step_") and p.name.removeprefix("step_").isdigit()]
    return sorted(found, key=lambda c: c.step, reverse=True)


def latest_checkpoint(out_dir: Path) -> Checkpoint | None:
    """The newest checkpoint whose files match its manifest, or None."""
    return next((c for c in checkpoints(out_dir) if not c.damage()), None)


def resume_checkpoint(out_dir: Path, load: Callable[[Checkpoint], T],
                      warn: Callable[[str], None]) -> tuple[Checkpoint, T] | None:
    """The newest checkpoint that verifies against its manifest and that `load` reads without error, with
    what `load` returned; None when out_dir has no checkpoint. Each damaged one is named through `warn`
    (one line) and skipped. Raises CheckpointError when there are checkpoints but none is usable."""
    found = checkpoints(out_dir)
    problems = []
    for ckpt in found:
        reason = ckpt.damage()
        if not reason:
            try:
                return ckpt, load(ckpt)
            except Exception as e:  # a file that verifies but does not load: as damaged as a bad checksum
                reason = f"cannot be loaded ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})"
        problems.append(f"{ckpt.path.name} ({reason})")
        later = "no older checkpoint" if ckpt is found[-1] else "trying the previous one"
        warn(f"checkpoint {ckpt.path} is damaged: {reason}; {later}")
    if found:
        raise CheckpointError(f"no usable checkpoint in {out_dir / CHECKPOINT_DIR}: {'; '.join(problems)}; "
                              "delete out_dir to start over")
    return None


def save_checkpoint(out_dir: Path, step: int, policy: Any, tokenizer: Any, state: dict[str, Any],
                    *, keep: int = 2) -> Checkpoint:
    """Write policy + trainer state for `step` atomically, move `latest`, keep the newest `keep`."""
    root = out_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    tmp, final = root / f".tmp-{name}", root / name
    shutil.rmtree(tmp, ignore_errors=True)
    save_policy(policy, tmp / "policy")  # LoRA: the adapters (and a refreshed base)
    tokenizer.save_pretrained(tmp / "policy")
    torch.save(state, tmp / STATE_FILE)
    files = {p.relative_to(tmp).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=1) + "\n")
    _fsync_tree(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_atomic(root / LATEST, name)
    _prune(root, keep)
    return Checkpoint(step=step, path=final)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
    """metrics.jsonl: appended and flushed one row per step; each row also goes to the `reporters`
    (TensorBoard, W&B: `r1kit.trainers.reporting`). With `write=False` (the ranks of a distributed run but
    the first) it reads the file once, at `truncate`, and keeps its own rows in memory."""

    def __init__(self, path: Path, reporters: Sequence[Reporter] = (), *, write: bool = True) -> None:
        self.path = path
        self.reporters = list(reporters)
        self.write = write
        self.memory: list[dict[str, Any]] = []

    def rows(self) -> list[dict[str, Any]]:
        return self._file_rows() if self.write else list(self.memory)

    def _file_rows(self) -> list[dict[str, Any]]:
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
        kept = [r for r in self._file_rows() if r["step"] <= last_step]
        if self.write:
            write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        else:
            self.memory = kept  # the file as the writer left it

    def append(self, row: dict[str, Any]) -> None:
        if not self.write:
            self.memory.append(row)
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        for reporter in self.reporters:
            reporter.log(row)

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()
        self.reporters = []
