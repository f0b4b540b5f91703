"""Peak memory of the completion log-prob pass (forward and backward), chunked against unchunked.

    python benchmarks/logprob_memory.py                       # T = 1k, 4k, 16k; Qwen2.5's vocabulary
    python benchmarks/logprob_memory.py --tokens 1024 --chunk 256 --out runs/bench/logprob_memory.json

Each measurement runs in its own process (a fresh allocator, so one run's peak cannot hide another's):
a tiny random Qwen2 decoder (2 layers, hidden 32) with Qwen2.5's vocabulary of 151,936, one prompt of
16 tokens and one completion of T tokens, `completion_logprobs` with gradients, then backward. The
decoder is made tiny on purpose, so that what is measured is the [T, V] output side, which is what
chunking changes. Memory is the process's peak resident set (`ru_maxrss`) minus the peak before the
pass, on CPU; `max_memory_allocated` on CUDA. The unchunked pass at 16k needs three [T, V] float32
tensors (logits, their exp, the gradient: 3 x 10 GB); a child that exceeds `--cap-gb` of address space
reports "over cap" instead of taking the machine down.

The bound the test checks (tests/unit/test_chunked_logprobs.py): the chunked pass stays below one
[T, V] float32 tensor, and the unchunked pass exceeds it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

QWEN_VOCAB = 151_936


def measure(tokens: int, chunk: int, vocab: int = QWEN_VOCAB, device: str = "cpu") -> dict[str, Any]:
    """Run one pass in this process and return its peak extra memory in bytes."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from r1kit.models.logprobs import completion_logprobs

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=tokens + 64)
    model = Qwen2ForCausalLM(config).to(device)
    prompt = torch.randint(0, vocab, (1, 16), device=device)
    completion = torch.randint(0, vocab, (1, tokens), device=device)
    ones = torch.ones_like
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss()
    logprobs, _ = completion_logprobs(model, prompt, ones(prompt), torch.zeros(1, dtype=torch.long, device=device),
                                      completion, ones(completion), chunk_tokens=chunk)
    logprobs.sum().backward()
    peak = torch.cuda.max_memory_allocated() - base if device.startswith("cuda") else _peak_rss() - base
    return {"tokens": tokens, "chunk_tokens": chunk, "vocab": vocab, "device": device, "peak_extra_bytes": peak,
            "logits_bytes": tokens * vocab * 4}


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def measure_in_child(tokens: int, chunk: int, *, vocab: int = QWEN_VOCAB, device: str = "cpu",
                     cap_gb: float = 16.0) -> dict[str, Any]:
    """`measure` in a fresh Python process limited to `cap_gb` of address space (CPU only)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import logprob_memory as m; "
            "print(json.dumps(m.measure(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))")
    limit = int(cap_gb * 2**30)

    def cap() -> None:
        if device == "cpu":
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # A fixed mmap threshold: glibc's adaptive one would serve freed chunk-sized blocks from the heap, whose
    # fragmentation keeps the resident set high after the memory is free (RSS would then measure malloc).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "1048576"}
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tokens), str(chunk), str(vocab),
                           device], capture_output=True, text=True, preexec_fn=cap, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"tokens": tokens, "chunk_tokens": chunk, "vocab": vocab, "device": device,
                "peak_extra_bytes": None, "logits_bytes": tokens * vocab * 4, "over_cap": True,
                "error": tail[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--chunk", type=int, default=512, help="chunk_tokens of the chunked pass (the default setting)")
    parser.add_argument("--vocab", type=int, default=QWEN_VOCAB)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cap-gb", type=float, default=16.0, help="address-space cap of each child (CPU)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'T':>6} {'[T,V] fp32':>11} {'chunked':>9} {'unchunked':>10} {'ratio':>6}")
    for t in args.tokens:
        chunked = measure_in_child(t, args.chunk, vocab=args.vocab, device=args.device, cap_gb=args.cap_gb)
        full = measure_in_child(t, 0, vocab=args.vocab, device=args.device, cap_gb=args.cap_gb)
        ratio = (full["peak_extra_bytes"] / chunked["peak_extra_bytes"]
                 if full["peak_extra_bytes"] and chunked["peak_extra_bytes"] else None)
        rows.append({"tokens": t, "chunked": chunked, "unchunked": full, "ratio": ratio})
        print(f"{t:>6} {_gb(chunked['logits_bytes']):>11} {_gb(chunked['peak_extra_bytes']):>9} "
              f"{_gb(full['peak_extra_bytes'], args.cap_gb):>10} {f'{ratio:.1f}x' if ratio else '>' :>6}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _gb(n: int | None, cap: float | None = None) -> str:
    return f"{n / 2**30:.2f} GB" if n is not None else f"> cap {cap:g}"


if __name__ == "__main__":
    main()
