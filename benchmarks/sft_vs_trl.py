"""r1kit's SFT against TRL's `SFTTrainer`: the same model, data, batch, learning rate and epochs, in one process.

    python benchmarks/sft_vs_trl.py                        # the embedded model on cold-start data
    python benchmarks/sft_vs_trl.py --rows 256 --epochs 1  # a quick run

Data: `r1kit cold-start`'s solver rows (additions in English and Chinese, Countdown: long chains of
thought of varied length), as chat turns: r1kit reads `messages`, TRL the same turns as a conversational
prompt-completion data set; both render the model's chat template, so the token sequences are the same
and both learn the completion (with its EOS) only. The held-out rows are the same for both.

Settings, both: batch 32 sequences per optimizer step, no accumulation, AdamW (betas 0.9/0.95, no weight
decay), lr with 10 warmup steps then cosine to 1/10, gradient clipping at 1.0, float32 on the CPU. TRL
runs its fastest setting that is correct on a CPU: padded batches (its packing has no attention mask
without FlashAttention, so packed examples would attend to each other, trl #3067). r1kit runs its
default: random batches, best-fit packing with a block-diagonal mask, rows sorted by length.

Timed: each optimizer step (TRL: `on_step_begin` to `on_step_end`; r1kit: `train_step`). tokens/s counts
the real (non-padding) tokens of the steps over the summed step time. The runs are interleaved: after
each TRL step a TRL callback runs one r1kit step (outside TRL's timer), so both see the same machine
load. The final eval loss of both models is computed by the same function on the same held-out rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch

from r1kit.config import ColdStartConfig, OptimConfig
from r1kit.models.loading import load_model, load_tokenizer, resolve_model_path
from r1kit.stages.cold_start import solver_rows
from r1kit.trainers.optim import adamw
from r1kit.trainers.sft import Batching, batch_of_step, eval_loss, steps_per_epoch, train_step
from r1kit.trainers.sft_data import encode_row, split_rows


def make_rows(n: int, seed: int) -> list[dict[str, Any]]:
    cfg = ColdStartConfig(solver_examples=n, seed=seed)
    return solver_rows(cfg, ["arithmetic", "arithmetic_zh", "countdown"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    import transformers
    import trl

    torch.set_num_threads(args.threads)
    model_path = resolve_model_path(args.model)
    tokenizer = load_tokenizer(model_path)
    tokenizer.padding_side = "right"
    rows = make_rows(args.rows, args.seed)
    train_rows, held_rows = split_rows([(f"row {i}", r) for i, r in enumerate(rows)], 0.1, args.seed)
    train = [encode_row(w, r, tokenizer, args.max_length) for w, r in train_rows]
    held = [encode_row(w, r, tokenizer, args.max_length) for w, r in held_rows]
    b = Batching(batch_size=args.batch_size, max_length=args.max_length)
    steps = args.epochs * steps_per_epoch(len(train), b)
    optim = OptimConfig(lr=args.lr, betas=(0.9, 0.95), warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)

    r1_model = load_model(model_path)
    r1_opt, r1_sched = adamw(optim, r1_model, steps)
    r1: dict[str, Any] = {"seconds": 0.0, "tokens": 0, "padding": []}

    def r1kit_step(step: int) -> None:
        batch = [train[i] for i in batch_of_step(step, len(train), b, args.seed)]
        m = train_step(r1_model, r1_opt, r1_sched, batch, b, pad_id=tokenizer.pad_token_id, max_grad_norm=1.0)
        r1["seconds"] += m["step_seconds"]
        r1["tokens"] += int(m["tokens"])
        r1["padding"].append(m["padding_share"])

    as_turns = [{"prompt": [r["messages"][0]], "completion": [r["messages"][1]]} for _, r in train_rows]
    trl_model = transformers.AutoModelForCausalLM.from_pretrained(model_path)
    timer: dict[str, Any] = {"seconds": 0.0, "tokens": 0, "padding": [], "start": 0.0, "step": 0}

    class Interleave(transformers.TrainerCallback):
        def on_step_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            timer["start"] = time.perf_counter()

        def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            timer["seconds"] += time.perf_counter() - timer["start"]
            if timer["step"] < steps:
                r1kit_step(timer["step"])
            timer["step"] += 1

    class CountTokens(trl.SFTTrainer):  # real and padded tokens of each batch, outside the step timer
        def training_step(self, model: Any, inputs: dict[str, Any], *rest: Any, **kw: Any) -> Any:
            mask = inputs["attention_mask"]
            timer["tokens"] += int(mask.sum())
            timer["padding"].append(1 - float(mask.sum()) / mask.numel())
            return super().training_step(model, inputs, *rest, **kw)

    with tempfile.TemporaryDirectory() as out:
        config = trl.SFTConfig(
            output_dir=out, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
            num_train_epochs=args.epochs, learning_rate=args.lr, lr_scheduler_type="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": 0.1}, warmup_steps=10, adam_beta1=0.9, adam_beta2=0.95,
            weight_decay=0.0, max_grad_norm=1.0, max_length=args.max_length, packing=False, padding_free=False,
            completion_only_loss=True, logging_steps=10**9, save_strategy="no", report_to=[], seed=args.seed,
            use_cpu=True, dataloader_num_workers=0, bf16=False, fp16=False, disable_tqdm=True)
        trainer = CountTokens(model=trl_model, args=config, train_dataset=datasets.Dataset.from_list(as_turns),
                              processing_class=tokenizer, callbacks=[Interleave()])
        wall = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - wall
    while timer["step"] < steps:  # TRL took fewer steps (it drops nothing, but count anyway)
        r1kit_step(timer["step"])
        timer["step"] += 1
    loss_r1 = eval_loss(r1_model, held, b, pad_id=tokenizer.pad_token_id)
    loss_trl = eval_loss(trl_model, held, b, pad_id=tokenizer.pad_token_id)
    r1_tps, trl_tps = r1["tokens"] / r1["seconds"], timer["tokens"] / timer["seconds"]
    return {
        "model": args.model, "rows": {"train": len(train), "held_out": len(held)}, "steps": steps,
        "batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr, "threads": args.threads,
        "r1kit": {"tokens_per_s": r1_tps, "step_seconds": r1["seconds"], "tokens": r1["tokens"],
                  "padding_share": sum(r1["padding"]) / len(r1["padding"]), "eval_loss": loss_r1},
        "trl": {"tokens_per_s": trl_tps, "step_seconds": timer["seconds"], "tokens": timer["tokens"],
                "padding_share": sum(timer["padding"]) / len(timer["padding"]), "eval_loss": loss_trl,
                "train_wall_seconds": wall, "version": trl.__version__},
        "speedup": r1_tps / trl_tps, "eval_loss_gap": (loss_r1 - loss_trl) / loss_trl,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    print(f"r1kit {result['r1kit']['tokens_per_s']:.0f} tokens/s vs TRL {result['trl']['tokens_per_s']:.0f}: "
          f"{result['speedup']:.2f}x; eval loss {result['r1kit']['eval_loss']:.4f} vs {result['trl']['eval_loss']:.4f} "
          f"({100 * result['eval_loss_gap']:+.1f} %)", file=sys.stderr)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
