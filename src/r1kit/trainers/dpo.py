"""The DPO loop's pieces: preference pairs as (prompt, chosen, rejected) token ids, their summed response
log-probs under a causal LM, one optimizer step on a batch of pairs, held-out reward accuracy and margin.

A pair's prompt is encoded once and shared by its two responses: `completion_logprobs` runs the prompt
once per pair and both responses on top of its KV cache (as GRPO's G completions share theirs), so a
batch of P pairs is P prompts and 2P completions, prompt_index = [0..P-1, 0..P-1].

The reference is either a frozen copy of the initial policy or, for a LoRA policy, the policy itself with
its adapters disabled (`r1kit.models.lora.reference_view`); its log-probs are computed per micro-batch
without gradient. Single process only (no FSDP): DPO on the miniature data fits one CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from r1kit.algorithms.dpo import DPOOutput, dpo_loss
from r1kit.config import DPOSettings
from r1kit.models.device import autocast, model_device
from r1kit.models.logprobs import completion_logprobs
from r1kit.models.lora import reference_view
from r1kit.templates import render_prompt
from r1kit.trainers.pairs import RMTemplate, encode_pair


@dataclass(frozen=True)
class DPOPair:
    """One preference pair as token ids: the rendered prompt and the two responses (EOS last, unless cut)."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    where: str
    """file:line of the row, for error messages."""


