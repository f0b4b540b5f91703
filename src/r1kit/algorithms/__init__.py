"""Pure tensor math of GRPO (group-relative advantages, the clipped policy loss with its variants) and PPO's
advantages (GAE).

No models, no trainers: every function takes tensors and keyword-only options and returns tensors.
"""

from r1kit.algorithms.advantages import group_advantages, zero_variance_share
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

__all__ = [
    "AGGREGATIONS",
    "RATIO_LEVELS",
    "Aggregation",
    "LossOutput",
    "RatioLevel",
    "entropy_from_logits",
    "gae",
    "group_advantages",
    "grpo_loss",
    "k3_kl",
    "masked_mean",
    "micro_batch_weight",
    "sparse_rewards",
    "whiten",
    "zero_variance_share",
]
