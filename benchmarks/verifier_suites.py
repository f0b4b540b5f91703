"""Score r1kit's graders, and math-verify 0.9.0 in-process, on the external grading suites.

../shared/verifier-cases holds math-verify's own test cases (269) and lighteval's extractive-match
cases (232: math, and multiple-choice letters in several languages). Each case gives a raw gold, a raw
prediction, the expected verdict and the options it was written for (match types, precision, strict).
r1kit grades math cases with `r1kit.rewards.math.grade` (isolated workers) and letter cases with
`r1kit.rewards.choice.verify_choice`. Cases where r1kit differs from the expected verdict are listed,
with a reason each, in tests/data/verifier_deviations.yaml.

Run: `python benchmarks/verifier_suites.py [--cases ../shared/verifier-cases]`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITES = ("math_verify_cases.jsonl", "lighteval_extractive_match_cases.jsonl")
LANGUAGES = {"ENGLISH": "en", "CHINESE": "zh", "FRENCH": "fr", "ARABIC": "ar", "HINDI": "hi"}


def load_cases(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def r1kit_verdicts(cases: list[dict[str, Any]]) -> list[bool]:
    from r1kit.rewards.choice import verify_choice
    from r1kit.rewards.math import MathOptions, grade_outcome

    verdicts = []
    for case in cases:
        if case["match_types"] == ["NativeLetters"]:
            language = LANGUAGES.get(case["language"], "en")
            verdicts.append(bool(verify_choice(case["pred"], case["gold"], {"language": language})))
            continue
        options = MathOptions(tuple(case["match_types"]), case["precision"], case["strict"],
                              case["allow_set_relation_comp"])
        outcome = grade_outcome(case["gold"], case["pred"], options=options)
        verdicts.append(outcome.status == "ok" and bool(outcome.value))
    return verdicts


def math_verify_verdicts(cases: list[dict[str, Any]]) -> list[bool]:
    """math-verify as its own test suite calls it (letters through its StringExtractionConfig)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify

    verdicts = []
    for case in cases:
        targets: list[Any] = []
        for kind in case["match_types"]:
            targets.append({"latex": LatexExtractionConfig(boxed_match_priority=0), "expr": ExprExtractionConfig()}
                           .get(kind, StringExtractionConfig()))
        verdicts.append(bool(verify(parse(case["gold"], targets), parse(case["pred"], targets),
                                    float_rounding=case["precision"], strict=case["strict"],
                                    allow_set_relation_comp=case["allow_set_relation_comp"])))
    return verdicts


def score(cases: list[dict[str, Any]], verdicts: list[bool]) -> tuple[int, list[str]]:
    failures = [c["nodeid"] for c, v in zip(cases, verdicts, strict=True) if v != bool(c["expected"])]
    return len(cases) - len(failures), failures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=Path, default=REPO.parent / "shared/verifier-cases")
    args = ap.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    out: dict[str, Any] = {}
    for name in SUITES:
        cases = load_cases(args.cases / name)
        ours, ours_failures = score(cases, r1kit_verdicts(cases))
        theirs, _ = score(cases, math_verify_verdicts(cases))
        out[name] = {"cases": len(cases), "r1kit": ours, "math_verify": theirs, "r1kit_failures": ours_failures}
        print(f"{name}: r1kit {ours}/{len(cases)}, math-verify 0.9.0 {theirs}/{len(cases)}")
        for nodeid in ours_failures:
            print(f"  r1kit differs: {nodeid}")
    return out


if __name__ == "__main__":
    main()
