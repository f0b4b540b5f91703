"""Batched sampling from any Hugging Face causal LM with a KV cache.

Prompts are left-padded so every row's next token sits in the last column; position ids come from
the attention mask so padding does not shift positions. Each decoding step feeds only the new token
and reuses the cache. Rows that have emitted EOS leave the decoding batch (their cache rows are
dropped), so a batch costs what its completions' lengths cost, not its longest one's times the rows.

Sampling is seeded per prompt group (see `base.py`): group g = first_group + i has its own torch.Generator,
seeded with `group_seed(seed, g)`, that draws num_samples uniforms at every decoding step at which one of
the group's rows is still unfinished; row j of the group turns the j-th into its token by inverse-CDF
sampling. A group's t-th draw is thus the same whatever else is in the call or the batch, and splitting the
prompts across calls (with first_group) or batches (batch_size) changes no sample.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from r1kit.models.device import autocast, model_device
from r1kit.models.kv import output_cache, with_cache
from r1kit.models.logprobs import unwrapped
from r1kit.rollout.base import Generation, SamplingParams, concat, group_seed, left_pad


class HFGenerator:
    """Samples with the policy module itself, so there are no weights to copy after an update. Runs on
    the model's device; `dtype` other than float32 runs the forward passes under autocast."""

    def __init__(self, model: torch.nn.Module, *, eos_token_id: int | Sequence[int], pad_token_id: int,
                 batch_size: int = 512, dtype: str = "float32") -> None:
        self.model = model
        self.dtype = dtype
        eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
        self.eos_ids = torch.tensor(eos, dtype=torch.long)
        self.pad_token_id = pad_token_id
        self.batch_size = batch_size

    def update_weights(self, model: torch.nn.Module) -> None:
        self.model = model

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        num_samples: int = 1,
        seed: int = 0,
        first_group: int = 0,
    ) -> Generation:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if params.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}")
        prompts = [list(p) for p in prompt_ids]
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        if first_group < 0:
            raise ValueError(f"first_group must be >= 0, got {first_group}")
        device = model_device(self.model)
        per_batch = max(self.batch_size // num_samples, 1)  # whole groups per batch
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast(device, self.dtype):
                parts = [self._generate_batch(prompts[i : i + per_batch], num_samples, params,
                                              GroupStreams(seed, first_group + i, min(per_batch, len(prompts) - i),
                                                           num_samples, device))
                         for i in range(0, len(prompts), per_batch)]
        finally:
            self.model.train(was_training)
        return concat(parts, self.pad_token_id)

    def _generate_batch(self, prompts: list[list[int]], num_samples: int, params: SamplingParams,
                        streams: GroupStreams) -> Generation:
        device = model_device(self.model)
        input_ids, prompt_mask = left_pad(prompts, self.pad_token_id)
        input_ids, prompt_mask = input_ids.to(device), prompt_mask.to(device)
        # Prefill each prompt once, then copy its KV cache to its num_samples rows.
        out = self.model(input_ids=input_ids, attention_mask=prompt_mask,
                         position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0), use_cache=True,
                         **last_logits_only(self.model))
        index = torch.arange(len(prompts), device=device).repeat_interleave(num_samples)
        cache = output_cache(out)
        cache.reorder_cache(index)
        attention = prompt_mask[index]
        n = attention.shape[0]
        next_pos = attention.sum(dim=1, keepdim=True)
        logits = out.logits[index, -1, :].float()
        eos_ids = self.eos_ids.to(device)

        # `rows` maps the decoding batch to output rows. Rows that have emitted EOS leave the batch once
        # they are a sixteenth of it (one cache gather, not one per finished row): completions end at very
        # different lengths, and decoding finished rows to the longest one would waste most of the work.
        rows = torch.arange(n, device=device)
        tokens = torch.full((n, params.max_new_tokens), self.pad_token_id, dtype=torch.long, device=device)
        logps = torch.zeros((n, params.max_new_tokens), device=device)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        for t in range(params.max_new_tokens):
            u = None if params.temperature <= 0 else streams.uniforms(rows, done)
            token, logp = _sample(logits, params, u)
            token = torch.where(done, torch.full_like(token, self.pad_token_id), token)
            tokens[rows, t] = token
            logps[rows, t] = torch.where(done, torch.zeros_like(logp), logp)
            done = done | torch.isin(token, eos_ids)
            finished = int(done.sum())
            if finished == len(rows) or t + 1 == params.max_new_tokens:
                tokens, logps = tokens[:, : t + 1], logps[:, : t + 1]
                break
            if finished * 16 >= len(rows):
                keep = (~done).nonzero().squeeze(1)
                cache.reorder_cache(keep)
                rows, token, attention, next_pos = rows[keep], token[keep], attention[keep], next_pos[keep]
                done = done[keep]
            attention = torch.cat([attention, torch.ones((len(rows), 1), dtype=attention.dtype, device=device)],
                                  dim=1)
            out = self.model(input_ids=token[:, None], attention_mask=attention, position_ids=next_pos,
                             **with_cache(self.model, cache), use_cache=True)
            cache, next_pos = output_cache(out), next_pos + 1
            logits = out.logits[:, -1, :].float()

        ids = tokens.cpu()
        is_eos = torch.isin(ids, self.eos_ids)
        # A token is part of the completion if no EOS came strictly before it (the first EOS is kept).
        eos_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
        mask = (~eos_before).long()
        return Generation(completion_ids=ids.masked_fill(mask == 0, self.pad_token_id), completion_mask=mask,
                          logprobs=logps.cpu() * mask, finished=is_eos.any(dim=1))


