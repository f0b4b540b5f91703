"""Stages: each r1kit command is one entry of `STAGES` (kind -> config class, run function), which the
CLI and `r1kit pipeline` read. No class hierarchy: a stage is a typed config and a function
`run(cfg, *, progress) -> summary` that leaves a run directory (`r1kit.trainers.run_dir`).

| command | config | what it does |
|---|---|---|
| `zero` | `ZeroConfig` | R1-Zero: GRPO from a base model with rule rewards (the tiny recipe's defaults) |
| `grpo` | `ZeroConfig` | any GRPO stage from a recipe: R1's reasoning RL and all-scenario RL |
| `ppo` | `PPOConfig` | PPO with a value model and GAE, on R1-Zero's recipe (the paper's comparison) |
| `sft` | `SFTConfig` | SFT: cold start, rejection-sampling SFT, distillation |
| `rm` | `RMConfig` | a Bradley-Terry reward model on preference pairs |
| `dpo` | `DPOConfig` | DPO of a causal LM on preference pairs (no reward model, no RL) |
| `preferences` | `PreferencesConfig` | preference pairs labelled by the gold rules, with noise and a spurious feature |
| `sample` | `SampleConfig` | rejection sampling with the paper's filters, writing SFT data |
| `cold-start` | `ColdStartConfig` | the stage-1 data set (rewritten R1-Zero samples, solver traces) |
| `distill` | `DistillConfig` | sample a teacher, fine-tune a student on its traces |
| `judge` | `JudgeConfig` | train a small generative judge on rule-labelled pairs, measure its agreement |
| `eval` | `EvalRunConfig` | the paper's evaluation protocol |
| `pipeline` | `PipelineConfig` | every stage above in R1's order, Table 2 and Table 6 in miniature |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1kit.config import (
    ColdStartConfig,
    DistillConfig,
    DPOConfig,
    EvalRunConfig,
    JudgeConfig,
    PipelineConfig,
    PPOConfig,
    PreferencesConfig,
    RMConfig,
    SampleConfig,
    SFTConfig,
    ZeroConfig,
)


@dataclass(frozen=True)
class Stage:
    config: type
    """The stage's typed config (YAML recipe + key=value overrides)."""
    run: Callable[..., dict[str, Any]]
    """run(cfg, *, progress: bool) -> the content of summary.json (results.json for eval)."""
    help: str
    report: Callable[[Any, dict[str, Any]], str]
    """The lines printed when the stage is done."""
    dry_run: Callable[[Any], str] | None = None
    """`--dry-run`: load everything, run one micro-batch of each phase, return the memory plan's lines."""
    validate: Callable[[Any], None] | None = None
    """For stages that launch processes (`dist.nproc`, `cluster.backend=ray`): the checks `run` makes
    before any work (settings, the run directory's resume settings, model path, data), run once in the
    launching process, before any other starts: bad input is one line and exit 2 there too."""


