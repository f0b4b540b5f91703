"""Golden numbers, gradients and invariances for the GRPO loss; the arithmetic is in the comments.

Unless a test says otherwise: clip eps_low = 0.2, eps_high = 0.28 (DAPO's clip-higher), kl_coef = 0.
"""

import dataclasses
import math

import pytest
import torch

from r1kit.algorithms import (
    AGGREGATIONS,
    RATIO_LEVELS,
    LossOutput,
    entropy_from_logits,
    grpo_loss,
    k3_kl,
    masked_mean,
    micro_batch_weight,
)

F64 = torch.float64
LOG2 = math.log(2.0)


def _loss(
    logprobs, old_logprobs=None, ref_logprobs=None, advantages=None, mask=None, **options
) -> LossOutput:
    """grpo_loss with defaults: old = logprobs (ratio 1), no reference, A = 1, full mask."""
    options = {"clip_eps_low": 0.2, "clip_eps_high": 0.28, "kl_coef": 0.0} | options
    return grpo_loss(
        logprobs,
        logprobs.detach() if old_logprobs is None else old_logprobs,
        ref_logprobs,
        torch.ones(logprobs.shape[0], dtype=logprobs.dtype) if advantages is None else advantages,
        torch.ones_like(logprobs, dtype=torch.long) if mask is None else mask,
        **options,
    )


def _random_batch(n=6, t=5, seed=0):
    """Right-padded batch with ratios away from 1 (some clipped) and a reference model."""
    gen = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand(n, t, generator=gen, dtype=F64) * 3
    old = logprobs + 0.3 * torch.randn(n, t, generator=gen, dtype=F64)
    ref = logprobs + 0.5 * torch.randn(n, t, generator=gen, dtype=F64)
    advantages = torch.randn(n, generator=gen, dtype=F64)
    lengths = torch.randint(1, t + 1, (n,), generator=gen)
    mask = (torch.arange(t) < lengths[:, None]).long()
    return logprobs, old, ref, advantages, mask


# Two completions at ratio 1: A = [1, -2], lengths 3 and 1 (T = 3), so the token loss is -A:
#   row 0: [-1, -1, -1]    row 1: [2, pad, pad]
AGG_ADVANTAGES = torch.tensor([1.0, -2.0], dtype=F64)
AGG_MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize(
    ("aggregation", "expected_loss", "expected_grad"),
    [
        # grpo: mean per row then over rows: (-3/3 + 2/1) / 2 = 0.5
        #   d/dlogp = -A / |o_i| / N: row 0: -1/3/2 = -1/6; row 1: 2/1/2 = 1
        ("grpo", 0.5, [[-1 / 6, -1 / 6, -1 / 6], [1.0, 0.0, 0.0]]),
        # dapo: all tokens / token count: (-3 + 2) / 4 = -0.25;  d/dlogp = -A / 4
        ("dapo", -0.25, [[-0.25, -0.25, -0.25], [0.5, 0.0, 0.0]]),
        # dr_grpo, max_tokens 4: (-3 + 2) / (N * 4) = -1/8 = -0.125;  d/dlogp = -A / 8
        ("dr_grpo", -0.125, [[-0.125, -0.125, -0.125], [0.25, 0.0, 0.0]]),
    ],
)
def test_aggregation_golden_and_gradient_at_ratio_one(aggregation, expected_loss, expected_grad):
    logprobs = torch.full((2, 3), -1.0, dtype=F64, requires_grad=True)
    out = _loss(logprobs, advantages=AGG_ADVANTAGES, mask=AGG_MASK, aggregation=aggregation, max_tokens=4)
    out.loss.backward()
    torch.testing.assert_close(out.loss, torch.tensor(expected_loss, dtype=F64))
    torch.testing.assert_close(out.policy_loss, torch.tensor(expected_loss, dtype=F64))
    torch.testing.assert_close(logprobs.grad, torch.tensor(expected_grad, dtype=F64))
    assert out.ratio_mean.item() == 1.0 and out.clip_fraction.item() == 0.0


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected_loss", "clipped"),
    [
        (2.0, 1.0, -1.28, True),  # 2 > 1 + 0.28, A > 0: -min(2 * 1, 1.28 * 1) = -1.28
        (1.25, 1.0, -1.25, False),  # inside clip-higher (eps 0.2 would clip at 1.2): -1.25
        (0.5, -1.0, 0.8, True),  # 0.5 < 1 - 0.2, A < 0: -min(-0.5, -0.8) = 0.8
        (0.75, -1.0, 0.8, True),  # 0.75 < 0.8 (an eps_low of 0.28 would keep it): 0.8
        (2.0, -1.0, 2.0, False),  # A < 0 and rho high: -min(-2, -1.28) = 2, never clipped (pessimistic)
        (0.5, 1.0, -0.5, False),  # A > 0 and rho low: -min(0.5, 0.8) = -0.5, never clipped
    ],
)
def test_asymmetric_clip(ratio, advantage, expected_loss, clipped):
    logprobs = torch.zeros(1, 1, dtype=F64, requires_grad=True)
    old = torch.full((1, 1), -math.log(ratio), dtype=F64)  # rho = exp(0 - old) = ratio
    out = _loss(logprobs, old, advantages=torch.tensor([advantage], dtype=F64))
    out.loss.backward()
    torch.testing.assert_close(out.loss, torch.tensor(expected_loss, dtype=F64))
    assert out.clip_fraction.item() == float(clipped)
    torch.testing.assert_close(out.ratio_mean, torch.tensor(ratio, dtype=F64))
    # clipped: constant in logp, no gradient; unclipped: d(-rho A)/dlogp = -rho A
    expected_grad = 0.0 if clipped else -ratio * advantage
    torch.testing.assert_close(logprobs.grad, torch.tensor([[expected_grad]], dtype=F64))


