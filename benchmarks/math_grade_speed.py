"""Math verifications per second: r1kit's isolated `grade` against math-verify called in-process.

Both judge the same (gold, prediction) texts in one run: MATH-500's gold answers against predictions
made from them (the gold boxed in a sentence, the gold with one number changed, the gold as a bare
`$...$`, a decimal or fraction rewrite where one exists, and a wrong constant).

- **math-verify in-process** is what TRL/open-r1-style reward functions do:
  `verify(parse(gold), parse(pred))` in the main thread with its SIGALRM timeouts.
- **r1kit `grade_many`**: every pair through r1kit's worker processes (one per core), with a hard
  kill per item; **r1kit `grade`**: the same, one call at a time from one thread.

Run: `python benchmarks/math_grade_speed.py [--data ../shared/data/math500/test.jsonl] [--limit 500]`.
Prints verifications/s of each, the ratios, and how often the verdicts agree; writes
runs/bench/math_grade_speed.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def perturbations(answer: str) -> list[str]:
    """Predictions for one gold answer: right ones written differently and wrong ones."""
    preds = [f"Putting it together, the answer is $\\boxed{{{answer}}}$.", f"${answer}$"]
    number = re.search(r"\d+", answer)
    if number:
        changed = answer[: number.start()] + str(int(number.group()) + 1) + answer[number.end():]
        preds.append(f"so we get $\\boxed{{{changed}}}$")
    frac = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", answer)
    if frac:
        preds.append(f"The answer is {int(frac.group(1)) / int(frac.group(2)):.6f}")
    elif answer.isdigit():
        preds.append(f"<answer>{answer}.0</answer>")
    preds.append("the answer is $\\boxed{\\pi + 1}$")
    return preds


def load_pairs(path: Path, limit: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:limit]
    return [(row["answer"], pred) for row in rows for pred in perturbations(row["answer"])]


def run_math_verify(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    start = time.perf_counter()
    verdicts = [bool(verify(parse(f"${gold}$"), parse(pred))) for gold, pred in pairs]
    return verdicts, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/math500/test.jsonl")
    ap.add_argument("--limit", type=int, default=500, help="gold answers to use")
    ap.add_argument("--out", type=Path, default=REPO / "runs/bench/math_grade_speed.json")
    args = ap.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    from r1kit.rewards.math import grade, grade_many
    from r1kit.rewards.workers import shared_pool

    pairs = load_pairs(args.data, args.limit)
    print(f"{len(pairs)} (gold, prediction) pairs from {args.data}")
    grade("1", "1")  # start the workers outside the timers (a training run starts them once)
    from r1kit.rewards import math as r1math

    pool = shared_pool(r1math._worker_grade, warmup=("$1$", "$1$", r1math.DEFAULT_OPTIONS))
    for _ in range(pool.size):  # every worker warm
        grade("2", "2")

    mv_verdicts, mv_seconds = run_math_verify(pairs)
    start = time.perf_counter()
    outcomes = grade_many(pairs)
    many_seconds = time.perf_counter() - start
    start = time.perf_counter()
    one_verdicts = [grade(g, p) for g, p in pairs]
    one_seconds = time.perf_counter() - start

    many_verdicts = [o.status == "ok" and bool(o.value) for o in outcomes]
    n = len(pairs)
    out = {
        "pairs": n,
        "workers": pool.size,
        "cpu_count": os.cpu_count(),
        "math_verify_in_process": {"seconds": mv_seconds, "per_s": n / mv_seconds, "accepted": sum(mv_verdicts)},
        "r1kit_grade_many": {"seconds": many_seconds, "per_s": n / many_seconds, "accepted": sum(many_verdicts),
                             "timeouts": sum(o.status == "timeout" for o in outcomes)},
        "r1kit_grade_sequential": {"seconds": one_seconds, "per_s": n / one_seconds, "accepted": sum(one_verdicts)},
        "ratio_grade_many": mv_seconds / many_seconds,
        "ratio_grade_sequential": mv_seconds / one_seconds,
        "agreement_with_math_verify": sum(a == b for a, b in zip(many_verdicts, mv_verdicts, strict=True)) / n,
        "disagreements": [{"gold": g, "pred": p, "r1kit": a, "math_verify": b}
                          for (g, p), a, b in zip(pairs, many_verdicts, mv_verdicts, strict=True) if a != b][:50],
    }
    print(f"math-verify in-process : {out['math_verify_in_process']['per_s']:8.1f} verifications/s")
    print(f"r1kit grade_many       : {out['r1kit_grade_many']['per_s']:8.1f} verifications/s "
          f"({pool.size} workers) -> {out['ratio_grade_many']:.2f}x")
    print(f"r1kit grade, one by one: {out['r1kit_grade_sequential']['per_s']:8.1f} verifications/s "
          f"-> {out['ratio_grade_sequential']:.2f}x")
    print(f"verdicts agree on {100 * out['agreement_with_math_verify']:.1f}% of pairs; "
          f"accepted: math-verify {sum(mv_verdicts)}, r1kit {sum(many_verdicts)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