def _run_grpo(cfg: ZeroConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.grpo import run_grpo

    return run_grpo(cfg, progress=progress)


def _dry_run_grpo(cfg: ZeroConfig) -> str:
    from r1kit.stages.dry_run import dry_run, report

    return report(dry_run(cfg))


def _validate_grpo(cfg: ZeroConfig) -> None:
    from r1kit.stages.grpo import preflight

    preflight(cfg)


def _validate_sft(cfg: SFTConfig) -> None:
    from r1kit.stages.sft import preflight

    preflight(cfg)


def _validate_rm(cfg: RMConfig) -> None:
    from r1kit.stages.rm import preflight

    preflight(cfg)


def _validate_dpo(cfg: DPOConfig) -> None:
    from r1kit.stages.dpo import preflight

    preflight(cfg)


def _run_dpo(cfg: DPOConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.dpo import run_dpo

    return run_dpo(cfg, progress=progress)


def _run_sft(cfg: SFTConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.sft import run_sft

    return run_sft(cfg, progress=progress)


def _run_rm(cfg: RMConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.rm import run_rm

    return run_rm(cfg, progress=progress)


def _run_preferences(cfg: PreferencesConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.preferences import run_preferences

    return run_preferences(cfg, progress=progress)


def _run_sample(cfg: SampleConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.sample import run_sample

    return run_sample(cfg, progress=progress)


def _run_cold_start(cfg: ColdStartConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.cold_start import run_cold_start

    return run_cold_start(cfg, progress=progress)


def _run_distill(cfg: DistillConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.distill import run_distill

    return run_distill(cfg, progress=progress)


def _run_judge(cfg: JudgeConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.judge import run_judge

    return run_judge(cfg, progress=progress)


def _run_eval(cfg: EvalRunConfig, *, progress: bool = True) -> dict[str, Any]:
    import sys

    from r1kit.evaluation.protocol import run_eval

    return run_eval(cfg, progress=(lambda line: print(f"r1kit eval: {line}", file=sys.stderr)) if progress else None)


def _run_pipeline(cfg: PipelineConfig, *, progress: bool = True) -> dict[str, Any]:
    from r1kit.stages.pipeline import run_pipeline

    return run_pipeline(cfg, progress=progress)


def _report_pipeline(cfg: PipelineConfig, summary: dict[str, Any]) -> str:
    from pathlib import Path

    times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in summary["seconds"].items())
    return ((Path(cfg.out_dir) / "table.md").read_text() +
            f"\nstage times: {times}; total {summary['total_seconds'] / 60:.1f} min\n"
            f"table.md, table.json and report.html in {cfg.out_dir}")


def _report_grpo(cfg: ZeroConfig, summary: dict[str, Any]) -> str:
    before, after = summary["before"]["pass@1"], summary["after"]["pass@1"]
    return (f"held-out pass@1 {before:.3f} -> {after:.3f} ({100 * (after - before):+.1f} points) "
            f"in {summary['wall_seconds']:.0f} s; results in {cfg.out_dir}")


def _report_sft(cfg: SFTConfig, summary: dict[str, Any]) -> str:
    return (f"eval loss {summary['eval_loss_before']:.4f} -> {summary['eval_loss_after']:.4f} after "
            f"{summary['steps']} steps in {summary['wall_seconds']:.0f} s; model in {cfg.out_dir}/model")


def _report_rm(cfg: RMConfig, summary: dict[str, Any]) -> str:
    return (f"held-out pair accuracy {summary['accuracy_before']:.3f} -> {summary['accuracy_after']:.3f} "
            f"(mean margin {summary['margin_after']:.3f}) after {summary['steps']} steps in "
            f"{summary['wall_seconds']:.0f} s; reward model in {cfg.out_dir}/model")


def _report_dpo(cfg: DPOConfig, summary: dict[str, Any]) -> str:
    return (f"held-out reward accuracy {summary['accuracy_before']:.3f} -> {summary['accuracy_after']:.3f} "
            f"(margin {summary['margin_after']:.3f}) after {summary['steps']} steps in "
            f"{summary['wall_seconds']:.0f} s; model in {cfg.out_dir}/model")


def _report_preferences(cfg: PreferencesConfig, summary: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {r['pairs']} pairs ({100 * r['flipped']:.0f} % flipped, sign-off on "
                     f"{100 * r['chosen_spurious']:.0f} % chosen / {100 * r['rejected_spurious']:.0f} % rejected)"
                     for name, r in summary.items() if isinstance(r, dict) and "pairs" in r) + (
        f"; {summary['sft']['rows']} non-reasoning SFT rows; files in {cfg.out_dir}")


def _report_sample(cfg: SampleConfig, report: dict[str, Any]) -> str:
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped"].items(), key=lambda kv: -kv[1]))
    return (f"kept {report['kept']} of {report['samples']} samples ({100 * report['acceptance']:.1f} %) from "
            f"{report['prompts']} prompts; dropped: {dropped or 'none'}; data in {report['data']}")


def _report_cold_start(cfg: ColdStartConfig, report: dict[str, Any]) -> str:
    sources = ", ".join(f"{s} {sum(c.values())}" for s, c in report["by_source"].items())
    return f"{report['rows']} cold-start rows ({sources}); data in {report['data']}"


def _report_distill(cfg: DistillConfig, summary: dict[str, Any]) -> str:
    b, a = summary["before"]["overall"], summary["after"]["overall"]
    return (f"student held-out pass@1 {b:.3f} -> {a:.3f} after distilling {summary['sample']['kept']} teacher "
            f"traces; student in {cfg.out_dir}/sft/model")


def _report_judge(cfg: JudgeConfig, summary: dict[str, Any]) -> str:
    return (f"judge agrees with the rule verifier on {100 * summary['agreement']:.1f} % of "
            f"{summary['heldout_pairs']} held-out pairs; judge in {summary['judge']}")


def _report_eval(cfg: EvalRunConfig, results: dict[str, Any]) -> str:
    k = cfg.k
    lines = [f"{name:>16}: pass@1 {r['pass@1']:.3f} [{r['pass@1_ci95'][0]:.3f}, {r['pass@1_ci95'][1]:.3f}]"
             f"  cons@{k} {r['cons@k']:.3f}  pass@{k} {r['pass@k'][str(k)]:.3f}  ({r['n_prompts']} prompts)"
             for name, r in [*results["tasks"].items(), ("overall", results["overall"])]]
    return "\n".join([*lines, f"results in {cfg.out_dir}/results.json, report in {cfg.out_dir}/report.html"])


STAGES: dict[str, Stage] = {
    "zero": Stage(ZeroConfig, _run_grpo, "R1-Zero: GRPO from a base model with rule rewards", _report_grpo,
                  _dry_run_grpo, _validate_grpo),
    "grpo": Stage(ZeroConfig, _run_grpo, "a GRPO stage from a recipe (R1's reasoning and all-scenario RL)",
                  _report_grpo, _dry_run_grpo, _validate_grpo),
    "ppo": Stage(PPOConfig, _run_grpo, "PPO with a value model and GAE on R1-Zero's recipe", _report_grpo,
                 _dry_run_grpo, _validate_grpo),
    "sft": Stage(SFTConfig, _run_sft, "supervised fine-tuning: cold start, rejection-sampling SFT, distillation",
                 _report_sft, validate=_validate_sft),
    "rm": Stage(RMConfig, _run_rm, "a Bradley-Terry reward model on {prompt, chosen, rejected} pairs", _report_rm,
                validate=_validate_rm),
    "dpo": Stage(DPOConfig, _run_dpo, "DPO (Rafailov et al. 2023) on {prompt, chosen, rejected} pairs", _report_dpo,
                 validate=_validate_dpo),
    "preferences": Stage(PreferencesConfig, _run_preferences, "preference pairs for reward models, labelled by the "
                         "gold rules, with label noise and a spurious feature", _report_preferences),
    "sample": Stage(SampleConfig, _run_sample, "rejection sampling with the paper's filters, written as SFT data",
                    _report_sample),
    "cold-start": Stage(ColdStartConfig, _run_cold_start, "R1's stage-1 data: rewritten R1-Zero samples and "
                        "solver chains of thought", _report_cold_start),
    "distill": Stage(DistillConfig, _run_distill, "sample a teacher, fine-tune a student on its traces",
                     _report_distill),
    "judge": Stage(JudgeConfig, _run_judge, "train a small generative judge and measure its agreement", _report_judge),
    "pipeline": Stage(PipelineConfig, _run_pipeline, "the whole R1 system in miniature: R1-Zero, R1's four stages, "
                      "reward models, distillation; Table 2 and Table 6", _report_pipeline),
    "eval": Stage(EvalRunConfig, _run_eval, "the paper's evaluation protocol: pass@1 over k samples, cons@k, pass@k",
                  _report_eval),
}
