"""`cluster.backend=ray` (r1kit.cluster): rollout and trainer workers as Ray actors on a local Ray.

The Ray run is the single-process run (same metrics, same final weights), a killed rollout worker stops it
with one clear error and an intact checkpoint, and rerunning resumes from it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ray = pytest.importorskip("ray")

from r1kit.cluster import ClusterError, RayGenerator, run_on_ray, shares, worker_name  # noqa: E402
from r1kit.config import ZeroConfig, load_config  # noqa: E402
from r1kit.stages.grpo import TIMING_KEYS, run_grpo  # noqa: E402
from r1kit.trainers.checkpoint import latest_checkpoint  # noqa: E402

ARGS = ["prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2",
        "rollout.max_new_tokens=48", "eval.max_new_tokens=32", "task.name=arithmetic", "grpo.num_minibatches=2",
        "save_every=1", "threads=1"]
RAY = ["cluster.backend=ray", "cluster.rollout_workers=2", "cluster.trainer_workers=2"]


def _cfg(out: Path, *extra: str) -> ZeroConfig:
    return load_config(ZeroConfig, None, [*ARGS, f"out_dir={out}", *extra])


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # about a minute on 2 cores
def test_ray_run_equals_single_process_run(tmp_path, local_ray):
    alone, remote = tmp_path / "alone", tmp_path / "ray"
    run_grpo(_cfg(alone, "steps=2"), progress=False)
    summary = run_on_ray("zero", _cfg(remote, "steps=2", *RAY))
    assert summary["steps"] == 2
    a, b = _rows(alone), _rows(remote)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k, v in ra.items():
            if k not in TIMING_KEYS:
                assert rb[k] == pytest.approx(v, abs=1e-5), (ra["step"], k)
    wa, wb = load_file(alone / "model" / "model.safetensors"), load_file(remote / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], atol=1e-5, rtol=0)
    syncs = [json.loads(line) for line in (remote / "sync.jsonl").read_text().splitlines()]
    assert len(syncs) == 3  # at the start, then after each of the 2 steps
    assert all(s["bytes"] > 0 and s["seconds"] > 0 and s["workers"] == 2 for s in syncs)


@pytest.mark.slow  # about a minute on 2 cores
def test_killed_rollout_worker_stops_the_run_and_rerun_resumes(tmp_path, local_ray):
    out = tmp_path / "run"
    cfg = _cfg(out, "steps=4", *RAY)
    victim = worker_name("killed", "rollout", 1)
    stop = threading.Event()

    def kill_after_step_1() -> None:
        while not (out / "checkpoints" / "step_000001").exists():
            if stop.wait(0.05):
                return
        ray.kill(ray.get_actor(victim, namespace="r1kit"))

    killer = threading.Thread(target=kill_after_step_1, daemon=True)
    killer.start()
    with pytest.raises(ClusterError) as e:
        try:
            run_on_ray("zero", cfg, run_id="killed")
        finally:
            stop.set()
            killer.join()
    message = str(e.value)
    assert victim in message and "rerun the same command to resume" in message, message
    assert "\n" not in message
    ckpt = latest_checkpoint(out)
    assert ckpt is not None and ckpt.step >= 1 and ckpt.damage() == ""
    assert f"step {ckpt.step}" in message
    assert not (out / "summary.json").exists()

    summary = run_on_ray("zero", cfg)
    assert summary["steps"] == 4
    assert [r["step"] for r in _rows(out)] == [0, 1, 2, 3, 4]


class _LocalWorker:
    """A stand-in rollout actor: `generate.remote` samples in this process and returns an object reference."""

    def __init__(self, engine, calls: list) -> None:
        self.engine, self.calls = engine, calls
        self.generate = self

    def remote(self, prompt_ids, params, num_samples, seed, first_group):
        self.calls.append((len(prompt_ids), first_group))
        return ray.put(self.engine.generate(prompt_ids, params, num_samples=num_samples, seed=seed,
                                            first_group=first_group))


def test_prompts_split_into_contiguous_groups_with_offsets(tmp_path, local_ray):
    from r1kit.models.loading import load_model, load_tokenizer
    from r1kit.rollout import HFGenerator, SamplingParams

    assert shares(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert shares(2, 3) == [(0, 1), (1, 2)]
    tokenizer = load_tokenizer("embedded")
    engine = HFGenerator(load_model("embedded", "float32", torch.device("cpu")), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    prompts = [tokenizer.encode(f"{a} + {b} =") for a, b in [(1, 2), (30, 4), (5, 66), (7, 8), (9, 10)]]
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    calls: list = []
    split = RayGenerator([_LocalWorker(engine, calls) for _ in range(3)], ["a", "b", "c"],
                         pad_token_id=tokenizer.pad_token_id, out_dir=tmp_path)
    got = split.generate(prompts[1:], params, num_samples=3, seed=5, first_group=1)
    want = engine.generate(prompts[1:], params, num_samples=3, seed=5, first_group=1)
    assert calls == [(2, 1), (1, 3), (1, 4)]
    width = want.completion_ids.shape[1]
    assert torch.equal(got.completion_ids[:, :width], want.completion_ids)
    assert torch.equal(got.completion_mask[:, :width], want.completion_mask)
    assert not got.completion_mask[:, width:].any()
    torch.testing.assert_close(got.logprobs[:, :width], want.logprobs, atol=1e-5, rtol=0)
