"""The judge stage (`r1kit judge`): a small generative judge, trained and measured end to end.

1. Sample `source_model` k times on the training prompts of tasks with golds; label each (question, gold,
   answer) pair by the task's rule verifier; keep as many "no" as "yes" pairs (balanced, seeded).
2. Write them as chat rows (`JUDGE_PROMPT` -> "yes" / "no") and fine-tune `model` on them with `r1kit sft`
   (out_dir/sft; the judge is out_dir/sft/model).
3. Label held-out pairs the same way, from the tasks' test prompts, and ask the trained `ModelJudge`:
   the agreement with the rule (per task and overall) and the share of unparseable verdicts go to
   summary.json.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ConfigError, DataSource, JudgeConfig, ModelConfig, OptimConfig, SFTConfig
from r1kit.evaluation.plots import plot_bars
from r1kit.judges import ModelJudge, judge_prompt
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import compute_rewards
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.stages.sft import run_sft
from r1kit.tasks import load_task
from r1kit.templates import encode_prompts
from r1kit.trainers.checkpoint import write_atomic
from r1kit.trainers.run_dir import RunDir
from r1kit.types import Example


def load_prompts(cfg: JudgeConfig, split: str, n: int) -> dict[str, list[Example]]:
    """The first n prompts of every task's split (all when it has fewer); ConfigError for a bad task."""
    names = [x.strip() for x in cfg.tasks.split(",") if x.strip()]
    if not names:
        raise ConfigError("no tasks given: tasks=arithmetic,factual_qa,...")
    try:
        return {name: load_task(name, split, seed=cfg.seed)[:n] for name in names}
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _pairs(cfg: JudgeConfig, prompts: dict[str, list[Example]], generator: HFGenerator, tokenizer: Any,
           seed: int) -> list[dict[str, Any]]:
    """(question, gold, completion, rule verdict) of k samples per prompt of every task, balanced."""
    rng, pairs = random.Random(seed), []
    for t, (name, examples) in enumerate(prompts.items()):
        ids = encode_prompts([e.prompt for e in examples], cfg.template, tokenizer)
        gen = generator.generate(ids, SamplingParams(1.0, 1.0, cfg.max_new_tokens), num_samples=cfg.k,
                                 seed=seed * 100 + t)
        texts = tokenizer.batch_decode(gen.completion_ids, skip_special_tokens=True)
        repeated = [e for e in examples for _ in range(cfg.k)]
        verdicts = compute_rewards([e.prompt for e in repeated], texts, repeated, {"accuracy": 1.0}).total
        yes = [(e, c) for e, c, v in zip(repeated, texts, verdicts, strict=True) if v > 0]
        no = [(e, c) for e, c, v in zip(repeated, texts, verdicts, strict=True) if v <= 0]
        m = min(len(yes), len(no))
        for label, chosen in ((True, rng.sample(yes, m)), (False, rng.sample(no, m))):
            pairs += [{"task": name, "question": e.prompt, "gold": e.answer, "completion": c, "label": label}
                      for e, c in chosen]
    rng.shuffle(pairs)
    return pairs


def run_judge(cfg: JudgeConfig, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    for key in ("k", "limit", "heldout", "epochs", "batch_size", "max_new_tokens"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    run = RunDir(cfg)
    train_prompts, heldout_prompts = load_prompts(cfg, "train", cfg.limit), load_prompts(cfg, "test", cfg.heldout)
    tokenizer = load_tokenizer(cfg.source_model)
    load_tokenizer(cfg.model)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run.begin(None)
    run.close()
    out = Path(cfg.out_dir)
    generator = HFGenerator(load_model(cfg.source_model).eval(), eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    train = _pairs(cfg, train_prompts, generator, tokenizer, cfg.seed)
    heldout = _pairs(cfg, heldout_prompts, generator, tokenizer, cfg.seed + 1)
    if not train or not heldout:
        raise ConfigError(f"{cfg.source_model}'s samples are all right or all wrong: no pairs to learn from")
    rows = [{"messages": [{"role": "user", "content": judge_prompt(p["question"], p["completion"], p["gold"])},
                          {"role": "assistant", "content": "yes" if p["label"] else "no"}]} for p in train]
    write_atomic(out / "pairs.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(out / "heldout.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in heldout))
    sft = SFTConfig(out_dir=str(out / "sft"), seed=cfg.seed, data=[DataSource(str(out / "pairs.jsonl"))],
                    epochs=cfg.epochs, batch_size=cfg.batch_size, model=ModelConfig(path=cfg.model),
                    threads=cfg.threads, optim=OptimConfig(lr=cfg.lr, betas=(0.9, 0.95), warmup_steps=10,
                                                           schedule="cosine", min_lr_ratio=0.1))
    tuned = run_sft(sft, progress=progress)
    judge = ModelJudge(str(out / "sft" / "model"))
    verdicts = judge.judge([p["question"] for p in heldout], [p["completion"] for p in heldout],
                           [p["gold"] for p in heldout])
    per_task: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # agree, total, unparseable
    for p, v in zip(heldout, verdicts, strict=True):
        stats = per_task[p["task"]]
        stats[0] += v is not None and v == p["label"]
        stats[1] += 1
        stats[2] += v is None
    agreement = {t: s[0] / s[1] for t, s in per_task.items()}
    plot_bars({t: {"agreement": a} for t, a in agreement.items()}, out / "plots" / "agreement.png",
              title="judge agreement with the rule verifier (held-out)", ylabel="agreement")
    return run.finish({"agreement": sum(s[0] for s in per_task.values()) / len(heldout), "by_task": agreement,
                       "unparseable": sum(s[2] for s in per_task.values()) / len(heldout),
                       "train_pairs": len(train), "heldout_pairs": len(heldout), "judge": str(out / "sft" / "model"),
                       "sft": {k: tuned[k] for k in ("steps", "eval_loss_before", "eval_loss_after")},
                       "wall_seconds": time.perf_counter() - started})
