"""The vLLM engine: what runs on CPU is tested for real (outputs -> `Generation` against the HF engine's
conventions, sampling parameters and per-group seeds, the sleep/sync/generate call order, LoRA-merged weight export).
vLLM itself cannot run here: the engine's call order is checked against `FakeLLM`, a recorder injected
through `llm=`, and the tests on a real `vllm.LLM` at the end skip without vLLM and CUDA."""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.logprobs import completion_logprobs
from r1kit.rollout import HFGenerator, SamplingParams, left_pad
from r1kit.rollout.base import concat, group_seed
from r1kit.rollout.vllm import (
    INSTALL_HINT,
    Call,
    EngineState,
    Event,
    VLLMGenerator,
    batches,
    checkpoint_name,
    completion_rows,
    export_weights,
    outputs_to_generation,
    plan,
    sampling_kwargs,
)

EOS, PAD = 0, 1


# ---------------------------------------------------------------- outputs -> Generation


def test_outputs_to_generation_golden():
    # Rows: EOS mid-row, EOS last, no EOS (cut by max_tokens), the second EOS id, tokens after an EOS.
    tokens = [[5, 6, EOS], [7, 8, 9, 10], [4, 3], [EOS, 8, 9]]
    logps = [[-0.1, -0.2, -0.3], [-1.0, -1.0, -1.0, -1.0], [-0.5, -0.25], [-0.7, -9.0, -9.0]]
    out = outputs_to_generation(tokens, logps, eos_ids={EOS, 3}, pad_id=PAD)
    assert out.completion_ids.tolist() == [[5, 6, EOS, PAD], [7, 8, 9, 10], [4, 3, PAD, PAD], [EOS, PAD, PAD, PAD]]
    assert out.completion_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]
    torch.testing.assert_close(out.logprobs, torch.tensor(
        [[-0.1, -0.2, -0.3, 0.0], [-1.0, -1.0, -1.0, -1.0], [-0.5, -0.25, 0.0, 0.0], [-0.7, 0.0, 0.0, 0.0]]))
    assert out.finished.tolist() == [True, False, True, True]
    assert out.completion_ids.dtype == torch.long and out.completion_mask.dtype == torch.long
    with pytest.raises(ValueError, match="log-probs"):
        outputs_to_generation([[5, 6]], [[-0.1]], eos_ids={EOS}, pad_id=PAD)


