"""`r1kit pipeline` end to end on the shortened recipe (recipes/tiny/r1-short.yaml): every stage runs and
the table has its exact shape; killed with SIGKILL in the middle of an RL stage and of an evaluation,
the same command resumes and ends with the same table.json as an uninterrupted run; a finished stage
is skipped; bad input stops before any work with one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from r1kit.evaluation.table import MEASURES

ROOT = Path(__file__).resolve().parents[2]
SHORT = ROOT / "recipes" / "tiny" / "r1-short.yaml"
CMD = [sys.executable, "-m", "r1kit.cli", "pipeline", "--quiet", "--config", str(SHORT), "ablations=true"]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, f"out_dir={out}", *extra], capture_output=True, text=True, timeout=900)


def _kill_when(out: Path, ready: Callable[[], bool]) -> None:
    proc = subprocess.Popen([*CMD, f"out_dir={out}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the pipeline ended before it could be killed"


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_pipeline_runs_every_stage_and_resumes_after_sigkill_to_the_same_table(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = _run(straight)
    assert done.returncode == 0, done.stderr
    table = json.loads((straight / "table.json").read_text())
    assert set(table) == {"stages", "students", "hacking"}
    assert set(table["stages"]) == {"r1_zero", "dev1", "dev2", "dev3", "r1"}
    assert set(table["students"]) == {"base", "rl", "distill", "teacher"}
    assert set(table["hacking"]) == {"window", "all_steps"}
    for group in ("stages", "students"):
        for m in table[group].values():
            assert set(MEASURES) <= set(m) and all(isinstance(m[k], float) for k in MEASURES)
    for h in table["hacking"].values():
        assert isinstance(h["proxy_gain"], float) and isinstance(h["gold_gain"], float)
    assert table["students"]["teacher"] == table["stages"]["r1"]
    assert (straight / "table.md").read_text().startswith("## Table 2 in miniature")
    assert "<table>" in (straight / "report.html").read_text()
    assert (straight / "plots" / "language.png").is_file()
    assert "stage times:" in done.stdout and "r1_all_steps" in done.stdout
    names = sorted(p.name for p in straight.iterdir() if p.is_dir())
    assert names[:12] == ["01-zero", "02-cold_start", "03-dev1", "04-dev2", "05-rs", "06-dev3", "07-rm", "08-r1",
                          "09-distill", "10-student_rl", "11-dev2_nolang", "12-r1_all_steps"]
    record = json.loads((straight / "08-r1" / "stage.json").read_text())
    assert set(record["inputs"]) == {"06-dev3/model", "07-rm/helpful/model", "07-rm/harmless/model"}

    # Killed in Dev2's RL (after its first step) and in R1's evaluation (after a batch of samples).
    _kill_when(killed, lambda: _lines(killed / "04-dev2" / "metrics.jsonl") >= 2)
    assert not (killed / "04-dev2" / "stage.json").exists()
    _kill_when(killed, lambda: _lines(killed / "08-r1" / "eval-r1" / "arithmetic" / "samples.jsonl") >= 1)
    assert not (killed / "08-r1" / "stage.json").exists()
    resumed = _run(killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "zero: finished earlier, skipped" in resumed.stderr
    assert json.loads((killed / "table.json").read_text()) == table

    # A finished pipeline, even moved elsewhere (under a path with a space), reruns as skips and writes the
    # same table; a changed setting of a finished stage is refused.
    moved = tmp_path / "moved dir"
    killed.rename(moved)
    again = _run(moved, "stages=dev1")
    assert again.returncode == 0 and "dev1: finished earlier, skipped" in again.stderr
    assert json.loads((moved / "table.json").read_text()) == table
    changed = _run(moved, "stages=dev1", "dev1.epochs=7")
    assert changed.returncode == 2 and "was made with other settings" in changed.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["stages=dev1,dev9"], "unknown stage 'dev9'"),
    (["stages=r1"], "stage r1 needs Dev3"),
    (["dev2.model.path=elsewhere"], "dev2.model.path is set by the pipeline"),
    (["dev2.stepz=3"], "unknown config key 'dev2.stepz'"),
    (["r1.reward_models.helpful.last_steps=99"], "the window is longer than the run"),
])
def test_bad_input_stops_before_any_work(tmp_path, extra, message):
    out = tmp_path / "out"
    done = _run(out, *extra)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not out.exists()


def test_grpo_stops_on_its_wall_time_budget_and_a_rerun_stays_stopped(tmp_path):
    # Table 6's RL student gets the distillation's wall time: max_wall_seconds counts the steps and
    # evaluations in metrics.jsonl (over resumed invocations), and ends with a final evaluation.
    from r1kit.config import ZeroConfig, load_config
    from r1kit.stages.grpo import run_grpo

    args = ["steps=4", "prompts_per_step=2", "group_size=2", "task.eval_size=4", "eval.samples=2", "eval.every=0",
            "save_every=1", "threads=1"]
    cfg = load_config(ZeroConfig, None, [*args, f"out_dir={tmp_path / 'a'}"])
    full = run_grpo(cfg, progress=False)
    assert full["steps"] == 4 and full["train_seconds"] > 0
    # A budget the initial evaluation already spends: no step is taken, and a rerun takes none either.
    one = load_config(ZeroConfig, None, [*args, f"out_dir={tmp_path / 'b'}", "max_wall_seconds=1e-9"])
    stopped = run_grpo(one, progress=False)
    assert stopped["steps"] == 0 and stopped["after"] == stopped["before"]
    again = run_grpo(one, progress=False)
    assert again["steps"] == 0 and again["after"] == stopped["after"]
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0]
