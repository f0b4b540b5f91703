"""LoRA through peft: only adapters train, the reference is the base, refreshes merge, exports are merged."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1kit import rewards
from r1kit.config import LoraConfig, ModelConfig, ZeroConfig, load_config
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.logprobs import completion_logprobs
from r1kit.models.lora import (
    BASE_WEIGHTS,
    apply_lora,
    load_adapters,
    load_trainable,
    reference_view,
    refresh_reference,
    save_merged,
    save_policy,
)
from r1kit.rollout import HFGenerator
from r1kit.trainers.grpo import make_optimizer, make_reference, train_step
from r1kit.types import Example

pytest.importorskip("peft")


def _digit_reward(prompts, completions, **_):
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def _lora(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    wrapped = apply_lora(model, LoraConfig(rank=4, alpha=8))
    with torch.no_grad():  # adapters that change the function (B starts at zero)
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return wrapped


def _ids(tok):
    return torch.tensor([tok("12+3=", add_special_tokens=False)["input_ids"]])


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture
def base_and_tok(tiny_random_model):
    return load_model(str(tiny_random_model)), load_tokenizer(str(tiny_random_model)), tiny_random_model


def test_train_step_changes_only_adapters_and_the_reference_is_the_base(base_and_tok, monkeypatch):
    base, tok, _ = base_and_tok
    monkeypatch.setitem(rewards.REWARDS, "digits", _digit_reward)
    original = copy.deepcopy(base)
    policy = _lora(base)
    cfg = load_config(ZeroConfig, None, ["prompts_per_step=4", "group_size=4", "rollout.max_new_tokens=12",
                                         "rewards={digits: 1.0}", "optim.lr=1e-2", "grpo.kl_coef=0.1",
                                         "model.lora.rank=4"])
    assert make_reference(policy, cfg.grpo.kl_coef) is None  # no second copy
    examples = [Example(prompt=f"{i}+{i}", answer=str(2 * i), task="t", verifier="integer") for i in range(4)]
    ids = [tok(e.prompt, add_special_tokens=False)["input_ids"] for e in examples]
    gen = HFGenerator(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    opt, sched = make_optimizer(cfg, policy)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {
        id(p) for n, p in policy.named_parameters() if "lora_" in n}
    metrics = train_step(cfg, 0, gen, tok, policy, None, opt, sched, examples, ids)
    assert metrics["kl"] >= 0
    for name, p in policy.named_parameters():
        assert torch.equal(before[name], p) != ("lora_" in name), name  # adapters moved, nothing else did
    x = _ids(tok)
    with reference_view(policy, None) as ref:
        torch.testing.assert_close(_logits(ref, x), _logits(original, x))
    assert not torch.allclose(_logits(policy, x), _logits(original, x))  # adapters back on after the view
    p_ids, mask = x, torch.ones_like(x)
    c_ids = torch.tensor([[5, 6, 7]])
    with reference_view(policy, None) as ref:
        lp_ref, _ = completion_logprobs(ref, p_ids, mask, torch.tensor([0]), c_ids, torch.ones_like(c_ids),
                                        chunk_tokens=2)
    lp_base, _ = completion_logprobs(original, p_ids, mask, torch.tensor([0]), c_ids, torch.ones_like(c_ids))
    torch.testing.assert_close(lp_ref, lp_base)


def test_merged_export_equals_adapter_output_and_loads_with_plain_transformers(base_and_tok, tmp_path):
    base, tok, _ = base_and_tok
    policy = _lora(base)
    x = _ids(tok)
    expected = _logits(policy, x)
    save_merged(policy, tmp_path / "model")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert not any("lora" in n for n, _ in plain.named_parameters())
    torch.testing.assert_close(_logits(plain, x), expected, atol=1e-5, rtol=1e-5)


def test_refresh_makes_the_current_policy_the_reference_and_checkpoints_keep_it(base_and_tok, tmp_path):
    base, tok, path = base_and_tok
    policy = _lora(base)
    x = _ids(tok)
    current = _logits(policy, x)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad])
    policy(input_ids=x).logits.sum().backward()
    opt.step()
    current = _logits(policy, x)
    assert opt.state
    refresh_reference(policy, opt, seed=7)
    assert not opt.state  # the old adapters' moments are gone
    torch.testing.assert_close(_logits(policy, x), current, atol=1e-5, rtol=1e-5)  # function unchanged
    with reference_view(policy, None) as ref:  # adapters off = the policy before the refresh
        torch.testing.assert_close(_logits(ref, x), current, atol=1e-5, rtol=1e-5)
    assert all(p.abs().sum() == 0 for n, p in policy.named_parameters() if "lora_B" in n)
    save_policy(policy, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / BASE_WEIGHTS).is_file() and (tmp_path / "ckpt" / "adapter_config.json").is_file()
    restored = load_adapters(load_model(str(path)), tmp_path / "ckpt")
    torch.testing.assert_close(_logits(restored, x), current, atol=1e-5, rtol=1e-5)
    with reference_view(restored, None) as ref:
        torch.testing.assert_close(_logits(ref, x), current, atol=1e-5, rtol=1e-5)


def test_checkpoint_without_refresh_holds_only_adapters(base_and_tok, tmp_path):
    base, _, path = base_and_tok
    save_policy(_lora(base), tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert "adapter_model.safetensors" in files and BASE_WEIGHTS not in files and "model.safetensors" not in files
    adapters = (tmp_path / "ckpt" / "adapter_model.safetensors").stat().st_size
    assert adapters < (path / "model.safetensors").stat().st_size


def test_a_resumed_adapter_checkpoint_keeps_gradient_checkpointing_and_trainable_adapters(base_and_tok, tmp_path):
    base, tok, path = base_and_tok
    save_policy(_lora(base), tmp_path / "ckpt")
    model = ModelConfig(path=str(path), lora=LoraConfig(rank=4, alpha=8), gradient_checkpointing=True)
    for source in (None, tmp_path / "ckpt"):  # a fresh start and a resume take the same settings
        policy = load_trainable(model, seed=0, path=source)
        assert policy.get_base_model().is_gradient_checkpointing, source
        policy.train()
        policy(input_ids=_ids(tok)).logits.float().pow(2).mean().backward()
        grads = [p.grad for n, p in policy.named_parameters() if "lora_A" in n]
        assert grads and all(g is not None for g in grads), source  # the frozen embeddings pass gradients on