@pytest.mark.parametrize(
    ("delta", "expected_kl"),
    [
        (LOG2, 2.0 - LOG2 - 1.0),  # ref - logp = log 2: e^{log 2} - log 2 - 1 = 0.306853
        (-LOG2, 0.5 + LOG2 - 1.0),  # ref - logp = -log 2: 1/2 + log 2 - 1 = 0.193147
        (0.0, 0.0),  # same policy: 1 - 0 - 1 = 0
    ],
)
def test_k3_kl_golden_inside_the_loss(delta, expected_kl):
    # logp = log 0.25, ref = logp + delta; A = 0 so only the KL term is left: loss = 0.1 * KL
    logprobs = torch.full((1, 1), math.log(0.25), dtype=F64, requires_grad=True)
    ref = logprobs.detach() + delta
    out = _loss(logprobs, ref_logprobs=ref, advantages=torch.zeros(1, dtype=F64), kl_coef=0.1)
    out.loss.backward()
    torch.testing.assert_close(out.kl, torch.tensor(expected_kl, dtype=F64))
    torch.testing.assert_close(out.loss, torch.tensor(0.1 * expected_kl, dtype=F64))
    assert out.policy_loss.item() == 0.0
    # d/dlogp (e^{ref - logp} - (ref - logp) - 1) = 1 - e^{delta}; at log 2: 0.1 * (1 - 2) = -0.1
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.1 * (1 - math.exp(delta))]], dtype=F64))


def test_k3_kl_is_non_negative():
    gen = torch.Generator().manual_seed(0)
    logprobs, ref = torch.randn(2, 100, generator=gen, dtype=F64) * 3
    assert (k3_kl(logprobs, ref) >= 0).all()


# One completion of 2 tokens plus a pad: log rho = [log 2, 0, pad], A = 1.
#   sequence (GSPO): s = exp((log 2 + 0) / 2) = sqrt(2) = 1.414214 on both tokens
#   token:           rho = [2, 1]
@pytest.mark.parametrize(
    ("ratio_level", "clip_eps_high", "expected_loss", "expected_grad", "expected_clip"),
    [
        # -mean(sqrt2, sqrt2) = -1.414214; d(-s)/dlogp_t = -s / |o| = -sqrt2 / 2 on each token
        ("sequence", 10.0, -math.sqrt(2), [-math.sqrt(2) / 2, -math.sqrt(2) / 2, 0.0], 0.0),
        # -mean(2, 1) = -1.5; d/dlogp_t = -rho_t / |o| = [-2/2, -1/2]
        ("token", 10.0, -1.5, [-1.0, -0.5, 0.0], 0.0),
        # s = 1.414 > 1.28: the whole sequence is clipped, -1.28, no gradient, both tokens count as clipped
        ("sequence", 0.28, -1.28, [0.0, 0.0, 0.0], 1.0),
        # rho = [2 -> 1.28, 1]: -mean(1.28, 1) = -1.14; only token 2 has gradient: -1/2
        ("token", 0.28, -1.14, [0.0, -0.5, 0.0], 0.5),
    ],
)
def test_sequence_level_ratio(ratio_level, clip_eps_high, expected_loss, expected_grad, expected_clip):
    logprobs = torch.tensor([[LOG2, 0.0, 123.0]], dtype=F64, requires_grad=True)
    old = torch.tensor([[0.0, 0.0, -7.0]], dtype=F64)
    out = _loss(logprobs, old, mask=torch.tensor([[1, 1, 0]]), ratio_level=ratio_level,
                clip_eps_high=clip_eps_high)
    out.loss.backward()
    torch.testing.assert_close(out.loss, torch.tensor(expected_loss, dtype=F64))
    torch.testing.assert_close(logprobs.grad, torch.tensor([expected_grad], dtype=F64))
    assert out.clip_fraction.item() == expected_clip


