"""The GRPO policy loss and its common variants, as pure tensor functions.

Covered: GRPO's clipped surrogate with the k3 KL penalty inside the loss (DeepSeekMath, arXiv:2402.03300,
eq. 3-4; DeepSeek-R1, arXiv:2501.12948, eq. 1-2); three ways to turn token losses into one number
(GRPO's per-sequence mean, DAPO's token-level mean, Dr. GRPO's constant normaliser); DAPO's asymmetric
"clip-higher" (arXiv:2503.14476); GSPO's sequence-level importance ratio (arXiv:2507.18071); the weight
that keeps each aggregation exact under gradient accumulation; entropy and masked-mean helpers.
Not covered: PPO's value loss, other TRL loss types (bnpo, cispo, sapo, luspo, vespo), rollout-engine
importance-sampling correction, and TRL's `use_bias_correction_kl` (on by default in TRL 1.16; it
multiplies the KL by the ratio; DeepSeekMath and R1 use the plain k3 term implemented here).

Shapes: N completions (N = B*G, prompt-major), T completion tokens (right-padded), V vocabulary.
`mask` [N, T] is 1 on completion tokens (including the first EOS) and 0 on padding. Values at padded
positions never reach the loss, the stats or the gradients, even when they are inf or NaN.

`grpo_loss` equals TRL 1.16 `GRPOTrainer._compute_loss` (loss_type grpo/dapo/dr_grpo,
importance_sampling_level token/sequence, use_bias_correction_kl=False) to 1e-6;
tests/unit/test_trl_parity.py runs TRL's own code to check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Aggregation = Literal["grpo", "dapo", "dr_grpo"]
RatioLevel = Literal["token", "sequence"]
AGGREGATIONS: tuple[Aggregation, ...] = ("grpo", "dapo", "dr_grpo")
RATIO_LEVELS: tuple[RatioLevel, ...] = ("token", "sequence")


@dataclass(frozen=True)
class LossOutput:
    """What `grpo_loss` returns: the loss to differentiate and detached scalar stats (tensors, so that
    logging them does not force a GPU sync until the trainer chooses to)."""

    loss: Tensor
    """Scalar with grad: aggregated policy loss + kl_coef * k3 KL."""
    policy_loss: Tensor
    """Detached scalar: the clipped-surrogate part alone, aggregated the same way as `loss`."""
    kl: Tensor
    """Detached scalar: k3 KL averaged over all masked tokens of the batch (0 without a reference)."""
    clip_fraction: Tensor
    """Detached scalar: share of masked tokens where the clip was active, i.e. the min chose the clipped
    term and it differs: (rho > 1 + eps_high and A > 0) or (rho < 1 - eps_low and A < 0). This is TRL's
    `clip_ratio/region_mean` and verl's `pg_clipfrac` at token level. At sequence level the sequence ratio
    is broadcast over its tokens, so this share weighs sequences by length (TRL averages over sequences)."""
    ratio_mean: Tensor
    """Detached scalar: importance ratio rho averaged over masked tokens (1 when on-policy)."""


def grpo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps_low: float,
    clip_eps_high: float,
    kl_coef: float,
    aggregation: Aggregation = "grpo",
    ratio_level: RatioLevel = "token",
    max_tokens: int | None = None,
    is_weights: Tensor | None = None,
) -> LossOutput:
    """GRPO's clipped-surrogate loss with the k3 KL penalty, over one batch of N completions.

    Per token t of completion o_i (DeepSeekMath eq. 3; DAPO clip-higher when eps_high > eps_low):

        rho_{i,t} = pi(o_{i,t}) / pi_old(o_{i,t}) = exp(logprobs - old_logprobs)
        l_{i,t}   = -min(rho_{i,t} A_i, clip(rho_{i,t}, 1 - eps_low, 1 + eps_high) A_i) + kl_coef * KL_{i,t}
        KL_{i,t}  = exp(ref - logp) - (ref - logp) - 1                        (k3, DeepSeekMath eq. 4)

    ``ratio_level="sequence"`` (GSPO) replaces rho_{i,t} by one ratio per completion, broadcast over its
    tokens: s_i = (pi(o_i) / pi_old(o_i))^(1/|o_i|) = exp(1/|o_i| sum_t log rho_{i,t}); the gradient
    reaches every token, d s_i / d logp_{i,t} = s_i / |o_i| (TRL's importance_sampling_level="sequence").

    ``aggregation`` (TRL's ``loss_type`` of the same name):

        "grpo":    1/N sum_i 1/|o_i| sum_t l_{i,t}      mean per completion, then over completions
        "dapo":    sum_{i,t} l_{i,t} / sum_i |o_i|       one mean over all tokens of the batch
        "dr_grpo": sum_{i,t} l_{i,t} / (N * max_tokens)  constant normaliser: no length bias

    The loss is over the batch passed in; for gradient accumulation multiply each micro-batch's loss by
    `micro_batch_weight` so that the sum equals the loss over the whole minibatch.

    Args:
        logprobs: [N, T] log pi_theta of the sampled tokens, with grad.
        old_logprobs: [N, T] log pi_old of the same tokens (the rollout policy), no grad.
        ref_logprobs: [N, T] log pi_ref of the same tokens, or None when ``kl_coef == 0``.
        advantages: [N] one advantage per completion (see `group_advantages`), broadcast over tokens; or
            [N, T] one per token (PPO's GAE advantages, `r1kit.algorithms.gae`).
        mask: [N, T] 1 on completion tokens (including the first EOS), 0 on padding.
        clip_eps_low: rho is clipped below at 1 - clip_eps_low (PPO's epsilon, 0.2 usually).
        clip_eps_high: rho is clipped above at 1 + clip_eps_high (DAPO uses 0.28).
        kl_coef: beta, the KL weight (R1-Zero: 0.001).
        aggregation: how token losses become one scalar; see above.
        ratio_level: "token" (GRPO) or "sequence" (GSPO).
        max_tokens: the maximum completion length, required by "dr_grpo" (at least T).
        is_weights: [N, T] per-token importance weights (no grad) multiplying the clipped surrogate: the
            truncated correction for a rollout engine whose law differs from the trainer's (rollout.tis_cap).

    Raises:
        ValueError: mismatched shapes, non-float inputs, a missing reference with kl_coef > 0, a negative
            coefficient, an unknown aggregation or ratio level, "dr_grpo" without a valid max_tokens.
    """
    _check_loss_inputs(
        logprobs, old_logprobs, ref_logprobs, advantages, mask,
        kl_coef=kl_coef, clip_eps_low=clip_eps_low, clip_eps_high=clip_eps_high,
        aggregation=aggregation, ratio_level=ratio_level, max_tokens=max_tokens,
    )
    pad = ~mask.bool()
    # Zero the padding first: garbage there (inf, NaN) would leak NaN into the gradients through exp()
    # even though the mask removes it from the values.
    logprobs = logprobs.masked_fill(pad, 0.0)
    ratio = _importance_ratio(logprobs, old_logprobs.masked_fill(pad, 0.0), ~pad, level=ratio_level)
    # [N, 1]: one advantage for every token of a completion (GRPO), or PPO's per-token [N, T]
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages
    clipped_ratio = ratio.clamp(1.0 - clip_eps_low, 1.0 + clip_eps_high)
    # PPO's pessimistic bound: the clip only ever removes incentive, never adds it.
    per_token_policy = -torch.minimum(ratio * adv, clipped_ratio * adv)
    if is_weights is not None:
        if is_weights.shape != logprobs.shape:
            raise ValueError(f"is_weights must match logprobs {tuple(logprobs.shape)}, got {tuple(is_weights.shape)}")
        per_token_policy = per_token_policy * is_weights.masked_fill(pad, 0.0)
    per_token_kl = (
        torch.zeros_like(logprobs) if ref_logprobs is None
        else k3_kl(logprobs, ref_logprobs.masked_fill(pad, 0.0))
    )
    # kl_coef == 0 adds nothing, not 0 * KL: an overflowed KL (inf) would turn that into NaN.
    per_token_loss = per_token_policy + kl_coef * per_token_kl if kl_coef != 0 else per_token_policy
    loss = _aggregate(per_token_loss, ~pad, aggregation, max_tokens)
    clip_active = ((ratio > 1.0 + clip_eps_high) & (adv > 0)) | ((ratio < 1.0 - clip_eps_low) & (adv < 0))
    return LossOutput(
        loss=loss,
        policy_loss=_aggregate(per_token_policy.detach(), ~pad, aggregation, max_tokens),
        kl=masked_mean(per_token_kl.detach(), ~pad),
        clip_fraction=masked_mean(clip_active.to(logprobs.dtype), ~pad),
        ratio_mean=masked_mean(ratio.detach(), ~pad),
    )


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 estimator of KL(pi_theta || pi_ref) (Schulman 2020; DeepSeekMath eq. 4).

        KL = pi_ref / pi_theta - log(pi_ref / pi_theta) - 1 = exp(d) - d - 1,  d = ref - logp

    Unbiased for samples from pi_theta and >= 0 everywhere (exp(d) >= 1 + d), unlike log(pi/pi_ref).
    Not clamped, as in TRL; shapes are elementwise ([N, T] -> [N, T]).

    >>> round(k3_kl(torch.tensor(0.0), torch.log(torch.tensor(2.0))).item(), 6)  # 2 - log 2 - 1
    0.306853
    """
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def micro_batch_weight(mask_micro: Tensor, mask_full: Tensor, *, aggregation: Aggregation) -> float:
    """Factor for a micro-batch's `grpo_loss` so that the weighted micro-batch losses sum to the loss
    (and gradient) of the full minibatch, exactly, whatever the split.

        "grpo", "dr_grpo": N_micro / N_full          (both average over completions)
        "dapo":            tokens_micro / tokens_full (it averages over tokens)

    For "dapo" this is what TRL 1.16 does by dividing every micro-batch's token sum by
    ``num_items_in_batch``, the token count of the whole generation batch. For "grpo" and "dr_grpo" TRL
    divides by the number of accumulation steps, which is the same when micro-batches are equal-sized.
    Returns a Python float (one host sync for "dapo"; compute it once per micro-batch).

    Args:
        mask_micro: [n, T'] the micro-batch's mask.
        mask_full: [N, T] the mask of the whole minibatch the optimizer step covers.
    """
    if mask_micro.dim() != 2 or mask_full.dim() != 2:
        shapes = f"{tuple(mask_micro.shape)} and {tuple(mask_full.shape)}"
        raise ValueError(f"masks must be 2-D [N, T], got {shapes}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {AGGREGATIONS}")
    if aggregation == "dapo":
        return float(mask_micro.bool().sum().item()) / max(float(mask_full.bool().sum().item()), 1.0)
    return mask_micro.shape[0] / mask_full.shape[0]


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over positions where ``mask`` is set, over all of it or along ``dim``.

    Positions outside the mask are ignored, even inf or NaN; an empty mask (or row) gives 0, not NaN
    (as TRL's ``clamp(min=1)``). ``x`` and ``mask`` have the same shape.

    >>> masked_mean(torch.tensor([[1.0, 2.0, 9.0]]), torch.tensor([[1, 1, 0]]), dim=-1)
    tensor([1.5000])
    """
    if x.shape != mask.shape:
        raise ValueError(f"x and mask must have the same shape, got {tuple(x.shape)} and {tuple(mask.shape)}")
    keep = mask.bool()
    kept = x.masked_fill(~keep, 0.0)
    if dim is None:
        return kept.sum() / keep.sum().clamp(min=1)
    return kept.sum(dim) / keep.sum(dim).clamp(min=1)


def entropy_from_logits(logits: Tensor, *, chunk_size: int = 1024) -> Tensor:
    """Entropy in nats of the softmax of ``logits`` along the last axis: [..., V] -> [...].

        H = -sum_v p_v log p_v,  log p = log_softmax(logits)

    Stable for any logits (log_softmax, never log(softmax)); logits of -inf (a masked vocabulary) add
    0, not NaN, to the value and the gradient. Half-precision logits are computed in float32. Rows are
    processed ``chunk_size`` at a time so the [rows, V] temporaries stay small.
    """
    if logits.dim() == 0:
        raise ValueError("logits must have a vocabulary axis [..., V]")
    flat = logits.reshape(-1, logits.shape[-1])
    dtype = torch.promote_types(logits.dtype, torch.float32)
    chunks = []
    for chunk in flat.split(chunk_size, dim=0):
        logp = torch.log_softmax(chunk.to(dtype), dim=-1)
        # p * log p -> 0 where p = 0; masked_fill (not where) keeps the gradient finite there too.
        chunks.append(-(logp.exp() * logp.masked_fill(torch.isneginf(logp), 0.0)).sum(-1))
    return torch.cat(chunks).reshape(logits.shape[:-1])


def _importance_ratio(logprobs: Tensor, old_logprobs: Tensor, keep: Tensor, *, level: RatioLevel) -> Tensor:
    """[N, T] importance ratio: per token (GRPO), or GSPO's per-sequence s_i broadcast over tokens."""
    log_ratio = logprobs - old_logprobs
    if level == "sequence":
        # log s_i = 1/|o_i| sum_t log rho_{i,t}: a length-normalised sequence likelihood ratio.
        log_ratio = masked_mean(log_ratio, keep, dim=-1).unsqueeze(-1).expand_as(log_ratio)
    return torch.exp(log_ratio)


def _aggregate(per_token: Tensor, keep: Tensor, aggregation: Aggregation, max_tokens: int | None) -> Tensor:
    """[N, T] token losses -> scalar, by the chosen aggregation (see `grpo_loss`)."""
    if aggregation == "grpo":
        return masked_mean(per_token, keep, dim=-1).mean()
    total = per_token.masked_fill(~keep, 0.0).sum()
    if aggregation == "dapo":
        return total / keep.sum().clamp(min=1)
    assert max_tokens is not None  # checked in _check_loss_inputs
    return total / (per_token.shape[0] * max_tokens)


def _check_loss_inputs(
    logprobs: Tensor,
    old_logprobs: Tensor,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    kl_coef: float,
    clip_eps_low: float,
    clip_eps_high: float,
    aggregation: str,
    ratio_level: str,
    max_tokens: int | None,
) -> None:
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be 2-D [N, T], got shape {tuple(logprobs.shape)}")
    shaped = {"old_logprobs": old_logprobs, "mask": mask}
    floats = {"logprobs": logprobs, "old_logprobs": old_logprobs, "advantages": advantages}
    if ref_logprobs is not None:
        shaped["ref_logprobs"] = floats["ref_logprobs"] = ref_logprobs
    for name, tensor in shaped.items():
        if tensor.shape != logprobs.shape:
            raise ValueError(f"{name} must match logprobs {tuple(logprobs.shape)}, got {tuple(tensor.shape)}")
    if advantages.shape not in (logprobs.shape[:1], logprobs.shape):
        raise ValueError(
            f"advantages must be [N] = [{logprobs.shape[0]}] (one per completion) or [N, T] = "
            f"{list(logprobs.shape)} (one per token), got {tuple(advantages.shape)}"
        )
    for name, tensor in floats.items():
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if ref_logprobs is None and kl_coef != 0:
        raise ValueError(f"kl_coef={kl_coef} needs ref_logprobs; pass them or set kl_coef=0")
    if kl_coef < 0 or clip_eps_low < 0 or clip_eps_high < 0:
        raise ValueError(f"kl_coef and clip eps must be >= 0, got {kl_coef}, {clip_eps_low}, {clip_eps_high}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {AGGREGATIONS}")
    if ratio_level not in RATIO_LEVELS:
        raise ValueError(f"unknown ratio_level {ratio_level!r}; expected one of {RATIO_LEVELS}")
    if aggregation == "dr_grpo" and (max_tokens is None or max_tokens < logprobs.shape[1]):
        raise ValueError(
            f"aggregation='dr_grpo' needs max_tokens >= T = {logprobs.shape[1]} (the maximum completion "
            f"length, its constant normaliser), got {max_tokens}"
        )