def test_outputs_to_generation_reproduces_the_hf_engine(tiny_random_model):
    # The HF engine's rows, cut to their completions (what vLLM returns), must come back identical.
    tok = load_tokenizer(str(tiny_random_model))
    model = load_model(str(tiny_random_model))
    with torch.no_grad():  # EOS likely, so rows end at many lengths
        model.lm_head.weight[tok.eos_token_id] += 0.3 * model.lm_head.weight.abs().max()
    hf = HFGenerator(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    prompts = [tok(f"{i}+{i * 7}=", add_special_tokens=False)["input_ids"] for i in range(12)]
    ref = hf.generate(prompts, SamplingParams(max_new_tokens=40), num_samples=4, seed=1)
    lengths = ref.completion_mask.sum(dim=1).tolist()
    assert ref.finished.any() and not ref.finished.all() and len(set(lengths)) > 5
    rows = [ref.completion_ids[i, :n].tolist() for i, n in enumerate(lengths)]
    logps = [ref.logprobs[i, :n].tolist() for i, n in enumerate(lengths)]
    out = outputs_to_generation(rows, logps, eos_ids={tok.eos_token_id}, pad_id=tok.pad_token_id)
    for field in ("completion_ids", "completion_mask", "logprobs", "finished"):
        assert torch.equal(getattr(out, field), getattr(ref, field)), field


# vLLM's output records, reduced to the fields the engine reads (vllm.outputs / vllm.logprobs).
@dataclass
class Logprob:
    logprob: float


@dataclass
class Completion:
    index: int
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None


@dataclass
class Request:
    outputs: list[Completion]


def _completion(index: int, tokens: list[int], logp: float = -0.5) -> Completion:
    # logprobs=0: each position holds the sampled token only.
    return Completion(index, tokens, [{t: Logprob(logp)} for t in tokens])


def test_completion_rows_are_group_major_and_take_the_sampled_tokens_logprob():
    outputs = [Request([_completion(1, [7, EOS], -2.0), _completion(0, [5, 6, 8], -1.0)]),
               Request([_completion(0, [9], -3.0), _completion(1, [4, 4], -4.0)])]
    tokens, logps = completion_rows(outputs)
    assert tokens == [[5, 6, 8], [7, EOS], [9], [4, 4]]  # prompt 0's samples by index, then prompt 1's
    assert logps == [[-1.0] * 3, [-2.0] * 2, [-3.0], [-4.0] * 2]
    tokens, _ = completion_rows([Request([_completion(0, [5, EOS])])], copies=3)  # greedy: one row, G copies
    assert tokens == [[5, EOS]] * 3
    with pytest.raises(ValueError, match="logprobs=0"):
        completion_rows([Request([Completion(0, [5], None)])])


# ---------------------------------------------------------------- sampling parameters and seeds


def _child_seeds(kwargs: list[dict]) -> list[int]:
    # vLLM's ParentRequest gives child j of a request with n samples the seed `seed + j`.
    return [kw["seed"] + j for kw in kwargs for j in range(kw["n"])]


def test_sampling_kwargs():
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=12)
    kwargs = sampling_kwargs(params, num_prompts=3, num_samples=4, seed=5, eos_ids={EOS, 3})
    assert kwargs[0] == {"n": 4, "temperature": 0.7, "top_p": 0.9, "max_tokens": 12, "logprobs": 0,
                         "stop_token_ids": [EOS, 3], "ignore_eos": True, "detokenize": False,
                         "seed": group_seed(5, 0)}
    assert [kw["seed"] for kw in kwargs] == [group_seed(5, g) for g in range(3)]  # the HF engine's group seeds
    seeds = _child_seeds(kwargs)
    assert len(set(seeds)) == 12  # every row its own stream, even when a prompt repeats
    assert kwargs == sampling_kwargs(params, num_prompts=3, num_samples=4, seed=5, eos_ids={EOS, 3})
    other = _child_seeds(sampling_kwargs(params, num_prompts=3, num_samples=4, seed=6, eos_ids={EOS, 3}))
    assert not set(seeds) & set(other)  # consecutive steps draw disjoint streams
    for seed in (2**62 - 1, 2**63, -1):  # any seed: child seeds stay in [0, 2**63)
        big = _child_seeds(sampling_kwargs(params, num_prompts=3, num_samples=4, seed=seed, eos_ids={EOS}))
        assert all(0 <= s < 2**63 for s in big)
    greedy = sampling_kwargs(SamplingParams(temperature=0.0), num_prompts=2, num_samples=4, seed=0, eos_ids={EOS})
    assert [kw["n"] for kw in greedy] == [1, 1]  # vLLM refuses n > 1 when greedy; rows are copied instead


def test_sampling_kwargs_of_split_prompts_are_those_of_the_whole_call():
    # Prompt i is group first_group + i: the prompts of a call split across ranks or chunks get the same seeds.
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    whole = sampling_kwargs(params, num_prompts=5, num_samples=4, seed=9, eos_ids={EOS})
    for k in range(1, 5):
        head = sampling_kwargs(params, num_prompts=k, num_samples=4, seed=9, eos_ids={EOS})
        tail = sampling_kwargs(params, num_prompts=5 - k, num_samples=4, seed=9, eos_ids={EOS}, first_group=k)
        assert head + tail == whole


# ---------------------------------------------------------------- call order


def _walk(events: list[Event], *, sleep_mode: bool = True) -> list[list[Call]]:
    state, out = EngineState(), []
    for event in events:
        calls, state = plan(state, event, sleep_mode=sleep_mode)
        out.append(calls)
    return out


def test_plan_of_a_training_step():
    T, S, G, W = Event.TRAIN, Event.SYNC, Event.GENERATE, Event.WAKE
    assert _walk([G, T, S, G, T, S, G]) == [
        [Call.GENERATE],
        [Call.SLEEP],
        [Call.WAKE_WEIGHTS, Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE],  # weights first, KV cache stays off
        [Call.WAKE_KV_CACHE, Call.GENERATE],
        [Call.SLEEP],
        [Call.WAKE_WEIGHTS, Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE],
        [Call.WAKE_KV_CACHE, Call.GENERATE],
    ]
    assert _walk([T, T, S, S]) == [[Call.SLEEP], [], [Call.WAKE_WEIGHTS, Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE],
                                   [Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE]]
    # vLLM ignores sleep() while the KV cache is still asleep: wake it first so the weights leave the GPU.
    assert _walk([T, S, T])[-1] == [Call.WAKE_KV_CACHE, Call.SLEEP]
    assert _walk([T, W, S, G]) == [[Call.SLEEP], [Call.WAKE_WEIGHTS, Call.WAKE_KV_CACHE],
                                   [Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE], [Call.GENERATE]]
    assert _walk([G, T, S, G], sleep_mode=False) == [
        [Call.GENERATE], [], [Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE], [Call.GENERATE]]


