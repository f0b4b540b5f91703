"""Group-relative advantages: GRPO's replacement for a value model.

Covered: the GRPO advantage of DeepSeekMath (arXiv:2402.03300, section 4.1.2, outcome supervision) and
DeepSeek-R1 (arXiv:2501.12948, eq. 3), its Dr. GRPO variant without the std division
(arXiv:2503.20783, section 3.2), and a metric for groups that carry no learning signal.
Not covered: process supervision (per-step rewards), batch-level std scaling, dropping zero-variance
groups (DAPO's dynamic sampling; the trainer decides that, using `zero_variance_share` to watch it).

Shapes: rewards and advantages are [B, G] (B prompts, G completions per prompt). Callers flatten the
advantages to [N] = [B*G] in prompt-major order, the order `grpo_loss` expects.
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(rewards: Tensor, *, scale_by_std: bool = True, eps: float = 1e-4) -> Tensor:
    """Advantage of each completion relative to the other completions of its group.

    GRPO (DeepSeekMath section 4.1.2, outcome supervision; DeepSeek-R1 eq. 3):

        A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)

    With ``scale_by_std=False`` (Dr. GRPO, arXiv:2503.20783): ``A_i = r_i - mean(r_1..r_G)``, which
    removes the question-difficulty weighting that the std division introduces.

    The std is the unbiased (Bessel-corrected, divide by G-1) sample std, as TRL's ``nanstd`` and verl's
    ``torch.std`` compute it; ``eps`` is added to the std (not clamped), as both do, so the numbers match
    TRL 1.16's ``scale_rewards="group"`` exactly.

    A group whose rewards are all equal gets exactly 0 (no learning signal), never NaN and never a
    rounding residue such as 1e-17 / 1e-4: the mean of equal floats need not equal them bit for bit.

    Args:
        rewards: [B, G] scalar rewards, one row per prompt. Integer rewards are converted to float.
        scale_by_std: divide by the group std (GRPO) or not (Dr. GRPO).
        eps: added to the std so near-constant groups do not explode.

    Returns:
        [B, G] advantages, same dtype as ``rewards`` (float32 for integer input).

    Raises:
        ValueError: ``rewards`` is not 2-D or has fewer than 2 completions per group.

    >>> group_advantages(torch.tensor([[2.0, 0.0, 1.0]]), scale_by_std=False)
    tensor([[ 1., -1.,  0.]])
    """
    rewards = _check_groups(rewards)
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    if scale_by_std:
        centered = centered / (rewards.std(dim=1, keepdim=True) + eps)
    constant = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)
    return torch.where(constant, torch.zeros_like(centered), centered)


def zero_variance_share(rewards: Tensor) -> float:
    """Share of groups whose G rewards are all equal, i.e. whose advantages are all 0.

    A metric (TRL logs it as ``frac_reward_zero_std``): when it nears 1 the batch teaches nothing, the
    signal DAPO's dynamic sampling reacts to. Returns a Python float (one host sync; call once per step).

    Args:
        rewards: [B, G] scalar rewards.

    >>> zero_variance_share(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    0.5
    """
    rewards = _check_groups(rewards)
    constant = (rewards == rewards[:, :1]).all(dim=1)
    return float(constant.float().mean().item())


def informative_groups(rewards: Tensor) -> Tensor:
    """[B] True for the groups whose rewards are not all equal: the ones DAPO's dynamic sampling keeps
    (Yu et al. 2025, "DAPO", eq. 11: 0 < |{o_i : is_equivalent(a, o_i)}| < G, generalised to any reward).
    A group of equal rewards has all-zero advantages, so it adds no policy gradient.

    >>> informative_groups(torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.2, 0.2]])).tolist()
    [False, True, False]
    """
    rewards = _check_groups(rewards)
    return ~(rewards == rewards[:, :1]).all(dim=1)


def _check_groups(rewards: Tensor) -> Tensor:
    if rewards.dim() != 2:
        raise ValueError(
            f"rewards must be 2-D [B prompts, G completions per prompt], got shape {tuple(rewards.shape)}; "
            "reshape flat rewards with rewards.view(-1, G)"
        )
    if rewards.shape[1] < 2:
        raise ValueError(
            f"a group needs at least 2 completions to define a relative advantage, got G={rewards.shape[1]}"
        )
    return rewards if rewards.is_floating_point() else rewards.float()
