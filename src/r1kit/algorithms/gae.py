"""Per-token advantages for PPO with a value model: generalised advantage estimation (GAE).

The paper's training module supports PPO beside GRPO (R1-SPEC sections 2 and 6; its appendix compares
them: with a tuned lambda PPO can match GRPO at about twice the cost). These are PPO's advantages; the
value loss and the KL in the reward are in `r1kit.algorithms.ppo`, the loop in `r1kit.trainers.ppo`.

Shapes: [N, T] per completion token, right-padded; `mask` is 1 on completion tokens (the first EOS
included) and 0 on the padding after it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sparse_rewards(final: Tensor, mask: Tensor) -> Tensor:
    """[N, T] per-token rewards from one outcome reward per completion [N]: the completion's last token gets
    it, every other token 0 (R1-Zero's rule rewards score a whole completion). A completion without any
    token gets nothing."""
    rewards = torch.zeros(mask.shape, dtype=torch.promote_types(final.dtype, torch.float32), device=mask.device)
    lengths = mask.long().sum(dim=1)
    rows = (lengths > 0).nonzero().squeeze(1)
    rewards[rows, lengths[rows] - 1] = final[rows].to(rewards.dtype)
    return rewards


def gae(rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float = 1.0, lam: float = 0.95
        ) -> tuple[Tensor, Tensor]:
    """(advantages, returns), both [N, T] and 0 on padding: generalised advantage estimation (Schulman et
    al. 2016, arXiv:1506.02438, eq. 16):

        delta_t = r_t + gamma * V_{t+1} - V_t           (V after the last token is 0: the episode ends)
        A_t     = delta_t + gamma * lam * A_{t+1}
        R_t     = A_t + V_t                             (the value model's regression target)

    With gamma = lam = 1, A_t = sum_{k >= t} r_k - V_t: the Monte-Carlo return minus the value. gamma = 1
    and lam = 0.95 are the usual defaults for LLM PPO (TRL's `PPOConfig`, OpenRLHF); the R1 paper's
    comparison varies lam (0.95 against 1.0). Values and rewards on padding are ignored, whatever they hold.
    """
    if rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and mask "
                         f"{tuple(mask.shape)} must have the same [N, T] shape")
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma}, lam={lam}")
    keep = mask.to(values.dtype)
    values, rewards = values * keep, rewards.to(values.dtype) * keep
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        following = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * following - values[:, t]
        running = (delta + gamma * lam * running) * keep[:, t]  # padding passes nothing back
        advantages[:, t] = running
    return advantages, (advantages + values) * keep


def whiten(values: Tensor, mask: Tensor, *, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """`values` normalised to unit variance (and zero mean with `shift_mean`) over the masked tokens of the
    whole batch, as PPO whitens its advantages (TRL's `masked_whiten`, unbiased variance); 0 on padding."""
    keep = mask.to(values.dtype)
    n = keep.sum()
    if n < 2:
        raise ValueError("whitening needs at least two tokens")
    mean = (values * keep).sum() / n
    variance = (((values - mean) * keep) ** 2).sum() / (n - 1)
    out = (values - mean) * torch.rsqrt(variance + eps)
    if not shift_mean:
        out = out + mean
    return out * keep
