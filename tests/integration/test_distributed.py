"""Two processes (torch FSDP2 on gloo, launched by `dist.nproc=2`, i.e. torchrun) against one, on the
embedded model: GRPO, SFT and the reward model give the same metrics and final weights; a 2-process
GRPO run killed after a checkpoint resumes exactly; launch settings that cannot run stop with one line
and exit 2 before any process starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1kit.cli import main
from r1kit.stages.grpo import TIMING_KEYS

GRPO = ["steps=3", "prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2",
        "save_every=1", "rollout.max_new_tokens=64", "eval.max_new_tokens=48", "grpo.num_minibatches=2",
        "task.name=arithmetic"]
SFT = ["model.path=embedded", "epochs=1", "batch_size=16", "max_length=64", "eval_every=4", "save_every=4",
       "optim.lr=1e-3"]


def _r1kit(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "r1kit", *args], capture_output=True, text=True, timeout=timeout)


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def _close(a: list[dict], b: list[dict], tol: float) -> None:
    """Same rows, same keys, every number within `tol` (relative to max(1, |value|))."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys(), set(x) ^ set(y)
        for k, v in x.items():
            if isinstance(v, float):
                assert abs(v - y[k]) <= tol * max(1.0, abs(v)), (x["step"], k, v, y[k])
            else:
                assert v == y[k], (x["step"], k)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(next((out / "model").glob("*.safetensors")))


def _max_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def grpo_runs(tmp_path_factory) -> dict[str, Path]:
    """The same 3 GRPO steps in one process and in two."""
    root = tmp_path_factory.mktemp("grpo")
    assert main(["zero", *GRPO, f"out_dir={root / 'one'}", "threads=1", "--quiet"]) == 0
    done = _r1kit("zero", *GRPO, f"out_dir={root / 'two'}", "dist.nproc=2", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"one": root / "one", "two": root / "two"}


def test_grpo_two_processes_equal_one(grpo_runs):
    one, two = grpo_runs["one"], grpo_runs["two"]
    rows = _rows(one)
    assert any(r.get("reward/mean", 0) > 0 for r in rows), "no reward: the comparison would be vacuous"
    assert all(r.get("grad_norm", 1) > 0 for r in rows[1:])
    _close(rows, _rows(two), 1e-5)
    assert _max_gap(_weights(one), _weights(two)) < 1e-5
    # the run directory of the 2-process run is whole: one writer, a plot, a final model, the summary
    assert json.loads((two / "summary.json").read_text())["steps"] == 3
    assert (two / "plots" / "reward.png").is_file() or any((two / "plots").glob("*.png"))
    assert sorted(p.name for p in (two / "checkpoints").glob("step_*")) == ["step_000002", "step_000003"]


def test_grpo_killed_at_world_size_two_resumes_exactly(grpo_runs, tmp_path, kill_at):
    """SIGKILL to torchrun and both ranks after step 1's checkpoint; the same command resumes at world size 2
    and ends where the uninterrupted 2-process run ended."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit", "zero", *GRPO, f"out_dir={out}", "dist.nproc=2", "--quiet"]
    kill_at(cmd, out / "checkpoints" / "step_000001")
    assert not (out / "summary.json").exists()

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    invocations = [json.loads(line) for line in (out / "invocations.jsonl").read_text().splitlines()]
    assert invocations[-1]["resumed_from_step"] >= 1
    assert _rows(out) == _rows(grpo_runs["two"])  # same world size, same threads: bit for bit
    a, b = _weights(out), _weights(grpo_runs["two"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_one_step_off_in_two_processes_equals_one(tmp_path):
    """The background rollout thread of each rank gathers on its own process group, and the replica it samples
    from is refilled from the shards only while it is idle: two processes equal one, lag included."""
    args = [*GRPO, "rollout.off_policy_steps=1"]
    assert main(["zero", "--quiet", *args, f"out_dir={tmp_path / 'one'}", "threads=1"]) == 0
    done = _r1kit("zero", "--quiet", *args, f"out_dir={tmp_path / 'two'}", "dist.nproc=2")
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert [r.get("rollout/lag") for r in one] == [None, 0.0, 1.0, 1.0]
    _close(one, two, 1e-5)
    assert _max_gap(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-5


def test_sft_two_processes_equal_one(tmp_path):
    data = tmp_path / "sft.jsonl"
    with open(data, "w") as f:
        for i in range(120):
            a, b = 10 + (i * 37) % 90, 10 + (i * 53) % 90
            f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": f"{a + b} because {a} plus {b}"}) + "\n")
    assert main(["sft", *SFT, f"data={data}", f"out_dir={tmp_path / 'one'}", "threads=1", "--quiet"]) == 0
    done = _r1kit("sft", *SFT, f"data={data}", f"out_dir={tmp_path / 'two'}", "dist.nproc=2", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert one[-1]["eval/loss"] < 0.8 * one[0]["eval/loss"]  # it learns: the comparison is not vacuous
    _close(one, two, 1e-5)
    assert _max_gap(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-5


def test_reward_model_two_processes_equal_one(tmp_path):
    data = tmp_path / "pairs.jsonl"
    with open(data, "w") as f:
        for i in range(96):
            a, b = 10 + (i * 37) % 90, 10 + (i * 53) % 90
            pair = {"prompt": f"{a}+{b}=", "chosen": f"{a + b}", "rejected": f"{a + b + 1 + i % 7}"}
            f.write(json.dumps(pair) + "\n")
    args = ["model.path=embedded", f"data={data}", "epochs=1", "batch_size=16", "max_length=64", "eval_every=2",
            "template=plain"]
    assert main(["rm", "--quiet", *args, f"out_dir={tmp_path / 'one'}", "threads=1"]) == 0
    done = _r1kit("rm", "--quiet", *args, f"out_dir={tmp_path / 'two'}", "dist.nproc=2")
    assert done.returncode == 0, done.stderr[-3000:]
    _close(_rows(tmp_path / "one"), _rows(tmp_path / "two"), 1e-5)
    assert _max_gap(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-5


@pytest.mark.parametrize(("args", "message"), [
    (["prompts_per_step=6", "dist.nproc=4"], "does not split into 4 processes in whole groups"),
    (["grpo.num_minibatches=4", "prompts_per_step=8", "dist.nproc=4"], "does not split into 4 processes"),
    (["dist.backend=nccl", "dist.nproc=2"], "dist.backend=nccl needs a CUDA GPU"),
    (["dist.nproc=2", "model.lora.rank=8"], "model.lora.rank > 0 is not supported with several processes"),
    (["cluster.backend=ray", "cluster.trainer_workers=3", "prompts_per_step=16"], "does not split into 3"),
    (["dist.nproc=2", "model.path=/nonexistent"], "model path not found"),  # checked before torchrun starts
    (["dist.nproc=2", "rollout.off_policy_steps=2"], "must be 0 (synchronous) or 1"),
])
def test_bad_launch_is_one_line_and_exit_2_before_any_process(tmp_path, capsys, args, message):
    if "nccl" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    assert main(["zero", f"out_dir={out}", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_ray_requested_without_ray_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as on a machine without it
    assert main(["zero", f"out_dir={tmp_path / 'run'}", "cluster.backend=ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["r1kit: error: cluster.backend=ray needs Ray: pip install 'r1kit[ray]'"]
