"""The distillation stage (`r1kit distill teacher=DIR student=embedded-student`), R1-SPEC section 4:
SFT only, no RL, of a small student on a strong teacher's traces.

1. `r1kit sample` the teacher on the tasks' training prompts (out_dir/sample): correct, readable,
   distinct traces, at most `keep` per prompt;
2. `r1kit sft` the student on them (out_dir/sft), cosine to 1/10 as the paper's distillation;
3. the student's held-out pass@1 before (the base with the R1-Zero template, its only format) and after
   (with the chat template it was fine-tuned on), k samples per prompt at temperature 0.6, top-p 0.95.

Both sub-stages keep their own run directories, so a rerun resumes where the first one stopped.
summary.json holds the before/after pass@1 per task, the sampling report and the SFT summary.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ConfigError, DataSource, DistillConfig, ModelConfig, OptimConfig, SampleConfig, SFTConfig
from r1kit.evaluation import evaluate
from r1kit.evaluation.plots import plot_bars
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rollout import HFGenerator, SamplingParams
from r1kit.stages.sample import run_sample
from r1kit.stages.sample import validate as validate_sample
from r1kit.stages.sft import run_sft
from r1kit.stages.sft import validate as validate_sft
from r1kit.tasks import load_task
from r1kit.templates import TemplateName, encode_prompts
from r1kit.trainers.run_dir import RunDir


def sub_configs(cfg: DistillConfig) -> tuple[SampleConfig, SFTConfig]:
    out = Path(cfg.out_dir)
    sample = SampleConfig(model=ModelConfig(path=cfg.teacher), tasks=cfg.tasks, k=cfg.k, keep=cfg.keep,
                          limit=cfg.limit, template=cfg.teacher_template, temperature=cfg.temperature,
                          max_new_tokens=cfg.max_new_tokens, out_dir=str(out / "sample"), seed=cfg.seed,
                          threads=cfg.threads)
    sft = SFTConfig(out_dir=str(out / "sft"), seed=cfg.seed, data=[DataSource(str(out / "sample" / "data.jsonl"))],
                    epochs=cfg.epochs, batch_size=cfg.batch_size, max_length=cfg.max_length, threads=cfg.threads,
                    model=ModelConfig(path=cfg.student),
                    optim=OptimConfig(lr=cfg.lr, betas=(0.9, 0.95), warmup_steps=10, schedule="cosine",
                                      min_lr_ratio=0.1))
    return sample, sft


def heldout_pass1(model_path: str, tasks: list[str], template: TemplateName, *, eval_size: int, k: int,
                  seed: int) -> dict[str, float]:
    """pass@1 of k samples (temperature 0.6, top-p 0.95) per held-out prompt, per task and overall."""
    tokenizer = load_tokenizer(model_path)
    generator = HFGenerator(load_model(model_path).eval(), eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    out, total, n = {}, 0.0, 0
    for name in tasks:
        examples = load_task(name, "test", n=eval_size)
        ids = encode_prompts([e.prompt for e in examples], template, tokenizer)
        result = evaluate(generator, tokenizer, examples, ids, k=k, params=SamplingParams(0.6, 0.95, 200), seed=seed)
        out[name] = result.pass_at_1
        total, n = total + result.pass_at_1 * len(examples), n + len(examples)
    out["overall"] = total / n
    return out


def run_distill(cfg: DistillConfig, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    if not cfg.teacher:
        raise ConfigError("distill needs a teacher: teacher=DIR")
    sample_cfg, sft_cfg = sub_configs(cfg)
    validate_sample(sample_cfg)
    validate_sft(sft_cfg)
    tasks = [t.strip() for t in cfg.tasks.split(",") if t.strip()]
    run = RunDir(cfg)
    load_tokenizer(cfg.teacher)  # a teacher or student that cannot load stops here, before any work
    load_tokenizer(cfg.student)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run.begin(None)
    run.close()
    before = heldout_pass1(cfg.student, tasks, "r1_zero", eval_size=cfg.eval_size, k=cfg.eval_samples, seed=cfg.seed)
    t0 = time.perf_counter()
    sampled = run_sample(sample_cfg, progress=progress)
    sample_seconds = time.perf_counter() - t0
    if sampled["kept"] == 0:
        raise ConfigError(f"the teacher {cfg.teacher} gave no correct, readable sample to distill")
    t0 = time.perf_counter()
    tuned = run_sft(sft_cfg, progress=progress)
    sft_seconds = time.perf_counter() - t0
    after = heldout_pass1(str(Path(sft_cfg.out_dir) / "model"), tasks, "r1", eval_size=cfg.eval_size,
                          k=cfg.eval_samples, seed=cfg.seed)
    plot_bars({t: {"before": before[t], "after": after[t]} for t in [*tasks, "overall"]},
              Path(cfg.out_dir) / "plots" / "student_pass1.png", title="student held-out pass@1, distilled",
              ylabel="pass@1")
    return run.finish({"teacher": cfg.teacher, "student": cfg.student, "before": before, "after": after,
                       "sample": {k: sampled[k] for k in ("prompts", "samples", "kept", "acceptance", "dropped")},
                       "sft": {k: tuned[k] for k in ("steps", "train_rows", "eval_loss_before", "eval_loss_after")},
                       "seconds": {"sample": sample_seconds, "sft": sft_seconds,
                                   "total": time.perf_counter() - started}})
