"""The HF sampling engine: parity with transformers' generate, masks, seeds (per prompt group, so splitting a
call changes no sample), the inverse-CDF sampler's law, top-p, and agreement between the sampler's log-probs
and the trainer's recomputed ones."""

from __future__ import annotations

import math

import pytest
import torch

from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.logprobs import completion_logprobs
from r1kit.rollout import Generation, HFGenerator, SamplingParams, left_pad
from r1kit.rollout.base import concat, group_seed
from r1kit.rollout.hf import _sample, _top_p_filter


@pytest.fixture(scope="module")
def engine(tiny_random_model):
    tok = load_tokenizer(str(tiny_random_model))
    model = load_model(str(tiny_random_model))
    return model, tok, HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def _prompts(tok):
    return [tok(t, add_special_tokens=False)["input_ids"] for t in ["12+34=", "a much longer prompt: 7+8=", "x"]]


def test_greedy_matches_transformers_generate_on_left_padded_batch(engine):
    model, tok, gen = engine
    prompts = _prompts(tok)
    ours = gen.generate(prompts, SamplingParams(temperature=0, max_new_tokens=12))
    batch = tok.pad({"input_ids": prompts}, return_tensors="pt")
    theirs = model.generate(**batch, do_sample=False, max_new_tokens=12, min_new_tokens=12,
                            pad_token_id=tok.pad_token_id, eos_token_id=None)
    theirs = theirs[:, batch["input_ids"].shape[1]:]
    # Compare up to each row's first EOS (HF keeps generating past it when eos_token_id is None).
    for i in range(len(prompts)):
        n = int(ours.completion_mask[i].sum())
        assert ours.completion_ids[i, :n].tolist() == theirs[i, :n].tolist()


def test_same_seed_same_samples_other_seed_other_samples(engine):
    _, tok, gen = engine
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=10)
    a = gen.generate(_prompts(tok), params, num_samples=4, seed=3)
    b = gen.generate(_prompts(tok), params, num_samples=4, seed=3)
    c = gen.generate(_prompts(tok), params, num_samples=4, seed=4)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert a.completion_ids.shape[0] == 12  # group-major: B=3 prompts x G=4


def _eos_likely(path, boost: float):
    """The tiny random model with its EOS logit raised, so rows end early and at many lengths."""
    tok = load_tokenizer(str(path))
    model = load_model(str(path))
    with torch.no_grad():
        model.lm_head.weight[tok.eos_token_id] += boost * model.lm_head.weight.abs().max()
    return model, tok, HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def test_masks_keep_first_eos_and_pad_after(tiny_random_model):
    _, tok, gen = _eos_likely(tiny_random_model, 0.5)
    out = gen.generate(_prompts(tok), SamplingParams(max_new_tokens=30), num_samples=8, seed=0)
    assert out.finished.any()
    for ids, mask, logp, finished in zip(out.completion_ids, out.completion_mask, out.logprobs, out.finished):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # a prefix
        if finished:
            assert ids[n - 1] == tok.eos_token_id and (ids[: n - 1] != tok.eos_token_id).all()
        assert (logp[n:] == 0).all() and (logp[:n] <= 0).all()


def test_sampler_logprobs_equal_trainer_logprobs(engine):
    # The trainer recomputes log-probs with a full forward; at temperature T and top_p 1 both must agree,
    # otherwise the importance ratio of the first update would not be 1.
    model, tok, gen = engine
    prompts = _prompts(tok)
    for temperature in (1.0, 0.7):
        out = gen.generate(prompts, SamplingParams(temperature=temperature, max_new_tokens=9), num_samples=2)
        p_ids, p_mask = left_pad(prompts, tok.pad_token_id)
        index = torch.arange(len(prompts)).repeat_interleave(2)
        with torch.no_grad():
            logp, _ = completion_logprobs(model, p_ids, p_mask, index, out.completion_ids, out.completion_mask,
                                          temperature=temperature)
        m = out.completion_mask.bool()
        torch.testing.assert_close(logp[m], out.logprobs[m], atol=2e-5, rtol=1e-4)


def test_top_p_keeps_smallest_set_reaching_mass():
    # probs 0.5, 0.3, 0.15, 0.05: top_p 0.8 keeps the first two (0.5 + 0.3 = 0.8 reaches it).
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = torch.isfinite(_top_p_filter(logits, 0.8))
    assert kept.tolist() == [[True, True, False, False]]
    # The top token always survives, even with a tiny top_p.
    assert torch.isfinite(_top_p_filter(logits, 1e-6)).tolist() == [[True, False, False, False]]


def test_bad_arguments(engine):
    _, tok, gen = engine
    with pytest.raises(ValueError, match="num_samples"):
        gen.generate(_prompts(tok), SamplingParams(), num_samples=0)
    with pytest.raises(ValueError, match="at least one token"):
        gen.generate([[]], SamplingParams())
    with pytest.raises(ValueError, match="first_group"):
        gen.generate(_prompts(tok), SamplingParams(), first_group=-1)


