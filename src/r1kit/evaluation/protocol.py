"""`r1kit eval`: the paper's evaluation protocol (R1-SPEC section 5) on any HF causal LM.

For every task: k samples per prompt at temperature 0.6 / top-p 0.95 through the same `Generator` as
training; each sample graded by its task's verifier; then

- **pass@1** = mean correctness over the k samples, averaged over prompts;
- **cons@k** = correctness of the majority answer, answers grouped by verifier equivalence (`1/2` and
  `0.5` vote together), ties to the answer given first (`metrics.majority_index`);
- **pass@k'** unbiased (Chen et al.) for every k' <= k; **greedy** accuracy on request;
- 95 % bootstrap intervals over prompts, per task and overall (all prompts pooled);
- the analyses of `evaluation.analysis` (reflective words, lengths, thinking tokens by level, mixing,
  "aha" samples), and report.html's sample browser (`evaluation.browser`);
- when `model` is a training run's (`<run>/model`, or `<run>` itself), its reflective words per held-out
  response against training step, from `<run>/metrics.jsonl` (`run_metrics_log`).

Samples are appended to `samples.jsonl` one batch of prompts at a time, so an interrupted evaluation
rerun with the same command skips finished prompts; `results.json`, plots and `report.html` are
written (atomically) from `samples.jsonl` at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from r1kit.config import ConfigError, EvalRunConfig, to_dict
from r1kit.evaluation import analysis
from r1kit.evaluation.benchmarks import BenchmarkError, load_benchmark
from r1kit.evaluation.metrics import bootstrap_ci, majority_index, pass_at_k
from r1kit.evaluation.voting import same_answer, vote_answer
from r1kit.models.device import resolve_device
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import check_code_sandbox, compute_rewards
from r1kit.rewards.language import is_mixed
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.sampling.readability import readability_issues
from r1kit.tasks.files import jsonl_lines
from r1kit.templates import encode_prompts, format_reward_of
from r1kit.trainers.checkpoint import write_atomic
from r1kit.types import Example

# Settings that change the samples: an out_dir holding samples made with other values is not resumed.
SAMPLE_KEYS = ("model", "k", "temperature", "top_p", "max_new_tokens", "template", "seed", "greedy", "dtype",
               "batch_size")


def validate(cfg: EvalRunConfig) -> list[str]:
    """The task names, after the value checks types cannot express; raises ConfigError."""
    for key in ("k", "max_new_tokens", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    if not 0 < cfg.top_p <= 1 or cfg.temperature < 0:
        raise ConfigError(f"need 0 < top_p <= 1 and temperature >= 0, got {cfg.top_p}, {cfg.temperature}")
    for wanted in cfg.pass_at:
        if not 1 <= wanted <= cfg.k:
            raise ConfigError(f"pass@{wanted} needs at least {wanted} samples per prompt, but k={cfg.k}")
    tasks = [t.strip() for t in cfg.tasks.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("no tasks given: tasks=math500,gsm8k,...")
    return tasks


def load_tasks(cfg: EvalRunConfig, names: Sequence[str]) -> dict[str, list[Example]]:
    out = {}
    for name in names:
        try:
            examples = load_benchmark(name, data_dir=cfg.data_dir, n=cfg.limit, seed=cfg.seed)
        except BenchmarkError as e:
            raise ConfigError(str(e)) from None
        if not examples:
            raise ConfigError(f"benchmark {name!r} has no examples")
        out[examples[0].task if name.startswith("jsonl:") else name] = examples
    verifiers = [e.verifier for examples in out.values() for e in examples[:1]]
    check_code_sandbox({"accuracy": 1.0}, verifiers, unsafe_local=cfg.code_unsafe_local)
    return out


def reward_settings(cfg: EvalRunConfig) -> dict[str, Any]:
    """What the verifiers need beyond the examples: the code sandbox's limits."""
    return {"code_timeout_s": cfg.code_timeout_s, "code_memory_mb": cfg.code_memory_mb,
            "code_unsafe_local": cfg.code_unsafe_local, "code_max_workers": max(1, cfg.threads)}


