"""Chunked log-probs: the same values and gradients as the full [n, T, V] logits, in O(chunk x V) memory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from r1kit.models.logprobs import completion_logprobs, decoder_and_head, token_logprobs

QWEN_VOCAB = 151_936
REPO = Path(__file__).resolve().parents[2]


def _model(vocab: int = QWEN_VOCAB, dtype: torch.dtype = torch.float64) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    return Qwen2ForCausalLM(config).to(dtype)


def _batch(vocab: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    p_ids = torch.randint(0, vocab, (2, 5), generator=g)
    p_mask = torch.ones(2, 5, dtype=torch.long)
    p_mask[0, :2] = 0  # left padding
    index = torch.arange(2).repeat_interleave(3)
    c_ids = torch.randint(0, vocab, (6, 7), generator=g)
    c_mask = torch.ones(6, 7, dtype=torch.long)
    c_mask[1, 4:] = 0
    c_mask[4, 1:] = 0  # a one-token completion
    return p_ids, p_mask, index, c_ids, c_mask


def _run(model: torch.nn.Module, chunk: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    p_ids, p_mask, index, c_ids, c_mask = _batch(model.config.vocab_size)
    model.zero_grad(set_to_none=True)
    logprobs, entropy = completion_logprobs(model, p_ids, p_mask, index, c_ids, c_mask, temperature=0.7,
                                            with_entropy=True, chunk_tokens=chunk)
    weights = torch.linspace(-1, 1, logprobs.numel(), dtype=logprobs.dtype).view_as(logprobs)
    (logprobs * weights * c_mask).sum().backward()
    assert entropy is not None
    return logprobs * c_mask, entropy * c_mask, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("checkpointing", [False, True])
def test_chunked_equals_unchunked_values_and_gradients(checkpointing: bool) -> None:
    """Qwen's 151,936-token vocabulary, float64 so that only a wrong computation can differ by 1e-6."""
    model = _model()
    if checkpointing:  # the full-sequence path
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    full = _run(model, chunk=0)
    chunked = _run(model, chunk=5)  # 5 does not divide the 29 completion tokens: a ragged last chunk
    torch.testing.assert_close(chunked[0], full[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(chunked[1], full[1], atol=1e-6, rtol=0)
    for a, b in zip(chunked[2], full[2]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert full[2][0].abs().sum() > 0  # the gradient reached the (tied) embedding


def test_chunked_float32_matches_closely() -> None:
    model = _model(vocab=4096, dtype=torch.float32)
    full, chunked = _run(model, chunk=0), _run(model, chunk=3)
    torch.testing.assert_close(chunked[0], full[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(chunked[2], full[2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_token_logprobs_softcap_and_temperature() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False).double()
    hidden = torch.randn(11, 8, dtype=torch.float64)
    targets = torch.randint(0, 50, (11,))
    logp, entropy = token_logprobs(hidden, targets, head, temperature=0.5, chunk_tokens=4, with_entropy=True,
                                   softcap=3.0)
    logits = torch.tanh(head(hidden) / 3.0) * 3.0 / 0.5
    expected = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
    torch.testing.assert_close(logp, expected)
    assert entropy is not None
    torch.testing.assert_close(entropy, -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1))
    with pytest.raises(ValueError, match="chunk_tokens"):
        token_logprobs(hidden, targets, head, chunk_tokens=0)


def test_decoder_and_head_found_through_peft() -> None:
    peft = pytest.importorskip("peft")
    model = _model(vocab=64, dtype=torch.float32)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))
    decoder, head = decoder_and_head(wrapped)
    assert head is model.lm_head and decoder is model.model


def _memory_benchmark():  # the measuring child is the benchmark's own, so the test and the numbers agree
    spec = importlib.util.spec_from_file_location("logprob_memory", REPO / "benchmarks/logprob_memory.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_memory_chunked_below_one_logits_tensor_unchunked_above() -> None:
    """Peak resident memory of a fresh process (forward + backward, T = 1024, V = 151,936): the chunked pass
    stays below one [T, V] float32 tensor (0.58 GB); the unchunked one needs several."""
    bench = _memory_benchmark()
    chunked = bench.measure_in_child(1024, 64)
    full = bench.measure_in_child(1024, 0)
    bound = chunked["logits_bytes"]
    assert chunked["peak_extra_bytes"] < bound < full["peak_extra_bytes"], (chunked, full)
