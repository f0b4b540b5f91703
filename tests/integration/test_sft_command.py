"""`r1kit sft` end to end on a tiny random model: it learns, writes its run directory, resumes exactly
after SIGKILL, and refuses bad data with one line before touching out_dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1kit.cli import main

TIMING = ("step_seconds", "tokens_per_s", "eval/seconds")


def _write_data(path: Path, n: int = 240) -> Path:
    import random

    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": f"{a + b}"}) + "\n")
        f.write(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                         {"role": "assistant", "content": "hello"}]}) + "\n")
    return path


def _args(model: Path, data: Path, out: Path) -> list[str]:
    return [f"model.path={model}", f"data={data}", f"out_dir={out}", "epochs=2", "batch_size=16", "max_length=64",
            "eval_every=4", "save_every=1", "threads=1", "optim.lr=3e-3", "--quiet"]


def _rows(out: Path) -> list[dict]:
    rows = []
    for line in (out / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append({k: v for k, v in json.loads(line).items() if k not in TIMING})
        except json.JSONDecodeError:
            break
    return rows


def _kill_after_step(cmd: list[str], out: Path, step: int) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and any(r["step"] >= step for r in _rows(out)):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def test_sft_learns_and_resumes_exactly_after_sigkill(tmp_path, tiny_random_model):
    data = _write_data(tmp_path / "data.jsonl")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit.cli", "sft"]
    done = subprocess.run([*cmd, *_args(tiny_random_model, data, straight)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["eval_loss_after"] < 0.8 * summary["eval_loss_before"]
    assert summary["steps"] == 2 * 15 and summary["eval_rows"] == 12
    assert (straight / "plots" / "loss.png").is_file() and (straight / "model" / "config.json").is_file()

    _kill_after_step([*cmd, *_args(tiny_random_model, data, killed)], killed, 7)
    _kill_after_step([*cmd, *_args(tiny_random_model, data, killed)], killed, 19)
    resumed = subprocess.run([*cmd, *_args(tiny_random_model, data, killed)], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(killed) == _rows(straight)
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("content", "message"), [
    (None, "SFT data not found"),
    ("", "has no rows"),
    ('{"prompt": "1", "completion": "2"}\nnot json\n', "data.jsonl:2: not valid JSON"),
    ('{"question": "x"}\n', "data.jsonl:1: a row needs 'messages', or 'prompt' and 'completion'"),
    (json.dumps({"prompt": "9" * 80, "completion": "1"}) + "\n", "data.jsonl:1: the prompt has"),
])
def test_bad_data_is_one_line_before_any_work(tmp_path, tiny_random_model, capsys, content, message):
    data = tmp_path / "data.jsonl"
    if content is not None:
        data.write_text(content)
    out = tmp_path / "run"
    assert main(["sft", *_args(tiny_random_model, data, out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()
