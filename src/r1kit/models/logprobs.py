"""Per-token log-probs of completions under a causal LM: the quantity every policy loss is built on."""

from __future__ import annotations

import torch

from r1kit.algorithms import entropy_from_logits


def completion_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_len: int,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [N, T] of the last `completion_len` tokens of `input_ids` [N, P+T] (left-padded prompts).

    Logits are divided by the rollout temperature, as TRL and verl do, so the ratio compares the
    policy with the distribution the samples came from. Entropy [N, T] is computed without gradient.
    """
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   use_cache=False).logits
    # The logit at position t predicts token t+1: keep the T positions that predict the completion.
    logits = logits[:, -completion_len - 1 : -1, :].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, -completion_len:]
    logprobs = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits)
    return logprobs, entropy
