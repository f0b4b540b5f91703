"""The GRPO loop (R1-SPEC section 2): sample a group per prompt, score it with rule rewards, turn the
rewards into group-relative advantages, and take clipped policy-gradient steps with a k3 KL penalty to
a frozen reference. The math is in `r1kit.algorithms`; this file only orders the steps.

Every source of randomness is seeded from (seed, step), so a run resumed from a checkpoint replays the
remaining steps exactly as an uninterrupted run would (on CPU, with the same thread count).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from r1kit import distributed as dist
from r1kit.algorithms import group_advantages, grpo_loss, masked_mean, micro_batch_weight, zero_variance_share
from r1kit.config import ZeroConfig
from r1kit.models.device import DTYPES, autocast, model_device
from r1kit.models.logprobs import completion_logprobs
from r1kit.models.lora import is_lora, reference_view, refresh_reference
from r1kit.models.offload import Offload
from r1kit.models.packed_logprobs import PackBy, build, pack_plan, packed_logprobs
from r1kit.rewards.scoring import RewardScorer
from r1kit.rollout import Generator, SamplingParams, left_pad
from r1kit.rollout.base import concat
from r1kit.schedules import scalar, schedule_values
from r1kit.trainers.dynamic import PromptCursor, dynamic_rollout
from r1kit.trainers.optim import adamw
from r1kit.trainers.ppo import Critic
from r1kit.types import Example

Choose = Callable[[int, int, int], list[int]]
"""choose(step, draw, count): the indices of `count` prompts, draw `draw` of the stream, for `step` (a
multi-task stage's per-task weights depend on the step)."""


@dataclass(frozen=True)
class Rollout:
    """One step's N = B*G completions, ready for the loss. Rows are group-major: row i answers prompt i // G."""

    prompt_ids: torch.Tensor
    """[B, P] left-padded prompts, once per group."""
    prompt_mask: torch.Tensor
    """[B, P]"""
    completion_ids: torch.Tensor
    """[N, T]"""
    completion_mask: torch.Tensor
    """[N, T] 1 for completion tokens including the first EOS."""
    rewards: torch.Tensor
    """[B, G] summed rewards."""
    advantages: torch.Tensor
    """[N] group-relative, one per completion; PPO: [N, T] per token (GAE's)."""
    ref_logprobs: torch.Tensor | None
    """[N, T] under the reference, or None when kl_coef is 0."""
    old_logprobs: torch.Tensor | None
    """[N, T] under the policy before this step's updates, or None when there is only one update (the
    ratio is then exactly 1 and the detached current log-probs stand in)."""
    metrics: dict[str, float]
    sampler_logprobs: torch.Tensor | None = None
    """[N, T] the rollout engine's own log-probs of the sampled tokens (diagnostics and `rollout.tis_cap`)."""
    values: torch.Tensor | None = None
    """PPO: [N, T] the critic's values when the rollout was made (its advantages are then [N, T], GAE's)."""
    returns: torch.Tensor | None = None
    """PPO: [N, T] the value loss's targets."""

    @property
    def group_size(self) -> int:
        return self.completion_ids.shape[0] // self.prompt_ids.shape[0]

    def token_lists(self) -> tuple[list[list[int]], list[list[int]]]:
        """The prompts and completions without padding (what packing lays out)."""
        prompts = [ids[mask.bool()].tolist() for ids, mask in zip(self.prompt_ids, self.prompt_mask, strict=True)]
        lengths = self.completion_mask.sum(dim=1).tolist()
        return prompts, [ids[:n].tolist() for ids, n in zip(self.completion_ids, lengths, strict=True)]

    def rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The inputs of `completion_logprobs` for a subset of rows, trimmed of all-padding columns:
        (prompt_ids [U, P'], prompt_mask, prompt_index [n], completion_ids [n, T'], completion_mask)."""
        groups, index = torch.unique(rows // self.group_size, return_inverse=True)
        pmask = self.prompt_mask[groups]
        first = int((pmask.sum(dim=0) > 0).nonzero()[0].item())
        cmask = self.completion_mask[rows]
        T = max(int(cmask.sum(dim=1).max().item()), 1)
        return self.prompt_ids[groups, first:], pmask[:, first:], index, self.completion_ids[rows, :T], cmask[:, :T]


def step_seed(seed: int, step: int, stream: int) -> int:
    """A distinct, reproducible seed per (run seed, step, purpose)."""
    return (seed * 1_000_003 + step * 7919 + stream * 104_729) % (2**62)


def prompts_for_step(n_examples: int, step: int, batch: int, seed: int) -> list[int]:
    """Indices of the B prompts of `step`: consecutive slices of per-epoch seeded permutations."""
    out: list[int] = []
    pos = step * batch
    while len(out) < batch:
        epoch, offset = divmod(pos, n_examples)
        perm = torch.randperm(n_examples, generator=torch.Generator().manual_seed(step_seed(seed, epoch, 1)))
        take = min(batch - len(out), n_examples - offset)
        out.extend(perm[offset : offset + take].tolist())
        pos += take
    return out


def shares(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder; ties to the earlier one).

    >>> shares(16, [1, 1]), shares(16, [3, 1, 1]), shares(5, [1])
    ([8, 8], [10, 3, 3], [5])
    """
    mass = sum(weights)
    if mass <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    quotas = [total * w / mass for w in weights]
    counts = [math.floor(q) for q in quotas]
    for i in sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))[: total - sum(counts)]:
        counts[i] += 1
    return counts


