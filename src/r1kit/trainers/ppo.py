"""PPO with a value model (`r1kit ppo`; R1-SPEC sections 2 and 6): the GRPO loop of `r1kit.trainers.grpo`
with the group baseline replaced by a learned critic and GAE. Per step:

1. the same rollout as GRPO (B prompts x G completions, rule rewards, reference and old log-probs);
2. the critic's values V(s_t) of every completion token (no gradient);
3. per-token rewards: the outcome reward on the last token, minus kl_coef * (log pi_old - log pi_ref) on
   every token when `ppo.kl_in=reward` (classic RLHF PPO; the loss then has no KL term), or the KL left
   in the loss as GRPO has it (`ppo.kl_in=loss`, k3 with grpo.kl_coef);
4. GAE(gamma, lam) advantages and returns, the advantages whitened over the batch;
5. the same minibatch and epoch structure as GRPO: each optimizer step adds the clipped value loss of
   the same rows (x ppo.vf_coef), and steps the critic's optimizer beside the policy's. With a value
   head the coefficient weighs the two losses in the shared decoder; a separate critic's Adam undoes a
   constant scale, so there ppo.critic_lr is the knob.

The group size G stays: PPO needs no group, but equal samples per step make the comparison with GRPO
one of baselines only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from r1kit.algorithms import explained_variance, gae, kl_penalized_rewards, micro_batch_weight
from r1kit.algorithms import value_loss as clipped_value_loss
from r1kit.algorithms import whiten as whiten_advantages
from r1kit.config import PPOConfig, ZeroConfig
from r1kit.models.device import autocast, model_device
from r1kit.models.value import ValueModel, critic_state, load_critic_state, make_value_model, own_parameters
from r1kit.schedules import scalar
from r1kit.trainers.optim import adamw


@dataclass
class Critic:
    """The value model, its optimizer and schedule, and what each step needs of them."""

    model: ValueModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    cfg: PPOConfig

    @classmethod
    def create(cls, cfg: PPOConfig, policy: torch.nn.Module, state: dict[str, Any] | None = None) -> Critic:
        """A critic for `policy` (a checkpoint's `state()` restores it, weights and optimizer)."""
        p = cfg.ppo
        model = make_value_model(policy, p.critic)
        if state is not None:
            load_critic_state(model, p.critic, state["model"])
        optim = dataclasses.replace(cfg.optim, lr=p.critic_lr or cfg.optim.lr)
        owner = model if p.critic == "separate" else model.head
        optimizer, scheduler = adamw(optim, owner, cfg.steps * cfg.grpo.num_minibatches * cfg.grpo.num_epochs)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        return cls(model, optimizer, scheduler, cfg)

    def state(self) -> dict[str, Any]:
        return {"model": critic_state(self.model, self.cfg.ppo.critic), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def loss_config(self, cfg: ZeroConfig) -> ZeroConfig:
        """The config of the policy loss: no KL term when the KL is in the rewards."""
        if self.cfg.ppo.kl_in == "loss":
            return cfg
        return dataclasses.replace(cfg, grpo=dataclasses.replace(cfg.grpo, kl_coef=0.0))

    @torch.no_grad()
    def values(self, cfg: ZeroConfig, rollout: Any, rows: torch.Tensor | None = None) -> torch.Tensor:
        """[N, T] values of the rollout's completion tokens (kept on the CPU), micro-batch by micro-batch."""
        N, T = rollout.completion_ids.shape
        out = torch.zeros((N, T))
        self.model.eval()
        all_rows = torch.arange(N) if rows is None else rows
        for part, values in self._forward(cfg, rollout, all_rows):
            out[part, : values.shape[1]] = values.cpu()
        return out

    def advantages(self, cfg: ZeroConfig, rollout: Any, old_logprobs: torch.Tensor) -> Any:
        """The rollout with GAE advantages [N, T] (whitened with ppo.whiten), its values and returns, and
        the critic's metrics; `old_logprobs`: the sampling policy's, for the KL in the rewards."""
        p, mask = self.cfg.ppo, rollout.completion_mask
        values = self.values(cfg, rollout)
        final = rollout.rewards.reshape(-1).float()
        kl = scalar(cfg.grpo.kl_coef) if p.kl_in == "reward" and rollout.ref_logprobs is not None else 0.0
        rewards = kl_penalized_rewards(final, mask, old_logprobs, rollout.ref_logprobs if kl else old_logprobs, kl)
        advantages, returns = gae(rewards, values, mask, gamma=p.gamma, lam=p.lam)
        keep = mask.bool()
        metrics = {"value/mean": values[keep].mean().item(), "value/returns_mean": returns[keep].mean().item(),
                   "value/advantage_std": advantages[keep].std().item() if keep.sum() > 1 else 0.0}
        explained = explained_variance(values, returns, mask)
        if math.isfinite(explained):  # undefined when every return is equal: no row rather than a NaN in JSON
            metrics["value/explained_variance"] = explained
        if kl:
            metrics["value/kl_penalty"] = (old_logprobs - rollout.ref_logprobs)[keep].mean().item() * kl
        if p.whiten and keep.sum() > 1:
            advantages = whiten_advantages(advantages, mask)
        return dataclasses.replace(rollout, advantages=advantages, old_logprobs=old_logprobs, values=values,
                                   returns=returns, metrics={**rollout.metrics, **metrics})

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, cfg: ZeroConfig, rollout: Any, rows: torch.Tensor, full_mask: torch.Tensor
                 ) -> dict[str, float]:
        """Accumulate ppo.vf_coef x the clipped value loss of `rows` (weighted as the policy loss is, so the
        minibatch's loss is exact over any micro-batching); returns its metrics."""
        p, g = self.cfg.ppo, cfg.grpo
        self.model.train()
        stats = {"value/loss": 0.0, "value/clip_fraction": 0.0}
        device = model_device(self.model)
        for part, values in self._forward(cfg, rollout, rows):
            T = values.shape[1]
            cmask = rollout.completion_mask[part, :T].to(device)
            loss, fraction = clipped_value_loss(values, rollout.values[part, :T].to(device),
                                                rollout.returns[part, :T].to(device), cmask,
                                                clip_eps=p.cliprange_value, aggregation=g.aggregation,
                                                max_tokens=scalar(cfg.rollout.max_new_tokens))
            w = micro_batch_weight(cmask, full_mask, aggregation=g.aggregation)
            (p.vf_coef * loss * w).backward()
            share = float(cmask.sum().item()) / max(float(full_mask.sum().item()), 1.0)
            stats["value/loss"] += loss.item() * w
            stats["value/clip_fraction"] += fraction.item() * share
        return stats

    def step(self) -> dict[str, float]:
        """Clip the critic's own gradients (optim.max_grad_norm) and step its optimizer and schedule."""
        params = own_parameters(self.model, self.cfg.ppo.critic)
        max_norm = self.cfg.optim.max_grad_norm if self.cfg.optim.max_grad_norm > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.scheduler.step()
        return {"value/grad_norm": float(norm)}

    def _forward(self, cfg: ZeroConfig, rollout: Any, rows: torch.Tensor
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(rows, values [n, T'] on the model's device) one micro-batch at a time (optim.micro_batch_size)."""
        device = model_device(self.model)
        micro = cfg.optim.micro_batch_size or len(rows)
        for part in rows.split(micro):
            p_ids, p_mask, index, c_ids, cmask = (t.to(device) for t in rollout.rows(part))
            with autocast(device, cfg.model.dtype):
                values = self.model(p_ids, p_mask, index, c_ids, cmask,
                                    full_sequence=cfg.model.gradient_checkpointing)
            yield part, values