def run_eval(cfg: EvalRunConfig, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate, resume from `out_dir/samples.jsonl`, write results; returns results.json's content."""
    names = validate(cfg)
    tasks = load_tasks(cfg, names)
    try:
        device = resolve_device(cfg.device)
    except ValueError as e:
        raise ConfigError(f"device: {e}") from None
    tokenizer = load_tokenizer(cfg.model)
    policy = load_model(cfg.model, cfg.dtype, device)
    prompts: dict[str, list[list[int]]] = {}
    for name, examples in tasks.items():
        try:
            prompts[name] = encode_prompts([e.prompt for e in examples], cfg.template, tokenizer)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)

    out = Path(cfg.out_dir)
    done = _resume(out, cfg)
    generator = HFGenerator(policy, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            batch_size=cfg.batch_size, dtype=cfg.dtype)
    per_batch = max(1, cfg.batch_size // cfg.k)
    with open(out / "samples.jsonl", "a", encoding="utf-8") as log:
        for name, examples in tasks.items():
            # Batches are fixed slices of the task with a seed each, so a resumed evaluation draws the
            # same samples an uninterrupted one would.
            for b, start in enumerate(range(0, len(examples), per_batch)):
                batch = list(range(start, min(start + per_batch, len(examples))))
                if all((name, i) in done for i in batch):
                    continue  # a batch cut short by a kill is drawn again whole (later rows win)
                rows = _sample(cfg, name, b, generator, tokenizer, [examples[i] for i in batch],
                               [prompts[name][i] for i in batch], batch)
                for row in rows:
                    log.write(json.dumps(row, ensure_ascii=False) + "\n")
                    done[(name, row["index"])] = row
                log.flush()
                os.fsync(log.fileno())
                if progress:
                    progress(f"{name}: {min(start + per_batch, len(examples))}/{len(examples)} prompts")

    rows_by_task = {name: [done[(name, i)] for i in range(len(examples))] for name, examples in tasks.items()}
    results = score(rows_by_task, cfg, count_tokens=lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]))
    write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    from r1kit.evaluation.report import write_report

    write_report(out, results, cfg, rows_by_task=rows_by_task, run_log=run_metrics_log(cfg.model))
    return results


def run_metrics_log(model: str) -> Path | None:
    """The metrics.jsonl of the training run `model` comes from, if any: a run directory itself, or its
    `model/` (what `r1kit zero` and `r1kit grpo` write as `<run>/model`). None for `embedded`, hub ids and
    directories outside a run; the report then has no training plot."""
    path = Path(model)
    if not path.is_dir():
        return None
    for candidate in (path / "metrics.jsonl", path.parent / "metrics.jsonl"):
        if candidate.is_file():
            return candidate
    return None


def _resume(out: Path, cfg: EvalRunConfig) -> dict[tuple[str, int], dict[str, Any]]:
    """Finished rows of an earlier run with the same sample settings; refuses other settings."""
    settings = {k: to_dict(cfg)[k] for k in SAMPLE_KEYS}
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    meta = out / "eval_config.yaml"
    if meta.is_file():
        old = yaml.safe_load(meta.read_text()) or {}
        if old.get("fingerprint") != fingerprint:
            raise ConfigError(f"{out} holds samples made with other settings ({old.get('settings')}); "
                              "use another out_dir or delete it")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(meta, yaml.safe_dump({"fingerprint": fingerprint, "settings": settings, "config": to_dict(cfg)},
                                      sort_keys=False))
    done: dict[tuple[str, int], dict[str, Any]] = {}
    path = out / "samples.jsonl"
    if path.is_file():
        lines = jsonl_lines(path.read_text(encoding="utf-8"), keepends=True)
        good = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: it and anything after are redone
            if not line.endswith("\n"):
                break
            done[(row["task"], row["index"])] = row
            good.append(line)
        if len(good) != len(lines):
            write_atomic(path, "".join(good))
    return done