def mixed_prompts_for_step(sizes: Sequence[int], weights: Sequence[float], step: int, batch: int,
                           seed: int) -> list[int]:
    """The B prompts of `step` for several tasks, as indices into the concatenation of their train
    examples: each task's share of B by weight, drawn as `prompts_for_step` draws (with its own seed
    stream; the first task's is the single-task one)."""
    out, offset = [], 0
    for t, (n, count) in enumerate(zip(sizes, shares(batch, weights), strict=True)):
        if count:
            out += [offset + i for i in prompts_for_step(n, step, count, seed + t * 7_919)]
        offset += n
    return out


def collect_rollout(
    cfg: ZeroConfig,
    step: int,
    generator: Generator,
    tokenizer: Any,
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    examples: Sequence[Example],
    prompt_ids: Sequence[Sequence[int]],
    scorer: RewardScorer | None = None,
    offload: Offload | None = None,
) -> Rollout:
    """Generate G completions per prompt, score them, compute advantages, and the reference's and the
    policy's log-probs (no gradient): `sample_rollout`, then `add_logprobs`."""
    rollout = sample_rollout(cfg, step, generator, tokenizer, examples, prompt_ids, scorer)
    return add_logprobs(cfg, rollout, policy, reference, offload)


def sample_rollout(
    cfg: ZeroConfig,
    step: int,
    generator: Generator,
    tokenizer: Any,
    examples: Sequence[Example],
    prompt_ids: Sequence[Sequence[int]],
    scorer: RewardScorer | None = None,
    group: str = "objects",
    first_group: int = 0,
) -> Rollout:
    """Generate G completions per prompt, score them and compute advantages (no model pass but the
    engine's; `group`: the process group of the gathers, "rollout" from the one-step-off thread;
    `first_group`: the seed index of the first prompt's group, see `r1kit.rollout.base`).

    The B prompts are generated in `cfg.scoring.chunks` chunks of whole groups; each chunk goes to the
    scorer as soon as it exists, so with reward workers it is scored while the next one generates. In a
    distributed run each rank generates and scores its contiguous share of the groups, and the shares
    are gathered back in rank order: every rank then holds the whole rollout.
    """
    B, G = len(examples), cfg.group_size
    r = cfg.rollout
    params = SamplingParams(temperature=scalar(r.temperature), top_p=r.top_p, max_new_tokens=scalar(r.max_new_tokens))
    own_scorer = scorer is None
    scorer = scorer or make_scorer(cfg, workers=0)
    parts, pending = [], []
    lo, hi = dist.share(B)
    try:
        for a, b in _chunks(hi - lo, cfg.scoring.chunks):
            a, b = a + lo, b + lo
            # Seeded per prompt group: neither chunks nor ranks change a sample.
            part = generator.generate(prompt_ids[a:b], params, num_samples=G, seed=step_seed(cfg.seed, step, 2),
                                      first_group=first_group + a)
            texts = tokenizer.batch_decode(part.completion_ids, skip_special_tokens=True)
            repeated = [e for e in examples[a:b] for _ in range(G)]
            counts = part.completion_mask.sum(dim=1).tolist()
            pending.append(scorer.submit([e.prompt for e in repeated], texts, repeated, counts, step=step,
                                         settings={"max_completion_tokens": r.max_new_tokens}))  # the step's L_max
            parts.append(part)
        results = [p.result() for p in pending]
    finally:
        if own_scorer:
            scorer.close()
    shares = dist.gather((parts, results), group=group)
    parts = [p for ps, _ in shares for p in ps]
    results = [r for _, rs in shares for r in rs]
    gen = concat(parts, tokenizer.pad_token_id)
    names = list(dict.fromkeys(k for res in results for k in res.per_reward))
    per_reward = {k: [x for res in results for x in res.per_reward.get(k, [math.nan] * len(res.total))]
                  for k in names}
    total = [x for res in results for x in res.total]
    rewards = torch.tensor(total, dtype=torch.float32).view(B, G)
    advantages = group_advantages(rewards, scale_by_std=cfg.grpo.scale_by_std).view(-1)

    p_ids, p_mask = left_pad(prompt_ids, tokenizer.pad_token_id)
    lengths = gen.completion_mask.sum(dim=1).float()
    metrics = {
        "reward/mean": rewards.mean().item(),
        "reward/std": rewards.std().item() if rewards.numel() > 1 else 0.0,
        **{f"reward/{k}/{stat}": value for k, v in per_reward.items() for stat, value in _mean_std(v).items()},
        "reward/timeouts": float(sum(res.timeouts for res in results)),
        "reward/errors": float(sum(res.errors for res in results)),
        "response_length/mean": lengths.mean().item(),
        "response_length/max": lengths.max().item(),
        "truncated_rate": (~gen.finished).float().mean().item(),
        "zero_variance_groups": zero_variance_share(rewards),
        "tokens": float(gen.completion_mask.sum().item()),
    }
    for name, spec in cfg.reward_models.items():  # a reward model outside its window scores 0: say so
        metrics[f"reward/{name}/active"] = float(spec.active_at(step, cfg.steps))
    for name in ("accuracy", "format"):
        if name in per_reward:
            metrics[{"accuracy": "accuracy", "format": "format_rate"}[name]] = metrics[f"reward/{name}/mean"]
    tasks = [e.task for e in examples]
    if len(set(tasks)) > 1:  # a multi-task stage: each task's reward and accuracy too
        for task in dict.fromkeys(tasks):
            rows = [i * G + j for i, t in enumerate(tasks) if t == task for j in range(G)]
            metrics[f"task/{task}/reward"] = sum(total[i] for i in rows) / len(rows)
            if "accuracy" in per_reward:
                metrics[f"task/{task}/accuracy"] = _mean_std([per_reward["accuracy"][i] for i in rows])["mean"]
    return Rollout(p_ids, p_mask, gen.completion_ids, gen.completion_mask, rewards, advantages, None, None, metrics,
                   sampler_logprobs=gen.logprobs)


