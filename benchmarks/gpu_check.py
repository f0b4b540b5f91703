"""The one-GPU check: what r1kit's real-model path reaches on this machine, in at most about 6 minutes.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check-$(date +%F).json   # on a GPU
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check.json                     # CPU smoke test

No hub: the models are built from the Qwen2.5-0.5B and 1.5B configs with random weights in bfloat16 (a
tiny config with --smoke). The JSON is rewritten after every phase, so a run cut short keeps what it
measured. Phases:

0. the machine's ceiling: bf16 GEMM TFLOP/s and device copy bandwidth;
1. rollout tokens/s and peak memory, 64 prompts x G=8, 256 new tokens: r1kit's `hf` engine, HF
   `generate`, and transformers' continuous batching (`generate_batch`), in the same run, at fixed
   lengths (EOS forbidden: every row makes all its tokens) and at natural lengths (EOS made likely, so
   lengths spread as in RL and early exit counts);
2. log-prob parity in bf16, sampler against trainer: max and mean |delta|;
3. a GRPO micro-batch step (forward, backward) on about 16k packed tokens: tokens/s, MFU
   (6 N tokens / seconds / peak), max_memory_allocated, with chunked and with unchunked log-probs;
4. offload and onload seconds of the reference and of AdamW's state.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

QWEN = {  # the published configs of Qwen2.5-0.5B and -1.5B (config.json on the hub)
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peak, from the spec sheets
EOS = 151_643  # Qwen2.5's <|endoftext|>


def build(name: str, vocab: int, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, tie_word_embeddings=True, rope_theta=1e6, max_position_embeddings=32768,
                         eos_token_id=EOS % vocab, pad_token_id=EOS % vocab, **QWEN[name])
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    return model.eval()


class Clock:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
        """(result, seconds, peak bytes allocated on the device or None on the CPU)."""
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        out = fn()
        self.sync()
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return out, time.perf_counter() - start, peak


def phase0_ceiling(clock: Clock, smoke: bool) -> dict[str, Any]:
    n = 256 if smoke else 8192
    dtype = torch.float32 if smoke else torch.bfloat16
    a = torch.randn(n, n, device=clock.device, dtype=dtype)
    b = torch.randn(n, n, device=clock.device, dtype=dtype)
    a @ b
    reps = 3 if smoke else 20
    _, seconds, _ = clock.timed(lambda: [a @ b for _ in range(reps)])
    size = (1 << 20) if smoke else (1 << 30)
    x = torch.empty(size, dtype=torch.uint8, device=clock.device)
    y = torch.empty_like(x)
    y.copy_(x)
    _, copy_s, _ = clock.timed(lambda: [y.copy_(x) for _ in range(reps)])
    return {"gemm_tflops": 2 * n**3 * reps / seconds / 1e12, "gemm_n": n, "gemm_dtype": str(dtype),
            "copy_gb_per_s": 2 * size * reps / copy_s / 1e9}


def _eos_bias(model: Any, eos: int, bias: float) -> Any:
    """A hook adding `bias` to the EOS logit (inf: never; a finite value: EOS likely, geometric lengths)."""
    def hook(_module: Any, _args: Any, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[..., eos] = -math.inf if bias == -math.inf else out[..., eos] + bias
        return out

    return model.get_output_embeddings().register_forward_hook(hook)


def phase1_rollout(model: Any, clock: Clock, prompts: list[list[int]], G: int, new_tokens: int, eos: int,
                   natural_bias: float, continuous: bool = True) -> dict[str, Any]:
    from transformers import GenerationConfig

    from r1kit.rollout import HFGenerator, SamplingParams, left_pad

    engine = HFGenerator(model, eos_token_id=eos, pad_token_id=eos, batch_size=len(prompts) * G, dtype="bfloat16")
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=new_tokens)
    out: dict[str, Any] = {}
    for regime, bias in (("fixed", -math.inf), ("natural", natural_bias)):
        handle = _eos_bias(model, eos, bias)
        rows: dict[str, Any] = {}
        try:
            gen, s, peak = clock.timed(lambda: engine.generate(prompts, params, num_samples=G, seed=0))
            tokens = int(gen.completion_mask.sum())
            rows["r1kit_hf"] = {"tokens": tokens, "seconds": s, "tokens_per_s": tokens / s, "peak_bytes": peak,
                                "mean_length": tokens / len(gen.completion_ids)}
            ids, mask = left_pad(prompts, eos)
            ids, mask = ids.to(clock.device), mask.to(clock.device)
            config = GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
                                      num_return_sequences=G, eos_token_id=eos, pad_token_id=eos)
            res, s, peak = clock.timed(lambda ids=ids, mask=mask, config=config: model.generate(
                input_ids=ids, attention_mask=mask, generation_config=config))
            new = res[:, ids.shape[1]:]
            ended = (new == eos).int().cumsum(1)
            tokens = int(((ended - (new == eos).int()) == 0).sum())  # up to and including the first EOS
            rows["hf_generate"] = {"tokens": tokens, "seconds": s, "tokens_per_s": tokens / s, "peak_bytes": peak}
            if continuous:
                rows["hf_continuous_batching"] = _continuous(model, clock, prompts, config)
        finally:
            handle.remove()
        base = rows["hf_generate"]["tokens_per_s"]
        for name in rows:
            if rows[name].get("tokens_per_s"):
                rows[name]["vs_hf_generate"] = rows[name]["tokens_per_s"] / base
        out[regime] = rows
    return out


def _continuous(model: Any, clock: Clock, prompts: list[list[int]], config: Any) -> dict[str, Any]:
    import inspect

    # CUDA-graph warm-up happens once per process in real use; on the CPU (the smoke test) it only costs time.
    extra = {"warmup": False} if clock.device.type == "cpu" and "warmup" in inspect.signature(
        model.generate_batch).parameters else {}
    try:
        res, s, peak = clock.timed(lambda: model.generate_batch(prompts, generation_config=config,
                                                                progress_bar=False, **extra))
    except Exception as e:  # an API that moved between releases: say so, keep the other numbers
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    tokens = sum(len(r.generated_tokens) for r in res.values())
    return {"tokens": tokens, "seconds": s, "tokens_per_s": tokens / s, "peak_bytes": peak}


def phase2_parity(model: Any, prompts: list[list[int]], G: int, new_tokens: int, eos: int) -> dict[str, Any]:
    from r1kit.models.logprobs import completion_logprobs
    from r1kit.rollout import HFGenerator, SamplingParams, left_pad

    engine = HFGenerator(model, eos_token_id=eos, pad_token_id=eos, dtype="bfloat16")
    gen = engine.generate(prompts, SamplingParams(max_new_tokens=new_tokens), num_samples=G, seed=1)
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, eos)
    index = torch.arange(len(prompts)).repeat_interleave(G)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        trainer, _ = completion_logprobs(model, ids.to(device), mask.to(device), index.to(device),
                                         gen.completion_ids.to(device), gen.completion_mask.to(device),
                                         chunk_tokens=512)
    gap = (trainer.float().cpu() - gen.logprobs)[gen.completion_mask.bool()].abs()
    return {"max_abs": gap.max().item(), "mean_abs": gap.mean().item(), "tokens": int(gap.numel())}


def phase3_train(model: Any, clock: Clock, tokens: int, peak_flops: float | None, smoke: bool) -> dict[str, Any]:
    from r1kit.config import ZeroConfig, load_config
    from r1kit.trainers.grpo import Rollout, _minibatch_step

    model.float().train()  # float32 master weights, bf16 autocast: the trainer's mixed precision
    vocab = model.config.vocab_size
    G, P, T = 8, 128 if not smoke else 8, 512 if not smoke else 16
    B = max(1, tokens // (P + G * T))
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(T // 4, T + 1, (B * G,), generator=g)
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    rollout = Rollout(torch.randint(0, vocab, (B, P), generator=g), torch.ones(B, P, dtype=torch.long),
                      torch.randint(0, vocab, (B * G, T), generator=g), mask, torch.zeros(B, G),
                      torch.randn(B * G, generator=g), None, None, {})
    real = B * P + int(mask.sum())
    n_params = sum(p.numel() for p in model.parameters())
    out: dict[str, Any] = {"tokens": real, "prompts": B, "group_size": G, "parameters": n_params}
    rows = torch.arange(B * G)
    for name, chunk in (("chunked", 512), ("unchunked", 0)):
        cfg = load_config(ZeroConfig, None, ["model.dtype=bfloat16", f"model.logprob_chunk_tokens={chunk}",
                                             f"optim.max_tokens_per_micro_batch={real + 1}", "grpo.kl_coef=0",
                                             f"rollout.max_new_tokens={T}"])
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        try:
            _minibatch_step(cfg, model, optimizer, rollout, rows)  # warm-up
            _, s, peak = clock.timed(lambda cfg=cfg, opt=optimizer: _minibatch_step(cfg, model, opt, rollout,
                                                                                    rows))
        except torch.OutOfMemoryError as e:
            out[name] = {"error": f"out of memory: {str(e).splitlines()[0][:160]}"}
            continue
        finally:
            model.zero_grad(set_to_none=True)
        out[name] = {"seconds": s, "tokens_per_s": real / s, "peak_bytes": peak,
                     "mfu": 6 * n_params * real / s / peak_flops if peak_flops else None}
    return out


def phase4_offload(model: Any, clock: Clock) -> dict[str, Any]:
    from r1kit.models.offload import CPU, Offload

    reference = model.to(torch.bfloat16)
    optimizer = torch.optim.AdamW(model.parameters())
    for p in model.parameters():
        optimizer.state[p] = {"exp_avg": torch.zeros_like(p, dtype=torch.float32),
                              "exp_avg_sq": torch.zeros_like(p, dtype=torch.float32)}
    offload = Offload(clock.device, frozenset({"reference", "optimizer"}))
    out = {}
    for what, obj in (("reference", reference), ("optimizer", optimizer)):
        _, off, _ = clock.timed(lambda obj=obj, what=what: offload.move(what, obj, CPU))
        _, on, _ = clock.timed(lambda obj=obj, what=what: offload.move(what, obj, clock.device))
        out[what] = {"offload_seconds": off, "onload_seconds": on}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny config on the CPU (the suite's smoke test)")
    parser.add_argument("--out", required=True, help="the JSON, rewritten after each phase")
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--skip-continuous-batching", action="store_true",
                        help="leave out generate_batch (about 40 s of set-up per call on a CPU)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    clock = Clock(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), None)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "device": gpu, "torch": torch.__version__,
                              "smoke": args.smoke, "peak_bf16_flops": peak, "phases": {}}
    import transformers

    result["transformers"] = transformers.__version__
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(name: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        try:
            result["phases"][name] = fn()
        except Exception as e:  # one failing phase must not lose the others' numbers
            result["phases"][name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
        result["phases"][name + "_seconds"] = time.perf_counter() - start
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: {json.dumps(result['phases'][name])[:400]}", flush=True)

    record("0_ceiling", lambda: phase0_ceiling(clock, args.smoke))
    models = ["tiny"] if args.smoke else args.models.split(",")
    vocab = 1000 if args.smoke else 151_936
    eos = EOS % vocab
    n_prompts, G, new = (4, 2, 8) if args.smoke else (64, 8, 256)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, vocab - 1, (int(n),), generator=g).tolist()
               for n in torch.randint(32 if not args.smoke else 3, 128 if not args.smoke else 8, (n_prompts,),
                                      generator=g)]
    natural = math.log(vocab / 128)  # EOS about 1/128 likely per token on near-uniform logits: a wide spread
    for name in models:
        model = build(name, vocab, device, torch.bfloat16)
        record(f"1_rollout/{name}", lambda model=model: phase1_rollout(model, clock, prompts, G, new, eos, natural,
                                                                    not args.skip_continuous_batching))
        record(f"2_logprob_parity/{name}", lambda model=model: phase2_parity(model, prompts[:8], G, min(new, 64), eos))
        if name == models[-1]:
            record(f"3_train_step/{name}", lambda model=model: phase3_train(model, clock, 256 if args.smoke else 16384,
                                                                          peak, args.smoke))
            record(f"4_offload/{name}", lambda model=model: phase4_offload(model, clock))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


if __name__ == "__main__":
    main()
