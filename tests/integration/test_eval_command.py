"""`r1kit eval` end to end on the embedded model: outputs, resume, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.conftest import SHARED

from r1kit.cli import main
from r1kit.config import EvalRunConfig
from r1kit.evaluation.protocol import run_eval, score

DATA = str(SHARED / "data")


def _rows(out):
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_synthetic_and_math_subsets_write_every_output(tmp_path, capsys):
    out = tmp_path / "ev"
    code = main(["eval", "--quiet", "model=embedded", "tasks=arithmetic,gsm8k,math500", f"data_dir={DATA}",
                 "limit=6", "k=4", "greedy=true", "max_new_tokens=48", f"out_dir={out}"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"arithmetic", "gsm8k", "math500"}
    for r in results["tasks"].values():
        assert r["n_prompts"] == 6 and r["k"] == 4
        assert set(r["pass@k"]) == {"1", "2", "3", "4"}
        assert 0 <= r["pass@1"] <= r["pass@k"]["4"] <= 1
        assert r["pass@1_ci95"][0] <= r["pass@1"] <= r["pass@1_ci95"][1]
        assert 0 <= r["cons@k"] <= 1 and 0 <= r["greedy"] <= 1
        assert {"reflection", "response_tokens", "thinking_tokens_by_level", "language_mixing_rate"} <= set(
            r["analyses"])
    assert set(results["tasks"]["math500"]["analyses"]["thinking_tokens_by_level"]) <= {"1", "2", "3", "4", "5"}
    assert set(results["tasks"]["arithmetic"]["analyses"]["thinking_tokens_by_level"]) <= {"0", "1", "2", "3"}
    assert results["tasks"]["arithmetic"]["analyses"]["thinking_tokens_by_level"]  # every problem has one (its carries)
    assert results["overall"]["n_prompts"] == 18
    rows = _rows(out)
    assert len(rows) == 18
    assert all(len(r["completions"]) == len(r["correct"]) == len(r["tokens"]) == len(r["extracted"]) == 4
               for r in rows)
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 4
    assert {"scores.png", "pass_at_k.png", "lengths.png", "reflection.png", "thinking_by_level.png"} <= {
        p.name for p in (out / "plots").iterdir()}
    assert "pass@1" in capsys.readouterr().out


def test_an_interrupted_evaluation_resumes_without_regenerating(tmp_path):
    cfg = EvalRunConfig(model="embedded", tasks="arithmetic", limit=12, k=4, batch_size=16, max_new_tokens=48,
                        out_dir=str(tmp_path / "full"))
    full = run_eval(cfg)
    reference = (tmp_path / "full" / "samples.jsonl").read_text().splitlines(keepends=True)
    assert len(reference) == 12  # 3 batches of 4 prompts

    cut = tmp_path / "cut"
    cut.mkdir()
    run_eval(EvalRunConfig(**{**cfg.__dict__, "out_dir": str(cut), "limit": 4}))  # the first batch, done
    done = (cut / "samples.jsonl").read_text()
    assert done.splitlines(keepends=True) == reference[:4]
    (cut / "samples.jsonl").write_text(done + reference[4] + reference[5][:40])  # killed mid-batch, mid-line
    resumed = run_eval(EvalRunConfig(**{**cfg.__dict__, "out_dir": str(cut)}))
    lines = (cut / "samples.jsonl").read_text().splitlines(keepends=True)
    assert lines[:4] == reference[:4]  # finished prompts kept as they were
    latest = {json.loads(line)["index"]: line for line in lines[4:]}  # a redrawn batch's rows win
    assert [latest[i] for i in sorted(latest)] == reference[4:]  # drawn exactly as the uninterrupted run did
    assert resumed == full


@pytest.mark.parametrize(("args", "message"), [
    (["tasks=nope"], "unknown task 'nope'"),
    (["k=4", "pass_at=[8]"], "pass@8 needs at least 8 samples"),
    (["tasks=jsonl:{bad}?question=q&answer=a"], "bad.jsonl:2: missing field 'a'"),
    (["tasks=jsonl:{bad}?question=q"], "jsonl:PATH?question=FIELD&answer=FIELD"),
    (["model=/no/such/model"], "/no/such/model"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "1+1", "a": "2"}\n{"q": "2+2"}\n')
    out = tmp_path / "out"
    args = [a.replace("{bad}", str(bad)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "r1kit.cli", "eval", "--quiet", f"out_dir={out}", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_empty_completions_score_without_error():
    row = {"task": "t", "index": 0, "verifier": "math", "info": {}, "completions": ["", ""],
           "extracted": [None, None], "correct": [0, 0], "format": [0, 0], "tokens": [0, 0]}
    results = score({"t": [row]}, EvalRunConfig(k=2), count_tokens=len)
    assert results["tasks"]["t"]["pass@1"] == 0.0 and results["tasks"]["t"]["cons@k"] == 0.0


def test_a_custom_jsonl_benchmark_names_its_fields(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i} + {i} =", "a": str(2 * i)}) + "\n" for i in range(3)))
    results = run_eval(EvalRunConfig(tasks=f"jsonl:{data}?question=q&answer=a&verifier=integer", k=2,
                                     max_new_tokens=32, out_dir=str(tmp_path / "out")))
    assert results["tasks"]["mine"]["n_prompts"] == 3


@pytest.mark.usefixtures("needs_sandbox")
def test_humaneval_and_knights_knaves_run_through_their_verifiers(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval", "--quiet", "tasks=humaneval,knights_knaves", f"data_dir={DATA}", "limit=3", "k=2",
                 "max_new_tokens=16", f"out_dir={out}"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"humaneval", "knights_knaves"}
    rows = _rows(out)
    assert {r["verifier"] for r in rows} == {"code", "knights_knaves"}
    assert all(r["info"]["tests"]["entry_point"] for r in rows if r["task"] == "humaneval")
    # The tiny arithmetic model writes no Python and names nobody: every verdict is 0, none missing.
    assert [c for r in rows for c in r["correct"]] == [0] * 12
