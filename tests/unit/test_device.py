"""model.device and mixed precision: devices are resolved (or refused) before any work, and a bfloat16
run keeps float32 where it matters: master weights, AdamW state, log-softmax."""

from __future__ import annotations

import pytest
import torch

from r1kit import rewards
from r1kit.cli import main
from r1kit.config import ZeroConfig, load_config
from r1kit.models.device import autocast, resolve_device
from r1kit.models.loading import load_tokenizer
from r1kit.models.logprobs import completion_logprobs
from r1kit.rollout import HFGenerator, SamplingParams, left_pad
from r1kit.stages.grpo import load_policy
from r1kit.trainers.grpo import make_optimizer, make_reference, train_step
from r1kit.types import Example

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_auto_is_cuda_when_there_is_one_else_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(("name", "message"), [("tpu", "unknown device 'tpu'"), ("meta", "not supported")])
def test_unknown_devices_are_named(name, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(name)


@no_cuda
def test_cuda_without_a_gpu_stops_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["zero", f"out_dir={out}", "model.device=cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: model.device: device 'cuda' asked for, but torch sees no CUDA device")
    assert err.count("\n") == 1 and not out.exists()
    assert main(["eval", f"out_dir={out}", "device=cuda:1"]) == 2
    assert "device: device 'cuda:1' asked for" in capsys.readouterr().err and not out.exists()


def test_float16_training_is_refused(tmp_path, capsys):
    assert main(["zero", f"out_dir={tmp_path / 'run'}", "model.dtype=float16"]) == 2
    assert "use bfloat16" in capsys.readouterr().err


def test_bfloat16_keeps_float32_master_weights_optimizer_state_and_log_softmax(tiny_random_model, monkeypatch):
    monkeypatch.setitem(rewards.REWARDS, "digits",
                        lambda prompts, completions, **_: [sum(ch.isdigit() for ch in c) / 10 for c in completions])
    cfg = load_config(ZeroConfig, None, [f"model.path={tiny_random_model}", "model.dtype=bfloat16", "group_size=4",
                                         "prompts_per_step=2", "rollout.max_new_tokens=8", "rewards={digits: 1.0}",
                                         "grpo.kl_coef=0.1", "optim.lr=1e-2"])
    tok = load_tokenizer(str(tiny_random_model))
    policy = load_policy(cfg)
    reference = make_reference(policy, cfg.grpo.kl_coef, cfg.model.dtype)
    assert {p.dtype for p in policy.parameters()} == {torch.float32}
    assert {p.dtype for p in reference.parameters()} == {torch.bfloat16}
    optimizer, scheduler = make_optimizer(cfg, policy)
    generator = HFGenerator(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, dtype="bfloat16")
    examples = [Example(prompt=f"{i}+{i}=", answer=str(2 * i), task="t", verifier="integer") for i in range(4)]
    ids = [tok(e.prompt, add_special_tokens=False)["input_ids"] for e in examples]
    before = [p.detach().clone() for p in policy.parameters()]
    metrics = train_step(cfg, 0, generator, tok, policy, reference, optimizer, scheduler, examples, ids)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    states = [s for s in optimizer.state.values()]
    assert states and {s["exp_avg"].dtype for s in states} == {torch.float32}

    # Under autocast the matmuls run in bfloat16, the log-softmax in float32.
    p_ids, p_mask = left_pad(ids[:1], tok.pad_token_id)
    completion = generator.generate(ids[:1], SamplingParams(1.0, 1.0, 6), num_samples=2, seed=0)
    with autocast(torch.device("cpu"), "bfloat16"):
        raw_logits = policy(input_ids=p_ids).logits
        logprobs, _ = completion_logprobs(policy, p_ids, p_mask, torch.zeros(2, dtype=torch.long),
                                          completion.completion_ids, completion.completion_mask)
    assert raw_logits.dtype == torch.bfloat16 and logprobs.dtype == torch.float32
    assert torch.allclose(logprobs * completion.completion_mask, completion.logprobs, atol=0.1)