def test_shared_prefix_logprobs_equal_full_sequence_ones(engine):
    # Encoding each prompt once and gathering its cache must give the same log-probs and gradients as
    # a forward over every full sequence (the path used under gradient checkpointing).
    from r1kit.models.logprobs import _full_sequence, _logits_forward

    model, tok, _ = engine
    torch.manual_seed(0)
    p_ids, p_mask = left_pad(_prompts(tok), tok.pad_token_id)
    index = torch.tensor([0, 0, 1, 1, 2, 2])
    c_ids = torch.randint(3, len(tok), (6, 5))
    c_mask = torch.ones(6, 5, dtype=torch.long)
    c_mask[1, 3:] = 0
    shared, _ = completion_logprobs(model, p_ids, p_mask, index, c_ids, c_mask, temperature=0.7)
    grads_shared = torch.autograd.grad((shared * c_mask).sum(), list(model.parameters()))
    logits = _full_sequence(_logits_forward(model), p_ids, p_mask, index, c_ids, c_mask).float() / 0.7
    full = logits.gather(-1, c_ids[..., None]).squeeze(-1) - torch.logsumexp(logits, -1)
    grads_full = torch.autograd.grad((full * c_mask).sum(), list(model.parameters()))
    torch.testing.assert_close(shared[c_mask.bool()], full[c_mask.bool()], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads_shared, grads_full):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_rows_that_finish_leave_the_batch_without_changing_the_others(tiny_random_model):
    # With EOS made likely, rows end at many lengths and the sampler drops them from its batch. What the
    # remaining rows sample must not depend on that: their log-probs equal the trainer's full forward.
    model, tok, gen = _eos_likely(tiny_random_model, 0.3)
    prompts = [tok(f"{i}+{i * 7}=", add_special_tokens=False)["input_ids"] for i in range(12)]
    sampled = gen.generate(prompts, SamplingParams(max_new_tokens=40), num_samples=4, seed=1)
    lengths = sampled.completion_mask.sum(dim=1)
    assert int((lengths < lengths.max()).sum()) >= len(lengths) // 4 and len(set(lengths.tolist())) > 5
    p_ids, p_mask = left_pad(prompts, tok.pad_token_id)
    with torch.no_grad():
        logp, _ = completion_logprobs(model, p_ids, p_mask, torch.arange(12).repeat_interleave(4),
                                      sampled.completion_ids, sampled.completion_mask, temperature=1.0)
    m = sampled.completion_mask.bool()
    torch.testing.assert_close(logp[m], sampled.logprobs[m], atol=2e-5, rtol=1e-4)



def test_greedy_rows_are_the_same_decoded_together_or_alone():
    # The embedded model's completions end at many lengths, so the batch shrinks as it decodes.
    from r1kit.tasks import load_task
    from r1kit.templates import render_prompt

    tok, model = load_tokenizer("embedded"), load_model("embedded")
    gen = HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    texts = [render_prompt(e.prompt, "r1_zero", tok) for e in load_task("arithmetic", "test", n=24)]
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    greedy = SamplingParams(temperature=0, max_new_tokens=64)
    together = gen.generate(prompts, greedy)
    lengths = together.completion_mask.sum(dim=1).tolist()
    assert together.finished.all() and len(set(lengths)) >= 4
    for i, prompt in enumerate(prompts):
        alone = gen.generate([prompt], greedy)
        assert together.completion_ids[i, : lengths[i]].tolist() == alone.completion_ids[0].tolist()


# ---------------------------------------------------------------- per-group seeds and the sampler's law


@pytest.fixture(scope="module")
def embedded():
    from r1kit.templates import render_prompt

    tok, model = load_tokenizer("embedded"), load_model("embedded")
    # Prompts of different lengths, so each split of them pads to another width.
    questions = ["7+5", "917+753", "48213+90017", "36+58", "1234+999", "5+61"]
    prompts = [tok(render_prompt(q, "r1_zero", tok), add_special_tokens=False)["input_ids"] for q in questions]
    assert len({len(p) for p in prompts}) >= 4

    def make(batch_size: int = 512) -> HFGenerator:
        return HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                           batch_size=batch_size)

    return tok, prompts, make


def _assert_same_samples(a: Generation, b: Generation) -> None:
    # Token ids and masks exactly; log-probs up to the float rounding another padding width causes (as
    # test_sampler_logprobs_equal_trainer_logprobs).
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.completion_mask, b.completion_mask)
    assert torch.equal(a.finished, b.finished)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("top_p", [1.0, 0.8])
