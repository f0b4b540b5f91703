"""Offload between phases: each offloaded module is on the device only for its phase (a fake device map on
CPU records the placement; a GPU run measures it for real in benchmarks/gpu_check.py)."""

from __future__ import annotations

import json

import pytest
import torch

import r1kit.trainers.grpo as grpo
from r1kit import rewards
from r1kit.config import OffloadConfig, RewardModelConfig, ZeroConfig, load_config
from r1kit.judges import reward_model as rm_module
from r1kit.models.loading import load_model, load_reward_model, load_tokenizer
from r1kit.models.offload import PHASES, Offload
from r1kit.rollout import HFGenerator
from r1kit.types import Example


class DeviceMap:
    """Where each offloaded module is, as the fake `move` leaves it."""

    def __init__(self) -> None:
        self.where: dict[str, str] = {}
        self.moves: list[tuple[str, str]] = []

    def move(self, what: str, obj: object, device: torch.device) -> None:
        self.where[what] = device.type
        self.moves.append((what, device.type))


def _digit_reward(prompts, completions, **_):
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def test_each_module_is_on_the_device_only_for_its_phase(tiny_random_model, monkeypatch):
    monkeypatch.setitem(rewards.REWARDS, "digits", _digit_reward)
    tok = load_tokenizer(str(tiny_random_model))
    policy = load_model(str(tiny_random_model))
    cfg = load_config(ZeroConfig, None, ["prompts_per_step=2", "group_size=2", "rollout.max_new_tokens=6",
                                         "rewards={digits: 1.0}", "grpo.kl_coef=0.1", "grpo.num_minibatches=2"])
    reference = grpo.make_reference(policy, cfg.grpo.kl_coef)
    optimizer, scheduler = grpo.make_optimizer(cfg, policy)
    fake = DeviceMap()
    offload = Offload(torch.device("cuda"), frozenset(PHASES), move=fake.move)  # a GPU run, seen from the CPU
    offload.park("reference", reference)
    offload.park("optimizer", optimizer)
    assert fake.where == {"reference": "cpu", "optimizer": "cpu"}
    seen = []

    real_logprobs = grpo._logprobs_no_grad

    def logprobs(model, rollout, c, **kw):
        seen.append(("reference pass" if model is reference else "old-policy pass", dict(fake.where)))
        return real_logprobs(model, rollout, c, **kw)

    real_step = optimizer.step

    def step(*args, **kwargs):
        seen.append(("optimizer step", dict(fake.where)))
        return real_step(*args, **kwargs)

    monkeypatch.setattr(grpo, "_logprobs_no_grad", logprobs)
    monkeypatch.setattr(optimizer, "step", step)
    examples = [Example(prompt=f"{i}+{i}", answer=str(2 * i), task="t", verifier="integer") for i in range(2)]
    ids = [tok(e.prompt, add_special_tokens=False)["input_ids"] for e in examples]
    gen = HFGenerator(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    grpo.train_step(cfg, 0, gen, tok, policy, reference, optimizer, scheduler, examples, ids, offload=offload)
    assert seen == [
        ("reference pass", {"reference": "cuda", "optimizer": "cpu"}),
        ("old-policy pass", {"reference": "cpu", "optimizer": "cpu"}),
        ("optimizer step", {"reference": "cpu", "optimizer": "cuda"}),
        ("optimizer step", {"reference": "cpu", "optimizer": "cuda"}),
    ]
    assert fake.where == {"reference": "cpu", "optimizer": "cpu"}
    assert set(offload.seconds) == {"reference", "optimizer"}


def test_reward_models_are_on_the_device_only_while_they_score(tmp_path, tiny_random_model):
    tokenizer = load_tokenizer(str(tiny_random_model))
    model = load_reward_model(str(tiny_random_model), pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    (tmp_path / "rm" / "r1kit_reward.json").write_text(json.dumps({"template": "plain"}))
    fake = DeviceMap()
    offload = Offload(torch.device("cuda"), frozenset({"reward_models"}), move=fake.move)
    loaded = rm_module.load(str(tmp_path / "rm"), "cpu")
    real_score = loaded.model.forward
    during = []

    def forward(*args, **kwargs):
        during.append(fake.where.get("reward_models"))
        return real_score(*args, **kwargs)

    loaded.model.forward = forward
    rm_module.register_reward_models({"helpful": RewardModelConfig(path=str(tmp_path / "rm"))}, steps=3,
                                     device="cpu", offload=offload)
    assert fake.where == {"reward_models": "cpu"}  # parked at registration
    scores = rewards.REWARDS["helpful"](["1+1"], ["2"], step=0)
    assert len(scores) == 1 and during == ["cuda"] and fake.where == {"reward_models": "cpu"}
    rm_module.register_reward_models({}, steps=3)


def test_on_the_cpu_offload_is_a_no_op():
    module = torch.nn.Linear(2, 2)
    offload = Offload.of(OffloadConfig(reference=True, reward_models=True, optimizer=True), torch.device("cpu"))
    assert not offload.active("reference")
    offload.park("reference", module)
    with offload.phase("reference", module):
        pass
    assert offload.seconds == {} and module.weight.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_offload_moves_for_real_on_a_gpu():
    module = torch.nn.Linear(4, 4).cuda()
    offload = Offload(torch.device("cuda"), frozenset({"reference"}))
    offload.park("reference", module)
    assert module.weight.device.type == "cpu"
    with offload.phase("reference", module):
        assert module.weight.device.type == "cuda"
    assert module.weight.device.type == "cpu"
