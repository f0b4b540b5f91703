"""The cold-start stage (`r1kit cold-start`): R1's stage-1 data set, written as SFT data.

Two sources (`r1kit.sampling.cold_start`), in the prompts' languages:
- with `zero_model`: k samples per training prompt from an R1-Zero model (R1-Zero template); the correct
  ones whose chain of thought is readable (no mixed language, no long paragraph, no code) are rewritten
  into the `<think>reasoning</think> summary` form by the rewriter (at most `zero_keep` per prompt);
- `solver_examples` long chains of thought with reflection and verification, written from the problems.

Every row is checked again after writing (correct, readable) before it goes to `data.jsonl` (the rows of
`r1kit sample`: `messages`, `prompt`, `completion`, `task`, `answer`, `source`, `language`). Writes
`report.json` (rows per source, task and language, rewriting acceptance), `plots/sources.png` and
summary.json. The stage is quick and deterministic, so a rerun rebuilds it rather than resuming.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ColdStartConfig, ConfigError
from r1kit.evaluation.plots import plot_bars
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import compute_rewards
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.sampling.cold_start import ModelRewriter, Rewriter, RuleRewriter, solver_completion
from r1kit.sampling.readability import readability_issues
from r1kit.tasks import load_task
from r1kit.templates import encode_prompts
from r1kit.trainers.checkpoint import write_atomic
from r1kit.trainers.run_dir import RunDir
from r1kit.types import Example

SOLVABLE = ("arithmetic", "arithmetic_zh", "countdown")


def _tasks(cfg: ColdStartConfig) -> list[str]:
    names = [t.strip() for t in cfg.tasks.split(",") if t.strip()]
    unknown = [n for n in names if n not in SOLVABLE]
    if not names or unknown:
        raise ConfigError(f"cold-start tasks must be among {', '.join(SOLVABLE)}; got {cfg.tasks!r}")
    return names


def validate(cfg: ColdStartConfig) -> list[str]:
    for key in ("zero_k", "zero_limit", "zero_keep", "max_new_tokens", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    if cfg.solver_examples < 0:
        raise ConfigError(f"config key 'solver_examples' must be >= 0, got {cfg.solver_examples}")
    if cfg.zero_keep > cfg.zero_k:
        raise ConfigError(f"zero_keep={cfg.zero_keep} > zero_k={cfg.zero_k}")
    if cfg.solver_examples == 0 and cfg.zero_model is None:
        raise ConfigError("nothing to write: set solver_examples > 0 or zero_model=DIR")
    return _tasks(cfg)


def _row(example: Example, completion: str, source: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": example.prompt}, {"role": "assistant", "content": completion}],
            "prompt": example.prompt, "completion": completion, "task": example.task, "answer": example.answer,
            "source": source, "language": example.info.get("language", "en")}


def _usable(example: Example, completion: str) -> bool:
    """Correct by the task's verifier and readable in the prompt's language."""
    correct = compute_rewards([example.prompt], [completion], [example], {"accuracy": 1.0}).total[0] > 0
    return correct and not readability_issues(completion, language=example.info.get("language"))


def solver_rows(cfg: ColdStartConfig, tasks: list[str]) -> list[dict[str, Any]]:
    rng, rows = random.Random(cfg.seed), []
    per_task = [cfg.solver_examples // len(tasks) + (i < cfg.solver_examples % len(tasks)) for i in range(len(tasks))]
    for name, n in zip(tasks, per_task, strict=True):
        for e in load_task(name, "train", n=n, seed=cfg.seed + 17) if n else []:
            text = solver_completion(e, rng)
            if text is not None and _usable(e, text):
                rows.append(_row(e, text, "solver"))
    return rows


def zero_rows(cfg: ColdStartConfig, tasks: list[str], rewriter: Rewriter) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Rewritten correct, readable R1-Zero samples, and counts of what happened to the samples."""
    assert cfg.zero_model is not None
    tokenizer = load_tokenizer(cfg.zero_model)
    model = load_model(cfg.zero_model)
    generator = HFGenerator(model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            batch_size=cfg.batch_size)
    rows, counts = [], Counter[str]()
    for t, name in enumerate(tasks):
        examples = load_task(name, "train", n=cfg.zero_limit, seed=cfg.seed + 31)
        ids = encode_prompts([e.prompt for e in examples], "r1_zero", tokenizer)
        gen = generator.generate(ids, SamplingParams(1.0, 1.0, cfg.max_new_tokens), num_samples=cfg.zero_k,
                                 seed=cfg.seed * 1000 + t)
        texts = tokenizer.batch_decode(gen.completion_ids, skip_special_tokens=True)
        for p, e in enumerate(examples):
            kept = 0
            for text in texts[p * cfg.zero_k : (p + 1) * cfg.zero_k]:
                counts["samples"] += 1
                if compute_rewards([e.prompt], [text], [e], {"accuracy": 1.0}).total[0] <= 0:
                    counts["incorrect"] += 1
                elif readability_issues(text, language=e.info.get("language")):
                    counts["unreadable"] += 1
                elif kept >= cfg.zero_keep:
                    counts["over_keep"] += 1
                elif (rewritten := rewriter.rewrite(e, text)) is None or not _usable(e, rewritten):
                    counts["not_rewritable"] += 1
                else:
                    rows.append(_row(e, rewritten, "zero_rewritten"))
                    counts["rewritten"] += 1
                    kept += 1
    return rows, counts


def run_cold_start(cfg: ColdStartConfig, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    tasks = validate(cfg)
    run = RunDir(cfg)
    rewriter: Rewriter = RuleRewriter() if cfg.rewriter == "rule" else ModelRewriter(cfg.rewriter)
    if cfg.zero_model is not None:
        load_tokenizer(cfg.zero_model)  # a model that cannot load stops here, before out_dir is touched
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run.begin(None)
    run.close()
    rows = solver_rows(cfg, tasks)
    zero_counts: Counter[str] = Counter()
    if cfg.zero_model is not None:
        rewritten, zero_counts = zero_rows(cfg, tasks, rewriter)
        rows += rewritten
    random.Random(cfg.seed).shuffle(rows)
    out = Path(cfg.out_dir)
    write_atomic(out / "data.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    by: dict[str, Counter[str]] = {}
    for r in rows:
        by.setdefault(r["source"], Counter())[f"{r['task']}"] += 1
    report = {"rows": len(rows), "by_source": {s: dict(c) for s, c in by.items()},
              "by_language": dict(Counter(r["language"] for r in rows)), "zero_samples": dict(zero_counts),
              "reflective_rows": sum(("wait" in r["completion"].lower()) or ("等等" in r["completion"]) for r in rows),
              "data": str(out / "data.jsonl"), "wall_seconds": time.perf_counter() - started}
    write_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    plot_bars({s: dict(c) for s, c in by.items()}, out / "plots" / "sources.png",
              title="cold-start rows by source and task", ylabel="rows")
    if progress:
        print(f"r1kit cold-start: {len(rows)} rows", flush=True)
    return run.finish(report)
