"""The R1 data stages end to end at small scale on the embedded models: cold start, distillation and the
judge, through the CLI, each leaving its data, plots and summary."""

from __future__ import annotations

import json

from r1kit.cli import main
from r1kit.rewards import VERIFIERS, extract_answer
from r1kit.sampling import readability_issues
from r1kit.stages import STAGES


def test_every_stage_is_a_cli_command_with_a_printable_config(capsys):
    for name in STAGES:
        assert main([name, "--print-config"]) == 0
        assert capsys.readouterr().out.startswith("# ")


def test_cold_start_writes_correct_readable_bilingual_rows(tmp_path, capsys):
    out = tmp_path / "cold"
    assert main(["cold-start", f"out_dir={out}", "solver_examples=60", "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and {r["language"] for r in rows} == {"en", "zh"}
    for r in rows:
        verifier = "countdown" if r["task"] == "countdown" else "integer"
        info = {"numbers": [int(x) for x in r["prompt"].split(" from ")[1].split(" with")[0].split(", ")],
                "target": int(r["prompt"].split()[1])} if verifier == "countdown" else {}
        assert VERIFIERS[verifier](extract_answer(r["completion"]), r["answer"], info)
        assert readability_issues(r["completion"], language=r["language"]) == []
        assert r["messages"][1]["content"] == r["completion"]
    assert (out / "plots" / "sources.png").is_file() and json.loads((out / "summary.json").read_text())["rows"] == 60


def test_distill_reports_the_students_pass1_before_and_after(tmp_path, capsys):
    out = tmp_path / "distill"
    args = ["distill", f"out_dir={out}", "teacher=embedded", "student=embedded-student", "tasks=arithmetic",
            "limit=24", "k=4", "keep=2", "epochs=1", "eval_size=8", "eval_samples=2", "threads=1", "--quiet"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["before"]) == set(summary["after"]) == {"arithmetic", "overall"}
    assert summary["sample"]["kept"] > 0 and summary["sft"]["steps"] >= 1
    assert (out / "sft" / "model" / "config.json").is_file() and (out / "plots" / "student_pass1.png").is_file()


def test_the_judge_is_trained_and_its_agreement_measured(tmp_path, capsys):
    out = tmp_path / "judge"
    assert main(["judge", f"out_dir={out}", "tasks=arithmetic", "limit=24", "heldout=12", "k=4", "epochs=1",
                 "threads=1", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["agreement"] <= 1 and summary["heldout_pairs"] > 0
    assert set(summary["by_task"]) == {"arithmetic"} and (out / "sft" / "model" / "config.json").is_file()