@pytest.mark.parametrize("ratio_level", RATIO_LEVELS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_padding_values_change_nothing(aggregation, ratio_level):
    logprobs, old, ref, advantages, mask = _random_batch()
    pad = mask == 0
    assert pad.any()
    options = {"kl_coef": 0.05, "aggregation": aggregation, "ratio_level": ratio_level, "max_tokens": 8}

    def run(fill_logp, fill_old, fill_ref):
        leaf = logprobs.masked_fill(pad, fill_logp).requires_grad_()
        out = _loss(leaf, old.masked_fill(pad, fill_old), ref.masked_fill(pad, fill_ref), advantages, mask,
                    **options)
        out.loss.backward()
        return out, leaf.grad

    clean, clean_grad = run(0.0, 0.0, 0.0)
    for fills in [(1e4, -1e4, 50.0), (math.nan, math.inf, -math.inf), (-math.inf, math.nan, math.nan)]:
        dirty, dirty_grad = run(*fills)
        for field in dataclasses.fields(LossOutput):
            torch.testing.assert_close(getattr(dirty, field.name), getattr(clean, field.name))
        torch.testing.assert_close(dirty_grad, clean_grad)
        assert (dirty_grad[pad] == 0).all()


@pytest.mark.parametrize("ratio_level", RATIO_LEVELS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_micro_batch_weight_makes_accumulation_exact(aggregation, ratio_level):
    logprobs, old, ref, advantages, mask = _random_batch(n=6, t=5, seed=1)
    options = {"kl_coef": 0.05, "aggregation": aggregation, "ratio_level": ratio_level, "max_tokens": 5}
    full_leaf = logprobs.clone().requires_grad_()
    full = _loss(full_leaf, old, ref, advantages, mask, **options)
    full.loss.backward()
    assert full.clip_fraction > 0  # the invariance is checked away from ratio 1, with clipping active

    for splits in ([1] * 6, [2, 4], [6]):  # micro-batch 1 x 6 steps, uneven 2 + 4, and 6 x 1
        leaf = logprobs.clone().requires_grad_()
        total = torch.zeros((), dtype=F64)
        for rows in torch.arange(6).split(splits):
            micro = _loss(leaf[rows], old[rows], ref[rows], advantages[rows], mask[rows], **options)
            total = total + micro.loss * micro_batch_weight(mask[rows], mask, aggregation=aggregation)
        total.backward()
        torch.testing.assert_close(total, full.loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(leaf.grad, full_leaf.grad, rtol=1e-12, atol=1e-12)


def test_micro_batch_weight_golden():
    # 4 rows with 3, 1, 2, 2 tokens (8 in all); the micro-batch is row 0 alone
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 0]])
    assert micro_batch_weight(mask[:1], mask, aggregation="grpo") == 0.25  # 1 of 4 rows
    assert micro_batch_weight(mask[:1], mask, aggregation="dr_grpo") == 0.25
    assert micro_batch_weight(mask[:1], mask, aggregation="dapo") == 3 / 8  # 3 of 8 tokens
    with pytest.raises(ValueError, match="unknown aggregation"):
        micro_batch_weight(mask, mask, aggregation="bnpo")  # type: ignore[arg-type]


def test_loss_output_is_frozen_and_stats_are_detached_tensors():
    logprobs, old, ref, advantages, mask = _random_batch()
    out = _loss(logprobs.requires_grad_(), old, ref, advantages, mask, kl_coef=0.1)
    assert out.loss.requires_grad and out.loss.dim() == 0
    for name in ("policy_loss", "kl", "clip_fraction", "ratio_mean"):
        stat = getattr(out, name)
        assert isinstance(stat, torch.Tensor) and stat.dim() == 0 and not stat.requires_grad
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.loss = torch.zeros(())  # type: ignore[misc]