@pytest.mark.parametrize("sleep_mode", [True, False])
def test_plan_refuses_to_generate_from_weights_older_than_training(sleep_mode):
    for events in ([Event.TRAIN], [Event.TRAIN, Event.WAKE], [Event.TRAIN, Event.SYNC, Event.TRAIN]):
        state = EngineState()
        for event in events:
            _, state = plan(state, event, sleep_mode=sleep_mode)
        with pytest.raises(RuntimeError, match="update_weights"):
            plan(state, Event.GENERATE, sleep_mode=sleep_mode)


# ---------------------------------------------------------------- weight export


def _tiny_qwen2(*, tied: bool, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied)
    return Qwen2ForCausalLM(config).eval()


def _lora(base: Qwen2ForCausalLM, **config) -> torch.nn.Module:
    """`base` (copied) with LoRA on every linear layer and random non-zero B, so the merge matters."""
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", **config))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return model.eval()


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.arange(2, 50).reshape(3, 16)
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("tied", [True, False])
def test_export_merges_lora_under_the_base_models_names(tied):
    base = _tiny_qwen2(tied=tied)
    policy = _lora(base)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    logits_before = _logits(policy)
    assert not torch.allclose(logits_before, _logits(base), atol=1e-3)  # the adapters change the outputs

    exported = list(export_weights(policy))
    # (i) exactly the plain model's state_dict names, tied lm_head included when the plain model lists it
    assert [name for name, _ in exported] == list(base.state_dict())
    # (ii) a fresh plain model loaded with them computes the PeftModel's logits
    fresh = _tiny_qwen2(tied=tied, seed=7)
    fresh.load_state_dict(dict(exported), strict=True)
    torch.testing.assert_close(_logits(fresh), logits_before, atol=1e-5, rtol=0)
    # (iii) the PeftModel is untouched: same tensors, same outputs, adapters not merged
    after = policy.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
    assert torch.equal(_logits(policy), logits_before)
    assert not any(getattr(m, "merged", False) for m in policy.modules())


def test_export_of_a_plain_model_is_its_state_dict():
    model = _tiny_qwen2(tied=True)
    exported = list(export_weights(model))
    state = model.state_dict()
    assert [name for name, _ in exported] == list(state)
    assert all(torch.equal(t, state[name]) for name, t in exported)


def test_export_uses_the_trained_copy_of_modules_to_save():
    base = _tiny_qwen2(tied=False)
    policy = _lora(base, modules_to_save=["lm_head"])
    with torch.no_grad():
        policy.base_model.model.lm_head.modules_to_save["default"].weight.mul_(-2.0)
    exported = dict(export_weights(policy))
    assert list(exported) == list(base.state_dict())
    fresh = _tiny_qwen2(tied=False, seed=7)
    fresh.load_state_dict(exported, strict=True)
    torch.testing.assert_close(_logits(fresh), _logits(policy), atol=1e-5, rtol=0)


def test_export_refuses_lora_variants_it_cannot_merge():
    policy = _lora(_tiny_qwen2(tied=True), use_dora=True)
    with pytest.raises(ValueError, match="DoRA"):
        list(export_weights(policy))


@pytest.mark.parametrize(("key", "name"), [
    ("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight", "model.layers.0.self_attn.q_proj.weight"),
    ("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias", "model.layers.0.self_attn.q_proj.bias"),
    ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", None),
    ("base_model.model.model.embed_tokens.lora_embedding_B.default", None),
    ("base_model.model.model.norm.weight", "model.norm.weight"),
    ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),
    ("base_model.model.lm_head.modules_to_save.other.weight", None),
    ("base_model.model.lm_head.original_module.weight", None),
])
def test_checkpoint_name(key, name):
    assert checkpoint_name(key, "default") == name


def test_batches_bound_their_bytes_and_keep_the_order():
    named = [(f"t{i}", torch.zeros(n)) for i, n in enumerate([10, 10, 30, 100, 5, 5])]  # float32: 4 bytes each
    groups = list(batches(named, max_bytes=120))
    assert [[name for name, _ in g] for g in groups] == [["t0", "t1"], ["t2"], ["t3"], ["t4", "t5"]]
    assert [n for g in groups for n, _ in g] == [n for n, _ in named]


# ---------------------------------------------------------------- the engine on a recorder


