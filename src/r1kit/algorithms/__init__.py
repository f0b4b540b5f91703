"""Pure tensor math of GRPO: group-relative advantages and the clipped policy loss with its variants.

No models, no trainers: every function takes tensors and keyword-only options and returns tensors.
"""

from r1kit.algorithms.advantages import group_advantages, zero_variance_share
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
    "group_advantages",
    "grpo_loss",
    "k3_kl",
    "masked_mean",
    "micro_batch_weight",
    "zero_variance_share",
]
