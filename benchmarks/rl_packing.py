"""Packing for the RL passes: padded micro-batches against packed groups and packed sequences, same rollout.

    python benchmarks/rl_packing.py                      # both settings below, 2 repeats, best of each
    python benchmarks/rl_packing.py --out benchmarks/results/rl_packing.json

One process, one rollout per setting, each layout timed on the same minibatch step (forward with
log-probs, GRPO loss, backward; the optimizer at lr 0 so every repeat sees the same weights), layouts
interleaved within each repeat:

- `embedded`: a real rollout of the embedded model on its R1-Zero task (B=16, G=8, up to 96 new tokens),
  the tiny CPU default: short prompts and completions, lengths within a factor of ~2;
- `long-tail`: a tiny random Qwen2 (hidden 64, 2 layers) with 16 prompts of 64-192 tokens x G=8 completions
  whose lengths are uniform in [32, 1024]: the spread of real reasoning RL, where padding costs most.

Layouts: `padded` (today's micro-batches of `micro` completions, each padded to its longest; prompts
encoded once per group through the KV cache; log-probs in chunks of 1024 tokens, the default), `padded,
full logits` (the same with `model.logprob_chunk_tokens=0`: what chunking costs in time), `packed groups`
(a prompt once, then its completions, shared-prefix mask), `packed sequences` (prompt + completion each).
Reported: seconds per step, the token slots computed, and the padding share (slots holding no token).
Packed rows hold exactly their tokens; what `sequences` adds instead is the prompt, recomputed once per
completion.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ZeroConfig, load_config
from r1kit.trainers.grpo import Rollout, _minibatch_step

FACTORS = (1, 2, 4)
"""Packed row budgets, as multiples of the longest prompt + completion: with SDPA and an explicit mask (no
FlashAttention) a row's attention is quadratic in the row, so the budget trades padding for attention."""
LAYOUTS = {"padded": [], "padded, full logits": ["model.logprob_chunk_tokens=0"],
           **{f"packed groups x{f}": ["optim.pack=groups"] for f in FACTORS},
           **{f"packed sequences x{f}": ["optim.pack=sequences"] for f in FACTORS}}


def embedded_rollout(seed: int = 0) -> tuple[Any, Rollout, int]:
    from r1kit.models.loading import load_model, load_tokenizer
    from r1kit.rollout import HFGenerator
    from r1kit.tasks import load_task
    from r1kit.templates import encode_prompts
    from r1kit.trainers.grpo import collect_rollout, make_scorer, prompts_for_step

    cfg = ZeroConfig()
    model, tok = load_model("embedded"), load_tokenizer("embedded")
    train = load_task(cfg.task.name, "train", seed=seed)
    idx = prompts_for_step(len(train), 0, cfg.prompts_per_step, seed)
    examples = [train[i] for i in idx]
    ids = encode_prompts([e.prompt for e in examples], cfg.task.template, tok)
    gen = HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    scorer = make_scorer(cfg, workers=0)
    try:
        rollout = collect_rollout(cfg, 0, gen, tok, model, None, examples, ids, scorer)
    finally:
        scorer.close()
    return model, rollout, 32


def long_tail_rollout(seed: int = 0) -> tuple[Any, Rollout, int]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=4096, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048))
    g = torch.Generator().manual_seed(seed)
    B, G, T = 16, 8, 1024
    plen = torch.randint(64, 193, (B,), generator=g)
    P = int(plen.max())
    p_mask = (torch.arange(P)[None] >= (P - plen)[:, None]).long()
    lengths = torch.randint(32, T + 1, (B * G,), generator=g)
    c_mask = (torch.arange(T)[None] < lengths[:, None]).long()
    rollout = Rollout(torch.randint(1, 4096, (B, P), generator=g) * p_mask, p_mask,
                      torch.randint(1, 4096, (B * G, T), generator=g) * c_mask, c_mask, torch.zeros(B, G),
                      torch.randn(B * G, generator=g), None, None, {})
    return model, rollout, 16


def slots(rollout: Rollout, layout: str, micro: int, capacity: int) -> tuple[int, int]:
    """(token slots computed, real tokens) of one pass over the rollout in `layout`."""
    P = rollout.prompt_mask.sum(1).tolist()
    C = rollout.completion_mask.sum(1).tolist()
    G = rollout.group_size
    real = sum(P) + sum(C)
    if layout == "packed groups":
        return real, real
    if layout == "packed sequences":
        return sum(P[r // G] + C[r] for r in range(len(C))), real
    total = 0
    for start in range(0, len(C), micro):  # padded: the prompts of the micro-batch's groups, then n x T'
        rows = range(start, min(start + micro, len(C)))
        groups = {r // G for r in rows}
        total += len(groups) * max(P[g] for g in groups) + len(rows) * max(C[r] for r in rows)
    return total, real


def run(name: str, model: Any, rollout: Rollout, micro: int, repeats: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    T = rollout.completion_ids.shape[1]
    longest = int(rollout.prompt_mask.sum(1).max()) + T
    rows = torch.arange(rollout.completion_ids.shape[0])
    best = {k: float("inf") for k in LAYOUTS}
    losses = {}
    for _ in range(repeats):
        for layout, extra in LAYOUTS.items():
            capacity = longest * int(layout.rsplit("x", 1)[1]) if layout.startswith("packed") else 0
            budget = [f"optim.max_tokens_per_micro_batch={capacity}"] if capacity else []
            cfg = load_config(ZeroConfig, None, [f"optim.micro_batch_size={micro}", "grpo.kl_coef=0",
                                                 f"rollout.max_new_tokens={T}", *budget, *extra])
            opt = torch.optim.SGD(model.parameters(), lr=0.0)
            start = time.perf_counter()
            stats = _minibatch_step(cfg, model, opt, rollout, rows)
            best[layout] = min(best[layout], time.perf_counter() - start)
            losses[layout] = stats["loss"]
    out: dict[str, Any] = {"setting": name, "completions": len(rows), "micro_batch_size": micro,
                           "longest_sequence": longest, "layouts": {}}
    for layout in LAYOUTS:
        capacity = longest * int(layout.rsplit("x", 1)[1]) if layout.startswith("packed") else 0
        computed, real = slots(rollout, layout.rsplit(" x", 1)[0], micro, capacity)
        out["layouts"][layout] = {"max_tokens_per_micro_batch": capacity, "seconds": best[layout],
                                  "slots": computed, "real_tokens": real,
                                  "padding_share": 1 - min(real, computed) / computed if layout.startswith("padded")
                                  else 0.0,
                                  "loss": losses[layout], "speedup_vs_padded": best["padded"] / best[layout]}
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", default="embedded,long-tail")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results = []
    for name in args.settings.split(","):
        model, rollout, micro = embedded_rollout() if name == "embedded" else long_tail_rollout()
        result = run(name, model, rollout, micro, args.repeats, args.threads)
        results.append(result)
        for layout, r in result["layouts"].items():
            print(f"{name:>9} {layout:<20} {r['seconds']:7.3f} s  {r['speedup_vs_padded']:5.2f}x  "
                  f"slots {r['slots']:>7}  padding {r['padding_share']:5.1%}  loss {r['loss']:+.6f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
