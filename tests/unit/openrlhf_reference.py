"""OpenRLHF 0.11.2's PPO math, copied verbatim (Apache-2.0, https://github.com/OpenRLHF/OpenRLHF) from the
wheel openrlhf-0.11.2-cp311-cp311-manylinux1_x86_64.whl (sha256 c969d70d...acefa6), as the reference of
tests/unit/test_ppo.py. The package itself cannot be imported here: its `openrlhf.models` imports
deepspeed and flash-attn. Only the code paths the parity test calls are kept (the PPO policy loss without
the rollout-correction and dual-clip branches, the value loss, compute_reward's KL-in-reward and GAE);
every kept line is as released.
"""

# ruff: noqa
from typing import Optional, Tuple, Union

import torch


# openrlhf/models/utils.py
def masked_mean(tensor: torch.Tensor, mask: Optional[torch.Tensor], dim: int = None) -> torch.Tensor:
    if mask is None:
        return tensor.mean(dim=dim)
    return (tensor * mask).sum(dim=dim) / mask.sum(dim=dim)


# openrlhf/models/loss.py
def aggregate_loss(
    loss: torch.Tensor,
    loss_mask: torch.Tensor,
    token_level_loss: bool = True,
    dp_size: int = 1,
    batch_num_tokens: Optional[float] = None,
    global_batch_size: Optional[float] = None,
) -> torch.Tensor:
    if token_level_loss:
        if batch_num_tokens is None:
            return masked_mean(loss, loss_mask, dim=None)
        return (loss * loss_mask).sum() / batch_num_tokens * dp_size

    token_counts = loss_mask.sum(dim=-1)
    seq_loss = (loss * loss_mask).sum(dim=-1) / (token_counts + 1e-8)
    seq_mask = (token_counts > 0).float()  # exclude fully masked sequences
    if global_batch_size is None:
        return masked_mean(seq_loss, seq_mask, dim=None)
    return (seq_loss * seq_mask).sum() / global_batch_size * dp_size


# openrlhf/models/loss.py, PolicyLoss.forward with policy_loss_type="ppo", dual_clip=None,
# is_correction_level="off"
def policy_loss(log_probs, old_log_probs, advantages, action_mask, clip_eps_low=0.2, clip_eps_high=0.2,
                token_level_loss=True):
    raw_policy_log_ratio = log_probs - old_log_probs
    policy_log_ratio = raw_policy_log_ratio.clamp(min=-20.0, max=20.0)
    ratio = policy_log_ratio.exp()

    surr1 = ratio * advantages
    surr2 = ratio.clamp(1 - clip_eps_low, 1 + clip_eps_high) * advantages

    loss = -torch.min(surr1, surr2)
    loss = aggregate_loss(loss, action_mask, token_level_loss=token_level_loss)
    clip_ratio = masked_mean(torch.lt(surr2, surr1).float(), action_mask, dim=None)
    ppo_kl = masked_mean(-raw_policy_log_ratio.detach(), action_mask, dim=None)
    return loss, clip_ratio, ppo_kl


# openrlhf/models/loss.py, ValueLoss.forward
def value_loss(values, old_values, returns, action_mask, clip_eps=None, token_level_loss=True):
    if clip_eps is not None:
        values_clipped = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        surr1 = (values_clipped - returns) ** 2
        surr2 = (values - returns) ** 2
        loss = torch.max(surr1, surr2)
    else:
        loss = (values - returns) ** 2

    loss = aggregate_loss(loss, action_mask, token_level_loss=token_level_loss)
    return 0.5 * loss


# openrlhf/models/utils.py (kl_estimator="k1" in compute_approx_kl: log_probs - log_probs_base)
def compute_reward(
    r: Union[torch.Tensor, float],
    kl_coef: float,
    kl: Union[torch.Tensor, list[torch.Tensor]],
    action_mask: Optional[torch.Tensor] = None,
    reward_clip_range: Tuple[float, float] = None,
) -> Union[torch.Tensor, list[torch.Tensor]]:
    if kl_coef <= 0.0:
        kl_coef = 0.0

    if reward_clip_range:
        r = r.clamp(min=reward_clip_range[0], max=reward_clip_range[1])

    kl_reward = -kl_coef * kl
    eos_indices = action_mask.size(1) - 1 - action_mask.long().fliplr().argmax(dim=1, keepdim=True)
    last_reward = torch.zeros_like(kl).scatter_(dim=1, index=eos_indices, src=r.unsqueeze(1).to(kl.dtype))

    reward = last_reward + kl_reward

    return reward


# openrlhf/trainer/ppo_utils/experience_maker.py, get_advantages_and_returns
def get_advantages_and_returns(values, rewards, action_mask, gamma, lambd):
    lastgaelam = 0
    advantages_reversed = []
    response_length = rewards.size(1)

    # Mask invalid responses
    if action_mask is not None:
        values = action_mask * values
        rewards = action_mask * rewards

    for t in reversed(range(response_length)):
        nextvalues = values[:, t + 1] if t < response_length - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lambd * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], dim=1)
    returns = advantages + values
    return advantages.detach(), returns
