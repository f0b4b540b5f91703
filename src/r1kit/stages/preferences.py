"""The preference-data stage (`r1kit preferences`): reward-model pairs for the general tasks.

    r1kit preferences out_dir=runs/preferences noise=0.1 spurious=0.7

Training pairs come from the tasks' train prompts, with `noise` of them flipped and the spurious feature
on the chosen side with probability `spurious` (`r1kit.sampling.preferences`); the `*_gold.jsonl` files
hold noise-free pairs of the held-out (test) prompts, the measure of a reward model (`r1kit rm ...
eval_data=runs/preferences/helpful_gold.jsonl`). Also writes sft.jsonl: the non-reasoning SFT data (one
gold-good response per train prompt, chat turns) that R1's stage 3 mixes with rejection-sampled
reasoning. Writes helpful.jsonl, harmless.jsonl, helpful_gold.jsonl, harmless_gold.jsonl, sft.jsonl,
report.json and plots/pairs.png; idempotent (rerun: same files).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from r1kit.config import ConfigError, PreferencesConfig
from r1kit.evaluation.plots import plot_bars
from r1kit.rewards.general import summary
from r1kit.sampling.preferences import (
    PairSettings,
    candidates_for,
    good_response,
    harmless,
    helpful,
    pairs_for,
    summarize_rows,
)
from r1kit.tasks import load_task
from r1kit.tasks.general import GENERAL_TASKS
from r1kit.trainers.checkpoint import write_atomic
from r1kit.trainers.run_dir import RunDir


def _tasks(names: str, key: str) -> list[str]:
    tasks = [t.strip() for t in names.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in GENERAL_TASKS]
    if unknown:
        raise ConfigError(f"{key}: {unknown[0]!r} is not a general task; choose from {', '.join(GENERAL_TASKS)}")
    return tasks


def validate(cfg: PreferencesConfig) -> tuple[list[str], list[str]]:
    for key in ("noise", "spurious", "spurious_rejected"):
        if not 0 <= getattr(cfg, key) <= 1:
            raise ConfigError(f"config key {key!r} must be in [0, 1], got {getattr(cfg, key)}")
    for key in ("pairs_per_prompt", "prompts_per_task"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    helpful_tasks, harmless_tasks = _tasks(cfg.helpful_tasks, "helpful_tasks"), _tasks(cfg.harmless_tasks,
                                                                                         "harmless_tasks")
    if not helpful_tasks and not harmless_tasks:
        raise ConfigError("no tasks: helpful_tasks=factual_qa,... or harmless_tasks=harmful")
    return helpful_tasks, harmless_tasks


def _pairs(cfg: PreferencesConfig, tasks: list[str], split: str, kind: str, clean: bool) -> list[dict[str, Any]]:
    gold, view = (helpful, summary) if kind == "helpful" else (harmless, lambda text: text)
    settings = PairSettings(cfg.pairs_per_prompt, cfg.noise, cfg.spurious, cfg.spurious_rejected)
    rows = []
    for t, task in enumerate(tasks):
        rng = random.Random(f"{cfg.seed}:{kind}:{split}:{t}")
        for example in load_task(task, split, seed=cfg.seed)[: cfg.prompts_per_task]:
            rows += pairs_for(example, gold, candidates_for(example, rng), rng, settings, clean=clean, view=view)
    return rows


def general_sft_rows(tasks: list[str], cfg: PreferencesConfig) -> list[dict[str, Any]]:
    """R1's non-reasoning SFT data in miniature (the paper has DeepSeek-V3 write it): one gold-good
    response per train prompt of every general task, as chat turns (`r1kit sft data=.../sft.jsonl`)."""
    rows = []
    for t, task in enumerate(tasks):
        rng = random.Random(f"{cfg.seed}:sft:{t}")
        for e in load_task(task, "train", seed=cfg.seed)[: cfg.prompts_per_task]:
            response = good_response(e, rng)
            gold = harmless if task in ("harmful",) else helpful
            if gold(e, response):
                rows.append({"messages": [{"role": "user", "content": e.prompt},
                                          {"role": "assistant", "content": response}], "task": task})
    return rows


def run_preferences(cfg: PreferencesConfig, *, progress: bool = True) -> dict[str, Any]:
    """Write the pair files; returns summary.json's content."""
    started = time.perf_counter()
    helpful_tasks, harmless_tasks = validate(cfg)
    run = RunDir(cfg)
    run.begin(None)  # records the invocation; no metrics stream
    run.close()
    out = Path(cfg.out_dir)
    report: dict[str, Any] = {}
    for kind, tasks in (("helpful", helpful_tasks), ("harmless", harmless_tasks)):
        if not tasks:
            continue
        for name, split, clean in ((kind, "train", False), (f"{kind}_gold", "test", True)):
            rows = _pairs(cfg, tasks, split, kind, clean)
            write_atomic(out / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            report[name] = summarize_rows(rows)
    sft = general_sft_rows(helpful_tasks + harmless_tasks, cfg)
    write_atomic(out / "sft.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sft))
    report["sft"] = {"rows": len(sft)}
    plot_bars({name: r["by_task"] for name, r in report.items() if "by_task" in r}, out / "plots" / "pairs.png",
              title="preference pairs per task", ylabel="pairs")
    return run.finish({**report, "wall_seconds": time.perf_counter() - started})