def add_logprobs(cfg: ZeroConfig, rollout: Rollout, policy: torch.nn.Module, reference: torch.nn.Module | None,
                 offload: Offload | None = None, *, old_by: torch.nn.Module | None = None,
                 group: str = "objects") -> Rollout:
    """The rollout with the reference's log-probs (when the KL is on) and the old policy's (when it gets
    more than one update). `old_by`: the policy that generated it, when that is not `policy` (one-step-off
    rollout: its old log-probs are always needed, and never recomputed by the newer policy)."""
    ref_logprobs, old_logprobs, metrics = rollout.ref_logprobs, rollout.old_logprobs, dict(rollout.metrics)
    if ref_logprobs is None and scalar(cfg.grpo.kl_coef) > 0 and (reference is not None or is_lora(policy)):
        # The frozen copy (on the device only for this pass, with offload.reference), or the LoRA policy
        # with its adapters disabled.
        with (offload.phase("reference", reference) if offload else contextlib.nullcontext(),
              reference_view(policy, reference) as ref):
            ref_logprobs = _logprobs_no_grad(ref, rollout, cfg)
    if old_logprobs is None and (old_by is not None or cfg.grpo.num_minibatches * cfg.grpo.num_epochs > 1):
        old_logprobs = _logprobs_no_grad(old_by or policy, rollout, cfg, group=group)
        assert rollout.sampler_logprobs is not None
        metrics.update(drift((rollout.sampler_logprobs - old_logprobs).abs()[rollout.completion_mask.bool()]))
    return dataclasses.replace(rollout, ref_logprobs=ref_logprobs, old_logprobs=old_logprobs, metrics=metrics)


