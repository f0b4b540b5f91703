"""How long `r1kit eval` takes on the embedded model: 256 prompts x 8 samples (target: <= 60 s, 2 cores).

Times the whole evaluation (model load excluded, as it is seconds of imports): sampling, grading,
cons@k votes, bootstrap intervals, analyses, plots and the HTML report, in a fresh out_dir.

Run: `python benchmarks/eval_speed.py [--prompts 256] [--k 8] [--threads 2]`; writes
runs/bench/eval_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "runs/bench/eval_speed.json")
    args = ap.parse_args(argv)

    from r1kit.config import EvalRunConfig
    from r1kit.evaluation import protocol
    from r1kit.models.loading import load_model, load_tokenizer

    load_tokenizer("embedded"), load_model("embedded")  # imports and first load outside the timer
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EvalRunConfig(model="embedded", tasks="arithmetic", k=args.k, limit=args.prompts,
                            threads=args.threads, out_dir=tmp)
        start = time.perf_counter()
        results = protocol.run_eval(cfg)
        seconds = time.perf_counter() - start
    r = results["tasks"]["arithmetic"]
    out = {"seconds": seconds, "prompts": r["n_prompts"], "k": args.k, "completions_per_s": r["n_prompts"] * args.k
           / seconds, "pass@1": r["pass@1"], "threads": args.threads, "load_average": list(os.getloadavg())}
    print(f"r1kit eval, embedded model, {r['n_prompts']} prompts x {args.k} samples: {seconds:.1f} s "
          f"({out['completions_per_s']:.0f} completions/s; target <= 60 s); pass@1 {r['pass@1']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
