"""`r1kit sample` on the embedded base: SFT-ready rows of correct, readable samples, a report of what was
dropped and why, and a SIGKILL at any instant loses no prompt and duplicates no row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1kit.cli import main
from r1kit.config import SFTConfig, load_config
from r1kit.stages.sft import load_data

ARGS = ["model=embedded", "tasks=arithmetic,arithmetic_zh", "k=4", "keep=2", "limit=24", "batch_size=16",
        "threads=1", "--quiet"]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "r1kit.cli", "sample", f"out_dir={out}", *ARGS]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_sample_survives_sigkill_without_duplicates_or_loss(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run(_cmd(straight), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in _lines(straight / "data.jsonl")]
    report = json.loads((straight / "report.json").read_text())
    assert report["prompts"] == 48 and report["samples"] == 192 and report["kept"] == len(rows) > 0
    assert sum(report["dropped"].values()) >= report["samples"] - report["kept"]
    for row in rows:
        assert row["messages"][0] == {"role": "user", "content": row["prompt"]}
        assert row["messages"][1] == {"role": "assistant", "content": row["completion"]}
        assert {"task", "answer", "verdict", "model", "sample", "index"} <= row.keys()
    assert (straight / "plots" / "filters.png").is_file()

    for stop_after in (9, 30):
        proc = subprocess.Popen(_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_lines(killed / "progress.jsonl")) >= stop_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = subprocess.run(_cmd(killed), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _lines(killed / "data.jsonl") == _lines(straight / "data.jsonl")
    assert len(_lines(killed / "progress.jsonl")) == 48

    # The rows are SFT data as they are.
    cfg = load_config(SFTConfig, None, [f"data={straight / 'data.jsonl'}", "eval_fraction=0"])
    from r1kit.models.loading import load_tokenizer

    train, _ = load_data(cfg, load_tokenizer("embedded"))
    assert len(train) == len(rows)


@pytest.mark.parametrize(("args", "message"), [
    (["keep=5", "k=4"], "keep=5 > k=4"),
    (["tasks=sudoku"], "unknown task 'sudoku'"),
    (["judge=/no/such/judge", "judge_tasks=arithmetic"], "model path not found: /no/such/judge"),
    (["judge_tasks=arithmetic"], "judge_tasks needs a judge model"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["sample", f"out_dir={out}", "model=embedded", "limit=2", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()