def _sample(cfg: EvalRunConfig, name: str, batch: int, generator: HFGenerator, tokenizer: Any,
            examples: list[Example], prompt_ids: list[list[int]], indices: list[int]) -> list[dict[str, Any]]:
    """k graded samples (and a greedy one on request) for a batch of prompts."""
    k = cfg.k
    seed = int(hashlib.sha256(f"{cfg.seed}:{name}:{batch}".encode()).hexdigest()[:12], 16)
    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)
    gen = generator.generate(prompt_ids, params, num_samples=k, seed=seed)
    texts = tokenizer.batch_decode(gen.completion_ids, skip_special_tokens=True)
    tokens = gen.completion_mask.sum(dim=1).tolist()
    repeated = [e for e in examples for _ in range(k)]
    fmt = format_reward_of(cfg.template)
    scored = compute_rewards([e.prompt for e in repeated], texts, repeated, {"accuracy": 1.0, fmt: 1.0},
                             settings=reward_settings(cfg))
    greedy: list[dict[str, Any]] | None = None
    if cfg.greedy:
        g = generator.generate(prompt_ids, SamplingParams(0.0, 1.0, cfg.max_new_tokens), num_samples=1, seed=seed)
        g_texts = tokenizer.batch_decode(g.completion_ids, skip_special_tokens=True)
        g_scored = compute_rewards([e.prompt for e in examples], g_texts, examples, {"accuracy": 1.0},
                                   settings=reward_settings(cfg))
        greedy = [{"completion": t, "correct": int(s > 0)} for t, s in zip(g_texts, g_scored.total, strict=True)]
    rows = []
    for p, (example, index) in enumerate(zip(examples, indices, strict=True)):
        span = slice(p * k, (p + 1) * k)
        completions = texts[span]
        row = {"task": name, "index": index, "prompt": example.prompt, "answer": example.answer,
               "verifier": example.verifier, "info": dict(example.info), "completions": completions,
               "extracted": [vote_answer(c, example.verifier) for c in completions],
               "correct": [int(s > 0) for s in scored.per_reward["accuracy"][span]],
               "format": [int(s > 0) for s in scored.per_reward[fmt][span]],
               "readable": [int(not readability_issues(c, language=_language(example))) for c in completions],
               "tokens": tokens[span]}
        if greedy is not None:
            row["greedy"] = greedy[p]
        rows.append(row)
    return rows


def _language(example: Example) -> str | None:
    language = example.info.get("language")
    return language if isinstance(language, str) else None


def prompt_scores(row: Mapping[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """pass@1, cons@k and pass@k' of one prompt's samples."""
    correct = row["correct"]
    n, c = len(correct), sum(correct)
    winner = majority_index(row["extracted"], same_answer(row["verifier"], row.get("info", {})))
    return {"pass@1": c / n, "cons": float(winner is not None and correct[winner]),
            "pass@k": {kk: pass_at_k(n, c, kk) for kk in ks}}


def score(rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]], cfg: EvalRunConfig,
          count_tokens: Callable[[str], int]) -> dict[str, Any]:
    """results.json from samples rows: per task and overall (all prompts pooled)."""
    ks = list(range(1, cfg.k + 1))
    def block(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        scores = [prompt_scores(r, ks) for r in rows]
        pass1 = [s["pass@1"] for s in scores]
        cons = [s["cons"] for s in scores]
        out: dict[str, Any] = {
            "pass@1": sum(pass1) / len(rows), "pass@1_ci95": list(bootstrap_ci(pass1, seed=cfg.seed)),
            f"cons@{cfg.k}": sum(cons) / len(rows), f"cons@{cfg.k}_ci95": list(bootstrap_ci(cons, seed=cfg.seed)),
            "cons@k": sum(cons) / len(rows),
            "pass@k": {str(kk): sum(s["pass@k"][kk] for s in scores) / len(rows) for kk in ks},
            "format_rate": sum(sum(r["format"]) for r in rows) / sum(len(r["format"]) for r in rows),
            "readable_rate": sum(sum(r.get("readable", [])) for r in rows) / sum(len(r["format"]) for r in rows),
            "mean_response_tokens": sum(sum(r["tokens"]) for r in rows) / sum(len(r["tokens"]) for r in rows),
            "n_prompts": len(rows), "k": cfg.k,
        }
        if all("greedy" in r for r in rows):
            out["greedy"] = sum(r["greedy"]["correct"] for r in rows) / len(rows)
        return out

    tasks = {}
    for name, rows in rows_by_task.items():
        tasks[name] = block(rows)
        tasks[name]["analyses"] = analysis.summarize(rows, count_tokens,
                                                     is_mixed=lambda text, lang: is_mixed(text, lang or cfg.language))
    pooled = [r for rows in rows_by_task.values() for r in rows]
    return {"tasks": tasks, "overall": block(pooled),
            "protocol": {"k": cfg.k, "temperature": cfg.temperature, "top_p": cfg.top_p,
                         "max_new_tokens": cfg.max_new_tokens, "template": cfg.template, "model": cfg.model,
                         "cons_tie_rule": "largest group of verifier-equivalent answers; ties to the answer given "
                                          "first; samples without an answer do not vote"}}
