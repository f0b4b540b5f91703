"""A training run's directory as a user meets it across invocations: resuming under other settings is
refused without touching it, extending `steps` resumes, a damaged checkpoint falls back to the previous
one, `--print-config` round-trips, and TensorBoard / W&B receive what metrics.jsonl holds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from r1kit.cli import main
from r1kit.config import ZeroConfig, load_config
from r1kit.stages.grpo import TIMING_KEYS

SMALL = ["prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2", "threads=1",
         "--quiet"]


def _start(out_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "r1kit.cli", "zero", f"out_dir={out_dir}", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _zero(out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _wait(_start(out_dir, *args))


def _rows(out_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_changed_settings_are_refused_and_more_steps_resume(tmp_path):
    run, straight = tmp_path / "y", tmp_path / "straight"
    first = _zero(run, "steps=2", *SMALL)
    assert first.returncode == 0, first.stderr
    before = _tree(run)

    refused = _zero(run, "steps=4", "optim.lr=1e-2", *SMALL)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "optim.lr 5e-05 -> 0.01" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _tree(run) == before  # byte-identical, config.yaml included

    extended, alone = _start(run, "steps=8", *SMALL), _start(straight, "steps=8", *SMALL)
    assert _wait(extended).returncode == 0 and _wait(alone).returncode == 0
    history = [json.loads(line) for line in (run / "invocations.jsonl").read_text().splitlines()]
    assert [(h["resumed_from_step"], h["changed"]) for h in history] == [(0, []), (2, ["steps"])]
    # The same run as 8 steps straight, but for the evaluation the first invocation made at its last step.
    extended_rows = [{k: v for k, v in r.items() if r["step"] != 2 or not k.startswith("eval/")}
                     for r in _rows(run)]
    assert extended_rows == _rows(straight)


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    base = tmp_path / "base"
    args = ["save_every=2", "logging.tensorboard=true", *SMALL]
    assert _zero(base, "steps=4", *args).returncode == 0
    runs = {name: tmp_path / name for name in ("state", "policy", "undamaged", "none")}
    for path in runs.values():
        shutil.copytree(base, path)
    newest = Path("checkpoints") / "step_000004"
    _truncate(runs["state"] / newest / "trainer_state.pt")
    _truncate(runs["policy"] / newest / "policy" / "model.safetensors")
    shutil.rmtree(runs["undamaged"] / newest)  # what an intact step-2 checkpoint resumes like
    for ckpt in (runs["none"] / "checkpoints").glob("step_*"):
        _truncate(ckpt / "trainer_state.pt")

    started = {name: _start(path, "steps=6", *args) for name, path in runs.items()}  # side by side
    results = {name: _wait(proc) for name, proc in started.items()}
    for name in ("state", "policy"):
        done = results[name]
        assert done.returncode == 0, done.stderr
        warning = [line for line in done.stderr.splitlines() if "r1kit: warning:" in line]
        assert len(warning) == 1 and "step_000004 is damaged" in warning[0] and "Traceback" not in done.stderr
        assert _rows(runs[name]) == _rows(runs["undamaged"])
        _assert_tensorboard_matches(runs[name])

    nothing = results["none"]
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    assert nothing.stderr.splitlines()[-1].startswith("r1kit: error: no usable checkpoint")


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _assert_tensorboard_matches(out_dir: Path) -> None:
    """Every scalar of metrics.jsonl is in the event files once per step, with its value (float32)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    keys = {k for r in rows for k, v in r.items() if k != "step" and isinstance(v, int | float)}
    assert set(events.Tags()["scalars"]) == keys
    for key in keys:
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        expected = [(r["step"], r[key]) for r in rows if key in r]
        assert [s for s, _ in logged] == [s for s, _ in expected], key
        for (_, got), (_, want) in zip(logged, expected):
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6), key


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["zero", "--print-config", "optim.lr=1e-4", "rewards={accuracy: 1, format: 0.5}"]) == 0
    text = capsys.readouterr().out
    assert "  lr: 0.0001  # Peak learning rate of AdamW" in text
    recipe = tmp_path / "my.yaml"
    recipe.write_text(text)
    expected = load_config(ZeroConfig, None, ["optim.lr=1e-4", "rewards={accuracy: 1, format: 0.5}"])
    assert load_config(ZeroConfig, recipe) == expected
    assert main(["zero", "--config", str(recipe), f"out_dir={tmp_path / 'z'}", "steps=2", *SMALL]) == 0
    assert json.loads((tmp_path / "z" / "summary.json").read_text())["steps"] == 2


def test_wandb_receives_every_row_offline(tmp_path):
    pytest.importorskip("wandb")
    out = tmp_path / "wb"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    done = subprocess.run([sys.executable, "-m", "r1kit.cli", "zero", f"out_dir={out}", "steps=2",
                           "logging.wandb=r1kit-tests", *SMALL], env=env, text=True, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    history = _wandb_history(next(out.glob("wandb/offline-run-*/run-*.wandb")))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["_step"] for h in history] == [r["step"] for r in rows]
    for h, r in zip(history, rows):
        assert {k: v for k, v in h.items() if not k.startswith("_")} == pytest.approx(
            {k: v for k, v in r.items() if k != "step"})


def _wandb_history(path: Path) -> list[dict]:
    """The history records of a W&B run file: a LevelDB-style log (32 KiB blocks of chunks with a 7-byte
    header: crc, length, type) of protobuf `Record`s, after a 7-byte file header."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, records, partial = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):
            pos += left  # the rest of a block is padding
            continue
        partial += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(partial)
            partial = b""
    history = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
    return history


def test_a_missing_reporter_package_stops_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` sees where it is not installed
    out = tmp_path / "run"
    assert main(["zero", f"out_dir={out}", "logging.wandb=proj"]) == 2
    err = capsys.readouterr().err
    assert err == "r1kit: error: logging.wandb=proj needs the wandb package: pip install wandb\n"
    assert not out.exists()


def test_a_multi_task_recipe_runs_as_r1kit_grpo(tmp_path, capsys):
    out = tmp_path / "mix"
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "grpo-mix.yaml"
    assert main(["grpo", "--config", str(recipe), f"out_dir={out}", "steps=2", "task.eval_size=8",
                 "tasks=[{name: arithmetic_bilingual, weight: 3}, {name: countdown, weight: 1, rewards: "
                 "{accuracy: 1.0}, eval_size: 4}]", "eval.samples=2", "threads=1", "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"task/arithmetic/accuracy", "task/arithmetic_zh/accuracy", "task/countdown/accuracy"} <= rows[1].keys()
    assert "reward/format/mean" in rows[1] and "eval/countdown/pass@1" in rows[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == ["arithmetic_bilingual", "countdown"] and summary["eval"]["n_prompts"] == 12
