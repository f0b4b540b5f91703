"""PPO (`r1kit ppo`): the loss pieces against OpenRLHF 0.11.2's own code on identical inputs (TRL 1.x has no
PPO any more; OpenRLHF's package cannot be imported without deepspeed, so its functions are vendored
verbatim in openrlhf_reference.py), the value model on a tiny random Qwen2, and the stage on the
embedded model: it learns a value, resumes exactly, and refuses what it does not support."""

from __future__ import annotations

import json
import subprocess
import sys

import openrlhf_reference as ref
import pytest
import torch
from safetensors.torch import load_file

from r1kit.algorithms import gae, grpo_loss, kl_penalized_rewards, value_loss
from r1kit.cli import main
from r1kit.config import PPOConfig, load_config
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.logprobs import completion_logprobs
from r1kit.models.value import make_value_model
from r1kit.stages.grpo import TIMING_KEYS
from r1kit.trainers.ppo import Critic


def _batch(seed: int = 0, N: int = 6, T: int = 9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    logprobs = -torch.rand(N, T, generator=g, dtype=torch.float64) * 3
    old = logprobs + 0.3 * torch.randn(N, T, generator=g, dtype=torch.float64)
    return mask, logprobs, old, g


def test_policy_loss_equals_openrlhf():
    mask, logprobs, old, g = _batch()
    advantages = torch.randn(mask.shape, generator=g, dtype=torch.float64) * mask
    for low, high in ((0.2, 0.2), (0.2, 0.28)):
        theirs, clip_ratio, _ = ref.policy_loss(logprobs, old, advantages, mask, clip_eps_low=low, clip_eps_high=high)
        ours = grpo_loss(logprobs, old, None, advantages, mask, clip_eps_low=low, clip_eps_high=high, kl_coef=0.0,
                         aggregation="dapo")
        assert abs(ours.loss.item() - theirs.item()) < 1e-6
        # per sequence, then over sequences: OpenRLHF's token_level_loss=False
        theirs_seq, _, _ = ref.policy_loss(logprobs, old, advantages, mask, clip_eps_low=low, clip_eps_high=high,
                                           token_level_loss=False)
        ours_seq = grpo_loss(logprobs, old, None, advantages, mask, clip_eps_low=low, clip_eps_high=high,
                             kl_coef=0.0, aggregation="grpo")
        assert abs(ours_seq.loss.item() - theirs_seq.item()) < 1e-6
    assert 0 < clip_ratio.item() < 1  # the inputs do clip: the comparison covers both branches


def test_value_loss_equals_openrlhf():
    mask, _, _, g = _batch(1)
    values, old_values, returns = (torch.randn(mask.shape, generator=g, dtype=torch.float64) for _ in range(3))
    for clip in (0.2, 0.0):
        theirs = ref.value_loss(values, old_values, returns, mask, clip_eps=clip or None)
        ours, _ = value_loss(values, old_values, returns, mask, clip_eps=clip, aggregation="dapo")
        assert abs(ours.item() - theirs.item()) < 1e-6
    assert 0 < value_loss(values, old_values, returns, mask, clip_eps=0.2)[1].item() < 1


def test_kl_in_reward_and_gae_equal_openrlhf():
    mask, logprobs, old, g = _batch(2)
    final = torch.randn(mask.shape[0], generator=g, dtype=torch.float64)
    theirs = ref.compute_reward(final, 0.05, (logprobs - old) * mask, action_mask=mask)
    ours = kl_penalized_rewards(final, mask, logprobs, old, 0.05)
    assert torch.allclose(ours, theirs.to(ours.dtype), atol=1e-6)
    values = torch.randn(mask.shape, generator=g, dtype=torch.float64)
    for gamma, lam in ((1.0, 0.95), (1.0, 1.0), (0.9, 0.5)):
        their_adv, their_ret = ref.get_advantages_and_returns(values, theirs, mask, gamma, lam)
        our_adv, our_ret = gae(theirs, values, mask, gamma=gamma, lam=lam)
        assert torch.allclose(our_adv, their_adv * mask, atol=1e-6)
        assert torch.allclose(our_ret, their_ret * mask, atol=1e-6)


@pytest.mark.parametrize("kind", ["separate", "head"])
def test_value_model_shares_or_copies_the_trunk_and_predicts_per_token(tiny_random_model, kind):
    policy = load_model(str(tiny_random_model))
    critic = make_value_model(policy, kind)
    shared = {id(p) for p in policy.parameters()} & {id(p) for p in critic.parameters()}
    assert bool(shared) == (kind == "head")
    tok = load_tokenizer(str(tiny_random_model))
    p_ids = torch.tensor([tok("12+3=", add_special_tokens=False)["input_ids"]])
    c_ids = torch.tensor([[5, 6, 7, 8], [5, 10, 0, 0]])
    c_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    index = torch.tensor([0, 0])
    assert torch.equal(critic(p_ids, torch.ones_like(p_ids), index, c_ids, c_mask), torch.zeros(2, 4))  # zero head
    torch.nn.init.normal_(critic.head.weight)
    values = critic(p_ids, torch.ones_like(p_ids), index, c_ids, c_mask)
    assert values.shape == (2, 4) and torch.equal(values[1, 2:], torch.zeros(2)) and values[0].abs().sum() > 0
    # V(s_t) sees the prompt and tokens < t: the rows share token 0, so s_0 and s_1 are the same states
    assert torch.allclose(values[0, :2], values[1, :2], atol=1e-5) and values[0, 2] != values[1, 1]
    full = critic(p_ids, torch.ones_like(p_ids), index, c_ids, c_mask, full_sequence=True)
    assert torch.allclose(values, full, atol=1e-5)
    logprobs, _ = completion_logprobs(policy, p_ids, torch.ones_like(p_ids), index, c_ids, c_mask)
    assert logprobs.shape == values.shape


def test_the_critic_fits_the_returns_of_a_fixed_rollout(tiny_random_model):
    """A few critic updates on one rollout lower its value loss and raise its explained variance."""
    from r1kit.trainers.grpo import Rollout

    cfg = load_config(PPOConfig, None, ["optim.lr=1e-2", "grpo.kl_coef=0", "ppo.cliprange_value=0",
                                        "ppo.vf_coef=1"])
    policy = load_model(str(tiny_random_model))
    critic = Critic.create(cfg, policy)
    g = torch.Generator().manual_seed(0)
    c_ids = torch.randint(3, 60, (8, 6), generator=g)
    c_mask = torch.ones(8, 6, dtype=torch.long)
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    p_ids = torch.randint(3, 60, (2, 5), generator=g)
    rollout = Rollout(p_ids, torch.ones_like(p_ids), c_ids, c_mask, rewards, torch.zeros(8), None, None, {})
    before = None
    for _ in range(15):
        rollout = critic.advantages(cfg, rollout, torch.zeros(8, 6))
        before = before or rollout.metrics
        critic.zero_grad()
        critic.backward(cfg, rollout, torch.arange(8), c_mask)
        critic.step()
    after = critic.advantages(cfg, rollout, torch.zeros(8, 6)).metrics
    assert before["value/explained_variance"] == pytest.approx(0.0, abs=1e-6)  # V = 0 at first
    assert after["value/explained_variance"] > 0.5


ARGS = ["steps=3", "prompts_per_step=4", "group_size=4", "eval.every=0", "task.eval_size=8", "eval.samples=2",
        "rollout.max_new_tokens=48", "eval.max_new_tokens=32", "task.name=arithmetic", "grpo.num_minibatches=2",
        "threads=1", "save_every=2"]


def _rows(out):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["separate", "head"])
def test_ppo_stage_trains_and_resumes_exactly(tmp_path, kill_at, kind):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit", "ppo", "--quiet", *ARGS, f"ppo.critic={kind}"]
    done = subprocess.run([*cmd, f"out_dir={straight}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(straight)[1:]
    for key in ("value/loss", "value/explained_variance", "value/mean", "value/grad_norm", "loss", "kl"):
        assert all(key in r for r in rows), key
    assert rows[-1]["value/mean"] != 0.0  # the critic moved
    kill_at([*cmd, f"out_dir={killed}"], killed / "checkpoints" / "step_000002")
    state = torch.load(killed / "checkpoints" / "step_000002" / "trainer_state.pt", weights_only=True)
    assert set(state["critic"]) == {"model", "optimizer", "scheduler"}
    done = subprocess.run([*cmd, f"out_dir={killed}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _rows(killed) == _rows(straight)
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad, key", [("ppo.lam=1.5", "ppo.lam"), ("ppo.vf_coef=-1", "ppo.vf_coef"),
                                      ("grpo.dynamic_sampling=true", "dynamic_sampling"),
                                      ("model.lora.rank=4", "lora"), ("ppo.critic=twin", "ppo.critic")])
def test_bad_settings_fail_in_one_line_before_any_output(tmp_path, capsys, bad, key):
    assert main(["ppo", f"out_dir={tmp_path / 'x'}", bad, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert key in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kind", ["separate", "head"])
def test_dry_run_plans_the_critic_and_writes_nothing(tmp_path, capsys, kind):
    args = ["ppo", "--dry-run", f"out_dir={tmp_path / 'run'}", f"ppo.critic={kind}", "task.eval_size=4",
            "prompts_per_step=2", "group_size=2", "rollout.max_new_tokens=8", "threads=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"critic: a {'separate value model' if kind == 'separate' else 'value head on the policy'}" in out
    assert "critic: values and GAE advantages" in out and "(and the critic's)" in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kl_in", ["reward", "loss"])
@pytest.mark.parametrize("whiten", [True, False])
def test_kl_placement_and_whitening_on_a_fixed_rollout(tiny_random_model, kl_in, whiten):
    """kl_in=reward folds -kl_coef (log pi_old - log pi_ref) into every token's reward and drops the loss's
    KL term; kl_in=loss leaves rewards sparse and the loss config as it is. Whitening is optional."""
    from r1kit.trainers.grpo import Rollout

    cfg = load_config(PPOConfig, None, ["grpo.kl_coef=0.5", f"ppo.kl_in={kl_in}", f"ppo.whiten={str(whiten).lower()}",
                                        "ppo.lam=1.0"])
    critic = Critic.create(cfg, load_model(str(tiny_random_model)))
    g = torch.Generator().manual_seed(1)
    c_ids, c_mask = torch.randint(3, 60, (4, 5), generator=g), torch.ones(4, 5, dtype=torch.long)
    p_ids = torch.randint(3, 60, (2, 4), generator=g)
    old, ref = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    rollout = Rollout(p_ids, torch.ones_like(p_ids), c_ids, c_mask, torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                      torch.zeros(4), ref, None, {})
    out = critic.advantages(cfg, rollout, old)
    final = torch.tensor([1.0, 0.0, 0.0, 1.0])
    kl = -0.5 * (old - ref) if kl_in == "reward" else torch.zeros(4, 5)
    # lambda = gamma = 1: the return of token t is the sum of its rewards from t on (Monte-Carlo)
    expected_returns = kl.flip(1).cumsum(1).flip(1) + final[:, None]
    assert torch.allclose(out.returns, expected_returns, atol=1e-5)
    raw = expected_returns - out.values
    if whiten:
        assert out.advantages.mean().abs() < 1e-5 and out.advantages.std() == pytest.approx(1, abs=1e-4)
    else:
        assert torch.allclose(out.advantages, raw, atol=1e-5)
    assert critic.loss_config(cfg).grpo.kl_coef == (0.0 if kl_in == "reward" else 0.5)
    assert ("value/kl_penalty" in out.metrics) == (kl_in == "reward")
