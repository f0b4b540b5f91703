"""The evaluation metrics against lighteval's metric fixtures (../shared/verifier-cases/lighteval_metric_fixtures).

Two checks per fixture:
1. **Formula**: r1kit's pass@k / G-Pass@k / mG-Pass@k / avg@k / maj@k reproduce the expected value for
   some count of correct samples (lighteval's own verdicts are not in the fixtures), so the formulas agree.
2. **End to end**: with r1kit's graders deciding each sample, the value equals the expected one, except
   the cases listed in tests/data/metric_fixture_deviations.yaml where lighteval's grader is wrong.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml
from tests.conftest import REPO, SHARED

from r1kit.evaluation.metrics import bootstrap_ci, g_pass_at_k, majority_index, mg_pass_at_k, pass_at_k
from r1kit.rewards.choice import verify_choice
from r1kit.rewards.math import grade

FIXTURES = sorted((SHARED / "verifier-cases/lighteval_metric_fixtures").glob("*.json"))
DEVIATIONS = yaml.safe_load((REPO / "tests/data/metric_fixture_deviations.yaml").read_text()) or {}


def _cases():
    for path in FIXTURES:
        for case in json.loads(path.read_text())["test_cases"]:
            yield pytest.param(path.stem, case, id=f"{path.stem}:{case['name']}")


def _golds(doc):
    idx = doc["gold_index"]
    return [doc["choices"][i] for i in idx] if isinstance(idx, list) else [doc["choices"][idx]]


def _correct(family: str, gold: str, pred: str) -> bool:
    """r1kit's verdict for one sample, by the fixture's family of grader."""
    if "math" in family or "latex" in family or family == "expr_gold_metric":
        return grade(gold, pred)
    if "letters" in family or "gpqa" in family:
        return verify_choice(pred, gold, {})
    return pred.strip() == gold.strip()  # lighteval's exact match (strip_strings)


def _metric(family: str, params: dict, key: str, verdicts: list[bool]) -> float:
    n, c = len(verdicts), sum(verdicts)
    k = params.get("k", 1)
    if key.startswith(("avg@", )):
        return sum(verdicts[:k]) / k
    if key.startswith("maj@"):
        return float(verdicts[0]) if verdicts else 0.0  # verdict of the majority answer, passed in first
    if "g-pass@" in key:
        tail = key.rsplit("_", 1)[-1]
        if "@" in tail:  # mg-pass@k, mmath_g-pass@k: no threshold suffix
            return mg_pass_at_k(n, c, k)
        return g_pass_at_k(n, c, k, float(tail))
    if "pass@" in key:
        return pass_at_k(n, c, k)
    return float(verdicts[0])  # extractive_match of a single sample


def _close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, abs_tol=max(tol, 1e-9))


@pytest.mark.parametrize(("family", "case"), list(_cases()))
def test_formula_reproduces_fixture(family, case):
    n = len(case["model_response"]["text"])
    tol = case.get("tolerance", 0.01)
    for key, expected in case["expected_output"].items():
        k = case["metric_params"].get("k", 1)
        if key.startswith("maj@"):
            options = [[True], [False]]
        elif key.startswith("avg@"):
            options = [[True] * c + [False] * (k - c) for c in range(k + 1)]
        else:
            options = [[True] * c + [False] * (n - c) for c in range(n + 1)]
        assert any(_close(_metric(family, case["metric_params"], key, v), expected, tol) for v in options), key


@pytest.mark.parametrize(("family", "case"), list(_cases()))
def test_end_to_end_with_r1kit_graders(family, case):
    golds, texts = _golds(case["doc"]), case["model_response"]["text"]
    gold = golds[0]  # lighteval scores against the first gold (see avg_at_k's three-gold case)
    verdicts = [_correct(family, gold, t) for t in texts]
    mismatches = []
    for key, expected in case["expected_output"].items():
        if key.startswith("maj@"):
            k = case["metric_params"]["k"]
            winner = majority_index(texts[:k], lambda a, b: a.strip() == b.strip())
            got = float(winner is not None and verdicts[winner])
        else:
            got = _metric(family, case["metric_params"], key, verdicts)
        if not _close(got, expected, case.get("tolerance", 0.01)):
            mismatches.append(key)
    listed = DEVIATIONS.get(f"{family}:{case['name']}")
    if listed:
        assert mismatches, f"listed as a deviation but r1kit now agrees: {family}:{case['name']}"
        assert listed["reason"].strip()
    else:
        assert not mismatches, (family, case["name"], mismatches, verdicts)


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    values = [float(i % 3 == 0) for i in range(300)]
    lo, hi = bootstrap_ci(values, seed=1)
    assert lo < sum(values) / len(values) < hi and hi - lo < 0.15
    assert bootstrap_ci(values, seed=1) == (lo, hi)