class FakeLLM:
    """Stands in for `vllm.LLM`, which cannot run here: it records the calls in `log`. `apply_model` hands
    `load_weights` a real plain transformers model to write into; `generate` draws tokens from each row's
    seed (seed + j for sample j, as vLLM does), so seeds and conversion are exercised end to end."""

    def __init__(self, model: torch.nn.Module, log: list[str]) -> None:
        self.model, self.log, self.loaded = model, log, []

    def sleep(self, level: int) -> None:
        self.log.append(f"sleep(level={level})")

    def wake_up(self, tags: list[str] | None = None) -> None:
        self.log.append(f"wake_up({tags})")

    def reset_prefix_cache(self) -> bool:
        self.log.append("reset_prefix_cache")
        return True

    def apply_model(self, fn):
        self.log.append("load_weights")
        return [fn(self)]

    def load_weights(self, weights) -> set[str]:
        self.loaded.append([name for name, _ in weights])
        self.model.load_state_dict(dict(weights), strict=False)
        return {name for name, _ in weights}

    def generate(self, requests, sampling_params, *, use_tqdm):
        self.log.append("generate")
        outputs = []
        for request, sp in zip(requests, sampling_params, strict=True):
            assert request["prompt_token_ids"] and sp.logprobs == 0 and not use_tqdm
            completions = []
            for j in range(sp.n):
                rng = torch.Generator().manual_seed(sp.seed + j)
                length = int(torch.randint(1, sp.max_tokens + 1, (1,), generator=rng))
                tokens = torch.randint(2, 64, (length,), generator=rng).tolist()
                if j % 2 == 0 and length < sp.max_tokens:
                    tokens.append(sp.stop_token_ids[0])
                completions.append(_completion(j, tokens, -float(sp.seed % 7 + 1)))
            outputs.append(Request(completions[::-1]))  # out of index order, as a scheduler may finish them
        return outputs


def _engine(policy_base: torch.nn.Module, *, sleep_mode: bool = True, load_batch_bytes: int = 8192):
    log: list[str] = []
    llm = FakeLLM(copy.deepcopy(policy_base), log)
    gen = VLLMGenerator("unused", eos_token_id=EOS, pad_token_id=PAD, enable_sleep_mode=sleep_mode,
                        load_batch_bytes=load_batch_bytes, llm=llm, sampling_params_cls=SimpleNamespace)
    return gen, llm, log


def test_engine_syncs_after_every_optimizer_step_and_sleeps_during_training():
    base = _tiny_qwen2(tied=True)
    policy = _lora(base)
    optimizer = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=0.5)
    gen, llm, log = _engine(base)
    params = SamplingParams(temperature=1.0, max_new_tokens=6)
    for step in range(3):
        out = gen.generate([[2, 3, 4], [5, 6]], params, num_samples=4, seed=step)
        assert out.completion_ids.shape[0] == 8 and out.finished.any() and not out.finished.all()
        gen.sleep()
        policy.train()
        policy(input_ids=torch.arange(2, 18)[None]).logits.pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        log.append("optimizer.step")
        policy.eval()
        gen.update_weights(policy)
        # What the engine now holds is the policy after the step, LoRA merged.
        torch.testing.assert_close(_logits(llm.model), _logits(policy), atol=1e-5, rtol=0)
    loads = log.count("load_weights") // 3
    assert loads > 1  # several batches per sync
    step_log = (["sleep(level=1)", "optimizer.step", "wake_up(['weights'])"] + ["load_weights"] * loads
                + ["reset_prefix_cache"])
    assert log == ["generate", *step_log] + 2 * ["wake_up(['kv_cache'])", "generate", *step_log]
    assert [n for batch in llm.loaded[:loads] for n in batch] == list(base.state_dict())


def test_engine_generation_follows_the_seed_and_the_hf_conventions():
    gen, _, _ = _engine(_tiny_qwen2(tied=True))
    params = SamplingParams(temperature=1.0, max_new_tokens=5)
    a = gen.generate([[2, 3], [4]], params, num_samples=3, seed=11)
    b = gen.generate([[2, 3], [4]], params, num_samples=3, seed=11)
    c = gen.generate([[2, 3], [4]], params, num_samples=3, seed=12)
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("completion_ids", "completion_mask", "logprobs"))
    assert not torch.equal(a.completion_ids, c.completion_ids)
    lengths = a.completion_mask.sum(dim=1)
    for ids, mask, logp, finished, n in zip(a.completion_ids, a.completion_mask, a.logprobs, a.finished, lengths):
        assert mask[:n].all() and not mask[n:].any() and (ids[n:] == PAD).all() and (logp[n:] == 0).all()
        assert bool(finished) == (ids[n - 1] == EOS)
    greedy = gen.generate([[2, 3]], SamplingParams(temperature=0.0, max_new_tokens=5), num_samples=3)
    assert greedy.completion_ids.shape[0] == 3 and (greedy.completion_ids == greedy.completion_ids[0]).all()


