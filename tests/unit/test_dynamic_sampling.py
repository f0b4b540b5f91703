"""DAPO's dynamic sampling (`grpo.dynamic_sampling`): the selection of informative groups, the refill and
its cap, re-padding, and on the embedded model: every trained batch is informative, the prompt cursor is
checkpointed and a killed run resumes exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import r1kit.trainers.grpo as grpo
from r1kit.algorithms import group_advantages, informative_groups
from r1kit.cli import main
from r1kit.config import ZeroConfig, load_config
from r1kit.stages.grpo import TIMING_KEYS
from r1kit.trainers.dynamic import PromptCursor, draw_size, dynamic_rollout, select_groups
from r1kit.trainers.grpo import Rollout


def _rollout(rewards: list[list[float]], width: int, tag: int, prompt_width: int = 3) -> Rollout:
    """A hand-made rollout: B groups of G; completion tokens encode (tag, group, row); lengths vary."""
    r = torch.tensor(rewards, dtype=torch.float32)
    B, G = r.shape
    ids = torch.full((B * G, width), -1, dtype=torch.long)
    mask = torch.zeros((B * G, width), dtype=torch.long)
    for row in range(B * G):
        n = 1 + row % width
        ids[row, :n] = 1000 * tag + row
        mask[row, :n] = 1
    p_ids = torch.arange(B * prompt_width).view(B, prompt_width) + 100 * tag
    return Rollout(p_ids, torch.ones_like(p_ids), ids, mask, r, group_advantages(r).view(-1), None, None,
                   {"tokens": float(mask.sum()), "zero_variance_groups": 0.0, "reward/mean": r.mean().item()},
                   sampler_logprobs=-mask.float())


def test_informative_groups():
    r = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.2, 0.2, 0.2], [0.0, 0.0, 0.5]])
    assert informative_groups(r).tolist() == [False, True, False, True]


def test_select_groups_repads_and_keeps_rows_with_their_advantages():
    a = _rollout([[1, 1], [0, 1]], width=2, tag=1, prompt_width=2)
    b = _rollout([[0, 1], [1, 0]], width=4, tag=2, prompt_width=3)
    out = select_groups([a, b], [(0, 1), (1, 1), (1, 0)], pad_token_id=-1)
    assert out.prompt_ids.shape == (3, 3) and out.completion_ids.shape == (6, 4)
    assert out.prompt_mask.tolist()[0] == [0, 1, 1]  # a's 2-token prompt, left-padded
    assert out.prompt_ids[1].tolist() == b.prompt_ids[1].tolist()
    assert out.completion_ids[:2, :2].tolist() == a.completion_ids[2:4].tolist()
    assert out.completion_ids[2:4].tolist() == b.completion_ids[2:4].tolist()
    assert torch.equal(out.completion_mask.sum(1), torch.cat([a.completion_mask[2:4].sum(1),
                                                              b.completion_mask[2:4].sum(1),
                                                              b.completion_mask[0:2].sum(1)]))
    assert torch.equal(out.advantages, torch.cat([a.advantages[2:4], b.advantages[2:4], b.advantages[0:2]]))
    assert torch.equal(out.rewards, torch.stack([a.rewards[1], b.rewards[1], b.rewards[0]]))
    assert out.sampler_logprobs is not None and out.sampler_logprobs.shape == (6, 4)


def _cfg(*overrides: str) -> ZeroConfig:
    return load_config(ZeroConfig, None, ["prompts_per_step=4", "group_size=2", "grpo.dynamic_sampling=true",
                                          *overrides])


def test_refills_until_b_informative_groups_and_advances_the_cursor():
    # Draw d's groups: informative where (d + g) is odd. Draws hold ceil(4 * 1.5) = 6 prompts.
    cfg = _cfg("grpo.oversample=1.5")
    assert draw_size(cfg) == 6
    calls = []

    def sample(idx, first_group):
        draw = first_group // 6
        calls.append((idx, first_group))
        rewards = [[0.0, 1.0] if (draw + g) % 2 else [1.0, 1.0] for g in range(len(idx))]
        return _rollout(rewards, width=3, tag=draw)

    cursor = PromptCursor(draw=5)
    out = dynamic_rollout(cfg, cursor, lambda draw, count: list(range(draw * count, (draw + 1) * count)), sample, -1)
    # draw 5 keeps groups 0, 2, 4 (3 < 4): a second draw (its own seeds: groups 36..41) gives group 1
    assert [c[1] for c in calls] == [30, 36] and calls[1][0] == list(range(36, 42))
    assert cursor.draw == 7
    assert out.rewards.shape == (4, 2) and informative_groups(out.rewards).all()
    tags = (out.completion_ids[::2, 0] // 1000).tolist()
    rows = (out.completion_ids[::2, 0] % 1000).tolist()
    assert list(zip(tags, rows, strict=True)) == [(5, 0), (5, 4), (5, 8), (6, 2)]
    assert out.metrics["dynamic/rounds"] == 2 and out.metrics["dynamic/filled"] == 0
    assert out.metrics["dynamic/dropped_share"] == pytest.approx(6 / 12)


def test_cap_fills_with_uninformative_groups_and_says_so():
    cfg = _cfg("grpo.oversample=1", "grpo.max_sampling_rounds=2")

    def sample(idx, first_group):  # one informative group per draw
        return _rollout([[0.0, 1.0]] + [[1.0, 1.0]] * (len(idx) - 1), width=2, tag=first_group)

    cursor = PromptCursor()
    out = dynamic_rollout(cfg, cursor, lambda draw, count: list(range(count)), sample, -1)
    assert cursor.draw == 2
    assert out.rewards.shape == (4, 2)
    assert informative_groups(out.rewards).tolist() == [True, True, False, False]
    m = out.metrics
    assert m["dynamic/rounds"] == 2 and m["dynamic/filled"] == 2 and m["dynamic/prompts_drawn"] == 8
    assert m["dynamic/dropped_share"] == pytest.approx(6 / 8)
    assert m["batch/zero_variance_groups"] == 0.5


def test_bad_settings_are_one_line_errors(capsys, tmp_path):
    for bad in ("grpo.oversample=0.5", "grpo.max_sampling_rounds=0"):
        assert main(["zero", f"out_dir={tmp_path / 'x'}", "grpo.dynamic_sampling=true", bad, "--quiet"]) == 2
        assert bad.split("=")[0] in capsys.readouterr().err
    assert main(["zero", f"out_dir={tmp_path / 'x'}", "grpo.dynamic_sampling=true", "rollout.off_policy_steps=1",
                 "--quiet"]) == 2
    assert not (tmp_path / "x").exists()


ARGS = ["steps=3", "prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2",
        "rollout.max_new_tokens=48", "eval.max_new_tokens=32", "task.name=arithmetic", "grpo.num_minibatches=2",
        "grpo.dynamic_sampling=true", "grpo.max_sampling_rounds=3", "threads=1"]


def test_every_trained_group_is_informative_on_the_embedded_model(tmp_path, monkeypatch):
    trained: list[torch.Tensor] = []
    update = grpo.update_policy

    def recording_update(cfg, step, policy, optimizer, scheduler, rollout, **kw):
        trained.append(rollout.rewards.clone())
        return update(cfg, step, policy, optimizer, scheduler, rollout, **kw)

    monkeypatch.setattr(grpo, "update_policy", recording_update)
    assert main(["zero", *ARGS, f"out_dir={tmp_path / 'run'}", "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][1:]
    assert len(trained) == len(rows) == 3
    for rewards, row in zip(trained, rows, strict=True):
        assert rewards.shape == (4, 4)
        assert (~informative_groups(rewards)).sum().item() == row["dynamic/filled"]
    assert sum(r["dynamic/dropped_share"] for r in rows) > 0, "nothing was dropped: the test saw no filtering"
    assert rows[-1]["dynamic/cursor"] == sum(r["dynamic/rounds"] for r in rows)


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_killed_run_resumes_at_the_prompt_cursor(tmp_path, kill_at):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit", "zero", "--quiet", *ARGS, "save_every=2"]
    done = subprocess.run([*cmd, f"out_dir={straight}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    kill_at([*cmd, f"out_dir={killed}"], killed / "checkpoints" / "step_000002")
    state = torch.load(killed / "checkpoints" / "step_000002" / "trainer_state.pt", weights_only=True)
    assert state["prompt_cursor"]["draw"] >= 2
    done = subprocess.run([*cmd, f"out_dir={killed}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _rows(killed) == _rows(straight)
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
