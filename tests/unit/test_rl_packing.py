"""Packing for the RL forward passes: the same loss and gradients as the padded path, in fewer tokens."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from r1kit.config import ZeroConfig, load_config
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.packed_logprobs import Unit, pack_plan
from r1kit.trainers.grpo import Rollout, _logprobs_no_grad, _minibatch_step


def _rollout(tok, n_prompts: int = 3, G: int = 4) -> Rollout:
    """Prompts of different lengths (left-padded), completions of very different lengths."""
    g = torch.Generator().manual_seed(0)
    lengths = [3, 7, 5][:n_prompts]
    P, T = max(lengths), 11
    p_ids = torch.full((n_prompts, P), tok.pad_token_id)
    p_mask = torch.zeros((n_prompts, P), dtype=torch.long)
    for i, n in enumerate(lengths):
        p_ids[i, P - n:] = torch.randint(3, len(tok), (n,), generator=g)
        p_mask[i, P - n:] = 1
    N = n_prompts * G
    c_ids = torch.randint(3, len(tok), (N, T), generator=g)
    c_len = torch.randint(1, T + 1, (N,), generator=g)
    c_mask = (torch.arange(T)[None, :] < c_len[:, None]).long()
    c_ids = c_ids.masked_fill(c_mask == 0, tok.pad_token_id)
    rewards = torch.randn(n_prompts, G, generator=g)
    return Rollout(p_ids, p_mask, c_ids, c_mask, rewards, torch.randn(N, generator=g), None, None, {})


def _cfg(*overrides: str) -> ZeroConfig:
    base = ["rollout.max_new_tokens=11", "rollout.temperature=0.8", "grpo.kl_coef=0.1", "model.logprob_chunk_tokens=7"]
    return load_config(ZeroConfig, None, [*base, *overrides])


@pytest.fixture
def model_and_rollout(tiny_random_model):
    tok = load_tokenizer(str(tiny_random_model))
    policy = load_model(str(tiny_random_model))
    rollout = _rollout(tok)
    noisy = copy.deepcopy(policy)  # old and reference log-probs that differ from the policy's: ratio != 1
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(0.02 * torch.randn_like(p))
    cfg = _cfg()
    old = _logprobs_no_grad(noisy, rollout, cfg)
    ref = _logprobs_no_grad(noisy, rollout, cfg) * 1.01
    return policy, dataclasses.replace(rollout, old_logprobs=old, ref_logprobs=ref)


@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("by", ["groups", "sequences"])
def test_packed_loss_and_gradients_equal_padded(model_and_rollout, aggregation, by):
    policy, rollout = model_and_rollout
    rows = torch.tensor([0, 1, 2, 3, 8, 9, 10, 11, 4, 5])  # a minibatch with a partial group
    results = []
    for extra in (["optim.micro_batch_size=3"], ["optim.max_tokens_per_micro_batch=30", f"optim.pack={by}"]):
        cfg = _cfg(f"grpo.aggregation={aggregation}", *extra)
        model = copy.deepcopy(policy)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        stats = _minibatch_step(cfg, model, opt, rollout, rows)
        results.append((stats, [p.grad.clone() for p in model.parameters()]))
    (padded, g_padded), (packed, g_packed) = results
    for key in ("loss", "policy_loss", "kl", "clip_fraction", "entropy"):
        assert packed[key] == pytest.approx(padded[key], abs=1e-5), key
    for a, b in zip(g_packed, g_padded):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in g_packed)


def test_packed_no_grad_logprobs_equal_padded(model_and_rollout):
    policy, rollout = model_and_rollout
    padded = _logprobs_no_grad(policy, rollout, _cfg())
    for by in ("groups", "sequences"):
        packed = _logprobs_no_grad(policy, rollout, _cfg("optim.max_tokens_per_micro_batch=25", f"optim.pack={by}"))
        torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)


def test_pack_plan_splits_groups_that_do_not_fit_and_refuses_what_never_fits():
    prompts, completions, prompt_of = [4], [5, 5, 5], [0, 0, 0]
    plan = pack_plan(prompts, completions, prompt_of, [0, 1, 2], capacity=14, by="groups")
    units = sorted((u for mb in plan for u in mb), key=lambda u: u.rows)
    assert units == [Unit(0, (0, 1)), Unit(0, (2,))]  # 4 + 5 + 5 fits, a third completion does not
    assert len(pack_plan(prompts, completions, prompt_of, [0, 1, 2], capacity=14, by="sequences")) == 3
    with pytest.raises(ValueError, match="max_tokens_per_micro_batch=8"):
        pack_plan(prompts, completions, prompt_of, [0], capacity=8, by="groups")
