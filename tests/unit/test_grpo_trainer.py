"""The GRPO loop on a tiny random model: accumulation invariance, every parameter learns, prompt order."""

from __future__ import annotations

import copy

import pytest
import torch

from r1kit import rewards
from r1kit.config import ZeroConfig, load_config
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rollout import HFGenerator
from r1kit.trainers.grpo import (
    _minibatch_step,
    collect_rollout,
    make_optimizer,
    make_reference,
    prompts_for_step,
    train_step,
)
from r1kit.types import Example


def _digit_reward(prompts, completions, **_):
    # A reward with variance inside every group on a random model: the share of digits in the text.
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


@pytest.fixture
def setup(tiny_random_model, monkeypatch):
    monkeypatch.setitem(rewards.REWARDS, "digits", _digit_reward)
    tok = load_tokenizer(str(tiny_random_model))
    policy = load_model(str(tiny_random_model))
    examples = [Example(prompt=f"{i}+{i}", answer=str(2 * i), task="t", verifier="integer") for i in range(8)]
    ids = [tok(e.prompt, add_special_tokens=False)["input_ids"] for e in examples]
    gen = HFGenerator(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok, policy, examples, ids, gen


def _cfg(*overrides):
    base = ["prompts_per_step=4", "group_size=4", "rollout.max_new_tokens=12", "rewards={digits: 1.0}"]
    return load_config(ZeroConfig, None, [*base, *overrides])


@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo"])
def test_micro_batch_one_times_accumulation_equals_full_batch(setup, aggregation):
    tok, policy, examples, ids, gen = setup
    cfg_full = _cfg(f"grpo.aggregation={aggregation}", "grpo.kl_coef=0.1")
    cfg_micro = _cfg(f"grpo.aggregation={aggregation}", "grpo.kl_coef=0.1", "optim.micro_batch_size=1")
    reference = make_reference(policy, 0.1)
    with torch.no_grad():  # a reference that differs from the policy, so the KL term has a gradient
        for p in reference.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rollout = collect_rollout(cfg_full, 0, gen, tok, policy, reference, examples[:4], ids[:4])
    assert rollout.advantages.abs().sum() > 0
    results = []
    for cfg in (cfg_full, cfg_micro):
        model = copy.deepcopy(policy)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        stats = _minibatch_step(cfg, model, opt, rollout, torch.arange(rollout.completion_ids.shape[0]))
        results.append((model, stats))
    (full, s_full), (micro, s_micro) = results
    for a, b in zip(full.parameters(), micro.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert s_full["loss"] == pytest.approx(s_micro["loss"], abs=1e-6)
    assert s_full["grad_norm"] == pytest.approx(s_micro["grad_norm"], rel=1e-4)


def test_one_step_changes_every_parameter(setup):
    tok, policy, examples, ids, gen = setup
    cfg = _cfg("optim.lr=1e-2", "grpo.kl_coef=0.0")
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    opt, sched = make_optimizer(cfg, policy)
    metrics = train_step(cfg, 0, gen, tok, policy, None, opt, sched, examples, ids)
    for name, p in policy.named_parameters():
        assert not torch.equal(before[name], p), f"{name} did not change"
    assert metrics["rollout/logprob_drift/max"] < 1e-4  # the float32 hf engine samples with the trained module
    for key in ("reward/mean", "reward/std", "reward/digits/mean", "kl", "clip_fraction", "entropy", "grad_norm",
                "lr", "response_length/mean", "response_length/max", "zero_variance_groups", "tokens_per_s",
                "step_seconds", "rollout/logprob_drift/mean", "rollout/logprob_drift/max"):
        assert key in metrics


def test_minibatches_and_epochs_make_that_many_optimizer_steps(setup):
    tok, policy, examples, ids, gen = setup
    cfg = _cfg("grpo.num_minibatches=4", "grpo.num_epochs=2", "grpo.kl_coef=0.0")
    opt, sched = make_optimizer(cfg, policy)
    train_step(cfg, 0, gen, tok, policy, None, opt, sched, examples, ids)
    assert sched.last_epoch == 8


def test_reference_is_refreshed_every_n_steps(setup):
    tok, policy, examples, ids, gen = setup
    cfg = _cfg("grpo.ref_update_every=2", "grpo.kl_coef=0.1", "optim.lr=1e-2")
    reference = make_reference(policy, cfg.grpo.kl_coef)
    opt, sched = make_optimizer(cfg, policy)
    train_step(cfg, 0, gen, tok, policy, reference, opt, sched, examples, ids)
    assert not all(torch.equal(a, b) for a, b in zip(policy.parameters(), reference.parameters()))
    train_step(cfg, 1, gen, tok, policy, reference, opt, sched, examples, ids)
    assert all(torch.equal(a, b) for a, b in zip(policy.parameters(), reference.parameters()))


def test_prompts_for_step_walks_seeded_epochs_without_repeats():
    first_epoch = [i for s in range(5) for i in prompts_for_step(10, s, 2, seed=0)]
    assert sorted(first_epoch) == list(range(10))
    assert prompts_for_step(10, 3, 4, seed=0) == prompts_for_step(10, 3, 4, seed=0)  # 12..15 crosses an epoch
    assert prompts_for_step(10, 0, 4, seed=0) != prompts_for_step(10, 0, 4, seed=1)


def test_cosine_schedule_with_warmup():
    cfg = _cfg("steps=10", "optim.warmup_steps=2", "optim.schedule=cosine", "optim.min_lr_ratio=0.1",
               "optim.lr=1.0")
    opt, sched = make_optimizer(cfg, torch.nn.Linear(1, 1))
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] < 0.2 and lrs == sorted(lrs[:2]) + sorted(lrs[2:], reverse=True)
