"""The DPO stage (`r1kit dpo`): Direct Preference Optimization (Rafailov et al. 2023) of a causal LM on
preference pairs, the RL-free alternative to a reward model plus RL.

    r1kit dpo data=pairs.jsonl model.path=embedded out_dir=runs/dpo epochs=1 optim.lr=5e-5 batch_size=32 dpo.beta=0.1

Reads and tokenizes every source first (the rows `r1kit rm` reads; a missing or malformed file, a bad
row, beta <= 0: one line naming the file, row or key, before out_dir is touched), holds out
`eval_fraction` of each source, then trains `epochs` passes of the mean sigmoid DPO loss
(`r1kit.algorithms.dpo`) on the summed log-probs of the response tokens, against the reference: a frozen
copy of the initial model (`model.path`), or with LoRA (`model.lora.rank > 0`) the policy with its
adapters disabled, no second copy. AdamW under warmup and cosine decay; TRL's metrics per step
(`rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`); the held-out ones every
`eval_every` steps and at the end; verified checkpoints and exact resume (the data order follows from the
seed and the step, the reference is reloaded from model.path).

Writes metrics.jsonl, plots/accuracy.png and plots/margin.png, model/ (a plain causal LM, LoRA merged)
and summary.json.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm import tqdm

from r1kit.config import ConfigError, DPOConfig
from r1kit.evaluation.plots import plot_lines
from r1kit.models.device import check_trainable, resolve_device
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.lora import is_lora, load_trainable, require_peft, save_merged
from r1kit.trainers.dpo import DPOPair, encode_dpo_pair, evaluate_pairs, train_step
from r1kit.trainers.optim import adamw, optimizer_state
from r1kit.trainers.reporting import check_reporting
from r1kit.trainers.run_dir import RunDir
from r1kit.trainers.sft import Batching, batch_of_step, steps_per_epoch
from r1kit.trainers.sft_data import read_sources


def validate(cfg: DPOConfig) -> None:
    if not cfg.data:
        raise ConfigError("no preference data: data=PAIRS.jsonl (rows {prompt, chosen, rejected})")
    for key in ("epochs", "batch_size", "max_length", "save_every", "keep_checkpoints"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    for key in ("micro_batch_size", "eval_every", "threads"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.eval_fraction < 1:
        raise ConfigError(f"config key 'eval_fraction' must be in [0, 1), got {cfg.eval_fraction}")
    if cfg.dpo.beta <= 0:
        raise ConfigError(f"config key 'dpo.beta' must be > 0, got {cfg.dpo.beta}")
    if not 0 <= cfg.dpo.label_smoothing < 0.5:
        raise ConfigError(f"config key 'dpo.label_smoothing' must be in [0, 0.5), got {cfg.dpo.label_smoothing}")
    if cfg.optim.lr <= 0 or any(d.weight <= 0 for d in cfg.data):
        raise ConfigError("optim.lr and every data weight must be > 0")
    check_trainable(cfg.model, lora=True)
    if cfg.model.lora.rank > 0:
        require_peft()
    check_reporting(cfg.logging)


class Cuts(NamedTuple):
    """What max_length did to the pairs: responses cut (identical ones included), pairs dropped as identical."""

    cut: int
    dropped_identical: int


def load_pairs(cfg: DPOConfig, tokenizer: Any) -> tuple[list[DPOPair], list[DPOPair], Cuts]:
    """(train, held-out, what the max_length cut did); the pairs it made identical are left out of both.
    ConfigError names a bad file or row."""
    try:
        train_rows, held_rows = read_sources(cfg.data, cfg.eval_fraction, cfg.seed)
        train_cut = [encode_dpo_pair(w, r, tokenizer, cfg.template, cfg.max_length) for w, r in train_rows]
        held_cut = [encode_dpo_pair(w, r, tokenizer, cfg.template, cfg.max_length) for w, r in held_rows]
    except ValueError as e:
        raise ConfigError(str(e)) from None
    # A cut can leave chosen and rejected the same tokens (they differed after max_length): such a pair has
    # no preference left, only a loss of log 2 that no update can move. It is dropped and counted.
    train = [p for p, _ in train_cut if p.chosen_ids != p.rejected_ids]
    held = [p for p, _ in held_cut if p.chosen_ids != p.rejected_ids]
    if not train:
        raise ConfigError("the preference data leaves no training pairs (lower eval_fraction, raise max_length "
                          "or add data)")
    return train, held, Cuts(sum(c for _, c in train_cut + held_cut),
                             len(train_cut) + len(held_cut) - len(train) - len(held))


def preflight(cfg: DPOConfig) -> None:
    """Every check `run_dpo` makes before any work (settings, the run directory, tokenizer, pairs)."""
    validate(cfg)
    RunDir(cfg)
    load_pairs(cfg, load_tokenizer(cfg.model.path))


def make_reference(cfg: DPOConfig, policy: torch.nn.Module, device: torch.device) -> torch.nn.Module | None:
    """The initial policy, frozen, in the compute dtype: model.path reloaded (also on resume, when the
    policy has moved); None for a LoRA policy, whose reference is itself with the adapters disabled."""
    if is_lora(policy):
        return None
    reference = load_model(cfg.model.path, cfg.model.dtype, device).eval()
    reference.requires_grad_(False)
    return reference


def run_dpo(cfg: DPOConfig, *, progress: bool = True) -> dict[str, Any]:
    """DPO end to end; returns summary.json's content. Resumes from out_dir's newest intact checkpoint."""
    started = time.perf_counter()
    validate(cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run = RunDir(cfg)
    tokenizer = load_tokenizer(cfg.model.path)
    train, held, cuts = load_pairs(cfg, tokenizer)
    b = Batching(batch_size=cfg.batch_size, max_length=cfg.max_length, packing=False)
    per_epoch = steps_per_epoch(len(train), b)
    total_steps = cfg.epochs * per_epoch
    device, pad = resolve_device(cfg.model.device), tokenizer.pad_token_id
    resumed = run.resume(lambda c: (load_trainable(cfg.model, cfg.seed, c.policy_dir), c.load_state()))
    policy = resumed[1][0] if resumed else load_trainable(cfg.model, cfg.seed)
    start = resumed[0].step if resumed else 0
    reference = make_reference(cfg, policy, device)
    optim = dataclasses.replace(cfg.optim, lr=cfg.optim.lr * cfg.model.lora.lr_scale) if is_lora(policy) else cfg.optim
    optimizer, scheduler = adamw(optim, policy, total_steps, resumed[1][1] if resumed else None)
    log = run.begin(start if resumed else None)
    scoring = {"pad_id": pad, "chunk_tokens": cfg.model.logprob_chunk_tokens, "dtype": cfg.model.dtype}

    def evaluate() -> dict[str, Any]:
        t0 = time.perf_counter()
        result = evaluate_pairs(policy, reference, held, cfg.dpo, batch_size=cfg.micro_batch_size or cfg.batch_size,
                                **scoring)
        return {f"eval/{k}": v for k, v in result.items()} | {"eval/seconds": time.perf_counter() - t0}

    try:
        if not resumed:
            log.append({"step": 0, **evaluate()})
        bar = tqdm(range(start, total_steps), initial=start, total=total_steps, disable=not progress,
                   desc="r1kit dpo", unit="step", dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0)
        for step in bar:
            batch = [train[i] for i in batch_of_step(step, len(train), b, cfg.seed)]
            row: dict[str, Any] = {"step": step + 1, "epoch": (step + 1) / per_epoch}
            row.update(train_step(policy, reference, optimizer, scheduler, batch, cfg.dpo,
                                  micro_batch_size=cfg.micro_batch_size, max_grad_norm=cfg.optim.max_grad_norm,
                                  **scoring))
            done = step + 1
            if done == total_steps or (cfg.eval_every and done % cfg.eval_every == 0):
                row.update(evaluate())
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['rewards/accuracies']:.2f}")
            if done == total_steps or done % cfg.save_every == 0:
                run.save(done, policy, tokenizer, optimizer_state(optimizer, scheduler, done))
        bar.close()
        rows = log.rows()
    finally:
        run.close()
    summary = _finish(cfg, policy, tokenizer, rows, len(train), len(held), cuts)
    return run.finish(summary | {"wall_seconds": time.perf_counter() - started})


def _finish(cfg: DPOConfig, policy: Any, tokenizer: Any, rows: list[dict[str, Any]], n_train: int, n_held: int,
            cuts: Cuts) -> dict[str, Any]:
    """model/ (LoRA merged), plots, and summary.json's content."""
    out = Path(cfg.out_dir)
    save_merged(policy, out / "model")
    tokenizer.save_pretrained(out / "model")
    plot_lines(rows, {"rewards/accuracies": "training-batch reward accuracy",
                      "eval/rewards/accuracies": "held-out reward accuracy"},
               out / "plots" / "accuracy.png", title="DPO", ylabel="reward accuracy")
    plot_lines(rows, {"rewards/margins": "training-batch margin", "eval/rewards/margins": "held-out margin"},
               out / "plots" / "margin.png", title="DPO", ylabel="implicit reward margin")
    evals = [r for r in rows if "eval/rewards/accuracies" in r]
    trained = [r for r in rows if "loss" in r]
    return {"steps": rows[-1]["step"], "train_pairs": n_train, "heldout_pairs": n_held,
            "pairs_cut_at_max_length": cuts.cut,
            "pairs_dropped_identical": cuts.dropped_identical, "loss_first": trained[0]["loss"] if trained else None,
            "loss_last": trained[-1]["loss"] if trained else None,
            "accuracy_before": evals[0]["eval/rewards/accuracies"],
            "accuracy_after": evals[-1]["eval/rewards/accuracies"],
            "margin_after": evals[-1]["eval/rewards/margins"], "eval_loss_before": evals[0]["eval/loss"],
            "eval_loss_after": evals[-1]["eval/loss"]}
