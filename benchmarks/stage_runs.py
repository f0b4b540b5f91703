"""Shared by the algorithm benchmarks: run an r1kit command in its own process and measure it, and read a
run directory's held-out curve. Not a benchmark itself."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_MEASURED = ("import json, resource, sys; from r1kit.cli import main; code = main(sys.argv[2:]); "
             "json.dump({'rc': code, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, "
             "open(sys.argv[1], 'w')); sys.exit(code)")
"""Runs one r1kit command and writes its exit code and its own peak RSS (Linux: ru_maxrss in KiB)."""


def measured(args: list[str]) -> dict[str, Any]:
    """`r1kit ARGS` in a fresh process: exit code, wall seconds, peak RSS in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rss.json"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _MEASURED, str(report), *args], stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"r1kit {' '.join(args)} failed (exit {done.returncode})")
        return json.loads(report.read_text()) | {"wall_seconds": seconds}


def run_summary(out_dir: Path) -> dict[str, Any]:
    """A finished RL run's summary.json, its held-out pass@1 curve {step: pass@1} and its training seconds
    (steps and evaluations, from metrics.jsonl: model loading and the final save excluded)."""
    summary = json.loads((out_dir / "summary.json").read_text())
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    curve = {int(r["step"]): r["eval/pass@1"] for r in rows if "eval/pass@1" in r}
    return {"summary": summary, "curve": curve, "rows": rows,
            "train_seconds": sum(r.get("step_seconds", 0.0) + r.get("eval/seconds", 0.0) for r in rows),
            "step_seconds": sum(r.get("step_seconds", 0.0) for r in rows)}


def add_rl_arguments(ap: argparse.ArgumentParser, steps: int = 70) -> None:
    """The options every RL comparison shares: steps, evaluation cadence and size, seed, extra settings."""
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--eval-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra", nargs="*", default=[], help="more key=value settings for every run")


def rl_settings(args: argparse.Namespace) -> list[str]:
    """`add_rl_arguments`' options as the r1kit settings every run of the comparison gets."""
    return [f"steps={args.steps}", f"eval.every={args.eval_every}", f"task.eval_size={args.eval_size}",
            f"seed={args.seed}", *args.extra, "--quiet"]
