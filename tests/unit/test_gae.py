"""GAE and PPO's other pure pieces: golden numbers computed by hand, and the identities that define them
(lambda = gamma = 1 is the Monte-Carlo return minus the value; lambda = 0 is the one-step TD error)."""

from __future__ import annotations

import pytest
import torch

from r1kit.algorithms.gae import gae, sparse_rewards, whiten


def test_sparse_rewards_put_the_outcome_on_the_last_token():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    out = sparse_rewards(torch.tensor([1.0, 2.0, 3.0]), mask)
    assert torch.equal(out, torch.tensor([[0.0, 0, 1, 0], [2, 0, 0, 0], [0, 0, 0, 0]]))


def test_gae_golden_numbers():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.6, 0.7]])
    mask = torch.ones(1, 3)
    # gamma 1, lam 0.5: deltas 0.1, 0.1, 0.3; A_2 = 0.3, A_1 = 0.1 + 0.5 * 0.3, A_0 = 0.1 + 0.5 * 0.25
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    assert torch.allclose(advantages, torch.tensor([[0.225, 0.25, 0.3]]))
    assert torch.allclose(returns, torch.tensor([[0.725, 0.85, 1.0]]))
    # gamma 0.9, lam 0.5: deltas 0.9*0.6-0.5, 0.9*0.7-0.6, 1-0.7; A_1 = 0.03 + 0.45 * 0.3
    advantages, _ = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    assert torch.allclose(advantages, torch.tensor([[0.04 + 0.45 * 0.165, 0.165, 0.3]]))


def test_padding_is_ignored_whatever_it_holds():
    rewards = torch.tensor([[0.0, 1.0, 5.0, 5.0]])
    values = torch.tensor([[0.2, 0.4, 99.0, -7.0]])
    mask = torch.tensor([[1, 1, 0, 0]])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    short_adv, short_ret = gae(rewards[:, :2], values[:, :2], mask[:, :2], gamma=1.0, lam=0.95)
    assert torch.allclose(advantages[:, :2], short_adv) and torch.allclose(returns[:, :2], short_ret)
    assert torch.equal(advantages[:, 2:], torch.zeros(1, 2)) and torch.equal(returns[:, 2:], torch.zeros(1, 2))


def test_lambda_and_gamma_one_give_the_monte_carlo_return_minus_the_value():
    torch.manual_seed(0)
    rewards, values = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 1, 5, 6])
    mask = (torch.arange(7)[None, :] < lengths[:, None]).long()
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    to_go = (rewards * mask).flip(1).cumsum(1).flip(1)  # sum of the rewards from t to the end
    assert torch.allclose(advantages, (to_go - values) * mask)
    assert torch.allclose(returns, to_go * mask)


def test_lambda_zero_is_the_one_step_td_error():
    torch.manual_seed(1)
    rewards, values = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    mask = torch.ones(3, 4)
    advantages, _ = gae(rewards, values, mask, gamma=0.9, lam=0.0)
    following = torch.cat([values[:, 1:], torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    assert torch.allclose(advantages, rewards + 0.9 * following - values)


def test_whiten_over_the_masked_tokens_of_the_batch():
    values = torch.tensor([[1.0, 2.0, 3.0, 50.0], [4.0, 5.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    out = whiten(values, mask)
    kept = out[mask.bool()]
    assert torch.allclose(kept.mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(kept.var(), torch.tensor(1.0), atol=1e-5)  # unbiased, as TRL's masked_whiten
    assert torch.equal(out[~mask.bool()], torch.zeros(3))
    data = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert torch.allclose(kept, (data - 3.0) / data.std())
    assert torch.allclose(whiten(values, mask, shift_mean=False)[mask.bool()], kept + 3.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same"):
        gae(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="gamma and lam"):
        gae(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), lam=1.5)
    with pytest.raises(ValueError, match="two tokens"):
        whiten(torch.zeros(1, 2), torch.tensor([[1, 0]]))