def test_zero_kl_coef_ignores_an_overflowing_reference():
    # exp(ref - logp) = exp(1000) = inf; with kl_coef = 0 the loss must not become 0 * inf = NaN
    logprobs = torch.zeros(1, 2, requires_grad=True)
    out = _loss(logprobs, ref_logprobs=torch.full((1, 2), 1000.0))
    out.loss.backward()
    assert logprobs.grad is not None
    assert torch.isfinite(out.loss) and torch.isfinite(logprobs.grad).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"old_logprobs": torch.zeros(2, 4)}, "old_logprobs must match"),
        ({"mask": torch.ones(3, 3)}, "mask must match"),
        ({"ref_logprobs": torch.zeros(2, 2), "kl_coef": 0.1}, "ref_logprobs must match"),
        ({"advantages": torch.zeros(2, 1)}, r"advantages must be \[N\]"),
        ({"logprobs": torch.zeros(6)}, "2-D"),
        ({"kl_coef": 0.1}, "needs ref_logprobs"),
        ({"aggregation": "bnpo"}, "unknown aggregation"),
        ({"ratio_level": "tokens"}, "unknown ratio_level"),
        ({"aggregation": "dr_grpo"}, "needs max_tokens"),
        ({"aggregation": "dr_grpo", "max_tokens": 2}, "needs max_tokens"),
        ({"advantages": torch.ones(2, dtype=torch.long)}, "floating-point"),
        ({"clip_eps_low": -0.1}, ">= 0"),
    ],
)
def test_invalid_inputs_raise(change, message):
    args = {"logprobs": torch.zeros(2, 3), "old_logprobs": torch.zeros(2, 3), "ref_logprobs": None,
            "advantages": torch.zeros(2), "mask": torch.ones(2, 3),
            "clip_eps_low": 0.2, "clip_eps_high": 0.2, "kl_coef": 0.0} | change
    with pytest.raises(ValueError, match=message):
        grpo_loss(**args)


def test_masked_mean_golden():
    # row 0: mean(1, 2) = 1.5 (the NaN is padding); row 1 is empty -> 0, not NaN; all: (1 + 2 + 4) / 3
    x = torch.tensor([[1.0, 2.0, math.nan], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(masked_mean(x, mask), torch.tensor(7.0 / 3))
    torch.testing.assert_close(masked_mean(x, mask, dim=-1), torch.tensor([1.5, 4.0]))
    torch.testing.assert_close(masked_mean(x, torch.zeros_like(mask), dim=-1), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        masked_mean(x, mask[:, :2])


def test_entropy_golden():
    # uniform over V = 4: H = log 4 = 1.386294; a one-hot distribution (other logits -inf): H = 0
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, -math.inf, -math.inf, -math.inf]], requires_grad=True)
    entropy = entropy_from_logits(logits)
    torch.testing.assert_close(entropy, torch.tensor([math.log(4), 0.0]))
    entropy.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_entropy_matches_categorical_chunked_and_half_precision():
    logits = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0)) * 5
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(entropy_from_logits(logits, chunk_size=2), expected)
    half = entropy_from_logits(logits.bfloat16())
    assert half.dtype == torch.float32 and half.shape == (2, 3)
    torch.testing.assert_close(half, expected, atol=0.05, rtol=0.05)


def test_truncated_importance_weights_scale_the_surrogate_only():
    """rollout.tis_cap: each token's policy loss times its weight; the KL term is untouched. Golden: one
    completion of two tokens, on-policy (ratio 1), A = 1, weights [2, 0.5]: policy loss -(2 + 0.5) / 2."""
    logp = torch.zeros(1, 2, requires_grad=True)
    ref = torch.log(torch.tensor([[0.5, 2.0]]))
    kw = dict(clip_eps_low=0.2, clip_eps_high=0.2, kl_coef=0.1)
    plain = grpo_loss(logp, logp.detach(), ref, torch.ones(1), torch.ones(1, 2), **kw)
    weighted = grpo_loss(logp, logp.detach(), ref, torch.ones(1), torch.ones(1, 2), **kw,
                         is_weights=torch.tensor([[2.0, 0.5]]))
    assert plain.policy_loss.item() == pytest.approx(-1.0)
    assert weighted.policy_loss.item() == pytest.approx(-1.25)
    assert weighted.kl.item() == pytest.approx(plain.kl.item())
    kl_part = plain.loss.item() - plain.policy_loss.item()
    assert weighted.loss.item() - weighted.policy_loss.item() == pytest.approx(kl_part)
    ones = grpo_loss(logp, logp.detach(), ref, torch.ones(1), torch.ones(1, 2), **kw, is_weights=torch.ones(1, 2))
    assert ones.loss.item() == pytest.approx(plain.loss.item())
    with pytest.raises(ValueError, match="is_weights"):
        grpo_loss(logp, logp.detach(), ref, torch.ones(1), torch.ones(1, 2), **kw, is_weights=torch.ones(2))
