"""DAPO's dynamic sampling against plain GRPO on the embedded task: held-out pass@1 per wall-second.

    python benchmarks/dynamic_sampling.py            # r1kit zero, with and without grpo.dynamic_sampling
    python benchmarks/dynamic_sampling.py --steps 6 --eval-every 3 --eval-size 32   # a quick smoke run

Both runs are the default R1-Zero recipe (B = 16 prompts x G = 8, same seed) for the same number of
optimizer steps; with dynamic sampling each step draws ceil(1.5 B) prompts at a time (`grpo.oversample`)
until B groups with unequal rewards are found (at most `grpo.max_sampling_rounds` = 4 draws), so a step
generates more but trains only on informative groups.

Reported: held-out pass@1 along training against the cumulative training-step seconds (evaluations
excluded: the same work in both runs), the training seconds to reach pass@1 0.5 / 0.7 / 0.9, the gain per
training second, the share of groups dropped and the
draws per step. Writes benchmarks/results/dynamic_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stage_runs import add_rl_arguments, measured, rl_settings, run_summary

HERE = Path(__file__).resolve().parent


def _seconds_to(at: dict[str, float], levels: tuple[float, ...]) -> dict[str, float | None]:
    """The training seconds at the first evaluation reaching each pass@1 level (None: never reached); the
    gain per second alone hides a run that saturates early near the ceiling."""
    return {f"{level}": next((float(s) for s, p in at.items() if p >= level), None) for level in levels}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_rl_arguments(ap)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "dynamic_sampling.json")
    args = ap.parse_args(argv)
    common = rl_settings(args)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in {"grpo": [], "grpo_dynamic": ["grpo.dynamic_sampling=true"]}.items():
            out = Path(tmp) / name
            print(f"[dynamic_sampling] {name}", file=sys.stderr, flush=True)
            process = measured(["zero", *extra, f"out_dir={out}", *common])
            run = run_summary(out)
            rows = run["rows"][1:]
            elapsed, at = 0.0, {}
            for r in rows:  # pass@1 against the training seconds spent so far
                elapsed += r.get("step_seconds", 0.0)
                if "eval/pass@1" in r:
                    at[f"{elapsed:.1f}"] = r["eval/pass@1"]
            before, after = run["summary"]["before"]["pass@1"], run["summary"]["after"]["pass@1"]
            runs[name] = {"command": f"r1kit zero {' '.join(extra + common)}", "curve": run["curve"],
                          "pass@1_by_train_seconds": at, "train_seconds_to": _seconds_to(at, (0.5, 0.7, 0.9)),
                          "pass@1_before": before, "pass@1_after": after,
                          "step_seconds": run["step_seconds"], "gain_per_train_second": (after - before)
                          / run["step_seconds"], "wall_seconds": process["wall_seconds"],
                          "peak_rss_mb": process["peak_rss_mb"],
                          "tokens_generated": sum(r.get("tokens", 0.0) for r in rows),
                          "dropped_share": (sum(r["dynamic/dropped_share"] for r in rows) / len(rows)
                                            if extra else None),
                          "draws_per_step": sum(r["dynamic/rounds"] for r in rows) / len(rows) if extra else None,
                          "filled_groups": sum(r["dynamic/filled"] for r in rows) if extra else None,
                          "zero_variance_groups": sum(r["zero_variance_groups"] for r in rows) / len(rows)}
    base = runs["grpo"]
    for r in runs.values():
        r["time_ratio"] = r["step_seconds"] / base["step_seconds"]
        r["gain_per_second_ratio"] = (r["gain_per_train_second"] / base["gain_per_train_second"]
                                      if base["gain_per_train_second"] else None)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus", "steps": args.steps, "seed": args.seed,
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'run':>13} | pass@1 before -> after | step s (x) | gain / train s (x) | train s to 0.5/0.7/0.9 | "
          "dropped | draws/step")
    for name, r in runs.items():
        ratio = f"{r['gain_per_second_ratio']:.2f}x" if r["gain_per_second_ratio"] is not None else "-"
        dropped = f"{100 * r['dropped_share']:.0f} %" if r["dropped_share"] is not None else "-"
        draws = f"{r['draws_per_step']:.2f}" if r["draws_per_step"] is not None else "-"
        reach = "/".join("-" if t is None else f"{t:.0f}" for t in r["train_seconds_to"].values())
        print(f"{name:>13} | {r['pass@1_before']:.3f} -> {r['pass@1_after']:.3f} | {r['step_seconds']:.0f} "
              f"({r['time_ratio']:.2f}x) | {1000 * r['gain_per_train_second']:.2f}e-3 ({ratio}) | {reach} | "
              f"{dropped} | {draws}")
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
