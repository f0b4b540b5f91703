"""PPO's pieces beside GAE (`r1kit.algorithms.gae`): the clipped value loss, the KL penalty folded into the
per-token rewards (classic RLHF PPO), and the critic's explained variance. The policy loss is GRPO's
clipped surrogate (`grpo_loss`) with per-token advantages.

Shapes: [N, T] per completion token, right-padded; `mask` is 1 on completion tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from r1kit.algorithms.gae import sparse_rewards
from r1kit.algorithms.losses import Aggregation, _aggregate


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, *, clip_eps: float,
               aggregation: Aggregation = "dapo", max_tokens: int | None = None) -> tuple[Tensor, Tensor]:
    """(loss, clip fraction): PPO's clipped value loss (Schulman et al. 2017, as in OpenAI's baselines, TRL
    and OpenRLHF's `ValueLoss`):

        V_clip = V_old + clip(V - V_old, -eps, eps)
        l_t    = 1/2 max((V_t - R_t)^2, (V_clip_t - R_t)^2)

    aggregated over the masked tokens like the policy loss ("dapo": one mean over all tokens, OpenRLHF's
    token_level_loss; "grpo": per completion then over completions). clip_eps = 0 turns clipping off.

    >>> v, old, ret, m = torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[3.0]]), torch.ones(1, 1)
    >>> value_loss(v, old, ret, m, clip_eps=0.5)[0].item()  # clipped value 0.5 is further from 3: (0.5-3)^2/2
    3.125
    """
    if not (values.shape == old_values.shape == returns.shape == mask.shape):
        raise ValueError(f"values {tuple(values.shape)}, old_values, returns and mask must share one [N, T] shape")
    if clip_eps < 0:
        raise ValueError(f"clip_eps must be >= 0, got {clip_eps}")
    keep = mask.bool()
    values = values.masked_fill(~keep, 0.0)
    returns, old_values = returns.masked_fill(~keep, 0.0), old_values.masked_fill(~keep, 0.0)
    unclipped = (values - returns) ** 2
    if clip_eps > 0:
        clipped = (old_values + (values - old_values).clamp(-clip_eps, clip_eps) - returns) ** 2
        per_token = torch.maximum(unclipped, clipped)
        fraction = ((clipped > unclipped) & keep).sum() / keep.sum().clamp(min=1)
    else:
        per_token, fraction = unclipped, torch.zeros((), device=values.device)
    return 0.5 * _aggregate(per_token, keep, aggregation, max_tokens), fraction.detach()


def kl_penalized_rewards(final: Tensor, mask: Tensor, logprobs: Tensor, ref_logprobs: Tensor, kl_coef: float
                         ) -> Tensor:
    """[N, T] per-token rewards of classic RLHF PPO (Ziegler et al. 2019; Ouyang et al. 2022, eq. 2): the
    outcome reward on the last token, and -kl_coef * (log pi_old - log pi_ref) on every token (the k1
    estimate of the KL, in the reward rather than in the loss), as OpenRLHF's `compute_reward` does.

    >>> lp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -2.0]])
    >>> kl_penalized_rewards(torch.tensor([1.0]), torch.ones(1, 2), lp, ref, 0.1).tolist()
    [[-0.05000000074505806, 1.0]]
    """
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    rewards = sparse_rewards(final, mask)
    if kl_coef == 0:
        return rewards
    return rewards - kl_coef * (logprobs - ref_logprobs).to(rewards.dtype) * mask.to(rewards.dtype)


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 - Var(R - V) / Var(R) over the masked tokens: 1 for a perfect critic, 0 for one that predicts the
    mean, negative for a worse one (the metric of OpenAI's baselines and TRL's PPO). NaN when Var(R) = 0.

    >>> m = torch.ones(1, 4)
    >>> explained_variance(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[1.0, 2.0, 3.0, 4.0]]), m)
    1.0
    """
    keep = mask.bool()
    r, v = returns[keep].double(), values[keep].double()
    var = r.var(unbiased=False) if r.numel() else torch.tensor(0.0)
    if var == 0:
        return float("nan")
    return float(1.0 - (r - v).var(unbiased=False) / var)
