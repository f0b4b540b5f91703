"""DPO against stage-4 RL from the same Dev3 model, on the miniature preference data: gold helpfulness before
and after, wall seconds and peak memory of each training.

    python benchmarks/dpo_vs_rl.py                                    # builds Dev3 with `r1kit pipeline` first
    python benchmarks/dpo_vs_rl.py --from-pipeline runs/r1            # reuses a pipeline's Dev3, pairs and RMs
    python benchmarks/dpo_vs_rl.py --from-pipeline runs/r1 --methods dpo --dpo-beta 0.5 --result x.json  # DPO only
    python benchmarks/dpo_vs_rl.py --recipe recipes/tiny/r1-short.yaml --out runs/dpo-vs-rl-short   # wiring only

Both methods start from the pipeline's Dev3 (`06-dev3/model`):
- RL: the pipeline's `r1` stage config (`r1kit grpo` at temperature 0.7, rule rewards on the reasoning
  prompts, the helpful and harmless reward models on the general prompts in the last steps), rerun here;
- DPO: `r1kit dpo` on `r1kit preferences`' helpful pairs (`05-rs/preferences/helpful.jsonl`, the pairs
  the helpful reward model was trained on, noise included), template r1, with `--dpo-epochs` passes.
Each training runs in its own process (peak RSS = that process's ru_maxrss), then both models are
evaluated by the pipeline's own protocol (`evaluate_model`: the general tasks scored by their gold rules,
never the reward models). Dev3's own measures come from its stage.json. Writes
benchmarks/results/dpo_vs_rl.json (or --result).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from r1kit.config import PipelineConfig, config_yaml, load_config
from r1kit.stages.pipeline import evaluate_model, plan, stage_dir
from stage_runs import measured

HERE = Path(__file__).resolve().parent
MAIN_LINE = "zero,cold_start,dev1,dev2,rs,dev3,rm"
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-pipeline", type=Path, help="a pipeline out_dir with dev3, rs and rm finished")
    ap.add_argument("--recipe", help="the pipeline recipe (when building Dev3 here, and for its eval settings)")
    ap.add_argument("--out", type=Path, default=Path("runs/dpo-vs-rl"), help="where the runs go")
    ap.add_argument("--dpo-epochs", type=int, default=2)
    ap.add_argument("--dpo-lr", type=float, default=5e-5)
    ap.add_argument("--dpo-beta", type=float, default=0.1)
    ap.add_argument("--methods", default="rl,dpo", help="which to train: rl,dpo (dpo alone: a DPO settings sweep)")
    ap.add_argument("--result", type=Path, help="default: results/dpo_vs_rl.json (for --methods rl,dpo)")
    a = ap.parse_args(argv)
    methods = a.methods.split(",")
    if not methods or not set(methods) <= {"rl", "dpo"}:
        ap.error(f"--methods takes rl, dpo or rl,dpo, got {a.methods!r}")
    if a.result is None and set(methods) != {"rl", "dpo"}:
        ap.error("--methods without both rl and dpo needs its own --result (the default holds the comparison)")
    result_path = a.result or HERE / "results" / "dpo_vs_rl.json"
    root = (a.from_pipeline or a.out / "pipeline").resolve()
    cfg = load_config(PipelineConfig, a.recipe, [f"out_dir={root}"])
    if a.from_pipeline is None:  # resumable: a finished stage is skipped
        measured(["pipeline", *(["--config", a.recipe] if a.recipe else []), f"out_dir={root}",
                  f"stages={MAIN_LINE}", "--quiet"])
    dev3 = json.loads((stage_dir(root, "dev3") / "stage.json").read_text())["measures"]["dev3"]
    start_model = stage_dir(root, "dev3") / "model"
    pairs = stage_dir(root, "rs") / "preferences" / "helpful.jsonl"
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    # RL: the pipeline's own r1 stage config, out_dir moved here.
    (_, rl_cfg), = plan(cfg, "r1", root, cfg.seed, {}).runs
    rl_cfg.out_dir = str(out / "rl")
    recipe = out / "rl.yaml"
    recipe.write_text(config_yaml(rl_cfg))
    rl = measured(["grpo", "--config", str(recipe), "--quiet"]) if "rl" in methods else None
    dpo = measured(["dpo", f"model.path={start_model}", f"data={pairs}", f"out_dir={out / 'dpo'}",
                    f"epochs={a.dpo_epochs}", f"optim.lr={a.dpo_lr}", f"dpo.beta={a.dpo_beta}", "template=r1",
                    f"seed={cfg.seed}", "--quiet"]) if "dpo" in methods else None
    rows = {}
    for name, run, steps in (("rl", rl, rl_cfg.steps), ("dpo", dpo, None)):
        if run is None:
            continue
        summary = json.loads((out / name / "summary.json").read_text())
        after = evaluate_model(str(out / name / "model"), "r1", out / f"eval-{name}", cfg, cfg.seed, progress=False)
        rows[name] = {"helpfulness_before": dev3["helpfulness"], "helpfulness_after": after["helpfulness"],
                      "harmlessness_before": dev3["harmlessness"], "harmlessness_after": after["harmlessness"],
                      "reasoning_pass@1_before": dev3["reasoning_pass@1"],
                      "reasoning_pass@1_after": after["reasoning_pass@1"],
                      "optimizer_steps": steps if steps is not None else summary["steps"],
                      "train_wall_seconds": run["wall_seconds"], "peak_rss_mb": run["peak_rss_mb"]}
        if name == "dpo":
            rows[name] |= {"heldout_reward_accuracy": summary["accuracy_after"], "pairs": summary["train_pairs"],
                           "pairs_dropped_identical": summary.get("pairs_dropped_identical")}
    result = {"pipeline": str(root), "recipe": a.recipe, "dev3": str(start_model), "pairs": str(pairs),
              "dpo_settings": {"epochs": a.dpo_epochs, "lr": a.dpo_lr, "beta": a.dpo_beta}, "trained": methods,
              "methods": rows,
              "threads": os.cpu_count()}
    print(f"{'method':>6} | gold helpfulness | gold harmlessness | reasoning pass@1 | steps | wall s | peak RSS MB")
    for name, r in rows.items():
        print(f"{name:>6} | {r['helpfulness_before']:.3f} -> {r['helpfulness_after']:.3f}   | "
              f"{r['harmlessness_before']:.3f} -> {r['harmlessness_after']:.3f}    | "
              f"{r['reasoning_pass@1_before']:.3f} -> {r['reasoning_pass@1_after']:.3f}   | "
              f"{r['optimizer_steps']:>5} | "
              f"{r['train_wall_seconds']:>6.0f} | {r['peak_rss_mb']:.0f}")
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
