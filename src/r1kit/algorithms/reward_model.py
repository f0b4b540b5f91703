"""The reward model's loss: Bradley-Terry on preference pairs (R1-SPEC section 3, stage 4's reward models;
Ouyang et al. 2022, eq. 1), with TRL's optional margin and reward centring.

    L = mean over pairs of [ -log sigmoid(r_chosen - r_rejected - m) + c * (r_chosen + r_rejected)^2 ]

m is a per-pair margin (0 when the data has none; Llama 2's margin loss), c TRL's
`center_rewards_coefficient` (Eisenstein et al. 2023): it pulls the rewards towards mean 0 so that
they need no offset when used as a reward. With c = 0 and m = 0 this is TRL's `RewardTrainer` loss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bradley_terry_loss(chosen: Tensor, rejected: Tensor, *, margin: Tensor | None = None,
                       center_coefficient: float = 0.0) -> Tensor:
    """Per-pair losses [P] of rewards `chosen` [P] and `rejected` [P]; the batch loss is their mean.

    Golden numbers: equal rewards cost log 2 = 0.6931; a lead of 2 costs log(1 + e^-2) = 0.1269; the
    same lead against a margin of 2 costs log 2 again; centring adds c * (1 + (-1))^2 = 0 for rewards
    (1, -1) and c * (2 + 0)^2 = 0.04 for (2, 0) with c = 0.01.

    >>> z = torch.tensor([0.0, 2.0])
    >>> [round(x, 4) for x in bradley_terry_loss(z, torch.zeros(2)).tolist()]
    [0.6931, 0.1269]
    >>> round(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]), margin=torch.tensor([2.0])).item(), 4)
    0.6931
    >>> [round(x, 4) for x in bradley_terry_loss(torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0]),
    ...                                          center_coefficient=0.01).tolist()]
    [0.1269, 0.1669]
    """
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(f"chosen and rejected must be equal-length vectors, got {tuple(chosen.shape)} "
                         f"and {tuple(rejected.shape)}")
    chosen, rejected = chosen.float(), rejected.float()
    lead = chosen - rejected
    if margin is not None:
        lead = lead - margin.to(lead)
    loss = -torch.nn.functional.logsigmoid(lead)
    if center_coefficient:
        loss = loss + center_coefficient * (chosen + rejected) ** 2
    return loss
