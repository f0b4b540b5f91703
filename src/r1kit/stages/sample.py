"""The sampling stage (`r1kit sample`): rejection sampling with the paper's filters, written as SFT data.

    r1kit sample model.path=runs/dev2/model tasks=arithmetic,countdown k=16 keep=4 limit=2000 out_dir=runs/rs

For every prompt of the tasks' `split` (the first `limit`): k samples through the same `Generator` as
training and evaluation; each judged correct by its task's rule verifier (or, for `judge_tasks`, by the
generative judge given the gold), checked for runaway length and readability, and the correct, complete,
readable ones kept, at most `keep` distinct per prompt (`r1kit.sampling.rejection`).

Outputs in out_dir:
- `data.jsonl`: one row per kept sample, ready for `r1kit sft data=...`: `messages` (the chat form SFT
  trains on), `prompt` (the question as given) and `completion` (the assistant text), `task`, `answer`
  (the gold), `verdict` and `judged_by`, `model` (the hash of the sampled weights), `sample` (its index
  among the k), `language`;
- `report.json` (also summary.json): prompts, samples, kept, and dropped counts per reason, per task and
  in all; `plots/filters.png`.

Resume: rows go to data.jsonl prompt by prompt, each prompt's then marked done in progress.jsonl; a rerun
keeps the rows of done prompts only and samples the rest, so a kill at any instant loses no prompt and
duplicates no row.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ConfigError, SampleConfig
from r1kit.evaluation.benchmarks import BenchmarkError, load_benchmark
from r1kit.evaluation.plots import plot_bars
from r1kit.judges import Judge, ModelJudge
from r1kit.models.device import resolve_device
from r1kit.models.loading import load_model, load_tokenizer, resolve_model_path
from r1kit.rewards import check_code_sandbox, compute_rewards
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.sampling.rejection import Filters, decide
from r1kit.tasks import TASKS, load_task
from r1kit.tasks.files import jsonl_lines
from r1kit.templates import encode_prompts
from r1kit.trainers.checkpoint import write_atomic
from r1kit.trainers.run_dir import RunDir
from r1kit.types import Example

DATA, PROGRESS, REPORT = "data.jsonl", "progress.jsonl", "report.json"
CODE_VERIFIERS = {"code"}


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def validate(cfg: SampleConfig) -> None:
    for key in ("k", "keep", "max_new_tokens", "batch_size", "max_paragraph_chars"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    if cfg.keep > cfg.k:
        raise ConfigError(f"keep={cfg.keep} > k={cfg.k}: at most k samples per prompt can be kept")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"config key 'limit' must be >= 1, got {cfg.limit}")
    if not 0 < cfg.top_p <= 1 or cfg.temperature < 0 or not 0 <= cfg.min_consistency <= 1:
        raise ConfigError("need 0 < top_p <= 1, temperature >= 0 and 0 <= min_consistency <= 1")
    if not _names(cfg.tasks):
        raise ConfigError("no tasks given: tasks=arithmetic,countdown,...")
    if _names(cfg.judge_tasks) and not cfg.judge:
        raise ConfigError("judge_tasks needs a judge model: judge=DIR")
    try:
        resolve_device(cfg.model.device)
    except ValueError as e:
        raise ConfigError(f"model.device: {e}") from None


def load_examples(cfg: SampleConfig) -> dict[str, list[Example]]:
    """The prompts of every task: generated tasks from `split`, benchmarks (data sets, jsonl:) as eval reads them."""
    out = {}
    for name in _names(cfg.tasks):
        try:
            if name in TASKS and not (cfg.data_dir and name in ("gsm8k", "humaneval", "knights_knaves")):
                examples = load_task(name, cfg.split, seed=cfg.seed)[: cfg.limit]  # all when fewer
            else:
                examples = load_benchmark(name, data_dir=cfg.data_dir, n=cfg.limit, seed=cfg.seed)
        except (ValueError, BenchmarkError) as e:
            raise ConfigError(str(e)) from None
        if not examples:
            raise ConfigError(f"task {name!r} has no prompts")
        out[examples[0].task if name.startswith("jsonl:") else name] = examples
    return out


def model_hash(path: str) -> str:
    """sha256 (16 hex digits) of the model's weight files: which weights the samples came from."""
    digest = hashlib.sha256()
    for file in sorted(Path(resolve_model_path(path)).glob("*.safetensors")):
        with open(file, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def run_sample(cfg: SampleConfig, *, progress: bool = True) -> dict[str, Any]:
    """Rejection sampling end to end; returns report.json's content."""
    started = time.perf_counter()
    validate(cfg)
    run = RunDir(cfg)
    tasks = load_examples(cfg)
    check_code_sandbox({"accuracy": 1.0}, [e.verifier for ex in tasks.values() for e in ex[:1]])
    tokenizer = load_tokenizer(cfg.model.path)
    prompts: dict[str, list[list[int]]] = {}
    context = getattr(tokenizer, "model_max_length", None)
    for name, examples in tasks.items():
        try:
            prompts[name] = encode_prompts([e.prompt for e in examples], cfg.template, tokenizer)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        too_long = [i for i, ids in enumerate(prompts[name]) if context and len(ids) + cfg.max_new_tokens > context
                    and context < 10**6]
        if too_long:
            i = too_long[0]
            raise ConfigError(f"task {name} prompt {i} has {len(prompts[name][i])} tokens: with max_new_tokens="
                              f"{cfg.max_new_tokens} it passes the model's context of {context}")
    judge: Judge | None = ModelJudge(cfg.judge, device=cfg.model.device) if cfg.judge else None
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    model = load_model(cfg.model.path, cfg.model.dtype, resolve_device(cfg.model.device))
    digest = model_hash(cfg.model.path)

    run.begin(None)
    run.close()
    out = run.out
    done = _resume(out)
    generator = HFGenerator(model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            batch_size=cfg.batch_size, dtype=cfg.model.dtype)
    per_batch = max(1, cfg.batch_size // cfg.k)
    samples, gen_seconds = 0, 0.0
    with open(out / DATA, "a", encoding="utf-8") as data, open(out / PROGRESS, "a", encoding="utf-8") as marks:
        for name, examples in tasks.items():
            for b, start in enumerate(range(0, len(examples), per_batch)):
                # A batch is a fixed slice with a seed of its own: one cut short by a kill is drawn again whole
                # (the same samples), and only its unfinished prompts are written.
                batch = list(range(start, min(start + per_batch, len(examples))))
                if all((name, i) in done for i in batch):
                    continue
                t0 = time.perf_counter()
                seed = int(hashlib.sha256(f"{cfg.seed}:{name}:{b}".encode()).hexdigest()[:12], 16)
                gen = generator.generate([prompts[name][i] for i in batch],
                                         SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens),
                                         num_samples=cfg.k, seed=seed)
                gen_seconds += time.perf_counter() - t0
                samples += len(batch) * cfg.k
                texts = tokenizer.batch_decode(gen.completion_ids, skip_special_tokens=True)
                verdicts = _verdicts(cfg, name, [examples[i] for i in batch], texts, judge)
                for p, i in enumerate(batch):
                    if (name, i) in done:
                        continue
                    span = slice(p * cfg.k, (p + 1) * cfg.k)
                    row = _decide_prompt(cfg, name, i, examples[i], texts[span], verdicts[span],
                                         gen.finished[span].tolist(), digest)
                    for line in row["rows"]:
                        data.write(json.dumps(line, ensure_ascii=False) + "\n")
                    data.flush()
                    os.fsync(data.fileno())
                    marks.write(json.dumps({"task": name, "index": i, **row["counts"]}) + "\n")
                    marks.flush()
                    os.fsync(marks.fileno())
                    done[(name, i)] = row["counts"]
                if progress:
                    print(f"r1kit sample: {name}: {min(start + per_batch, len(examples))}/{len(examples)} prompts",
                          flush=True)
    report = _report(done, tasks, cfg)
    report.update({"model": digest, "samples_per_s": samples / gen_seconds if gen_seconds else None,
                   "wall_seconds": time.perf_counter() - started, "data": str(out / DATA)})
    write_atomic(out / REPORT, json.dumps(report, indent=2) + "\n")
    plot_bars({t: {"kept": r["kept"], **r["dropped"]} for t, r in report["tasks"].items()},
              out / "plots" / "filters.png", title="rejection sampling: kept and dropped samples", ylabel="samples")
    return run.finish(report)


def _verdicts(cfg: SampleConfig, task: str, examples: Sequence[Example], texts: Sequence[str],
              judge: Judge | None) -> list[bool | None]:
    """Correctness of each of the k samples of every example: the judge for judged tasks, else the rule."""
    repeated = [e for e in examples for _ in range(cfg.k)]
    if judge is not None and task in _names(cfg.judge_tasks):
        return judge.judge([e.prompt for e in repeated], list(texts), [e.answer for e in repeated])
    scored = compute_rewards([e.prompt for e in repeated], texts, repeated, {"accuracy": 1.0})
    return [s > 0 for s in scored.per_reward["accuracy"]]


def _decide_prompt(cfg: SampleConfig, task: str, index: int, example: Example, texts: Sequence[str],
                   verdicts: Sequence[bool | None], finished: Sequence[bool], digest: str) -> dict[str, Any]:
    language = example.info.get("language") if isinstance(example.info.get("language"), str) else None
    filters = Filters(keep=cfg.keep, min_consistency=cfg.min_consistency, max_paragraph_chars=cfg.max_paragraph_chars)
    decision = decide(texts, verdicts, finished, language=language, allow_code=example.verifier in CODE_VERIFIERS,
                      no_cot=task in _names(cfg.no_cot_tasks), filters=filters)
    judged = "judge" if cfg.judge and task in _names(cfg.judge_tasks) else "rule"
    rows = [{"messages": [{"role": "user", "content": example.prompt}, {"role": "assistant", "content": text}],
             "prompt": example.prompt, "completion": text, "task": task, "answer": example.answer, "verdict": True,
             "judged_by": judged, "model": digest, "index": index, "sample": j, "language": language}
            for j, text in decision.kept]
    return {"rows": rows, "counts": {"samples": len(texts), "kept": len(decision.kept),
                                     "dropped": dict(decision.dropped)}}


def _resume(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The prompts an earlier run finished; rows of unfinished prompts are removed from data.jsonl."""
    done: dict[tuple[str, int], dict[str, Any]] = {}
    marks = out / PROGRESS
    if marks.is_file():
        good = []
        for line in jsonl_lines(marks.read_text(encoding="utf-8"), keepends=True):
            try:
                mark = json.loads(line)
            except json.JSONDecodeError:
                break  # cut by a kill
            done[(mark["task"], mark["index"])] = {k: mark[k] for k in ("samples", "kept", "dropped")}
            good.append(line if line.endswith("\n") else line + "\n")
        write_atomic(marks, "".join(good))
    data = out / DATA
    if data.is_file():
        rows = []
        for line in jsonl_lines(data.read_text(encoding="utf-8")):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # cut by a kill: its prompt is not done either
            if (row["task"], row["index"]) in done:
                rows.append(line + "\n")
        write_atomic(data, "".join(rows))
    return done


def _report(done: Mapping[tuple[str, int], Mapping[str, Any]], tasks: Mapping[str, Sequence[Example]],
            cfg: SampleConfig) -> dict[str, Any]:
    per_task: dict[str, dict[str, Any]] = {}
    for name in tasks:
        marks = [m for (t, _), m in done.items() if t == name]
        dropped: Counter[str] = Counter()
        for m in marks:
            dropped.update(m["dropped"])
        kept = sum(m["kept"] for m in marks)
        per_task[name] = {"prompts": len(marks), "samples": sum(m["samples"] for m in marks), "kept": kept,
                          "prompts_with_any": sum(m["kept"] > 0 for m in marks), "dropped": dict(dropped)}
    total: Counter[str] = Counter()
    for r in per_task.values():
        total.update(r["dropped"])
    samples = sum(r["samples"] for r in per_task.values())
    kept = sum(r["kept"] for r in per_task.values())
    return {"tasks": per_task, "prompts": sum(r["prompts"] for r in per_task.values()), "samples": samples,
            "kept": kept, "acceptance": kept / samples if samples else 0.0, "dropped": dict(total),
            "k": cfg.k, "keep": cfg.keep}
