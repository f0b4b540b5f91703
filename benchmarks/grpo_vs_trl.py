"""r1kit's GRPO against TRL's `GRPOTrainer`: the same model, prompts and settings, in one process.

    python benchmarks/grpo_vs_trl.py                       # the embedded model, recipes/tiny/zero.yaml
    python benchmarks/grpo_vs_trl.py --model random --steps 3   # smoke test on a tiny random Qwen2

Both trainers start from the same weights on disk (each loads its own copy: TRL patches the model's
forward), see the same B prompts at every step (TRL's dataset is laid out in the order r1kit's
`prompts_for_step` visits the train split, and read unshuffled), sample G completions per prompt with
the same temperature / top-p / max new tokens, score them with the same reward functions and weights
(r1kit's `REWARDS`, called by TRL with the dataset columns), and take one AdamW step per rollout on all
B*G completions with the same loss (per-sequence token mean, clipped ratio, k3 KL to a frozen
reference), lr, betas, clip, KL coefficient and gradient clipping. Randomness (sampling) differs, so
the reward curves are compared as curves, not bit for bit.

Timed: r1kit's `train_step` calls; TRL's steps from `on_step_begin` to `on_step_end` (generation,
rewards, reference forward, loss, backward, clip, optimizer and scheduler step). Model loading, trainer
construction and TRL's per-step logging are outside both timers; TRL's train() wall time is reported
too. By default the runs are interleaved (TRL step k, then r1kit step k from a TRL callback, outside
TRL's timer) so that both see the same load on a shared machine; --order runs them one after the other.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch
import yaml

from r1kit.config import ZeroConfig, load_config
from r1kit.rewards import REWARDS
from r1kit.rollout import HFGenerator
from r1kit.stages.grpo import load_policy, prepare
from r1kit.templates import render_prompt
from r1kit.trainers.grpo import make_optimizer, make_reference, prompts_for_step, train_step

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "tiny" / "zero.yaml"


# ------------------------------------------------------------------------------------------------ setup


def build_config(args: argparse.Namespace, model_path: str) -> ZeroConfig:
    """recipes/tiny/zero.yaml with the command line's overrides (None: keep the recipe's value)."""
    overrides = [f"model.path={model_path}", f"steps={args.steps}", "eval.every=0"]
    for key, value in {
        "group_size": args.group_size,
        "prompts_per_step": args.prompts_per_step,
        "rollout.max_new_tokens": args.max_new_tokens,
        "rollout.temperature": args.temperature,
        "optim.lr": args.lr,
        "grpo.kl_coef": args.kl_coef,
        "threads": args.threads,
        "seed": args.seed,
    }.items():
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(ZeroConfig, RECIPE, overrides)
    # What this benchmark can match in TRL; anything else would make the comparison unfair.
    g, o = cfg.grpo, cfg.optim
    unsupported = {
        "grpo.num_minibatches": (g.num_minibatches, 1), "grpo.num_epochs": (g.num_epochs, 1),
        "grpo.ratio_level": (g.ratio_level, "token"), "optim.warmup_steps": (o.warmup_steps, 0),
        "optim.schedule": (o.schedule, "constant"), "optim.micro_batch_size": (o.micro_batch_size, 0),
        "model.gradient_checkpointing": (cfg.model.gradient_checkpointing, False),
    }
    for key, (value, wanted) in unsupported.items():
        if value != wanted:
            raise SystemExit(f"this benchmark needs {key}={wanted} (the recipe has {value})")
    if cfg.grpo.ref_update_every and cfg.steps >= cfg.grpo.ref_update_every:
        raise SystemExit("steps >= grpo.ref_update_every: TRL's reference is never refreshed here")
    return cfg


def resolve_model(arg: str, tmp: Path) -> str:
    """`random`: a tiny random Qwen2 from tests/conftest.py; `embedded`: must exist; else a directory."""
    if arg == "random":
        sys.path.insert(0, str(REPO))
        from tests.conftest import make_tiny_random_model

        return str(make_tiny_random_model(tmp / "tiny-random"))
    if arg == "embedded":
        from r1kit.models.embedded import EMBEDDED_MODEL_DIR

        if not (EMBEDDED_MODEL_DIR / "config.json").is_file():
            raise SystemExit(f"the embedded model is not built yet ({EMBEDDED_MODEL_DIR}); "
                             "build it (python -m r1kit.models.embedded) or pass --model random / --model DIR")
    return arg


def provenance(model_path: str) -> dict[str, Any]:
    """The r1kit commit (and whether src/ has uncommitted edits) and the weights' hash, for the record."""
    import hashlib
    import subprocess

    def git(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    from r1kit.models.loading import resolve_model_path

    weights = Path(resolve_model_path(model_path)) / "model.safetensors"
    return {"r1kit_commit": git("rev-parse", "--short", "HEAD"),
            "r1kit_src_modified": bool(git("status", "--porcelain", "src")),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ------------------------------------------------------------------------------------------------ r1kit


class R1kitRun:
    """r1kit's GRPO set up as `run_zero` does (minus evaluation and checkpoints), stepped from outside."""

    def __init__(self, cfg: ZeroConfig, log: bool) -> None:
        self.cfg, self.log = cfg, log
        self.prep = prepare(cfg)
        self.policy, self.tokenizer = load_policy(cfg), self.prep.tokenizer
        self.reference = make_reference(self.policy, cfg.grpo.kl_coef)
        self.optimizer, self.scheduler = make_optimizer(cfg, self.policy)
        self.generator = HFGenerator(self.policy, eos_token_id=self.tokenizer.eos_token_id,
                                     pad_token_id=self.tokenizer.pad_token_id, batch_size=cfg.eval.batch_size)
        self.rows: list[dict[str, Any]] = []
        self.step_seconds: list[float] = []
        self.load_before: list[float] | None = None

    def step(self, step: int) -> None:
        if step == 0:
            self.load_before = load_average()
        t0 = time.perf_counter()
        metrics = train_step(self.cfg, step, self.generator, self.tokenizer, self.policy, self.reference,
                             self.optimizer, self.scheduler, self.prep.train, self.prep.train_ids)
        self.step_seconds.append(time.perf_counter() - t0)
        self.rows.append({
            "step": step + 1,
            "accuracy": metrics.get("accuracy"),
            "format": metrics.get("format_rate"),
            "reward": metrics["reward/mean"],
            "kl": metrics.get("kl"),
            "entropy": metrics.get("entropy"),
            "completion_length": metrics["response_length/mean"],
            "completion_tokens": metrics["tokens"],
            "seconds": self.step_seconds[-1],
        })
        if self.log:
            _print_step("r1kit", self.rows[-1], self.cfg.steps)

    def result(self, loop_seconds: float | None) -> dict[str, Any]:
        return {"rows": self.rows, "step_seconds": self.step_seconds, "loop_seconds": loop_seconds,
                "threads_seen": torch.get_num_threads(), "load_average_before": self.load_before,
                "load_average_after": load_average()}


def run_r1kit(run: R1kitRun) -> dict[str, Any]:
    start = time.perf_counter()
    for step in range(run.cfg.steps):
        run.step(step)
    return run.result(time.perf_counter() - start)


def _step_prompts(cfg: ZeroConfig, prep: Any) -> list[list[str]]:
    return [[prep.train[i].prompt for i in prompts_for_step(len(prep.train), s, cfg.prompts_per_step, cfg.seed)]
            for s in range(cfg.steps)]


# -------------------------------------------------------------------------------------------------- TRL


def trl_settings(cfg: ZeroConfig) -> dict[str, Any]:
    """GRPOConfig keyword arguments that make TRL 1.16 run r1kit's algorithm, each with its reason."""
    g, o, r = cfg.grpo, cfg.optim, cfg.rollout
    n = cfg.prompts_per_step * cfg.group_size
    return {
        # one optimizer step on all B*G completions of a fresh rollout (TRL counts batches in completions)
        "per_device_train_batch_size": n,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": 1,  # generation_batch_size = n: generate every step
        "num_iterations": 1,  # mu = 1: old log-probs = detached current ones, as in r1kit
        "num_generations": cfg.group_size,
        "max_steps": cfg.steps,
        "shuffle_dataset": False,  # the dataset is already in r1kit's per-step prompt order
        # sampling
        "max_completion_length": r.max_new_tokens,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "top_k": 0,
        "use_vllm": False,
        "use_transformers_continuous_batching": False,
        # loss
        "loss_type": g.aggregation,  # "grpo": token mean per sequence, then mean (TRL default is dapo)
        "beta": g.kl_coef,  # TRL default 0 (no reference)
        "use_bias_correction_kl": False,  # TRL default True multiplies the KL by the ratio; R1/r1kit: plain k3
        "epsilon": g.clip_eps_low,
        "epsilon_high": g.clip_eps_high,
        "importance_sampling_level": g.ratio_level,
        "scale_rewards": "group" if g.scale_by_std else "none",
        "multi_objective_aggregation": "sum_then_normalize",  # weighted sum, then group advantages
        "reward_weights": [cfg.rewards[k] for k in cfg.rewards],
        "mask_truncated_completions": False,
        "sync_ref_model": False,  # r1kit refreshes every grpo.ref_update_every steps, more than this run
        "top_entropy_quantile": 1.0,
        "entropy_coef": 0.0,
        # optimiser: r1kit's AdamW, constant lr, grad-norm clip
        "learning_rate": o.lr,  # TRL default 1e-6
        "lr_scheduler_type": "constant",  # Trainer default "linear" decays to 0
        "warmup_steps": 0,
        "adam_beta1": o.betas[0],
        "adam_beta2": o.betas[1],  # Trainer default 0.999
        "adam_epsilon": 1e-8,
        "weight_decay": o.weight_decay,
        "max_grad_norm": o.max_grad_norm,
        # speed / precision / housekeeping
        "gradient_checkpointing": False,  # TRL default True: recomputes activations, ~1/3 slower
        "bf16": False,  # TRL default True; r1kit trains in fp32
        "fp16": False,
        "use_cpu": True,
        "disable_dropout": False,  # r1kit does not touch dropout (Qwen2's is 0 anyway)
        "seed": cfg.seed,
        "logging_steps": 1,  # to read the per-step reward; logging is outside the step timer
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "no",
        "log_completions": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def run_trl(cfg: ZeroConfig, step_prompts: list[list[str]], log: bool, out_dir: Path,
            after_step: Callable[[int], None] | None = None, overrides: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """TRL's GRPOTrainer on the same problem. `after_step(k)` runs after TRL's step k has been timed and
    before step k+1 starts (the interleaved mode runs r1kit's step k there); its time is excluded."""
    import datasets
    import transformers
    import trl

    from r1kit.models.loading import load_model, load_tokenizer
    from r1kit.tasks import load_task

    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()

    tokenizer = load_tokenizer(cfg.model.path)
    model = load_model(cfg.model.path, cfg.model.dtype)
    train = load_task(cfg.task.name, "train", n=cfg.task.train_size, seed=cfg.seed, path=cfg.task.path)
    by_prompt = {e.prompt: e for e in train}
    records = []
    for prompts in step_prompts:
        for q in prompts:
            e = by_prompt[q]
            records.append({"prompt": render_prompt(e.prompt, cfg.task.template, tokenizer), "answer": e.answer,
                            "verifier": e.verifier, "info": dict(e.info), "task": e.task})
    dataset = datasets.Dataset.from_list(records)
    # TRL tokenizes the prompt text itself (add_special_tokens left at True); r1kit with add_special_tokens=False.
    first = records[0]["prompt"]
    same_prompt_tokens = (tokenizer(text=[first])["input_ids"][0]
                          == tokenizer([first], add_special_tokens=False)["input_ids"][0])
    same_info = dataset[0]["info"] == records[0]["info"]  # the verifier's info column survives `datasets`

    settings = {**trl_settings(cfg), **(overrides or {})}
    args = trl.GRPOConfig(output_dir=str(out_dir), **settings)

    class Timer(transformers.TrainerCallback):
        def __init__(self) -> None:
            self.begin: list[float] = []
            self.end: list[float] = []
            self.logs: list[dict[str, Any]] = []
            self.threads: int | None = None
            self.train_begin = 0.0
            self.outside = 0.0  # seconds spent in after_step

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.train_begin = time.perf_counter()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.begin.append(time.perf_counter())

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.end.append(time.perf_counter())
            self.threads = torch.get_num_threads()
            if after_step is not None:
                t0 = time.perf_counter()
                after_step(len(self.end) - 1)
                self.outside += time.perf_counter() - t0

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and any(k.startswith("rewards/") for k in logs):
                self.logs.append({"step": state.global_step, **logs})
                if log:
                    acc = logs.get(acc_key) if acc_key else None
                    _print_step("trl", {"step": state.global_step, "accuracy": acc,
                                        "completion_length": logs.get("completions/mean_length", 0.0),
                                        "seconds": self.end[-1] - self.begin[-1]}, cfg.steps)

    reward_funcs = [REWARDS[name] for name in cfg.rewards]
    names = [f.__name__ for f in reward_funcs]
    acc_key = f"rewards/{names[list(cfg.rewards).index('accuracy')]}/mean" if "accuracy" in cfg.rewards else None
    fmt_key = f"rewards/{names[list(cfg.rewards).index('format')]}/mean" if "format" in cfg.rewards else None
    timer = Timer()
    trainer = trl.GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[timer])
    trainer.remove_callback(transformers.PrinterCallback)  # it prints every log dict; we print our own lines
    load_before = load_average()
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0 - timer.outside
    step_seconds = [e - b for b, e in zip(timer.begin, timer.end, strict=True)]
    rows = []
    for i, entry in enumerate(timer.logs):
        rows.append({
            "step": entry["step"],
            "accuracy": entry.get(acc_key) if acc_key else None,
            "format": entry.get(fmt_key) if fmt_key else None,
            "reward": entry.get("reward"),
            "kl": entry.get("kl"),
            "entropy": entry.get("entropy"),
            "completion_length": entry.get("completions/mean_length"),
            "seconds": step_seconds[i] if i < len(step_seconds) else None,
            "trl_step_time": entry.get("step_time"),
        })
    for row in rows:
        if row["completion_length"] is not None:
            row["completion_tokens"] = row["completion_length"] * cfg.prompts_per_step * cfg.group_size
    # Step-end to step-end: everything TRL does per step, its logging and data loading included.
    intervals = [b - a for a, b in zip(timer.end, timer.end[1:], strict=False)] if after_step is None else None
    return {"rows": rows, "step_seconds": step_seconds, "train_seconds": train_seconds,
            "loop_seconds": (timer.end[-1] - timer.begin[0] - timer.outside) if timer.end else None,
            "end_to_end_intervals": intervals, "threads_seen": timer.threads, "settings": settings,
            "reward_func_names": names, "same_prompt_tokens": same_prompt_tokens, "info_column_intact": same_info,
            "load_average_before": load_before, "load_average_after": load_average(),
            "versions": {"trl": trl.__version__, "transformers": transformers.__version__,
                         "datasets": datasets.__version__}}


def _print_step(name: str, row: dict[str, Any], steps: int) -> None:
    acc = row["accuracy"]
    print(f"[{name}] step {row['step']:4d}/{steps}  acc {acc if acc is None else f'{acc:.3f}'}  "
          f"len {row['completion_length']:.1f}  {row['seconds']:.2f}s", flush=True)


# --------------------------------------------------------------------------------------------- summary


def moving_average(xs: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(xs)):
        part = xs[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def summarize(result: dict[str, Any], steps: int) -> dict[str, Any]:
    secs = result["step_seconds"]
    acc = [r["accuracy"] for r in result["rows"]]
    tail = max(1, math.ceil(steps / 4))
    total = sum(secs)
    tokens = sum(r.get("completion_tokens") or 0 for r in result["rows"])
    return {
        "steps": len(secs),
        "mean_step_seconds": total / len(secs),
        "median_step_seconds": statistics.median(secs),
        "steps_per_s": len(secs) / total,
        "steps_per_s_excluding_first": (len(secs) - 1) / sum(secs[1:]) if len(secs) > 1 else None,
        "completion_tokens_per_s": tokens / total,
        "mean_completion_length": statistics.fmean(r["completion_length"] for r in result["rows"]),
        "loop_seconds": result["loop_seconds"],
        "accuracy_first_25pct": statistics.fmean(acc[:tail]) if None not in acc else None,
        "accuracy_last_25pct": statistics.fmean(acc[-tail:]) if None not in acc else None,
        "threads_seen": result["threads_seen"],
    }


def report(out: dict[str, Any], window: int, every: int) -> None:
    s_r, s_t = out["summary"]["r1kit"], out["summary"]["trl"]
    c = out["comparison"]
    print()
    print(f"model {out['model']}   steps {out['config']['steps']}   B {out['config']['prompts_per_step']}  "
          f"G {out['config']['group_size']}   max_new_tokens {out['config']['rollout']['max_new_tokens']}   "
          f"threads {out['config']['threads']}")
    print(f"{'':24s}{'r1kit':>12s}{'TRL':>12s}")
    for label, key, fmt in [("steps/s", "steps_per_s", "{:.3f}"), ("s/step (mean)", "mean_step_seconds", "{:.3f}"),
                            ("s/step (median)", "median_step_seconds", "{:.3f}"),
                            ("completion tokens/s", "completion_tokens_per_s", "{:.0f}"),
                            ("mean completion length", "mean_completion_length", "{:.1f}"),
                            ("accuracy first 25%", "accuracy_first_25pct", "{:.3f}"),
                            ("accuracy last 25%", "accuracy_last_25pct", "{:.3f}")]:
        a, b = (fmt.format(v) if v is not None else "-" for v in (s_r[key], s_t[key]))
        print(f"{label:24s}{a:>12s}{b:>12s}")
    print(f"throughput ratio r1kit/TRL (steps/s): {c['speedup_steps_per_s']:.2f}x   "
          f"(per completion token: {c['speedup_tokens_per_s']:.2f}x; median step: {c['speedup_median_step']:.2f}x; "
          f"median of per-step ratios: {c['speedup_paired_median']:.2f}x)")
    if c["accuracy_last_25pct_diff_points"] is not None:
        print(f"accuracy over the last 25% of steps: r1kit - TRL = {c['accuracy_last_25pct_diff_points']:+.1f} points; "
              f"largest gap between the {c['moving_average_window']}-step moving averages: "
              f"{c['max_moving_average_gap_points']:.1f} points")
    print(f"TRL train() wall incl. its per-step logging (r1kit's interleaved steps excluded): "
          f"{out['trl']['train_seconds']:.1f}s ({out['config']['steps'] / out['trl']['train_seconds']:.3f} steps/s)")
    print(f"load average (1, 5, 15 min) before/after: r1kit {out['r1kit']['load_average_before']} / "
          f"{out['r1kit']['load_average_after']}, TRL {out['trl']['load_average_before']} / "
          f"{out['trl']['load_average_after']}")
    print()
    print(f"accuracy reward per step, moving average over {window} steps:")
    print(f"{'step':>6s}{'r1kit':>9s}{'TRL':>9s}{'r1kit raw':>11s}{'TRL raw':>9s}")
    ra = [r["accuracy"] for r in out["r1kit"]["rows"]]
    ta = [r["accuracy"] for r in out["trl"]["rows"]]
    if None in ra or None in ta:
        return
    mr, mt = moving_average(ra, window), moving_average(ta, window)
    n = min(len(ra), len(ta))
    for i in range(n):
        if (i + 1) % every == 0 or i == 0 or i == n - 1:
            print(f"{i + 1:6d}{mr[i]:9.3f}{mt[i]:9.3f}{ra[i]:11.3f}{ta[i]:9.3f}")


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="embedded", help="embedded (default), random (tiny random Qwen2), or a dir")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--group-size", type=int, default=None, help="G (default: the recipe's)")
    p.add_argument("--prompts-per-step", type=int, default=None, help="B (default: the recipe's)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--kl-coef", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads for both (default: the recipe's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--order", choices=["interleaved", "r1kit-first", "trl-first"], default="interleaved",
                   help="interleaved (default): TRL step k, then r1kit step k, so that both see the same\n"
                        "machine load over time; or one whole run after the other")
    p.add_argument("--trl", action="append", default=[], metavar="KEY=VALUE",
                   help="override one GRPOConfig field (YAML value), e.g. --trl cache_implementation=static")
    p.add_argument("--window", type=int, default=10, help="moving-average window of the printed curves")
    p.add_argument("--every", type=int, default=None, help="print the curves every k steps")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "grpo_vs_trl.json")
    p.add_argument("--quiet", action="store_true", help="no per-step lines")
    args = p.parse_args(argv)

    trl_overrides = {}
    for item in args.trl:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--trl expects KEY=VALUE, got {item!r}")
        trl_overrides[key.strip()] = yaml.safe_load(value)

    with tempfile.TemporaryDirectory() as tmp:
        model_path = resolve_model(args.model, Path(tmp))
        cfg = build_config(args, model_path)
        record = provenance(model_path)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        from r1kit.config import to_dict

        # The prompt schedule is r1kit's; TRL reads it as an unshuffled dataset.
        r1 = R1kitRun(cfg, not args.quiet)
        step_prompts = _step_prompts(cfg, r1.prep)
        trl_out = Path(tmp) / "trl-out"
        results: dict[str, Any] = {}
        if args.order == "interleaved":
            results["trl"] = run_trl(cfg, step_prompts, not args.quiet, trl_out, after_step=r1.step,
                                    overrides=trl_overrides)
            results["r1kit"] = r1.result(None)
        elif args.order == "r1kit-first":
            results["r1kit"] = run_r1kit(r1)
            results["trl"] = run_trl(cfg, step_prompts, not args.quiet, trl_out, overrides=trl_overrides)
        else:
            results["trl"] = run_trl(cfg, step_prompts, not args.quiet, trl_out, overrides=trl_overrides)
            results["r1kit"] = run_r1kit(r1)

    s_r, s_t = summarize(results["r1kit"], cfg.steps), summarize(results["trl"], cfg.steps)
    diff = (None if s_r["accuracy_last_25pct"] is None or s_t["accuracy_last_25pct"] is None
            else 100 * (s_r["accuracy_last_25pct"] - s_t["accuracy_last_25pct"]))
    ra = [r["accuracy"] for r in results["r1kit"]["rows"]]
    ta = [r["accuracy"] for r in results["trl"]["rows"]]
    gap = (None if None in ra or None in ta or not ra else 100 * max(
        abs(a - b) for a, b in zip(moving_average(ra, args.window), moving_average(ta, args.window), strict=False)))
    out = {
        "model": args.model if args.model in ("embedded", "random") else model_path,
        "config": to_dict(cfg),
        "order": args.order,
        **record,
        "timing": (f"order {args.order}. r1kit: wall seconds of each train_step call; TRL: on_step_begin -> "
                   "on_step_end of a "
                   "TrainerCallback (generation, rewards, reference and policy forward, backward, clip, "
                   "optimizer and scheduler step; TRL's per-step log call and data loading excluded)"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "summary": {"r1kit": s_r, "trl": s_t},
        "comparison": {
            "speedup_steps_per_s": s_r["steps_per_s"] / s_t["steps_per_s"],
            "speedup_tokens_per_s": s_r["completion_tokens_per_s"] / s_t["completion_tokens_per_s"],
            "speedup_median_step": s_t["median_step_seconds"] / s_r["median_step_seconds"],
            "speedup_paired_median": (statistics.median(t / r for r, t in zip(
                results["r1kit"]["step_seconds"], results["trl"]["step_seconds"], strict=False))),
            "accuracy_last_25pct_diff_points": diff,
            "max_moving_average_gap_points": gap,
            "moving_average_window": args.window,
        },
        "r1kit": results["r1kit"],
        "trl": results["trl"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    report(out, args.window, args.every or max(1, cfg.steps // 12))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
