"""Bad input stops `r1kit zero` before any work: one line naming the problem, exit 2, out_dir untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r1kit.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.path=/no/such/model"], "model path not found: /no/such/model"),
        (["stepz=3"], "unknown config key 'stepz'"),
        (["steps"], "malformed override 'steps'"),
        (["task.name=sudoku"], "unknown task 'sudoku'"),
        (["steps=many"], "'steps' expects an integer, got 'many'"),
        (["optim.lr=fast"], "'optim.lr' expects a number, got 'fast'"),
        (["group_size=1"], "'group_size' must be >= 2"),
        (["rewards={accuracy: 1, vibes: 1}"], "unknown reward 'vibes'"),
        (["task.name=gsm8k", "task.path=/no/such/data"], "gsm8k data not found"),
        (["task.path=/some/data"], "task 'arithmetic_bilingual' is generated"),
        (["--config", "/no/such.yaml"], "config file not found"),
    ],
)
def test_bad_input_one_line_exit_2_out_dir_untouched(tmp_path, capsys, args, message):
    out_dir = tmp_path / "run"
    code = main(["zero", f"out_dir={out_dir}", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("r1kit: error: ") and message in err
    assert err.count("\n") == 1, err
    assert not out_dir.exists()


def test_existing_out_dir_is_left_as_it_was(tmp_path, capsys):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    assert main(["zero", f"out_dir={out_dir}", "model.path=/missing"]) == 2
    assert [p.name for p in out_dir.iterdir()] == ["keep.txt"]


def test_a_model_directory_without_config_is_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["zero", f"out_dir={tmp_path / 'run'}", f"model.path={empty}"]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_console_script_exit_status_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "r1kit.cli", "zero", f"out_dir={tmp_path / 'r'}", "steps=x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "r1kit: error: config key 'steps' expects an integer, got 'x'"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["zero", "rewards={accuracy: 1, code: 1}"], ["eval", "tasks=humaneval"]])
def test_code_tasks_without_the_sandbox_stop_with_the_fix(tmp_path, command):
    # A machine without bubblewrap: the same interpreter with a PATH where neither bwrap nor apt-get is.
    import os

    from tests.conftest import SHARED

    extra = [] if command[0] == "zero" else [f"data_dir={SHARED / 'data'}", "limit=2"]
    out_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "r1kit.cli", *command, *extra, f"out_dir={out_dir}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("r1kit: error: ") and "r1kit setup-sandbox" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out_dir.exists()
