"""`r1kit zero --dry-run` (and `r1kit grpo` / `r1kit ppo --dry-run`, PPO with its critic): load everything,
run one micro-batch of each phase, print the memory plan, train nothing and write nothing.

The plan has two parts. Sizes: weights, gradients, AdamW moments, the reference and the largest logits
chunk, from the parameter counts and settings. Measured: the peak memory of each phase (CUDA's
`max_memory_allocated`, or on the CPU the process's peak resident set, reset before each phase through
/proc/self/clear_refs where Linux allows it). The training phase runs the real optimizer step with the
learning rate at 0, so AdamW's state is allocated and measured while no weight changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from r1kit.config import PPOConfig, ZeroConfig
from r1kit.models.device import DTYPES, resolve_device
from r1kit.models.lora import is_lora
from r1kit.models.offload import Offload
from r1kit.models.value import own_parameters
from r1kit.schedules import schedule_values

MB = 2**20


def dry_run(cfg: ZeroConfig) -> dict[str, Any]:
    """The memory plan of `cfg`'s GRPO stage (see the module docstring)."""
    from r1kit.stages.grpo import load_policy, make_generator, prepare, register_reward_models
    from r1kit.trainers.grpo import (
        _minibatch_step,
        collect_rollout,
        critic_advantages,
        make_optimizer,
        make_reference,
        make_scorer,
    )
    from r1kit.trainers.ppo import Critic

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.model.device)
    measure = _meter(device)
    phases: dict[str, dict[str, float]] = {}
    with measure(phases, "load"):
        prep = prepare(cfg)
        policy = load_policy(cfg)
        reference = make_reference(policy, max(schedule_values(cfg.grpo.kl_coef)), cfg.model.dtype)
        optimizer, _ = make_optimizer(cfg, policy)
        critic = Critic.create(cfg, policy) if isinstance(cfg, PPOConfig) else None
    offload = Offload.of(cfg.offload, device)
    register_reward_models(cfg.reward_models, cfg.steps, cfg.model.device, offload=offload)
    offload.park("reference", reference)
    generator = make_generator(cfg, policy, prep.tokenizer)
    G = cfg.group_size
    prompts = max(1, min(cfg.prompts_per_step, (cfg.optim.micro_batch_size or G) // G))
    one = dataclasses.replace(peak(cfg), prompts_per_step=prompts)
    scorer = make_scorer(cfg, workers=0, task_weights=prep.rewards_by_task if cfg.tasks else None)
    try:
        with measure(phases, f"rollout of {prompts} prompt(s) x G={G}, scoring, reference and old log-probs"):
            rollout = collect_rollout(one, 0, generator, prep.tokenizer, policy, reference, prep.train[:prompts],
                                      prep.train_ids[:prompts], scorer, offload)
    finally:
        scorer.close()
    for group in [*optimizer.param_groups, *(critic.optimizer.param_groups if critic else [])]:
        group["lr"] = 0.0  # the real step, allocating AdamW's state, without changing a weight
    loss_cfg = one
    if critic is not None:
        with measure(phases, "critic: values and GAE advantages"):
            rollout, loss_cfg = critic_advantages(one, critic, rollout, policy)
    with measure(phases, "train micro-batch: forward, backward, optimizer step" + (" (and the critic's)" if critic
                                                                                     else "")):
        rows = torch.arange(min(rollout.completion_ids.shape[0], cfg.optim.micro_batch_size or G))
        _minibatch_step(loss_cfg, policy, optimizer, rollout, rows, offload, critic)
    return _plan(cfg, policy, reference, phases, device, critic)


def peak(cfg: ZeroConfig) -> ZeroConfig:
    """`cfg` at its most demanding: the step schedules at step 0 (`ZeroConfig.at_step`), but the largest
    completion budget and KL coefficient any step has, so the plan holds for every step."""
    now = cfg.at_step(0)
    rollout = dataclasses.replace(now.rollout, max_new_tokens=max(schedule_values(cfg.rollout.max_new_tokens)))
    return dataclasses.replace(now, rollout=rollout,
                               grpo=dataclasses.replace(now.grpo, kl_coef=max(schedule_values(cfg.grpo.kl_coef))))


def _plan(cfg: ZeroConfig, policy: Any, reference: Any, phases: dict[str, dict[str, float]],
          device: torch.device, critic: Any = None) -> dict[str, Any]:
    params = sum(p.numel() for p in policy.parameters())
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    vocab = policy.get_output_embeddings().weight.shape[0] if hasattr(policy, "get_output_embeddings") else 0
    compute = DTYPES[cfg.model.dtype].itemsize
    longest = max(schedule_values(cfg.rollout.max_new_tokens))
    chunk = cfg.model.logprob_chunk_tokens or longest * cfg.prompts_per_step * cfg.group_size
    reference_note = ("none (grpo.kl_coef = 0)" if max(schedule_values(cfg.grpo.kl_coef)) <= 0 else
                      "none: the LoRA model with its adapters disabled" if is_lora(policy) else
                      f"a frozen copy in {cfg.model.dtype}" + (", offloaded" if cfg.offload.reference else ""))
    sizes = {
        "weights (float32 master)": params * 4,
        "gradients (float32)": trainable * 4,
        "AdamW moments (float32)" + (", offloaded" if cfg.offload.optimizer else ""): trainable * 8,
        f"reference: {reference_note}": (sum(p.numel() for p in reference.parameters()) * compute
                                         if reference is not None else 0),
        f"largest logits chunk ({chunk} tokens x {vocab} x float32)": chunk * vocab * 4,
    }
    if critic is not None:  # PPO: float32 weights, gradients and AdamW moments of what the critic owns
        owned = sum(p.numel() for p in own_parameters(critic.model, critic.cfg.ppo.critic))
        kind = "a separate value model" if critic.cfg.ppo.critic == "separate" else "a value head on the policy"
        sizes[f"critic: {kind} (weights, gradients, AdamW moments)"] = owned * 16
    return {"model": cfg.model.path, "device": str(device), "dtype": cfg.model.dtype, "parameters": params,
            "trainable": trainable, "lora_rank": cfg.model.lora.rank, "engine": cfg.rollout.engine,
            "sizes_bytes": sizes, "measured": phases,
            "measured_as": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS (VmHWM)"}


def report(plan: dict[str, Any]) -> str:
    """The plan as the lines `--dry-run` prints."""
    lines = [f"r1kit dry run: {plan['model']} on {plan['device']} ({plan['dtype']} compute, engine {plan['engine']}); "
             "nothing trained, nothing written",
             f"  parameters {plan['parameters'] / 1e6:.2f} M, trainable {plan['trainable'] / 1e6:.2f} M"
             + (f" (LoRA rank {plan['lora_rank']})" if plan["lora_rank"] else ""),
             "  sizes:"]
    lines += [f"    {name:<64} {value / MB:>10.1f} MB" for name, value in plan["sizes_bytes"].items()]
    lines.append(f"  measured peak per phase ({plan['measured_as']}):")
    lines += [f"    {name:<64} {m['peak_bytes'] / MB:>10.1f} MB  {m['seconds']:6.1f} s"
              for name, m in plan["measured"].items()]
    return "\n".join(lines)


def _meter(device: torch.device) -> Callable[[dict[str, dict[str, float]], str], Any]:
    """A context manager factory that stores a phase's peak memory (bytes) under its name."""

    @contextlib.contextmanager
    def measure(into: dict[str, dict[str, float]], name: str) -> Any:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            _reset_peak_rss()
        start = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak = float(torch.cuda.max_memory_allocated(device))
        else:
            peak = float(_peak_rss())
        into[name] = {"peak_bytes": peak, "seconds": time.perf_counter() - start}

    return measure


def _reset_peak_rss() -> None:
    # Resets VmHWM to the current resident set; where not Linux or not allowed, the peak is since the start.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