CODE_SETTINGS = ("code_timeout_s", "code_memory_mb", "code_max_workers", "code_partial_credit", "code_unsafe_local")


def make_scorer(cfg: ZeroConfig, *, workers: int | None = None,
                task_weights: Mapping[str, Mapping[str, float]] | None = None) -> RewardScorer:
    """The run's reward scorer: its weights (`task_weights`: per `Example.task`, in a multi-task stage),
    worker count, timeout and reward settings."""
    s = cfg.scoring
    return RewardScorer(cfg.rewards, workers=s.workers if workers is None else workers, timeout_s=s.timeout_s,
                        task_weights=task_weights,
                        # the largest budget; each rollout passes its step's own (sample_rollout)
                        settings={"max_completion_tokens": max(schedule_values(cfg.rollout.max_new_tokens)),
                                  "overlong_cache": s.overlong_cache, "language": s.language,
                                  "judge_model": s.judge_model,
                                  **{k: getattr(s, k) for k in CODE_SETTINGS}})


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` (at most n) contiguous, near-equal ranges covering 0..n."""
    parts = max(1, min(parts, n))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and std over the samples a reward scored (NaN marks the ones it does not apply to)."""
    t = torch.tensor(values, dtype=torch.float64)
    t = t[~t.isnan()]
    if t.numel() == 0:
        return {"mean": math.nan, "std": math.nan}
    return {"mean": t.mean().item(), "std": t.std().item() if t.numel() > 1 else 0.0}


def micro_batches(cfg: ZeroConfig, model: torch.nn.Module, rollout: Rollout, rows: torch.Tensor, *, micro: int,
                  with_entropy: bool = False
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """Log-probs of `rows` one micro-batch at a time: (rows [n], log-probs [n, T'], entropy, mask [n, T']),
    on the model's device. Packed by a token budget when `optim.max_tokens_per_micro_batch` is set (best
    fit, longest first), else `micro` rows at a time, padded (prompts encoded once per group in both)."""
    device = model_device(model)
    o = cfg.optim
    temperature = scalar(cfg.rollout.temperature)  # the step's, the one its completions were sampled at
    if o.max_tokens_per_micro_batch > 0:
        prompts, completions = rollout.token_lists()
        G = rollout.group_size
        plan = pack_plan([len(p) for p in prompts], [len(c) for c in completions],
                         [r // G for r in range(len(completions))], rows.tolist(),
                         capacity=o.max_tokens_per_micro_batch, by=pack_by(cfg, model))
        for units in plan:
            batch = build(units, prompts, completions)
            with autocast(device, cfg.model.dtype):
                logprobs, entropy = packed_logprobs(model, batch, temperature=temperature,
                                                    with_entropy=with_entropy,
                                                    chunk_tokens=cfg.model.logprob_chunk_tokens)
            yield batch.rows, logprobs, entropy, batch.mask.to(device)
        return
    for part in rows.split(micro):
        # The rollout stays on the CPU; each micro-batch moves to the model's device (a no-op on CPU).
        p_ids, p_mask, index, c_ids, cmask = (t.to(device) for t in rollout.rows(part))
        with autocast(device, cfg.model.dtype):
            logprobs, entropy = completion_logprobs(model, p_ids, p_mask, index, c_ids, cmask,
                                                    temperature=temperature, with_entropy=with_entropy,
                                                    chunk_tokens=cfg.model.logprob_chunk_tokens)
        yield part, logprobs, entropy, cmask


def pack_by(cfg: ZeroConfig, model: torch.nn.Module) -> PackBy:
    """optim.pack, except under FlashAttention, whose varlen kernel cannot share a prompt: sequences."""
    kernel = str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")
    return "sequences" if kernel.startswith("flash_attention") else cfg.optim.pack


@torch.no_grad()
def _logprobs_no_grad(model: torch.nn.Module, rollout: Rollout, cfg: ZeroConfig, group: str = "objects"
                      ) -> torch.Tensor:
    """[N, T] log-probs of the whole rollout (kept on the CPU), in micro-batches of whole groups; each
    rank computes its share of the groups and the shares are gathered."""
    N, T = rollout.completion_ids.shape
    G = rollout.group_size
    out = torch.zeros((N, T))
    micro = max((cfg.optim.micro_batch_size or N) // G, 1) * G
    mine = local_rows(torch.arange(N), G)
    for rows, logprobs, _, _ in micro_batches(cfg, model, rollout, mine, micro=micro):
        out[rows, : logprobs.shape[1]] = logprobs.float().cpu()
    if dist.world().distributed:
        out = sum(dist.gather(out, group=group))  # each row is non-zero on one rank only
    return out


def local_rows(rows: torch.Tensor, group_size: int) -> torch.Tensor:
    """This rank's contiguous share of `rows` (whole groups of `group_size`; all of them alone)."""
    a, b = dist.share(len(rows) // group_size)
    return rows[a * group_size : b * group_size]


def drift(gap: torch.Tensor) -> dict[str, float]:
    """`rollout/logprob_drift/{mean,max}` of `gap`, the |sampler - trainer| log-probs of the sampled
    completion tokens (bf16 engines drift; the fp32 HF engine agrees to float error). With rollout.top_p
    < 1 the sampler's law is the truncated one, so the gap includes the truncation."""
    if gap.numel() == 0:
        return {"rollout/logprob_drift/mean": 0.0, "rollout/logprob_drift/max": 0.0}
    return {"rollout/logprob_drift/mean": gap.mean().item(), "rollout/logprob_drift/max": gap.max().item()}


def update_policy(
    cfg: ZeroConfig,
    step: int,
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rollout: Rollout,
    offload: Offload | None = None,
    critic: Critic | None = None,
) -> dict[str, float]:
    """num_epochs passes over the rollout, each split into num_minibatches optimizer steps (PPO: of the
    policy and the critic together)."""
    g = cfg.grpo
    N, B = rollout.completion_ids.shape[0], rollout.prompt_ids.shape[0]
    if N % g.num_minibatches:
        raise ValueError(f"B*G = {N} completions do not split into {g.num_minibatches} minibatches")
    rng = torch.Generator().manual_seed(step_seed(cfg.seed, step, 3))
    sums: dict[str, float] = {}
    n_updates = 0
    policy.train()
    for _ in range(g.num_epochs):
        # Shuffle whole groups, so a minibatch holds few distinct prompts and shares their encoding.
        groups = torch.randperm(B, generator=rng) if g.num_minibatches > 1 else torch.arange(B)
        order = (groups[:, None] * rollout.group_size + torch.arange(rollout.group_size)).view(-1)
        for rows in order.chunk(g.num_minibatches):
            stats = _minibatch_step(cfg, policy, optimizer, rollout, rows, offload, critic)
            scheduler.step()
            n_updates += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
    return {k: v / n_updates for k, v in sums.items()}


def critic_advantages(cfg: ZeroConfig, critic: Critic | None, rollout: Rollout, policy: torch.nn.Module
                      ) -> tuple[Rollout, ZeroConfig]:
    """PPO: the rollout with the critic's GAE advantages (against the sampling policy's log-probs) and the
    config of its policy loss (`Critic.loss_config`); without a critic both unchanged."""
    if critic is None:
        return rollout, cfg
    old = rollout.old_logprobs if rollout.old_logprobs is not None else _logprobs_no_grad(policy, rollout, cfg)
    return critic.advantages(cfg, rollout, old), critic.loss_config(cfg)


def _minibatch_step(cfg: ZeroConfig, policy: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    rollout: Rollout, rows: torch.Tensor, offload: Offload | None = None,
                    critic: Critic | None = None) -> dict[str, float]:
    """One optimizer step on `rows`, accumulating gradients over micro-batches (and the critic's, PPO)."""
    g = cfg.grpo
    device = model_device(policy)
    full_mask = rollout.completion_mask[rows]  # the whole minibatch's, on every rank: global weights
    stats = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0}
    gaps: list[torch.Tensor] = []
    optimizer.zero_grad(set_to_none=True)
    if critic is not None:
        critic.zero_grad()
    mine = local_rows(rows, rollout.group_size)
    for part, logprobs, entropy, cmask in micro_batches(cfg, policy, rollout, mine,
                                                        micro=cfg.optim.micro_batch_size or len(mine),
                                                        with_entropy=True):
        T = cmask.shape[1]
        old = rollout.old_logprobs[part, :T].to(device) if rollout.old_logprobs is not None else logprobs.detach()
        ref = rollout.ref_logprobs[part, :T].to(device) if rollout.ref_logprobs is not None else None
        sampler = rollout.sampler_logprobs[part, :T].to(device) if rollout.sampler_logprobs is not None else None
        weights = None
        if sampler is not None and rollout.old_logprobs is None:  # one update: the trainer's old law is this one
            gaps.append((old.float() - sampler).abs()[cmask.bool()].cpu())
        if sampler is not None and cfg.rollout.tis_cap > 0:
            weights = tis_weights(old.float(), sampler, cfg.rollout.tis_cap)
        advantages = rollout.advantages[part]  # [n], or PPO's per-token [n, T] (trimmed like the rest)
        advantages = advantages[:, :T] if advantages.dim() == 2 else advantages
        out = grpo_loss(logprobs, old, ref, advantages.to(device), cmask,
                        clip_eps_low=g.clip_eps_low, clip_eps_high=g.clip_eps_high, kl_coef=scalar(g.kl_coef),
                        aggregation=g.aggregation, ratio_level=g.ratio_level,
                        max_tokens=scalar(cfg.rollout.max_new_tokens), is_weights=weights)
        w = micro_batch_weight(cmask, full_mask, aggregation=g.aggregation)
        (out.loss * w).backward()
        # kl, clip fraction and entropy are token means: weighted by token share, any split gives the same
        share = float(cmask.sum().item()) / max(float(full_mask.sum().item()), 1.0)
        stats["loss"] += out.loss.item() * w
        stats["policy_loss"] += out.policy_loss.item() * w
        stats["kl"] += out.kl.item() * share
        stats["clip_fraction"] += out.clip_fraction.item() * share
        assert entropy is not None
        stats["entropy"] += masked_mean(entropy, cmask).item() * share
    if critic is not None:  # before the policy's clipping: a shared trunk gets both losses' gradients
        stats.update(critic.backward(cfg, rollout, mine, full_mask))
    stats = dist.total(stats)  # each rank's share of the minibatch's means: summed, they are the means
    gaps = [gap for part in dist.gather(gaps) for gap in part]
    if gaps:
        stats.update(drift(torch.cat(gaps)))
    max_norm = cfg.optim.max_grad_norm if cfg.optim.max_grad_norm > 0 else math.inf
    stats["grad_norm"] = dist.grad_norm(policy, max_norm)
    stats["lr"] = optimizer.param_groups[0]["lr"]
    with offload.phase("optimizer", optimizer) if offload else contextlib.nullcontext():
        optimizer.step()
    if critic is not None:
        stats.update(critic.step())
    return stats


def tis_weights(trainer_old: torch.Tensor, sampler: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance weights for the rollout/trainer mismatch (Yao et al. 2025, "Your efficient RL
    framework secretly brings you off-policy RL training"; TRL's vllm_importance_sampling_cap):
    min(pi_trainer_old / pi_sampler, cap) per token, no gradient.

    >>> tis_weights(torch.tensor([0.0, 0.0]), torch.log(torch.tensor([0.5, 0.01])), 3.0)
    tensor([2., 3.])
    """
    return torch.exp(trainer_old - sampler).clamp(max=cap).detach()


def make_optimizer(cfg: ZeroConfig, policy: torch.nn.Module
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with warmup, then constant or cosine decay over every optimizer step of the run (LoRA adapters:
    at optim.lr x model.lora.lr_scale)."""
    optim = dataclasses.replace(cfg.optim, lr=cfg.optim.lr * cfg.model.lora.lr_scale) if is_lora(policy) else cfg.optim
    return adamw(optim, policy, cfg.steps * cfg.grpo.num_minibatches * cfg.grpo.num_epochs)


def make_reference(policy: torch.nn.Module, kl_coef: float, dtype: str = "float32") -> torch.nn.Module | None:
    """A frozen copy of the policy for the KL term, stored in the compute dtype; None when the KL is off,
    or for a LoRA policy (its reference is itself with the adapters disabled: no second copy)."""
    if kl_coef <= 0 or is_lora(policy):
        return None
    reference = copy.deepcopy(policy).to(DTYPES[dtype]).eval()
    reference.requires_grad_(False)
    return reference


def train_step(
    cfg: ZeroConfig,
    step: int,
    generator: Generator,
    tokenizer: Any,
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    examples: Sequence[Example],
    prompt_ids: Sequence[Sequence[int]],
    clock: Callable[[], float] = time.perf_counter,
    scorer: RewardScorer | None = None,
    choose: Choose | None = None,
    offload: Offload | None = None,
    prefetch: Any = None,
    cursor: PromptCursor | None = None,
    critic: Critic | None = None,
) -> dict[str, float]:
    """Step `step` (0-based) of GRPO: rollout, update, reference refresh. Returns its metrics.
    `choose(step, draw, count)` gives the indices of the step's prompts (default: `prompts_for_step` over
    all). `prefetch` (a `r1kit.trainers.off_policy.OneStepOff`): the batch comes from the previous policy,
    and the next one is generated while this one trains. `cursor`: the prompt stream's next draw, with
    grpo.dynamic_sampling (advanced by the draws this step uses). `critic` (PPO, `r1kit.trainers.ppo`):
    GAE advantages from its values replace the group-relative ones, and it trains beside the policy."""
    cfg = cfg.at_step(step)  # step schedules (r1kit.schedules) become this step's plain values, for all below
    start = clock()
    if cfg.grpo.dynamic_sampling:
        assert cursor is not None and prefetch is None

        def sample(idx: list[int], first_group: int) -> Rollout:
            return sample_rollout(cfg, step, generator, tokenizer, [examples[i] for i in idx],
                                  [prompt_ids[i] for i in idx], scorer, first_group=first_group)

        rollout = dynamic_rollout(cfg, cursor, lambda draw, count: step_prompts(cfg, step, len(examples), choose,
                                                                                draw=draw, count=count),
                                  sample, tokenizer.pad_token_id)
        rollout = add_logprobs(cfg, rollout, policy, reference, offload)
        version = step
    elif prefetch is None:
        idx = step_prompts(cfg, step, len(examples), choose)
        rollout = collect_rollout(cfg, step, generator, tokenizer, policy, reference,
                                  [examples[i] for i in idx], [prompt_ids[i] for i in idx], scorer, offload)
        version = step
    else:
        rollout, version = prefetch.take(step, step)
        generator.update_weights(dist.sync(policy))  # the engine is idle: it gets pi_step...
        if step + 1 < cfg.steps:
            prefetch.launch(step + 1, step)  # ...and samples the next batch with it while this one trains
        rollout = add_logprobs(cfg, rollout, policy, reference, offload)  # the reference's (old ones: done)
    if hasattr(generator, "sleep"):  # vLLM: free its GPU memory for training; update_weights wakes it
        generator.sleep()
    rollout, loss_cfg = critic_advantages(cfg, critic, rollout, policy)
    stats = update_policy(loss_cfg, step, policy, optimizer, scheduler, rollout, offload=offload, critic=critic)
    if prefetch is None:
        generator.update_weights(dist.sync(policy))  # sharded: the full weights, gathered into the replica
    every = cfg.grpo.ref_update_every
    if every > 0 and (step + 1) % every == 0:
        if reference is not None:
            reference.load_state_dict(policy.state_dict())
        elif is_lora(policy):  # merge the adapters into the base: adapters off is the new reference
            refresh_reference(policy, optimizer, step_seed(cfg.seed, step, 5))
    seconds = clock() - start
    metrics = {**rollout.metrics, **stats, "rollout/policy_version": float(version),
               "rollout/lag": float(step - version), "step_seconds": seconds,
               "tokens_per_s": rollout.metrics["tokens"] / max(seconds, 1e-9)}
    return metrics


def step_prompts(cfg: ZeroConfig, step: int, n_examples: int, choose: Choose | None, *, draw: int | None = None,
                 count: int | None = None) -> list[int]:
    """Indices of `step`'s prompts: draw `draw` (default: the step) of `count` prompts (default:
    prompts_per_step) of the seeded stream, by `choose(step, draw, count)` or `prompts_for_step` over all."""
    draw = step if draw is None else draw
    count = cfg.prompts_per_step if count is None else count
    return choose(step, draw, count) if choose else prompts_for_step(n_examples, draw, count, cfg.seed)


def sampler(cfg: ZeroConfig, generator: Generator, tokenizer: Any, examples: Sequence[Example],
            prompt_ids: Sequence[Sequence[int]], scorer: RewardScorer | None,
            choose: Choose | None, engine_model: torch.nn.Module) -> Callable[[int], Rollout]:
    """sample(step) for one-step-off rollout: the step's batch, scored, with its old log-probs computed by
    the engine's own weights (`engine_model`, the policy that generated it), on the "rollout" group."""
    def sample(step: int) -> Rollout:
        now = cfg.at_step(step)  # the step it samples for (one ahead of training): that step's schedule values
        idx = step_prompts(now, step, len(examples), choose)
        rollout = sample_rollout(now, step, generator, tokenizer, [examples[i] for i in idx],
                                 [prompt_ids[i] for i in idx], scorer, group="rollout")
        return add_logprobs(now, rollout, engine_model, None, old_by=engine_model, group="rollout")

    return sample
