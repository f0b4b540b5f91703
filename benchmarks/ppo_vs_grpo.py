"""PPO (value model + GAE) against GRPO on the embedded task, the R1 paper's appendix comparison in miniature.

    python benchmarks/ppo_vs_grpo.py                 # r1kit zero vs r1kit ppo at lambda 0.95 and 1.0, 70 steps
    python benchmarks/ppo_vs_grpo.py --steps 6 --eval-every 3 --eval-size 32   # a quick smoke run

Every run is the default R1-Zero recipe (recipes/tiny/zero.yaml: B = 16 prompts x G = 8 completions per
step, the same seed, learning rate, KL coefficient and clip). PPO replaces GRPO's group baseline by its
critic (a separate value model initialised from the policy, `ppo.critic`) with GAE(gamma=1, lambda), and
with `r1kit ppo`'s defaults also puts the KL in the per-token reward (`ppo.kl_in=reward`, classic PPO;
`--extra ppo.kl_in=loss` keeps GRPO's k3 term in the loss) and whitens the advantages over the batch
(GRPO normalises within each group). The paper's claim: with lambda = 1 PPO comes near GRPO, and costs
clearly more compute and memory.

Reported, as ratios to GRPO measured in the same invocation, one run after the other:
- held-out pass@1 (256 prompts x 8 samples, temperature 0.6) along training and at the end;
- time: the summed training-step seconds (rollout, scoring, every forward and backward, optimizer steps;
  held-out evaluations excluded, they are the same work in every run);
- memory: the process's peak RSS, and the trained state by count (parameters of policy, reference and
  critic, and AdamW's two moments of each trained parameter, float32; gradients, transient, left out; the
  embedded model's counts, whatever --extra sets), which is what scales with the model (the RSS of the
  tiny model is mostly the Python and torch runtime).

Writes benchmarks/results/ppo_vs_grpo.json.
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


def state_bytes(critic: str | None) -> int:
    """float32 bytes of the trained state: policy + frozen reference + AdamW moments (2 per trained value),
    and with PPO the critic and its moments (a separate critic: a whole decoder; a head: one row)."""
    from r1kit.models.loading import load_model
    from r1kit.models.value import make_value_model, own_parameters

    policy = load_model("embedded")
    n_policy = sum(p.numel() for p in policy.parameters())
    total = n_policy * (1 + 1 + 2)
    if critic:
        own = sum(p.numel() for p in own_parameters(make_value_model(policy, critic), critic))  # type: ignore[arg-type]
        total += own * (1 + 2)
    return 4 * total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_rl_arguments(ap)
    ap.add_argument("--critic", default="separate", choices=["separate", "head"])
    ap.add_argument("--lams", default="0.95,1.0", help="PPO's GAE lambdas, comma-separated")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ppo_vs_grpo.json")
    args = ap.parse_args(argv)
    common = rl_settings(args)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        plan = {"grpo": ["zero"]} | {f"ppo_lam{lam}": ["ppo", f"ppo.lam={lam}", f"ppo.critic={args.critic}"]
                                     for lam in args.lams.split(",")}
        for name, cmd in plan.items():
            out = Path(tmp) / name
            print(f"[ppo_vs_grpo] {name}: r1kit {' '.join(cmd)}", file=sys.stderr, flush=True)
            process = measured([*cmd, f"out_dir={out}", *common])
            run = run_summary(out)
            runs[name] = {"command": f"r1kit {' '.join(cmd + common)}", "curve": run["curve"],
                          "pass@1_before": run["summary"]["before"]["pass@1"],
                          "pass@1_after": run["summary"]["after"]["pass@1"], "best_pass@1": max(run["curve"].values()),
                          "step_seconds": run["step_seconds"], "wall_seconds": process["wall_seconds"],
                          "peak_rss_mb": process["peak_rss_mb"],
                          "state_mb": state_bytes(None if name == "grpo" else args.critic) / 2**20,
                          "final_explained_variance": run["rows"][-1].get("value/explained_variance")}
    base = runs["grpo"]
    for r in runs.values():
        r["time_ratio"] = r["step_seconds"] / base["step_seconds"]
        r["peak_rss_ratio"] = r["peak_rss_mb"] / base["peak_rss_mb"]
        r["state_ratio"] = r["state_mb"] / base["state_mb"]
        r["pass@1_minus_grpo"] = r["pass@1_after"] - base["pass@1_after"]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus", "steps": args.steps, "seed": args.seed,
              "critic": args.critic, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'run':>14} | pass@1 before -> after (best) | curve | step s (x GRPO) | peak RSS MB (x) | state MB (x)")
    for name, r in runs.items():
        curve = " ".join(f"{v:.2f}" for v in r["curve"].values())
        print(f"{name:>14} | {r['pass@1_before']:.3f} -> {r['pass@1_after']:.3f} ({r['best_pass@1']:.3f}) | "
              f"{curve} | {r['step_seconds']:.0f} ({r['time_ratio']:.2f}x) | {r['peak_rss_mb']:.0f} "
              f"({r['peak_rss_ratio']:.2f}x) | {r['state_mb']:.1f} ({r['state_ratio']:.2f}x)")
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
