"""`r1kit sample` against `r1kit eval` on the same model, prompts, k and sampling settings, in one process.

    python benchmarks/sample_speed.py                              # the embedded model, 256 prompts x 8
    python benchmarks/sample_speed.py --model runs/dev1/model --template r1

Both run end to end (prompts, generation, verification, writing their outputs) into fresh directories,
twice each, alternating, and the best of each is kept; samples/s = prompts x k / wall seconds. Rejection
sampling adds the readability filters and the keep/drop decision to what an evaluation does, so it
should be about as fast.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from r1kit.config import EvalRunConfig, ModelConfig, SampleConfig
from r1kit.evaluation.protocol import run_eval
from r1kit.stages.sample import run_sample


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--template", default="r1_zero", choices=["r1_zero", "chat", "r1"])
    parser.add_argument("--tasks", default="arithmetic,arithmetic_zh")
    parser.add_argument("--prompts", type=int, default=256, help="per task")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    n_samples = args.prompts * args.k * len(args.tasks.split(","))
    best = {"eval": float("inf"), "sample": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in ("eval", "sample"):
                out = Path(tmp) / f"{name}-{r}"
                start = time.perf_counter()
                if name == "eval":
                    run_eval(EvalRunConfig(model=args.model, tasks=args.tasks, k=args.k, temperature=0.7,
                                           max_new_tokens=args.max_new_tokens, template=args.template,
                                           limit=args.prompts, out_dir=str(out)))
                else:
                    run_sample(SampleConfig(model=ModelConfig(path=args.model), tasks=args.tasks, split="test",
                                            k=args.k, keep=args.k, limit=args.prompts, template=args.template,
                                            temperature=0.7, max_new_tokens=args.max_new_tokens, out_dir=str(out)),
                               progress=False)
                best[name] = min(best[name], time.perf_counter() - start)
    result = {"model": args.model, "samples": n_samples, "eval_samples_per_s": n_samples / best["eval"],
              "sample_samples_per_s": n_samples / best["sample"], "ratio": best["eval"] / best["sample"]}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
