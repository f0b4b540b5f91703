"""Reward models as rewards: what they read (`apply_to`), normalisation, the active window (0 before it,
logged as reward/<name>/active), and one-line errors for a path that is no reward model or a window
longer than the run."""

from __future__ import annotations

import json

import pytest
import torch

from r1kit.cli import main
from r1kit.config import ConfigError, RewardModelConfig
from r1kit.judges.reward_model import load, register_reward_models
from r1kit.models.loading import load_reward_model, load_tokenizer
from r1kit.rewards import REWARDS


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, tiny_random_model):
    """The tiny random model with a seeded random scalar head, saved as `r1kit rm` saves one."""
    out = tmp_path_factory.mktemp("rm") / "model"
    tokenizer = load_tokenizer(str(tiny_random_model))
    torch.manual_seed(3)
    model = load_reward_model(str(tiny_random_model), pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "r1kit_reward.json").write_text(json.dumps({"template": "plain", "max_length": 128,
                                                        "reward_mean": 0.5, "reward_std": 2.0}))
    return out


def test_apply_to_normalize_and_the_window(reward_model_dir):
    rm = load(str(reward_model_dir))
    prompts, completions = ["1+1"] * 2, ["<think>one and one</think> 2", "<think>hmm</think> 3!"]
    summary_raw = rm.score(prompts, ["2", "3!"], 8)
    full_raw = rm.score(prompts, completions, 8)
    assert summary_raw != full_raw

    register_reward_models({"helpful": RewardModelConfig(path=str(reward_model_dir), normalize=False),
                            "harmless": RewardModelConfig(path=str(reward_model_dir), apply_to="full",
                                                          last_steps=2)}, steps=5, device="cpu")
    assert REWARDS["helpful"](prompts, completions, step=0) == pytest.approx(summary_raw, abs=1e-6)
    assert REWARDS["harmless"](prompts, completions, step=2) == [0.0, 0.0]  # steps 3 and 4 are the window
    assert REWARDS["harmless"](prompts, completions, step=3) == pytest.approx(
        [(s - 0.5) / 2.0 for s in full_raw], abs=1e-6)


def test_bad_reward_models_are_refused_by_name(tmp_path, reward_model_dir, tiny_random_model):
    with pytest.raises(ConfigError, match=r"reward_models\.h\.path: .* is not a sequence-classification model"):
        register_reward_models({"h": RewardModelConfig(path=str(tiny_random_model))}, steps=5)
    with pytest.raises(ConfigError, match=r"last_steps=9 must be in \[1, steps=5\]: the window is longer"):
        register_reward_models({"h": RewardModelConfig(path=str(reward_model_dir), last_steps=9)}, steps=5)
    with pytest.raises(ConfigError, match="'accuracy' is a built-in reward"):
        register_reward_models({"accuracy": RewardModelConfig(path=str(reward_model_dir))}, steps=5)
    with pytest.raises(ConfigError, match="no model directory"):
        register_reward_models({"h": RewardModelConfig(path=str(tmp_path / "none"))}, steps=5)


def test_a_grpo_stage_logs_the_window_and_scores_zero_before_it(tmp_path, reward_model_dir, tiny_random_model,
                                                                capsys):
    out = tmp_path / "run"
    code = main(["grpo", f"out_dir={out}", f"model.path={tiny_random_model}", "task.name=arithmetic", "steps=2",
                 "prompts_per_step=2", "group_size=2", "task.eval_size=2", "eval.samples=2", "eval.every=0",
                 "rollout.max_new_tokens=8", "eval.max_new_tokens=8", "threads=1",
                 "rewards={accuracy: 1.0, helpful: 0.5}",
                 f"reward_models={{helpful: {{path: '{reward_model_dir}', last_steps: 1}}}}", "--quiet"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    assert [r["reward/helpful/active"] for r in rows] == [0.0, 1.0]
    assert rows[0]["reward/helpful/mean"] == 0.0 and rows[1]["reward/helpful/std"] > 0

    capsys.readouterr()
    assert main(["grpo", f"out_dir={tmp_path / 'bad'}", f"model.path={tiny_random_model}", "steps=2",
                 "rewards={accuracy: 1.0, helpful: 0.5}",
                 f"reward_models={{helpful: {{path: '{reward_model_dir}', last_steps: 3}}}}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the window is longer than the run" in err
    assert not (tmp_path / "bad").exists()


def test_a_later_stage_without_the_reward_model_does_not_keep_its_reward(reward_model_dir):
    register_reward_models({"stale": RewardModelConfig(path=str(reward_model_dir))}, steps=5)
    assert "stale" in REWARDS
    register_reward_models({}, steps=5)
    assert "stale" not in REWARDS


def test_a_task_with_a_window_draws_prompts_only_in_the_last_steps(tmp_path, tiny_random_model, capsys):
    # R1's stage 4: general prompts join the reasoning ones only in the last steps.
    out = tmp_path / "run"
    code = main(["grpo", f"out_dir={out}", f"model.path={tiny_random_model}", "steps=3", "prompts_per_step=4",
                 "group_size=2", "task.eval_size=2", "eval.samples=2", "eval.every=0", "rollout.max_new_tokens=8",
                 "eval.max_new_tokens=8", "threads=1",
                 "tasks=[{name: arithmetic, weight: 1}, {name: factual_qa, weight: 1, last_steps: 1}]", "--quiet"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    assert ["task/factual_qa/reward" in r for r in rows] == [False, False, True]

    assert main(["grpo", f"out_dir={tmp_path / 'bad'}", f"model.path={tiny_random_model}", "steps=3",
                 "tasks=[{name: arithmetic, weight: 1, last_steps: 2}]", "--quiet"]) == 2
    assert "at least one task with a positive weight must have no last_steps window" in capsys.readouterr().err


def test_the_hacking_plot_draws_proxy_and_gold_against_sqrt_kl(tmp_path):
    from r1kit.evaluation.plots import plot_hacking

    rows = [{"step": 0, "eval/chitchat/pass@1": 0.8},
            {"step": 1, "kl": 0.01, "reward/helpful/mean": 0.2, "reward/helpful/active": 1.0},
            {"step": 2, "kl": 0.04, "reward/helpful/mean": 0.6, "reward/helpful/active": 1.0,
             "eval/chitchat/pass@1": 0.3}]
    assert plot_hacking(rows, {"helpful": ["chitchat"]}, tmp_path / "h.png") == tmp_path / "h.png"
    assert (tmp_path / "h.png").stat().st_size > 0
    assert plot_hacking(rows, {"harmless": ["harmful"]}, tmp_path / "none.png") is None


def test_a_reward_model_that_cannot_load_stops_the_stage_before_any_work(tmp_path, reward_model_dir,
                                                                        tiny_random_model, capsys):
    import shutil

    broken = tmp_path / "rm"
    broken.mkdir()
    for f in ("config.json", "model.safetensors"):  # no tokenizer files
        shutil.copy(reward_model_dir / f, broken / f)
    out = tmp_path / "run"
    assert main(["grpo", f"out_dir={out}", f"model.path={tiny_random_model}", "steps=2",
                 "rewards={accuracy: 1.0, helpful: 0.5}", f"reward_models={{helpful: {{path: '{broken}'}}}}",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: reward_models.helpful: ") and err.count("\n") == 1
    assert not out.exists()