def last_logits_only(model: torch.nn.Module) -> dict[str, int]:
    """`logits_to_keep=1` where the model takes it: the prefill needs only the last position's logits, not
    a [prompts, P, V] tensor (2.5 GB for 64 prompts of 128 tokens in bf16 with Qwen's vocabulary)."""
    inner = unwrapped(model)
    kind = type(inner)
    if kind not in _KEEPS:
        _KEEPS[kind] = "logits_to_keep" in inspect.signature(inner.forward).parameters
    return {"logits_to_keep": 1} if _KEEPS[kind] else {}


_KEEPS: dict[type, bool] = {}


class GroupStreams:
    """The random streams of `n_groups` consecutive prompt groups, the first one `first_group`: one torch.Generator
    per group on `device`, seeded with `group_seed(seed, group)`. Output row r of the batch is sample r % G of
    local group r // G (G = num_samples)."""

    def __init__(self, seed: int, first_group: int, n_groups: int, num_samples: int,
                 device: torch.device | str) -> None:
        self.num_samples = num_samples
        self.device = device
        self.generators = [torch.Generator(device=device).manual_seed(group_seed(seed, first_group + g))
                           for g in range(n_groups)]

    def uniforms(self, rows: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """One float64 uniform in (0, 1] per decoding row (`rows`: their output rows; `done`: already finished).
        Every group with an unfinished row draws num_samples, so its t-th draw does not depend on the other
        groups; the draws of finished rows are ignored by the caller."""
        g = self.num_samples
        alive = torch.unique(rows[~done] // g).tolist()  # sorted local groups
        draws = [torch.rand(g, generator=self.generators[k], device=self.device, dtype=torch.float64)
                 for k in alive]
        if len(alive) == len(self.generators):
            u = 1.0 - torch.stack(draws)  # rand is in [0, 1): u in (0, 1]
        else:
            u = torch.ones((len(self.generators), g), device=self.device, dtype=torch.float64)
            if alive:
                u[torch.tensor(alive, device=self.device)] = 1.0 - torch.stack(draws)
        return u.view(-1)[rows]


def _sample(logits: torch.Tensor, params: SamplingParams,
            u: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row from logits [n, V]; returns (token [n], its log-prob under the sampled law [n]).
    Greedy (temperature <= 0) takes the argmax; otherwise row i takes the token where the cumulative
    distribution first reaches u[i] (u in (0, 1]): inverse-CDF sampling, so a token is drawn with exactly its
    probability and a zero-probability one (e.g. cut by top-p) never. The CDF and u are float64: in float32 (a
    2**-24 grid near 1) the tail tokens of a large vocabulary would lose their own share of the unit interval,
    some never drawn and others drawn too often (a total variation of ~1e-3 per step with 152k tokens)."""
    if params.temperature <= 0:
        logprobs = torch.log_softmax(logits, dim=-1)
        token = logits.argmax(dim=-1)
        return token, logprobs.gather(-1, token[:, None]).squeeze(-1)
    logits = logits / params.temperature
    if params.top_p < 1.0:
        logits = _top_p_filter(logits, params.top_p)
    logprobs = torch.log_softmax(logits, dim=-1)
    if u is None:
        raise ValueError("sampling at temperature > 0 needs one uniform per row")
    cdf = torch.cumsum(logprobs.exp(), dim=-1, dtype=torch.float64)
    # u * total <= total (u <= 1), so the search always lands; the clamp only guards against the impossible.
    token = torch.searchsorted(cdf, (u.double() * cdf[:, -1])[:, None]).squeeze(-1).clamp(max=cdf.shape[-1] - 1)
    return token, logprobs.gather(-1, token[:, None]).squeeze(-1)


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches top_p (the top token always stays)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
