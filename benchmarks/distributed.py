"""Speed of the ways to run one GRPO stage on this machine: one process, two processes (torch FSDP2 on
gloo, `dist.nproc=2`), one-step-off asynchronous rollout (`rollout.off_policy_steps=1`) alone and in two
processes, and Ray actors (2 rollout + 2 trainer workers on a local cluster). Same config, same seed;
seconds per step from each run's metrics.jsonl (Ray's start-up, outside the steps, is not counted).

    python benchmarks/distributed.py                      # the embedded default, 10 steps, 2 rounds
    python benchmarks/distributed.py --steps 10 --rounds 2 --out benchmarks/results/distributed.json

The modes run one after another inside each round (interleaved), and each mode keeps its best round: the
machine is shared and noisy. A step's seconds are rollout (generation + scoring), the reference and old-
policy passes and the update; held-out evaluation is off (eval.every=0, and the start and end evaluations
are not counted). The first step is dropped (warm-up; one-step-off samples it synchronously). Ratios are
against one process, synchronous, measured in the same round. On a 2-core CPU every mode shares the same
two cores: this measures the overhead of the machinery, not the scale-out a machine with more devices gives.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES: dict[str, list[str]] = {
    "1 process": ["threads=2"],
    "2 processes (FSDP2, gloo)": ["dist.nproc=2", "threads=2"],
    "1 process, one-step-off": ["threads=2", "rollout.off_policy_steps=1"],
    "2 processes, one-step-off": ["dist.nproc=2", "threads=2", "rollout.off_policy_steps=1"],
    "Ray, 2 rollout + 2 trainer workers": ["cluster.backend=ray", "cluster.rollout_workers=2",
                                           "cluster.trainer_workers=2"],
}


def run(mode: list[str], steps: int, out: Path) -> dict[str, Any]:
    """One run of `steps` steps; its per-step seconds (the first dropped) and final rows."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "r1kit", "zero", "--quiet", f"out_dir={out}", f"steps={steps}", "eval.every=0",
           "task.eval_size=16", "eval.samples=1", *mode]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        raise RuntimeError(f"{' '.join(mode)} failed:\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["step_seconds"] for r in rows if "step_seconds" in r][1:]
    return {"seconds_per_step": sum(seconds) / len(seconds), "wall_seconds": time.perf_counter() - t0,
            "tokens_per_step": sum(r["tokens"] for r in rows if "tokens" in r) / steps,
            "reward_mean": sum(r["reward/mean"] for r in rows if "reward/mean" in r) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    best: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {name: [] for name in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base = None
            for i, (name, mode) in enumerate(MODES.items()):
                result = run(mode, args.steps, Path(tmp) / f"r{r}m{i}")
                base = base or result["seconds_per_step"]
                ratios[name].append(base / result["seconds_per_step"])
                if name not in best or result["seconds_per_step"] < best[name]["seconds_per_step"]:
                    best[name] = result
                print(f"round {r + 1} {name:28s} {result['seconds_per_step']:.2f} s/step  "
                      f"speed vs 1 process {ratios[name][-1]:.2f}x", flush=True)
    report = {"steps": args.steps, "rounds": args.rounds, "cpus": os.cpu_count(),
              "modes": {name: {**best[name], "speed_vs_1_process": max(ratios[name]),
                               "speed_vs_1_process_per_round": ratios[name]} for name in MODES}}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
