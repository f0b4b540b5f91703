"""Trained reward models as rewards (R1-SPEC section 3, stage 4: a helpfulness RM on the summary, a
harmlessness RM on the whole response, both only in the last steps of the run).

A reward model is the paper's "inference module": loaded once per process (and path and device), apart
from the policy, in eval mode without gradients. `register_reward_models(cfg.reward_models, steps)`
puts one reward per entry of the stage's `reward_models` into `r1kit.rewards.REWARDS` under the entry's
name, so `rewards: {helpful: 1.0}` weighs it like any rule reward. Each scores a batch:

    score = RM(template(prompt) + view(completion) + EOS)      view: the summary or the full response
    reward = (score - mean) / std  with `normalize` (the held-out mean and std `r1kit rm` stored)

and is 0 outside its window (`last_steps`: the run's last N steps; `RewardModelConfig.active_at`, which
the loop logs as `reward/<name>/active`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from r1kit.config import ConfigError, RewardModelConfig, check_window
from r1kit.models.device import resolve_device
from r1kit.models.loading import load_reward_model, load_tokenizer
from r1kit.models.offload import Offload
from r1kit.rewards import REWARDS
from r1kit.rewards.general import summary
from r1kit.trainers.pairs import response_ids
from r1kit.trainers.rm import score_sequences

INFO_FILE = "r1kit_reward.json"


@dataclass(frozen=True)
class LoadedRewardModel:
    model: Any
    tokenizer: Any
    info: dict[str, Any]

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int) -> list[float]:
        """Raw scores of (prompt, response) pairs, scored as `r1kit rm` trained them."""
        template, max_length = self.info.get("template", "r1"), int(self.info.get("max_length", 512))
        ids = [response_ids(p, r, self.tokenizer, template)[:max_length] for p, r in zip(prompts, responses,
                                                                                        strict=True)]
        out: list[float] = []
        for at in range(0, len(ids), batch_size):
            out += score_sequences(self.model, ids[at : at + batch_size], pad_id=self.tokenizer.pad_token_id).tolist()
        return out


@functools.cache
def load(path: str, device: str = "auto") -> LoadedRewardModel:
    """The reward model at `path`, once per process."""
    tokenizer = load_tokenizer(path)
    model = load_reward_model(path, "float32", resolve_device(device), pad_token_id=tokenizer.pad_token_id).eval()
    info_path = Path(path) / INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return LoadedRewardModel(model, tokenizer, info)


def check_reward_model(name: str, spec: RewardModelConfig, steps: int) -> None:
    """ConfigError, before any work, for a path that is not a one-label sequence classifier or a window
    longer than the run."""
    config = Path(spec.path) / "config.json"
    if not spec.path or not config.is_file():
        raise ConfigError(f"reward_models.{name}.path: no model directory at {spec.path!r} (train one with r1kit rm)")
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(f"reward_models.{name}.path: {spec.path} is not a sequence-classification model "
                          f"({', '.join(map(str, architectures)) or 'no architecture'}); train one with r1kit rm")
    check_window(f"reward_models.{name}.last_steps", spec.last_steps, steps)
    if spec.batch_size < 1:
        raise ConfigError(f"reward_models.{name}.batch_size must be >= 1, got {spec.batch_size}")


def make_reward(spec: RewardModelConfig, steps: int, device: str, offload: Offload | None = None) -> Any:
    def reward_model(prompts: Sequence[str], completions: Sequence[str], *, step: int | None = None,
                     **_: Any) -> list[float]:
        if not spec.active_at(step, steps):
            return [0.0] * len(completions)
        rm = load(spec.path, device)
        views = [summary(c) if spec.apply_to == "summary" else c for c in completions]
        with offload.phase("reward_models", rm.model) if offload else contextlib.nullcontext():
            scores = rm.score(prompts, views, spec.batch_size)
        if spec.normalize and rm.info.get("reward_std"):
            mean, std = float(rm.info["reward_mean"]), float(rm.info["reward_std"])
            scores = [(s - mean) / std for s in scores]
        return scores

    return reward_model


def register_reward_models(specs: Mapping[str, RewardModelConfig], steps: int, device: str = "auto",
                           offload: Offload | None = None) -> None:
    """Check every reward model and put its reward into REWARDS under its name (a built-in reward's
    name is refused). Those of an earlier stage in the same process are removed first. With `offload`
    (and offload.reward_models on a GPU run) each lives in CPU memory except while it scores."""
    for name in [n for n, r in REWARDS.items() if getattr(r, "is_reward_model", False) and n not in specs]:
        del REWARDS[name]
    for name, spec in specs.items():
        check_reward_model(name, spec, steps)
        if name in REWARDS and not getattr(REWARDS[name], "is_reward_model", False):
            raise ConfigError(f"reward_models.{name}: {name!r} is a built-in reward; name the reward model otherwise")
        reward = make_reward(spec, steps, device, offload)
        if offload is not None:
            offload.park("reward_models", load(spec.path, device).model)
        reward.is_reward_model = True
        REWARDS[name] = reward
