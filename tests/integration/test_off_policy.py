"""One-step-off asynchronous rollout (`rollout.off_policy_steps=1`) on the embedded model: the batch step k
trains on was generated, and its old log-probs computed, by the policy of step k-1 (exactly one step of
lag, proved from the weights themselves); a run killed after a checkpoint resumes exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import r1kit.trainers.grpo as grpo
from r1kit.cli import main
from r1kit.rollout.hf import HFGenerator
from r1kit.stages.grpo import TIMING_KEYS

ARGS = ["steps=4", "prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2",
        "rollout.max_new_tokens=64", "eval.max_new_tokens=32", "task.name=arithmetic", "grpo.num_minibatches=2",
        "rollout.off_policy_steps=1", "threads=1"]


def _fingerprint(model: torch.nn.Module) -> tuple[float, ...]:
    """The weights, summarised (two sums in float64: distinct policies differ)."""
    flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
    return flat.sum().item(), (flat * torch.arange(len(flat), dtype=torch.float64).sin()).sum().item()


def test_step_k_trains_on_the_batch_of_policy_k_minus_1(tmp_path, monkeypatch):
    generated: list[tuple[tuple[float, ...], torch.Tensor]] = []
    trained: list[tuple[int, tuple[float, ...], torch.Tensor, torch.Tensor]] = []
    generate, update = HFGenerator.generate, grpo.update_policy

    def recording_generate(self, prompt_ids, params, **kw):
        out = generate(self, prompt_ids, params, **kw)
        generated.append((_fingerprint(self.model), out.completion_ids.clone()))
        return out

    def recording_update(cfg, step, policy, optimizer, scheduler, rollout, **kw):
        trained.append((step, _fingerprint(policy), rollout.completion_ids.clone(), rollout.old_logprobs.clone()))
        return update(cfg, step, policy, optimizer, scheduler, rollout, **kw)

    monkeypatch.setattr(HFGenerator, "generate", recording_generate)
    monkeypatch.setattr(grpo, "update_policy", recording_update)
    assert main(["zero", *ARGS, f"out_dir={tmp_path / 'run'}", "--quiet"]) == 0

    policies = [fp for _, fp, _, _ in trained]  # policies[k]: pi_k, the weights step k updates
    assert len(set(policies)) == 4, "the policy did not move: the lag could not be seen"
    for step, _, completions, old in trained:
        makers = [fp for fp, ids in generated if ids.shape == completions.shape and torch.equal(ids, completions)]
        assert len(makers) == 1, f"step {step}'s batch was generated {len(makers)} times"
        assert makers[0] == policies[max(step - 1, 0)], f"step {step} trained on a batch of another policy"
        assert old.abs().sum() > 0  # old log-probs exist at every step (the ratio is no longer 1)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][1:]
    assert [r["rollout/policy_version"] for r in rows] == [0, 0, 1, 2]
    assert [r["rollout/lag"] for r in rows] == [0, 1, 1, 1]
    # the old log-probs are the sampling weights' own (the newer policy's would differ by ~1e-3)
    assert max(r["rollout/logprob_drift/max"] for r in rows) < 1e-4


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_killed_one_step_off_run_resumes_exactly(tmp_path, kill_at):
    """The checkpoint keeps the batch in flight; a resumed run trains on it, as the uninterrupted run did."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit", "zero", "--quiet", *ARGS, "save_every=2"]
    done = subprocess.run([*cmd, f"out_dir={straight}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    kill_at([*cmd, f"out_dir={killed}"], killed / "checkpoints" / "step_000002")
    state = torch.load(killed / "checkpoints" / "step_000002" / "trainer_state.pt", weights_only=True)
    assert state["off_policy"]["step"] == 2 and state["off_policy"]["version"] == 1

    done = subprocess.run([*cmd, f"out_dir={killed}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _rows(killed) == _rows(straight)
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
