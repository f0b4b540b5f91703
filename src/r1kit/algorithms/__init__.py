"""Pure tensor math of GRPO (group-relative advantages, the clipped policy loss with its variants) and PPO's
advantages (GAE), and the DPO loss.

No models, no trainers: every function takes tensors and keyword-only options and returns tensors.
"""

from r1kit.algorithms.advantages import group_advantages, informative_groups, zero_variance_share
from r1kit.algorithms.dpo import DPOOutput, dpo_loss
from r1kit.algorithms.gae import gae, sparse_rewards, whiten
from r1kit.algorithms.losses import (
    AGGREGATIONS,
    RATIO_LEVELS,
    Aggregation,
    LossOutput,
    RatioLevel,
    entropy_from_logits,
    grpo_loss,
    k3_kl,
    masked_mean,
    micro_batch_weight,
)
from r1kit.algorithms.ppo import explained_variance, kl_penalized_rewards, value_loss

__all__ = [
    "AGGREGATIONS",
    "RATIO_LEVELS",
    "Aggregation",
    "DPOOutput",
    "LossOutput",
    "RatioLevel",
    "dpo_loss",
    "entropy_from_logits",
    "explained_variance",
    "gae",
    "group_advantages",
    "grpo_loss",
    "informative_groups",
    "k3_kl",
    "kl_penalized_rewards",
    "masked_mean",
    "micro_batch_weight",
    "sparse_rewards",
    "value_loss",
    "whiten",
    "zero_variance_share",
]
