"""Stage pipelines composed from the building blocks. `run_zero` is R1-Zero (R1-SPEC section 1):
evaluate the base model, train it with GRPO on rule rewards, evaluate again, write the results.

Everything that can fail on bad input (config values, model path, task, data) is checked before
out_dir is created or touched.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from r1kit.config import ConfigError, ZeroConfig, to_dict
from r1kit.evaluation import EvalResult, evaluate
from r1kit.evaluation.plots import plot_run
from r1kit.models.device import resolve_device
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import check_code_sandbox, check_reward_names
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.tasks import load_task
from r1kit.templates import render_prompt
from r1kit.trainers.checkpoint import MetricsLog, resume_checkpoint, save_checkpoint, write_atomic
from r1kit.trainers.grpo import make_optimizer, make_reference, make_scorer, step_seed, train_step
from r1kit.trainers.record import check_resume, record_invocation
from r1kit.trainers.reporting import check_reporting, open_reporters
from r1kit.types import Example

TIMING_KEYS = ("step_seconds", "tokens_per_s", "eval/seconds")
"""Metrics that measure the machine, not the run: excluded when comparing runs for equality."""


@dataclass
class Prepared:
    """What a stage needs, loaded and checked before any output is written."""

    tokenizer: Any
    train: list[Example]
    train_ids: list[list[int]]
    test: list[Example]
    test_ids: list[list[int]]


def validate(cfg: ZeroConfig) -> None:
    """Value checks that types alone cannot express; raises ConfigError naming the key."""
    positive = {"steps": cfg.steps, "prompts_per_step": cfg.prompts_per_step, "save_every": cfg.save_every,
                "keep_checkpoints": cfg.keep_checkpoints,
                "task.eval_size": cfg.task.eval_size, "eval.samples": cfg.eval.samples,
                "eval.batch_size": cfg.eval.batch_size, "rollout.max_new_tokens": cfg.rollout.max_new_tokens,
                "eval.max_new_tokens": cfg.eval.max_new_tokens, "grpo.num_minibatches": cfg.grpo.num_minibatches,
                "grpo.num_epochs": cfg.grpo.num_epochs, "optim.lr": cfg.optim.lr}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {value}")
    non_negative = {"threads": cfg.threads, "eval.every": cfg.eval.every, "optim.warmup_steps":
                    cfg.optim.warmup_steps, "optim.micro_batch_size": cfg.optim.micro_batch_size,
                    "grpo.kl_coef": cfg.grpo.kl_coef, "grpo.ref_update_every": cfg.grpo.ref_update_every,
                    "optim.max_grad_norm": cfg.optim.max_grad_norm}
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {value}")
    if cfg.group_size < 2:
        raise ConfigError(f"config key 'group_size' must be >= 2 (a group needs a baseline), got {cfg.group_size}")
    if (cfg.prompts_per_step * cfg.group_size) % cfg.grpo.num_minibatches:
        raise ConfigError(f"prompts_per_step * group_size = {cfg.prompts_per_step * cfg.group_size} does not "
                          f"split into grpo.num_minibatches = {cfg.grpo.num_minibatches}")
    for key, value in {"rollout.top_p": cfg.rollout.top_p, "eval.top_p": cfg.eval.top_p}.items():
        if not 0 < value <= 1:
            raise ConfigError(f"config key {key!r} must be in (0, 1], got {value}")
    if cfg.model.dtype == "float16":
        raise ConfigError("model.dtype=float16 needs loss scaling to train, which r1kit does not do: use bfloat16")
    try:
        resolve_device(cfg.model.device)
    except ValueError as e:
        raise ConfigError(f"model.device: {e}") from None
    try:
        check_reward_names(cfg.rewards)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_reporting(cfg.logging)


def prepare(cfg: ZeroConfig) -> Prepared:
    """Load the tokenizer and task data, and tokenize every prompt once."""
    validate(cfg)
    try:
        train = load_task(cfg.task.name, "train", n=cfg.task.train_size, seed=cfg.seed, path=cfg.task.path)
        test = load_task(cfg.task.name, "test", n=cfg.task.eval_size, seed=cfg.seed, path=cfg.task.path)
    except ValueError as e:  # unknown task, missing or malformed data: the user's input, not a bug
        raise ConfigError(str(e)) from None
    check_code_sandbox(cfg.rewards, [e.verifier for e in train[:1] + test[:1]],
                       unsafe_local=cfg.scoring.code_unsafe_local)
    tokenizer = load_tokenizer(cfg.model.path)

    def encode(examples: list[Example]) -> list[list[int]]:
        texts = [render_prompt(e.prompt, cfg.task.template, tokenizer) for e in examples]
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    try:
        train_ids, test_ids = encode(train), encode(test)
    except ValueError as e:  # e.g. a chat template asked of a tokenizer that has none
        raise ConfigError(str(e)) from None
    return Prepared(tokenizer, train, train_ids, test, test_ids)


def load_policy(cfg: ZeroConfig, path: str | None = None) -> PreTrainedModel:
    """The policy to train, from `path` (default: model.path) on model.device. Its weights stay float32,
    the master copy of mixed precision: model.dtype is the compute dtype of the forward passes."""
    policy = load_model(path or cfg.model.path, "float32", resolve_device(cfg.model.device))
    if cfg.model.gradient_checkpointing:
        # transformers 5 renamed the switch; older releases only have the first name.
        enable = getattr(policy, "activation_checkpointing_enable", None) or policy.gradient_checkpointing_enable
        enable()
    return policy


def steps_derived(cfg: ZeroConfig) -> str:
    """What is computed from `steps` (so that raising it changes past steps), or "" when nothing is."""
    return "optim.schedule=cosine" if cfg.optim.schedule == "cosine" else ""


def warn(message: str) -> None:
    print(f"r1kit: warning: {message}", file=sys.stderr, flush=True)


def run_zero(cfg: ZeroConfig, *, progress: bool = True) -> dict[str, Any]:
    """R1-Zero end to end; returns summary.json's content. Resumes from out_dir's newest valid checkpoint.

    Nothing in out_dir is written before every check has passed: the config, the resume settings
    (`record.check_resume`), the model, the data and the checkpoint to resume from."""
    started = time.perf_counter()
    validate(cfg)
    out = Path(cfg.out_dir)
    changed = check_resume(out, cfg, steps_derived=steps_derived)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    prep = prepare(cfg)
    tokenizer = prep.tokenizer
    resumed = resume_checkpoint(out, lambda c: (load_policy(cfg, str(c.policy_dir)), c.load_state()), warn)
    policy = resumed[1][0] if resumed else load_policy(cfg)
    start = resumed[0].step if resumed else 0

    out.mkdir(parents=True, exist_ok=True)
    record_invocation(out, cfg, resumed_from=start, changed=changed)
    reference = make_reference(policy, cfg.grpo.kl_coef, cfg.model.dtype)
    optimizer, scheduler = make_optimizer(cfg, policy)
    generator = HFGenerator(policy, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            batch_size=cfg.eval.batch_size, dtype=cfg.model.dtype)

    def held_out(step: int) -> EvalResult:
        e = cfg.eval
        params = SamplingParams(temperature=e.temperature, top_p=e.top_p, max_new_tokens=e.max_new_tokens)
        # One fixed seed for every evaluation: differences between steps come from the policy only.
        return evaluate(generator, tokenizer, prep.test, prep.test_ids, k=e.samples, params=params,
                        seed=step_seed(cfg.seed, 0, 4))

    log = MetricsLog(out / "metrics.jsonl",
                     open_reporters(cfg.logging, out, config=to_dict(cfg), first_step=start + 1 if resumed else 0))
    scorer = make_scorer(cfg)
    try:
        if resumed:
            state = resumed[1][1]
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if reference is not None:
                reference.load_state_dict(state["reference"])
            log.truncate(start)
        else:
            log.truncate(-1)
            t0 = time.perf_counter()
            before = held_out(0)
            log.append({"step": 0, **before.metrics(), "eval/seconds": time.perf_counter() - t0})

        # On a terminal the bar redraws often; in a log file it prints a line every 10 seconds.
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress,
                   desc="r1kit zero", unit="step", dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 10.0)
        for step in bar:
            row: dict[str, Any] = {"step": step + 1}
            row.update(train_step(cfg, step, generator, tokenizer, policy, reference, optimizer, scheduler,
                                  prep.train, prep.train_ids, scorer=scorer))
            done = step + 1
            if done == cfg.steps or (cfg.eval.every and done % cfg.eval.every == 0):
                t0 = time.perf_counter()
                row.update(held_out(done).metrics())
                row["eval/seconds"] = time.perf_counter() - t0
            log.append(row)
            bar.set_postfix(reward=f"{row['reward/mean']:.2f}", acc=f"{row.get('accuracy', 0):.2f}",
                            held_out=f"{row.get('eval/pass@1', float('nan')):.2f}")
            if done == cfg.steps or done % cfg.save_every == 0:
                state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": done,
                         "reference": reference.state_dict() if reference is not None else None}
                save_checkpoint(out, done, policy, tokenizer, state, keep=cfg.keep_checkpoints)
        bar.close()
    finally:
        scorer.close()
        log.close()
    return _finish(cfg, out, policy, tokenizer, log, time.perf_counter() - started)


def _finish(cfg: ZeroConfig, out: Path, policy: PreTrainedModel, tokenizer: Any, log: MetricsLog,
            wall: float) -> dict[str, Any]:
    """Final model, plots and summary.json from the metrics log (so a resumed run reports the whole run)."""
    rows = log.rows()
    evals = [r for r in rows if "eval/pass@1" in r]
    policy.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    plot_run(rows, out / "plots", title=f"R1-Zero on {cfg.task.name}")

    def pick(r: dict[str, Any]) -> dict[str, Any]:
        return {k.removeprefix("eval/"): v for k, v in r.items() if k.startswith("eval/") and k != "eval/seconds"}

    summary = {"before": pick(evals[0]), "after": pick(evals[-1]), "steps": cfg.steps, "wall_seconds": wall,
               "eval": {"n_prompts": cfg.task.eval_size, "k": cfg.eval.samples,
                        "temperature": cfg.eval.temperature, "top_p": cfg.eval.top_p}}
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
