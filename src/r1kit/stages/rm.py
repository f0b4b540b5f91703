"""The reward-model stage (`r1kit rm`): a Bradley-Terry reward model on preference pairs.

    r1kit rm data=pairs.jsonl model.path=embedded out_dir=runs/rm-helpful epochs=2 optim.lr=5e-4 batch_size=32

Reads and tokenizes every source first (a missing or malformed file, a row without `prompt`, `chosen`
and `rejected`, a pair with `chosen == rejected`: one line naming file and line, before out_dir is
touched), holds out `eval_fraction` of each source, then trains `epochs` passes of the mean
Bradley-Terry loss (`r1kit.algorithms.reward_model`; optional per-row `margin`, TRL's reward centring)
with AdamW under warmup and cosine decay, the held-out pair accuracy and mean margin every `eval_every`
steps, verified checkpoints and exact resume (the data order follows from the seed and the step).

Writes metrics.jsonl, plots/accuracy.png and plots/loss.png, model/ (loads with
`AutoModelForSequenceClassification`, `num_labels=1`; `model/r1kit_reward.json` holds the template and
the held-out reward mean and std, so its users score and normalise the same way) and summary.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from r1kit import distributed as dist
from r1kit.config import ConfigError, RMConfig
from r1kit.evaluation.plots import plot_lines
from r1kit.models.device import DTYPES, check_trainable, resolve_device
from r1kit.models.loading import load_reward_model, load_tokenizer
from r1kit.trainers.checkpoint import write_atomic
from r1kit.trainers.optim import adamw, optimizer_state
from r1kit.trainers.pairs import PairExample, encode_pair
from r1kit.trainers.reporting import check_reporting
from r1kit.trainers.rm import evaluate_pairs, train_step
from r1kit.trainers.run_dir import RunDir
from r1kit.trainers.sft import Batching, batch_of_step, steps_per_epoch
from r1kit.trainers.sft_data import read_rows, read_sources

REWARD_INFO = "r1kit_reward.json"
"""In a reward model's directory: how it scores (template, max_length) and its reward mean and std."""


