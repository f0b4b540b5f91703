"""Per-token log-probs of completions under a causal LM: the quantity every policy loss is built on.

The G completions of a group share their prompt, and with the R1-Zero template the prompt is most of
the tokens. So the prompt is encoded once per group and its KV cache is gathered to the G rows
(`index_select`, which autograd differentiates through), then only the completion tokens run on top.
Same log-probs and gradients as a forward over every full sequence, with G times less prompt work.

Memory: never a [B, T, V] float tensor (`chunk_tokens` > 0). A real vocabulary is large (Qwen2.5:
151,936), and a [64, 4096, V] float32 logits tensor is 159 GB. So the decoder's hidden states are taken
instead of the logits, only the completion tokens' positions are kept, and the output projection,
log-softmax and entropy run `chunk_tokens` positions at a time. Under autograd each chunk is
checkpointed (`torch.utils.checkpoint`): the forward keeps only the [chunk] log-probs, and the backward
recomputes one chunk's logits at a time. Peak extra memory is O(chunk_tokens x V) in both directions,
and values and gradients equal the unchunked computation (tests/unit/test_chunked_logprobs.py).
`chunk_tokens=0` computes the full logits, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from r1kit.algorithms import entropy_from_logits
from r1kit.models.kv import output_cache, with_cache

Forward = Callable[..., tuple[torch.Tensor, Any]]
"""(input_ids, attention_mask, position_ids, cache or None, use_cache) -> (states [n, L, D], cache)."""


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
    chunk_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [n, T] of `completion_ids` [n, T], row i continuing prompt `prompt_index[i]`.

    prompt_ids/prompt_mask: [U, P] left-padded unique prompts. Logits are divided by the rollout
    temperature, as TRL and verl do, so the ratio compares the policy with the law the samples came
    from. Entropy [n, T] is computed without gradient. With `chunk_tokens` > 0 (and a model whose decoder
    and output head can be told apart) the logits are computed `chunk_tokens` completion tokens at a
    time; log-probs and entropy are then 0 at padded positions.
    """
    width = completion_ids.shape[1]
    if width == 1 and _is_sharded(model):
        # FSDP2 gathers weights in every forward: a one-token micro-batch would run one forward where the
        # other ranks run two. A masked padding column keeps the count; it is cut off below.
        completion_ids = torch.nn.functional.pad(completion_ids, (0, 1))
        completion_mask = torch.nn.functional.pad(completion_mask, (0, 1))
        logprobs, entropy = completion_logprobs(model, prompt_ids, prompt_mask, prompt_index, completion_ids,
                                                completion_mask, temperature=temperature, with_entropy=with_entropy,
                                                chunk_tokens=chunk_tokens)
        return logprobs[:, :1], (entropy[:, :1] if entropy is not None else None)
    split = decoder_and_head(model) if chunk_tokens > 0 else None
    forward = _hidden_forward(split[0], model) if split else _logits_forward(model)
    # transformers 5 renamed the flag; older releases only have the second name.
    inner = unwrapped(model)
    checkpointing = getattr(inner, "is_activation_checkpointing", None)
    if checkpointing is None:
        checkpointing = getattr(inner, "is_gradient_checkpointing", False)
    pick = _full_sequence if checkpointing else _shared_prefix
    states = pick(forward, prompt_ids, prompt_mask, prompt_index, completion_ids, completion_mask)
    if split is None:
        return _from_logits(states, completion_ids, temperature, with_entropy)
    keep = completion_mask.bool()
    logprobs, entropy = token_logprobs(states[keep], completion_ids[keep], split[1], temperature=temperature,
                                       chunk_tokens=chunk_tokens, with_entropy=with_entropy, softcap=softcap_of(model))
    return in_rows(keep, logprobs), (in_rows(keep, entropy) if entropy is not None else None)


