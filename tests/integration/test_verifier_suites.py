"""r1kit's graders on the external suites: at least math-verify's own scores, deviations exactly as listed."""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from tests.conftest import REPO, SHARED

spec = importlib.util.spec_from_file_location("verifier_suites", REPO / "benchmarks/verifier_suites.py")
assert spec and spec.loader
suites = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suites)

DEVIATIONS = yaml.safe_load((REPO / "tests/data/verifier_deviations.yaml").read_text())


@pytest.mark.parametrize(("name", "floor"), [("math_verify_cases.jsonl", 269),
                                             ("lighteval_extractive_match_cases.jsonl", 220)])
def test_suite_score_and_listed_deviations(name, floor):
    cases = suites.load_cases(SHARED / "verifier-cases" / name)
    passed, failures = suites.score(cases, suites.r1kit_verdicts(cases))
    assert passed >= floor, failures
    listed = [entry["id"] for entry in DEVIATIONS[name] or []]
    assert all(entry["reason"].strip() for entry in DEVIATIONS[name] or [])
    assert sorted(failures) == sorted(listed)


def test_every_letter_case_passes():
    cases = [c for c in suites.load_cases(SHARED / "verifier-cases/lighteval_extractive_match_cases.jsonl")
             if c["match_types"] == ["NativeLetters"]]
    assert len(cases) == 15
    assert suites.score(cases, suites.r1kit_verdicts(cases)) == (15, [])
