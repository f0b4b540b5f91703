"""The SFT stage (`r1kit sft`): one loop for R1's cold start, its rejection-sampling SFT and distillation.

    r1kit sft model.path=embedded data=runs/cold/data.jsonl out_dir=runs/dev1 epochs=2 optim.lr=1e-3

Reads and tokenizes every source first (a missing or malformed file, a row without the needed fields, a
prompt longer than the context: one line naming file and line, before out_dir is touched), holds out
`eval_fraction` of each source, then trains `epochs` passes with AdamW under warmup and cosine decay to
`min_lr_ratio` (the paper: 1/10), packed batches and the token-mean loss (`r1kit.trainers.sft`), an eval
loss every `eval_every` steps, verified checkpoints and exact resume (the data order follows from the
seed and the step). Writes metrics.jsonl, plots/loss.png, model/ (a Hugging Face directory) and
summary.json.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from r1kit import distributed as dist
from r1kit.config import ConfigError, SFTConfig
from r1kit.evaluation.plots import plot_lines
from r1kit.models.device import DTYPES, check_trainable, resolve_device
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.trainers.optim import adamw, optimizer_state
from r1kit.trainers.reporting import check_reporting
from r1kit.trainers.run_dir import RunDir
from r1kit.trainers.sft import Batching, batch_of_step, eval_loss, steps_per_epoch, train_step
from r1kit.trainers.sft_data import SFTExample, encode_row, read_sources


def validate(cfg: SFTConfig) -> None:
    if not cfg.data:
        raise ConfigError("no SFT data: data=FILE.jsonl (or a list of {path, weight})")
    for key in ("epochs", "batch_size", "max_length", "save_every", "keep_checkpoints", "eval_max_rows"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    for key in ("micro_batch_size", "eval_every", "threads"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.eval_fraction < 1:
        raise ConfigError(f"config key 'eval_fraction' must be in [0, 1), got {cfg.eval_fraction}")
    if cfg.optim.lr <= 0 or any(d.weight <= 0 for d in cfg.data):
        raise ConfigError("optim.lr and every data weight must be > 0")
    check_trainable(cfg.model)
    check_reporting(cfg.logging)
    reason = dist.check_launch(cfg, resolve_device(cfg.model.device))
    if reason:
        raise ConfigError(reason)


def load_data(cfg: SFTConfig, tokenizer: Any) -> tuple[list[SFTExample], list[SFTExample]]:
    """(train, held-out) examples of every source, tokenized; ConfigError names a bad file or row."""
    try:
        train_rows, held_rows = read_sources(cfg.data, cfg.eval_fraction, cfg.seed)
        train = [encode_row(w, r, tokenizer, cfg.max_length) for w, r in train_rows]
        held = [encode_row(w, r, tokenizer, cfg.max_length) for w, r in held_rows]
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not train:
        raise ConfigError("the SFT data leaves no training rows (lower eval_fraction or add data)")
    return train, held[: cfg.eval_max_rows]


def preflight(cfg: SFTConfig) -> None:
    """Every check `run_sft` makes before any work (settings, the run directory, tokenizer, data), without
    training: the launcher of several processes runs it."""
    validate(cfg)
    RunDir(cfg)
    load_data(cfg, load_tokenizer(cfg.model.path))


def batching(cfg: SFTConfig) -> Batching:
    return Batching(batch_size=cfg.batch_size, max_length=cfg.max_length, packing=cfg.packing,
                    micro_batch_size=cfg.micro_batch_size)


def run_sft(cfg: SFTConfig, *, progress: bool = True) -> dict[str, Any]:
    """SFT end to end; returns summary.json's content. Resumes from out_dir's newest intact checkpoint."""
    started = time.perf_counter()
    validate(cfg)
    world = dist.start(cfg, resolve_device(cfg.model.device))
    run = RunDir(cfg)
    tokenizer = load_tokenizer(cfg.model.path)
    tokenizer.padding_side = "right"
    train, held = load_data(cfg, tokenizer)
    b = batching(cfg)
    total_steps = cfg.epochs * steps_per_epoch(len(train), b)
    lengths = [len(e.ids) for e in train]
    device = resolve_device(cfg.model.device)
    resumed = run.resume(lambda c: (load_model(str(c.policy_dir), "float32", device), c.load_state()))
    model = resumed[1][0] if resumed else load_model(cfg.model.path, "float32", device)
    start = resumed[0].step if resumed else 0
    model = dist.shard(model, DTYPES[cfg.model.dtype])  # type: ignore[assignment]  # several processes: FSDP2
    optimizer, scheduler = adamw(cfg.optim, model, total_steps)
    if resumed:
        dist.load_optimizer_state(optimizer, resumed[1][1]["optimizer"])
        scheduler.load_state_dict(resumed[1][1]["scheduler"])

    log = run.begin(start if resumed else None)
    pad = tokenizer.pad_token_id

    def evaluate_loss() -> dict[str, float]:
        t0 = time.perf_counter()
        return {"eval/loss": eval_loss(model, held, b, pad_id=pad, dtype=cfg.model.dtype),
                "eval/seconds": time.perf_counter() - t0}

    try:
        if not resumed:
            log.append({"step": 0, **evaluate_loss()})
        bar = tqdm(range(start, total_steps), initial=start, total=total_steps, disable=not (progress and world.main),
                   desc="r1kit sft", unit="step", dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 10.0)
        for step in bar:
            batch = [train[i] for i in batch_of_step(step, len(train), b, cfg.seed)]
            row: dict[str, Any] = {"step": step + 1, "epoch": (step + 1) / steps_per_epoch(len(train), b)}
            row.update(train_step(model, optimizer, scheduler, batch, b, pad_id=pad,
                                  max_grad_norm=cfg.optim.max_grad_norm, dtype=cfg.model.dtype))
            done = step + 1
            if done == total_steps or (cfg.eval_every and done % cfg.eval_every == 0):
                row.update(evaluate_loss())
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", eval_loss=f"{row.get('eval/loss', math.nan):.3f}")
            if done == total_steps or done % cfg.save_every == 0:
                state = {**optimizer_state(optimizer, scheduler, done), "optimizer": dist.optimizer_state(optimizer)}
                run.save(done, dist.sync(model), tokenizer, state)
        bar.close()
        rows = log.rows()
    finally:
        run.close()
    out = Path(cfg.out_dir)
    tokenizer.padding_side = "left"  # as r1kit loads it for sampling
    final: Any = dist.sync(model)
    if world.main:
        final.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        plot_lines(rows, {"loss": "train loss", "eval/loss": "eval loss"}, out / "plots" / "loss.png",
                   title="SFT", ylabel="token-mean loss")
    evals = [r["eval/loss"] for r in rows if "eval/loss" in r]
    summary = run.finish({"steps": total_steps, "train_rows": len(train), "eval_rows": len(held),
                          "eval_loss_before": evals[0], "eval_loss_after": evals[-1],
                          "train_tokens": sum(lengths), "wall_seconds": time.perf_counter() - started})
    if world.distributed:
        dist.shutdown()  # after summary.json: rank 0 writes it while every rank still knows its rank
    return summary
