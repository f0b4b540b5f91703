"""The DPO loss (Rafailov et al. 2023, "Direct Preference Optimization", arXiv:2305.18290, eq. 7), with
conservative DPO's label smoothing (cDPO, Mitchell 2023), as a pure tensor function.

    h   = (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))
    L   = -(1 - eps) * log sigmoid(beta * h) - eps * log sigmoid(-beta * h)

log pi(y|x) is the *sum* of the response tokens' log-probs (the prompt's tokens are context, not
scored). The implicit rewards are r = beta * (log pi - log pi_ref) of the chosen and the rejected
response (eq. 5 without the partition function, which cancels in h); their difference is the margin,
and the share of pairs whose chosen reward is the larger is the reward accuracy.

Shapes: P pairs; every input is [P] (summed sequence log-probs). The batch loss is the mean of `loss`.
With eps = 0 this is TRL 1.16 `DPOTrainer._compute_loss` with loss_type "sigmoid" (f_divergence_type
reverse_kl, no ld_alpha, no WPO weighting) to 1e-6; tests/unit/test_dpo.py runs TRL's own code.
Not covered: TRL's other loss types (IPO, hinge, robust, ...), which cDPO's eps is not: TRL 1.16 reads
`label_smoothing` only in robust/EXO/AOT, so the parity holds for eps = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DPOOutput:
    """What `dpo_loss` returns: per-pair losses (with grad) and detached per-pair stats [P]."""

    loss: Tensor
    """[P] with grad: each pair's loss; the batch loss is their mean."""
    chosen_rewards: Tensor
    """[P] detached: beta * (log pi(y_w) - log pi_ref(y_w)), TRL's `rewards/chosen` before the mean."""
    rejected_rewards: Tensor
    """[P] detached: beta * (log pi(y_l) - log pi_ref(y_l)), TRL's `rewards/rejected`."""

    @property
    def margins(self) -> Tensor:
        """[P]: chosen minus rejected reward (`rewards/margins`)."""
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracies(self) -> Tensor:
        """[P] of 0/1: chosen reward strictly above rejected (`rewards/accuracies`; a tie counts 0)."""
        return (self.chosen_rewards > self.rejected_rewards).float()


def dpo_loss(*, policy_chosen: Tensor, policy_rejected: Tensor, reference_chosen: Tensor,
             reference_rejected: Tensor, beta: float, label_smoothing: float = 0.0) -> DPOOutput:
    """The sigmoid DPO loss of summed response log-probs, each [P] (see the module docstring).

    Golden numbers (beta 0.1): log-ratios 1.0 (chosen) and -1.0 (rejected) give h = 2, beta * h = 0.2,
    loss = log(1 + e^-0.2) = 0.5981, rewards 0.1 and -0.1, margin 0.2, accuracy 1; equal log-ratios cost
    log 2 = 0.6931 whatever eps; eps 0.1 on beta * h = 0.2 costs 0.9 * 0.5981 + 0.1 * 0.7981 = 0.6181.

    >>> out = dpo_loss(policy_chosen=torch.tensor([-3.0]), policy_rejected=torch.tensor([-6.0]),
    ...                reference_chosen=torch.tensor([-4.0]), reference_rejected=torch.tensor([-5.0]), beta=0.1)
    >>> round(out.loss.item(), 4), round(out.margins.item(), 4), out.accuracies.item()
    (0.5981, 0.2, 1.0)
    """
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, reference_chosen, reference_rejected)}
    if len(shapes) != 1 or policy_chosen.dim() != 1:
        raise ValueError(f"the four log-prob inputs must be equal-length vectors [P], got shapes {sorted(shapes)}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    chosen_logratio = policy_chosen - reference_chosen.detach()
    rejected_logratio = policy_rejected - reference_rejected.detach()
    logits = beta * (chosen_logratio - rejected_logratio)
    loss = -torch.nn.functional.logsigmoid(logits)
    if label_smoothing:  # cDPO: the label is flipped with probability eps
        loss = (1 - label_smoothing) * loss - label_smoothing * torch.nn.functional.logsigmoid(-logits)
    return DPOOutput(loss=loss, chosen_rewards=(beta * chosen_logratio).detach(),
                     rejected_rewards=(beta * rejected_logratio).detach())
