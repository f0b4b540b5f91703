"""Per-token log-probs of completions under a causal LM: the quantity every policy loss is built on.

The G completions of a group share their prompt, and with the R1-Zero template the prompt is most of
the tokens. So the prompt is encoded once per group and its KV cache is gathered to the G rows
(`index_select`, which autograd differentiates through), then only the completion tokens run on top.
Same log-probs and gradients as a forward over every full sequence, with G times less prompt work.
"""

from __future__ import annotations

import torch

from r1kit.algorithms import entropy_from_logits
from r1kit.models.kv import output_cache, with_cache


def completion_logprobs(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    prompt_index: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [n, T] of `completion_ids` [n, T], row i continuing prompt `prompt_index[i]`.

    prompt_ids/prompt_mask: [U, P] left-padded unique prompts. Logits are divided by the rollout
    temperature, as TRL and verl do, so the ratio compares the policy with the law the samples came
    from. Entropy [n, T] is computed without gradient.
    """
    # transformers 5 renamed the flag; older releases only have the second name.
    checkpointing = getattr(model, "is_activation_checkpointing", None)
    if checkpointing is None:
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    if checkpointing:
        logits = _full_sequence_logits(model, prompt_ids, prompt_mask, prompt_index, completion_ids, completion_mask)
    else:
        logits = _shared_prefix_logits(model, prompt_ids, prompt_mask, prompt_index, completion_ids, completion_mask)
    logits = logits.float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logprobs = logits.gather(-1, completion_ids[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits)
    return logprobs, entropy


def _shared_prefix_logits(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          prompt_index: torch.Tensor, completion_ids: torch.Tensor,
                          completion_mask: torch.Tensor) -> torch.Tensor:
    """[n, T, V] logits predicting each completion token, the prompts encoded once each."""
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask,
                position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0), use_cache=True)
    first = out.logits[prompt_index, -1:, :]  # the last prompt position predicts completion token 0
    T = completion_ids.shape[1]
    if T == 1:
        return first
    cache = output_cache(out)
    cache.reorder_cache(prompt_index)  # [U, ...] -> [n, ...], differentiable
    mask = torch.cat([prompt_mask[prompt_index], completion_mask.to(prompt_mask.dtype)], dim=1)
    start = prompt_mask.sum(dim=1)[prompt_index, None]
    positions = start + torch.arange(T - 1, device=start.device)[None, :]
    rest = model(input_ids=completion_ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions,
                 **with_cache(model, cache), use_cache=True).logits
    return torch.cat([first, rest], dim=1)


def _full_sequence_logits(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          prompt_index: torch.Tensor, completion_ids: torch.Tensor,
                          completion_mask: torch.Tensor) -> torch.Tensor:
    """The same logits from one forward over each full sequence (used where a KV cache is not allowed,
    e.g. under gradient checkpointing)."""
    ids = torch.cat([prompt_ids[prompt_index], completion_ids], dim=1)
    mask = torch.cat([prompt_mask[prompt_index], completion_mask.to(prompt_mask.dtype)], dim=1)
    T = completion_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                   use_cache=False).logits
    return logits[:, -T - 1 : -1, :]