def test_splitting_the_prompts_across_calls_or_batches_changes_no_sample(embedded, top_p):
    tok, prompts, make = embedded
    params = SamplingParams(temperature=1.0, top_p=top_p, max_new_tokens=48)
    whole = make().generate(prompts, params, num_samples=4, seed=7)
    # Rows end at different steps and whole groups leave the decoding batch while others go on, so the
    # batch a group decodes in changes along the way.
    group_ends = whole.completion_mask.sum(dim=1).view(len(prompts), 4).amax(dim=1)
    assert whole.finished.any() and len(set(group_ends.tolist())) >= 3
    for k in (1, 3, 5):  # e.g. the prompts of one step split across ranks
        head = make().generate(prompts[:k], params, num_samples=4, seed=7)
        tail = make().generate(prompts[k:], params, num_samples=4, seed=7, first_group=k)
        _assert_same_samples(concat([head, tail], tok.pad_token_id), whole)
    for batch_size in (4, 12):  # one and three prompts per decoding batch
        _assert_same_samples(make(batch_size).generate(prompts, params, num_samples=4, seed=7), whole)


def test_each_group_samples_from_its_own_stream(engine):
    # The tiny random model spreads its probability wide, so two streams cannot agree by chance.
    _, tok, gen = engine
    prompt = _prompts(tok)[0]
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    same = gen.generate([prompt] * 3, params, num_samples=4, seed=2)
    rows = same.completion_ids.view(3, 4, -1)
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])  # a repeated prompt
    alone = gen.generate([prompt], params, num_samples=4, seed=2, first_group=2)
    assert torch.equal(alone.completion_ids, rows[2, :, : alone.completion_ids.shape[1]])
    other_seed = gen.generate([prompt], params, num_samples=4, seed=3, first_group=2)
    assert not torch.equal(other_seed.completion_ids, alone.completion_ids)


def test_group_seed_is_a_well_spread_function_of_seed_and_group():
    seeds = {group_seed(s, g) for s in range(64) for g in range(64)}
    assert len(seeds) == 64 * 64 and all(0 <= x < 2**62 for x in seeds)
    assert group_seed(5, 3) == group_seed(5, 3)
    assert all(0 <= group_seed(s, g) < 2**62 for s in (2**63 - 1, 2**64, -1) for g in (0, 2**40))
    # Well mixed: neighbouring inputs flip about half of the 62 bits.
    flips = [bin(group_seed(s, g) ^ group_seed(s, g + 1)).count("1") for s in range(16) for g in range(16)]
    assert 25 < sum(flips) / len(flips) < 37


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8), (1.3, 0.5)])
def test_inverse_cdf_sampling_draws_each_token_with_its_probability(temperature, top_p):
    # Token 0 and token 5 have probability 0; top-p cuts the tail further.
    logits = torch.tensor([[float("-inf"), 1.2, 0.4, -0.3, 0.9, float("-inf"), -1.0, 0.1]])
    expected = torch.softmax(_top_p_filter(logits / temperature, top_p) if top_p < 1 else logits / temperature, -1)[0]
    n = 20_000
    u = 1.0 - torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    token, logp = _sample(logits.expand(n, -1), SamplingParams(temperature=temperature, top_p=top_p), u)
    freq = torch.bincount(token, minlength=logits.shape[1]).double() / n
    assert freq[expected == 0].sum() == 0  # never a filtered or impossible token
    assert (freq - expected).abs().max() < 0.02
    kept = expected > 0
    chi2 = (n * (freq[kept] - expected[kept]) ** 2 / expected[kept]).sum()
    assert chi2 < 30  # df <= 5: far above its 99.9% quantile (20.5)
    torch.testing.assert_close(logp, expected.log()[token].float())
    assert top_p == 1.0 or int(kept.sum()) < 6  # top-p did cut something


def test_inverse_cdf_sampling_at_the_ends_of_the_unit_interval():
    logits = torch.tensor([[float("-inf"), 0.5, float("-inf"), 0.2, float("-inf")]]).expand(3, -1)
    u = torch.tensor([1.0, 2.0**-53, 1e-300], dtype=torch.float64)
    token, logp = _sample(logits, SamplingParams(temperature=1.0), u)
    assert token.tolist() == [3, 1, 1]  # u = 1 takes the last possible token, a tiny u the first one
    assert torch.isfinite(logp).all()
    greedy, _ = _sample(logits, SamplingParams(temperature=0.0), None)
    assert greedy.tolist() == [1, 1, 1]


def test_inverse_cdf_sampling_gives_each_tail_token_its_own_share():
    # A 152k vocabulary: one likely token, the rest at probability ~3e-10 each. Every tail token must own its
    # own interval of u (in float32 the CDF would stand still over most of them, near 1 its grid is 6e-8).
    V, tail_logit = 151_936, -22.0
    logits = torch.full((1, V), tail_logit)
    logits[0, 0] = 0.0
    total = 1.0 + (V - 1) * math.exp(tail_logit)
    ks = [1, 2, 777, 70_000, V - 2, V - 1]
    # The middle of token k's interval: after token 0 and k - 1 tail tokens, plus half a tail token.
    u = torch.tensor([(1.0 + (k - 0.5) * math.exp(tail_logit)) / total for k in ks], dtype=torch.float64)
    token, logp = _sample(logits.expand(len(ks), -1), SamplingParams(temperature=1.0), u)
    assert token.tolist() == ks
    torch.testing.assert_close(logp, torch.full((len(ks),), tail_logit - math.log(total)))