def test_engine_generation_of_split_prompts_is_that_of_the_whole_call():
    gen, _, _ = _engine(_tiny_qwen2(tied=True))
    params = SamplingParams(temperature=1.0, max_new_tokens=6)
    prompts = [[2, 3], [4], [5, 6, 7], [2, 3]]
    whole = gen.generate(prompts, params, num_samples=3, seed=11)
    assert not torch.equal(whole.completion_ids[:3], whole.completion_ids[9:])  # a repeated prompt, other samples
    for k in (1, 2, 3):
        head = gen.generate(prompts[:k], params, num_samples=3, seed=11)
        tail = gen.generate(prompts[k:], params, num_samples=3, seed=11, first_group=k)
        both = concat([head, tail], PAD)
        assert all(torch.equal(getattr(both, f), getattr(whole, f))
                   for f in ("completion_ids", "completion_mask", "logprobs", "finished"))


def test_engine_without_sleep_mode_still_loads_and_resets_and_refuses_stale_weights():
    base = _tiny_qwen2(tied=True)
    gen, _, log = _engine(base, sleep_mode=False, load_batch_bytes=1 << 30)
    gen.generate([[2]], SamplingParams(max_new_tokens=3))
    gen.sleep()
    with pytest.raises(RuntimeError, match="update_weights"):
        gen.generate([[2]], SamplingParams(max_new_tokens=3))
    gen.wake()
    gen.update_weights(_lora(base))
    gen.generate([[2]], SamplingParams(max_new_tokens=3))
    assert log == ["generate", "load_weights", "reset_prefix_cache", "generate"]


def test_engine_rejects_bad_arguments():
    gen, _, _ = _engine(_tiny_qwen2(tied=True))
    with pytest.raises(ValueError, match="num_samples"):
        gen.generate([[2]], SamplingParams(), num_samples=0)
    with pytest.raises(ValueError, match="at least one token"):
        gen.generate([[]], SamplingParams())
    with pytest.raises(ValueError, match="first_group"):
        gen.generate([[2]], SamplingParams(), first_group=-1)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_without_vllm_the_engine_says_how_to_get_it():
    with pytest.raises(ImportError) as error:
        VLLMGenerator("unused", eos_token_id=EOS, pad_token_id=PAD)
    assert str(error.value) == INSTALL_HINT


# ---------------------------------------------------------------- a real vLLM engine (CUDA machines)


@pytest.fixture(scope="module")
def real_engine(tiny_random_model):
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA device")
    tok = load_tokenizer(str(tiny_random_model))
    gen = VLLMGenerator(str(tiny_random_model), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                        gpu_memory_utilization=0.2, max_model_len=256)
    return tok, gen


def _assert_samples_from(gen: VLLMGenerator, tok, model: torch.nn.Module, *, seed: int) -> None:
    """vLLM's sampler log-probs equal the trainer's recomputation under `model` (bf16 engine, fp32 trainer)."""
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in ["12+34=", "a longer prompt: 7+8=", "x"]]
    params = SamplingParams(temperature=0.7, max_new_tokens=16)
    a = gen.generate(prompts, params, num_samples=4, seed=seed)
    b = gen.generate(prompts, params, num_samples=4, seed=seed)
    assert a.completion_ids.shape[0] == 12 and torch.equal(a.completion_ids, b.completion_ids)
    p_ids, p_mask = left_pad(prompts, tok.pad_token_id)
    with torch.no_grad():
        logp, _ = completion_logprobs(model, p_ids, p_mask, torch.arange(3).repeat_interleave(4), a.completion_ids,
                                      a.completion_mask, temperature=0.7)
    m = a.completion_mask.bool()
    torch.testing.assert_close(a.logprobs[m], logp[m], atol=0.05, rtol=0.02)


def test_real_vllm_samples_from_the_checkpoint_then_from_the_synced_weights(real_engine, tiny_random_model):
    tok, gen = real_engine
    model = load_model(str(tiny_random_model))
    _assert_samples_from(gen, tok, model, seed=3)
    torch.manual_seed(0)
    with torch.no_grad():  # a policy far from the checkpoint: stale weights would fail the comparison
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    gen.sleep()
    gen.update_weights(model)
    _assert_samples_from(gen, tok, model, seed=4)