def validate(cfg: RMConfig) -> None:
    if not cfg.data:
        raise ConfigError("no preference data: data=PAIRS.jsonl (rows {prompt, chosen, rejected})")
    for key in ("epochs", "batch_size", "max_length", "save_every", "keep_checkpoints"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    for key in ("micro_batch_size", "eval_every", "threads", "center_rewards_coefficient"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.eval_fraction < 1:
        raise ConfigError(f"config key 'eval_fraction' must be in [0, 1), got {cfg.eval_fraction}")
    if cfg.optim.lr <= 0 or any(d.weight <= 0 for d in cfg.data):
        raise ConfigError("optim.lr and every data weight must be > 0")
    check_trainable(cfg.model)
    reason = dist.check_launch(cfg, resolve_device(cfg.model.device))
    if reason:
        raise ConfigError(reason)
    check_reporting(cfg.logging)


def load_pairs(cfg: RMConfig, tokenizer: Any) -> tuple[list[PairExample], list[PairExample], int]:
    """(train, held-out, pairs cut at max_length); ConfigError names a bad file or row."""
    try:
        train_rows, held_rows = read_sources(cfg.data, cfg.eval_fraction, cfg.seed)
        train_cut = [encode_pair(w, r, tokenizer, cfg.template, cfg.max_length) for w, r in train_rows]
        held_cut = [encode_pair(w, r, tokenizer, cfg.template, cfg.max_length) for w, r in held_rows]
    except ValueError as e:
        raise ConfigError(str(e)) from None
    train, held = [p for p, _ in train_cut], [p for p, _ in held_cut]
    cut = sum(c for _, c in train_cut + held_cut)
    if not train:
        raise ConfigError("the preference data leaves no training pairs (lower eval_fraction or add data)")
    return train, held, cut


def load_eval_data(cfg: RMConfig, tokenizer: Any) -> list[PairExample]:
    """Every pair of `eval_data` (measured at the end, never trained on); ConfigError names a bad row."""
    pairs = []
    for source in cfg.eval_data:
        try:
            pairs += [encode_pair(where, row, tokenizer, cfg.template, cfg.max_length)[0]
                      for where, row in read_rows(source.path, split=source.split)]
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return pairs


def preflight(cfg: RMConfig) -> None:
    """Every check `run_rm` makes before any work (settings, the run directory, tokenizer, pairs), without
    training: the launcher of several processes runs it."""
    validate(cfg)
    RunDir(cfg)
    tokenizer = load_tokenizer(cfg.model.path)
    try:
        load_pairs(cfg, tokenizer)
        load_eval_data(cfg, tokenizer)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def run_rm(cfg: RMConfig, *, progress: bool = True) -> dict[str, Any]:
    """Reward-model training end to end; returns summary.json's content. Resumes from out_dir's newest
    intact checkpoint."""
    started = time.perf_counter()
    validate(cfg)
    world = dist.start(cfg, resolve_device(cfg.model.device))
    run = RunDir(cfg)
    tokenizer = load_tokenizer(cfg.model.path)
    try:
        train, held, cut = load_pairs(cfg, tokenizer)
        extra = load_eval_data(cfg, tokenizer)
    except ValueError as e:  # a template the tokenizer cannot render
        raise ConfigError(str(e)) from None
    b = Batching(batch_size=cfg.batch_size, max_length=cfg.max_length, packing=False)
    total_steps = cfg.epochs * steps_per_epoch(len(train), b)
    device, pad = resolve_device(cfg.model.device), tokenizer.pad_token_id
    resumed = run.resume(lambda c: (load_reward_model(str(c.policy_dir), "float32", device, pad_token_id=pad),
                                    c.load_state()))
    if resumed:
        model = resumed[1][0]
    else:
        torch.manual_seed(cfg.seed)  # the new scalar head
        model = load_reward_model(cfg.model.path, "float32", device, pad_token_id=pad)
    start = resumed[0].step if resumed else 0
    model = dist.shard(model, DTYPES[cfg.model.dtype])  # type: ignore[assignment]  # several processes: FSDP2
    optimizer, scheduler = adamw(cfg.optim, model, total_steps)
    if resumed:
        dist.load_optimizer_state(optimizer, resumed[1][1]["optimizer"])
        scheduler.load_state_dict(resumed[1][1]["scheduler"])
    log = run.begin(start if resumed else None)

    def evaluate() -> dict[str, Any]:
        t0 = time.perf_counter()
        result = evaluate_pairs(model, held, pad_id=pad, batch_size=cfg.batch_size, dtype=cfg.model.dtype)
        return {f"eval/{k}": v for k, v in result.items() if k != "rewards"} | {
            "eval/seconds": time.perf_counter() - t0}

    try:
        if not resumed:
            log.append({"step": 0, **evaluate()})
        bar = tqdm(range(start, total_steps), initial=start, total=total_steps, disable=not (progress and world.main),
                   desc="r1kit rm", unit="step", dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0)
        for step in bar:
            batch = [train[i] for i in batch_of_step(step, len(train), b, cfg.seed)]
            row: dict[str, Any] = {"step": step + 1, "epoch": (step + 1) / steps_per_epoch(len(train), b)}
            row.update(train_step(model, optimizer, scheduler, batch, pad_id=pad,
                                  micro_batch_size=cfg.micro_batch_size,
                                  center_coefficient=cfg.center_rewards_coefficient,
                                  max_grad_norm=cfg.optim.max_grad_norm, dtype=cfg.model.dtype))
            done = step + 1
            if done == total_steps or (cfg.eval_every and done % cfg.eval_every == 0):
                row.update(evaluate())
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.2f}")
            if done == total_steps or done % cfg.save_every == 0:
                state = {**optimizer_state(optimizer, scheduler, done), "optimizer": dist.optimizer_state(optimizer)}
                run.save(done, dist.sync(model), tokenizer, state)
        bar.close()
        rows = log.rows()
    finally:
        run.close()
    summary = _finish(cfg, model, tokenizer, rows, held or train, len(train), len(held), cut)
    if extra:
        result = evaluate_pairs(model, extra, pad_id=pad, batch_size=cfg.batch_size, dtype=cfg.model.dtype)
        summary |= {"eval_data_pairs": len(extra), "eval_data_accuracy": result["accuracy"],
                    "eval_data_margin": result["margin"]}
    summary = run.finish(summary | {"wall_seconds": time.perf_counter() - started})
    if world.distributed:
        dist.shutdown()
    return summary


def _finish(cfg: RMConfig, model: Any, tokenizer: Any, rows: list[dict[str, Any]],
            scored: list[PairExample], n_train: int, n_held: int, cut: int) -> dict[str, Any]:
    """model/ with its reward info, plots, and summary.json's content. The reward mean and std are those of the
    held-out responses (chosen and rejected; the training ones when nothing is held out)."""
    out = Path(cfg.out_dir)
    final = evaluate_pairs(model, scored, pad_id=tokenizer.pad_token_id, batch_size=cfg.batch_size,
                           dtype=cfg.model.dtype)
    mean, std = statistics.fmean(final["rewards"]), statistics.pstdev(final["rewards"])
    plain: Any = dist.sync(model)  # sharded: the full weights, in the plain replica
    if dist.world().main:  # one writer
        plain.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        info = {"template": cfg.template, "max_length": cfg.max_length, "reward_mean": mean, "reward_std": std}
        write_atomic(out / "model" / REWARD_INFO, json.dumps(info, indent=2) + "\n")
        plot_lines(rows, {"accuracy": "training-batch pair accuracy", "eval/accuracy": "held-out pair accuracy"},
                   out / "plots" / "accuracy.png", title="reward model", ylabel="pair accuracy")
        plot_lines(rows, {"loss": "train loss", "eval/loss": "held-out loss"}, out / "plots" / "loss.png",
                   title="reward model", ylabel="Bradley-Terry loss")
    evals = [r for r in rows if "eval/accuracy" in r]
    return {"steps": rows[-1]["step"], "train_pairs": n_train, "heldout_pairs": n_held,
            "pairs_cut_at_max_length": cut, "accuracy_before": evals[0]["eval/accuracy"],
            "accuracy_after": evals[-1]["eval/accuracy"], "margin_after": evals[-1]["eval/margin"],
            "reward_mean": mean, "reward_std": std}