def in_rows(keep: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per-position values [M] laid back into rows [n, T] where `keep` [n, T] is set (0 elsewhere);
    differentiable."""
    return torch.zeros(keep.shape, dtype=values.dtype, device=values.device).masked_scatter(keep, values)


def softcap_of(model: torch.nn.Module) -> float | None:
    """The final logit soft-capping of Gemma-2-style models, None for the rest."""
    return getattr(getattr(model, "config", None), "final_logit_softcapping", None)


def token_logprobs(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module, *, temperature: float = 1.0,
                   chunk_tokens: int = 512, with_entropy: bool = False, softcap: float | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(head(hidden) / temperature)[target] for M positions: hidden [M, D], targets [M] -> [M],
    and the entropy [M] (no gradient) when asked, `chunk_tokens` positions at a time.

    Each chunk is checkpointed under autograd, so neither pass holds more than one chunk's [chunk, V]
    logits. `softcap` is the final logit soft-capping of Gemma-2-style models (tanh(x / c) * c)."""
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"hidden [M, D] and targets [M] disagree: {tuple(hidden.shape)} and {tuple(targets.shape)}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")

    def chunk(h: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = head(h)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least (bf16 runs)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        if temperature > 0 and temperature != 1.0:
            logits = logits / temperature
        logp = logits.gather(-1, t[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        if not with_entropy:
            return logp, logp.new_zeros(())
        with torch.no_grad():
            return logp, entropy_from_logits(logits.detach())

    grad = torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in head.parameters()))
    logps, entropies = [], []
    for h, t in zip(hidden.split(chunk_tokens), targets.split(chunk_tokens), strict=True):
        logp, ent = checkpoint(chunk, h, t, use_reentrant=False) if grad else chunk(h, t)
        logps.append(logp)
        entropies.append(ent.detach())
    if not logps:  # no position at all (every row empty)
        empty = hidden.new_zeros((0,), dtype=torch.float32)
        return empty, (empty if with_entropy else None)
    return torch.cat(logps), (torch.cat(entropies) if with_entropy else None)


def unwrapped(model: torch.nn.Module) -> Any:
    """The transformers model inside a PEFT wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # type: ignore[operator]


def decoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """The causal LM's decoder (input ids -> hidden states) and output head (hidden -> logits), through a
    PEFT wrapper; None for a model that does not expose them (its full logits are used instead)."""
    inner = unwrapped(model)
    get_decoder = getattr(inner, "get_decoder", None)
    get_head = getattr(inner, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    decoder, head = get_decoder(), get_head()
    if decoder is None or head is None or decoder is inner:
        return None
    if getattr(getattr(inner, "config", None), "logit_scale", None) is not None:
        return None  # a scaled head (Cohere): let the model compute its own logits
    return decoder, head


def _logits_forward(model: torch.nn.Module) -> Forward:
    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any,
                use_cache: bool) -> tuple[torch.Tensor, Any]:
        kw = with_cache(model, cache) if cache is not None else {}
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache,
                    **kw)
        return out.logits, (output_cache(out) if use_cache else None)

    return forward


def _hidden_forward(decoder: torch.nn.Module, model: torch.nn.Module) -> Forward:
    """The decoder's hidden states. Under FSDP2 the call goes through the root `model`, whose forward
    gathers the root unit's weights (embeddings, final norm, head) and hooks their gradient reduction;
    a hook on the decoder takes its output, and the root computes the logits of one position only."""
    sharded = _is_sharded(model)

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any,
                use_cache: bool) -> tuple[torch.Tensor, Any]:
        kw = with_cache(decoder, cache) if cache is not None else {}
        args = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
                "use_cache": use_cache, **kw}
        if not sharded:
            out = decoder(**args)
        else:
            taken: list[Any] = []
            hook = decoder.register_forward_hook(lambda _m, _a, o: taken.append(o))
            try:
                model(**args, logits_to_keep=1)
            finally:
                hook.remove()
            out = taken[0]
        return out.last_hidden_state, (output_cache(out) if use_cache else None)

    return forward


def _is_sharded(model: torch.nn.Module) -> bool:
    """True for a module sharded with FSDP2 (`r1kit.distributed.shard`)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(unwrapped(model), FSDPModule)


def _from_logits(logits: torch.Tensor, completion_ids: torch.Tensor, temperature: float, with_entropy: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The unchunked path: log-probs and entropy from the whole [n, T, V] logits."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logprobs = logits.gather(-1, completion_ids[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits)
    return logprobs, entropy


def _shared_prefix(forward: Forward, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   prompt_index: torch.Tensor, completion_ids: torch.Tensor,
                   completion_mask: torch.Tensor) -> torch.Tensor:
    """[n, T, D] states (logits or hidden) predicting each completion token, the prompts encoded once each."""
    states, cache = forward(prompt_ids, prompt_mask, (prompt_mask.cumsum(-1) - 1).clamp(min=0), None, True)
    first = states[prompt_index, -1:, :]  # the last prompt position predicts completion token 0
    T = completion_ids.shape[1]
    if T == 1:
        return first
    cache.reorder_cache(prompt_index)  # [U, ...] -> [n, ...], differentiable
    mask = torch.cat([prompt_mask[prompt_index], completion_mask.to(prompt_mask.dtype)], dim=1)
    start = prompt_mask.sum(dim=1)[prompt_index, None]
    positions = start + torch.arange(T - 1, device=start.device)[None, :]
    rest, _ = forward(completion_ids[:, :-1], mask[:, :-1], positions, cache, True)
    return torch.cat([first, rest], dim=1)


def _full_sequence(forward: Forward, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   prompt_index: torch.Tensor, completion_ids: torch.Tensor,
                   completion_mask: torch.Tensor) -> torch.Tensor:
    """The same states from one forward over each full sequence (used where a KV cache is not allowed,
    e.g. under gradient checkpointing)."""
    ids = torch.cat([prompt_ids[prompt_index], completion_ids], dim=1)
    mask = torch.cat([prompt_mask[prompt_index], completion_mask.to(prompt_mask.dtype)], dim=1)
    T = completion_ids.shape[1]
    states, _ = forward(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), None, False)
    return states[:, -T - 1 : -1, :]