def encode_dpo_pair(where: str, row: Mapping[str, Any], tokenizer: Any, template: RMTemplate,
                    max_length: int) -> tuple[DPOPair, bool]:
    """(the pair, whether a response was cut so that prompt + response fit max_length). ValueError naming
    `where` for a row `r1kit rm` refuses too (`encode_pair`'s checks), or a prompt that leaves no room."""
    encode_pair(where, row, tokenizer, "plain", max_length)  # the row checks, with rm's messages
    text = row["prompt"] if template == "plain" else render_prompt(row["prompt"], template, tokenizer)
    prompt = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(prompt) >= max_length:
        raise ValueError(f"{where}: the prompt has {len(prompt)} tokens, max_length is {max_length}: no room "
                         "for a response")
    room = max_length - len(prompt)
    chosen, rejected = ([*tokenizer(row[k], add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
                        for k in ("chosen", "rejected"))
    return DPOPair(prompt, chosen[:room], rejected[:room], where), max(len(chosen), len(rejected)) > room


def _tensors(pairs: Sequence[DPOPair], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(prompt ids, prompt mask) [P, L] left-padded, prompt_index [2P], (response ids, response mask)
    [2P, T] right-padded: the chosen responses first, then the rejected ones."""
    width = max(len(p.prompt_ids) for p in pairs)
    prompt = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, p in enumerate(pairs):
        prompt[i, width - len(p.prompt_ids):] = torch.tensor(p.prompt_ids)
        prompt_mask[i, width - len(p.prompt_ids):] = 1
    responses = [p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs]
    span = max(len(r) for r in responses)
    ids = torch.full((len(responses), span), pad_id, dtype=torch.long)
    mask = torch.zeros((len(responses), span), dtype=torch.long)
    for i, r in enumerate(responses):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    index = torch.arange(len(pairs)).repeat(2)
    return tuple(t.to(device) for t in (prompt, prompt_mask, index, ids, mask))


def pair_logprobs(model: torch.nn.Module, pairs: Sequence[DPOPair], *, pad_id: int, chunk_tokens: int = 0,
                  dtype: str = "float32") -> tuple[torch.Tensor, torch.Tensor]:
    """(log pi(chosen | prompt), log pi(rejected | prompt)), each [P]: response tokens' log-probs summed."""
    device = model_device(model)
    prompt, prompt_mask, index, ids, mask = _tensors(pairs, pad_id, device)
    with autocast(device, dtype):
        logprobs, _ = completion_logprobs(model, prompt, prompt_mask, index, ids, mask, chunk_tokens=chunk_tokens)
    summed = (logprobs.float() * mask).sum(-1)
    return summed[: len(pairs)], summed[len(pairs):]


def _scored(policy: torch.nn.Module, reference: torch.nn.Module | None, pairs: Sequence[DPOPair],
            settings: DPOSettings, *, pad_id: int, chunk_tokens: int, dtype: str) -> DPOOutput:
    """The DPO output of `pairs`: the reference's log-probs without gradient, the policy's with it (when
    grad is enabled)."""
    with torch.no_grad(), reference_view(policy, reference) as ref:
        ref_chosen, ref_rejected = pair_logprobs(ref, pairs, pad_id=pad_id, chunk_tokens=chunk_tokens, dtype=dtype)
    chosen, rejected = pair_logprobs(policy, pairs, pad_id=pad_id, chunk_tokens=chunk_tokens, dtype=dtype)
    return dpo_loss(policy_chosen=chosen, policy_rejected=rejected, reference_chosen=ref_chosen,
                    reference_rejected=ref_rejected, beta=settings.beta, label_smoothing=settings.label_smoothing)


def train_step(policy: torch.nn.Module, reference: torch.nn.Module | None, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, pairs: Sequence[DPOPair], settings: DPOSettings, *,
               pad_id: int, micro_batch_size: int, max_grad_norm: float, chunk_tokens: int = 0,
               dtype: str = "float32") -> dict[str, float]:
    """One AdamW step on a batch of pairs: the mean DPO loss, accumulated over micro-batches of
    `micro_batch_size` pairs (0: all at once) so that the gradient does not depend on the split. The
    metrics carry TRL's names."""
    start = time.perf_counter()
    policy.train()
    optimizer.zero_grad(set_to_none=True)
    micro = micro_batch_size or len(pairs)
    sums = dict.fromkeys(("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"), 0.0)
    for at in range(0, len(pairs), micro):
        part = pairs[at : at + micro]
        out = _scored(policy, reference, part, settings, pad_id=pad_id, chunk_tokens=chunk_tokens, dtype=dtype)
        loss = out.loss.sum() / len(pairs)
        loss.backward()
        sums["loss"] += loss.item()
        for name, values in _stats(out).items():
            sums[name] += values.sum().item() / len(pairs)
    trainable = [p for p in policy.parameters() if p.requires_grad]
    norm = float(torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm if max_grad_norm > 0 else math.inf))
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return {**sums, "grad_norm": norm, "lr": lr, "step_seconds": time.perf_counter() - start}


def _stats(out: DPOOutput) -> dict[str, torch.Tensor]:
    return {"rewards/chosen": out.chosen_rewards, "rewards/rejected": out.rejected_rewards,
            "rewards/accuracies": out.accuracies, "rewards/margins": out.margins}


@torch.no_grad()
def evaluate_pairs(policy: torch.nn.Module, reference: torch.nn.Module | None, pairs: Sequence[DPOPair],
                   settings: DPOSettings, *, pad_id: int, batch_size: int, chunk_tokens: int = 0,
                   dtype: str = "float32") -> dict[str, float]:
    """Held-out DPO loss and the implicit rewards' means: accuracy (chosen above rejected), margin, chosen,
    rejected (NaN without pairs)."""
    names = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
    if not pairs:
        return dict.fromkeys(names, math.nan)
    was_training = policy.training
    policy.eval()
    sums = dict.fromkeys(names, 0.0)
    try:
        for at in range(0, len(pairs), batch_size):
            out = _scored(policy, reference, pairs[at : at + batch_size], settings, pad_id=pad_id,
                          chunk_tokens=chunk_tokens, dtype=dtype)
            for name, values in {"loss": out.loss, **_stats(out)}.items():
                sums[name] += values.sum().item()
    finally:
        policy.train(was_training)
    return {name: total / len(pairs) for name, total in sums.items()}
