"""A run killed with SIGKILL and resumed with the same command ends exactly like an uninterrupted run:
the same metrics (timings aside) and bit-identical final weights (CPU, same thread count)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from r1kit.stages.grpo import TIMING_KEYS

ARGS = ["steps=6", "prompts_per_step=4", "group_size=4", "task.eval_size=8", "eval.samples=2", "eval.every=3",
        "save_every=1", "threads=1", "optim.lr=1e-3", "grpo.num_minibatches=2", "grpo.kl_coef=0.05",
        "grpo.ref_update_every=4", "--quiet"]


def _cmd(out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "r1kit.cli", "zero", f"out_dir={out_dir}", *ARGS]


def _rows(out_dir: Path) -> list[dict]:
    path = out_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _kill_after_step(out_dir: Path, step: int) -> None:
    """Start the run and SIGKILL it as soon as the metrics row of `step` is on disk."""
    proc = subprocess.Popen(_cmd(out_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["step"] >= step for r in _rows(out_dir)):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(straight), check=True, capture_output=True, timeout=600)

    _kill_after_step(killed, 2)
    _kill_after_step(killed, 4)  # the same command resumes, and is killed again
    done = subprocess.run(_cmd(killed), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    assert _comparable(_rows(killed)) == _comparable(_rows(straight))
    a = load_file(straight / "model" / "model.safetensors")
    b = load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    summary_a = json.loads((straight / "summary.json").read_text())
    summary_b = json.loads((killed / "summary.json").read_text())
    assert summary_a["before"] == summary_b["before"] and summary_a["after"] == summary_b["after"]
