"""Golden numbers for group-relative advantages; the arithmetic is in the comments."""

import math

import pytest
import torch

from r1kit.algorithms import group_advantages, zero_variance_share


def test_group_advantages_golden():
    # group 0: r = [1, 0, 0, 1], mean 0.5, centred [.5, -.5, -.5, .5]
    #   unbiased std = sqrt((4 * 0.25) / (4 - 1)) = sqrt(1/3) = 0.57735
    #   A = ±0.5 / sqrt(1/3) = ±0.5 * sqrt(3) = ±0.866025
    # group 1: r = [3, 1, 2, 2], mean 2, centred [1, -1, 0, 0]
    #   unbiased std = sqrt(2 / 3) = 0.816497, A = ±1 / 0.816497 = ±1.224745
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0]], dtype=torch.float64)
    a, b = 0.5 * math.sqrt(3), 1 / math.sqrt(2 / 3)
    expected = torch.tensor([[a, -a, -a, a], [b, -b, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(group_advantages(rewards, eps=0.0), expected)


def test_group_advantages_eps_is_added_to_std():
    # r = [1, 0]: centred [.5, -.5], unbiased std = sqrt(0.5 / 1) = 0.707107
    # A = 0.5 / (0.707107 + 1e-4) = 0.707007 (TRL: advantages / (std + 1e-4))
    advantages = group_advantages(torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    expected = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(advantages, torch.tensor([[expected, -expected]], dtype=torch.float64))


def test_zero_variance_group_is_exactly_zero_not_nan():
    # [0.1] * 3: float32 mean of three 0.1s may differ from 0.1 in the last bit; the group must still
    # give exactly 0, even with eps=0 where (r - mean) / std would be 0/0 = NaN.
    rewards = torch.tensor([[0.1, 0.1, 0.1], [1.0, 0.0, 1.0]])
    for eps in (0.0, 1e-4):
        advantages = group_advantages(rewards, eps=eps)
        assert torch.equal(advantages[0], torch.zeros(3))
        assert torch.isfinite(advantages).all()
        assert advantages[1].abs().sum() > 0
    assert torch.equal(group_advantages(rewards, scale_by_std=False)[0], torch.zeros(3))


def test_scale_by_std_false_is_dr_grpo_mean_centring():
    # r = [2, 0, 1, 5], mean 2 -> A = r - 2 = [0, -2, -1, 3]; no std division
    rewards = torch.tensor([[2.0, 0.0, 1.0, 5.0]])
    torch.testing.assert_close(
        group_advantages(rewards, scale_by_std=False), torch.tensor([[0.0, -2.0, -1.0, 3.0]])
    )


def test_advantages_sum_to_zero_per_group_and_keep_dtype():
    rewards = torch.rand(5, 8, dtype=torch.float64)
    advantages = group_advantages(rewards)
    assert advantages.dtype == torch.float64 and advantages.shape == (5, 8)
    torch.testing.assert_close(advantages.sum(dim=1), torch.zeros(5, dtype=torch.float64))


def test_integer_rewards_are_accepted():
    # r = [1, 0], centred [.5, -.5]
    torch.testing.assert_close(
        group_advantages(torch.tensor([[1, 0]]), scale_by_std=False), torch.tensor([[0.5, -0.5]])
    )


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), (3, 1), (3, 0)])
def test_bad_shapes_raise(shape):
    with pytest.raises(ValueError, match=r"2-D|at least 2"):
        group_advantages(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"2-D|at least 2"):
        zero_variance_share(torch.zeros(shape))


def test_zero_variance_share():
    # groups: [1, 1] equal, [0, 1] not, [2, 2] equal, [3, 4] not -> 2 of 4 = 0.5
    rewards = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 2.0], [3.0, 4.0]])
    assert zero_variance_share(rewards) == 0.5
    assert zero_variance_share(torch.ones(3, 4)) == 1.0
