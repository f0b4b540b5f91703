"""A colocated vLLM engine behind the `Generator` interface (the optional `rollout.engine=vllm`).

`vllm.LLM` runs in the trainer's process on its GPU, as in TRL's GRPOTrainer `vllm_mode="colocate"`. A step:
`generate` -> `sleep` before training (level 1: weights offloaded to CPU, KV cache dropped) -> after the
optimizer step `update_weights` (wake the weights, load the policy's, reset the prefix cache so no KV block
computed with the old weights is reused) -> the next `generate` wakes the KV cache. `plan` is that order as
a pure state machine; `VLLMGenerator` only executes it. Level 2 is not used: after a level-2 wake the weights
must be reloaded in full or vLLM samples gibberish (vllm #29341).

Written against vLLM's documented API for SUPPORTED (`LLM`, `SamplingParams`, `LLM.generate/sleep/wake_up/
reset_prefix_cache/apply_model`, `logprobs_mode`, `VLLM_ENABLE_V1_MULTIPROCESSING`), checked in the sources
of vLLM 0.17.0, 0.20.0 and 0.25.1 (TRL's colocate mode supports the same range). Never run in this project's
CI (no vLLM, no GPU). Tested on CPU for real: outputs -> `Generation` with the HF engine's conventions,
sampling parameters and per-group seeds (`group_seed`, as in the HF engine), the call order (`plan`, and the
engine executing it on an injected stand-in for `vllm.LLM`), and `export_weights` (plain and LoRA-merged
tensors loaded into a plain model reproduce the policy's logits). The tests on a real engine skip without vLLM
and CUDA.
"""

from __future__ import annotations

import enum
import os
import random
import sys
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from r1kit.rollout.base import Generation, SamplingParams, group_seed

SUPPORTED = ">=0.17,<0.26"
INSTALL_HINT = "rollout.engine=vllm needs vLLM: pip install 'r1kit[vllm]' (a CUDA machine)"
GREEDY_BELOW = 1e-5
"""vLLM samples greedily below this temperature (its `_SAMPLING_EPS`), and then refuses n > 1."""

Named = tuple[str, torch.Tensor]


def checkpoint_name(key: str, adapter: str) -> str | None:
    """The HF checkpoint name of a PeftModel state_dict key, or None for a tensor vLLM has no place for
    (lora_* factors, the frozen `original_module` of a modules_to_save layer, another adapter's copy)."""
    parts = key.removeprefix("base_model.model.").split(".")
    if "original_module" in parts or any(p.startswith("lora_") for p in parts):
        return None
    out: list[str] = []
    rest = iter(parts)
    for part in rest:
        if part == "modules_to_save":
            if next(rest, None) != adapter:
                return None
        elif part != "base_layer":
            out.append(part)
    return ".".join(out)


def _merged(layer: Any, param: str, tensor: torch.Tensor) -> torch.Tensor:
    """peft's plain-LoRA merge (`lora.Linear.merge`) out of place, leaving the model untouched:
    W + sum_a get_delta_weight(a) (= B_a @ A_a * scaling_a), and b + B_a.bias * scaling_a with lora_bias."""
    if layer.merged or layer.disable_adapters:  # merged: the base tensor already holds the adapters
        return tensor
    for a in layer.active_adapters:
        if a not in layer.lora_A and a not in layer.lora_embedding_A:
            continue
        if a in getattr(layer, "lora_variant", {}) or layer.use_dora.get(a, False):
            raise ValueError(f"export_weights merges plain LoRA only; adapter {a!r} uses a variant (e.g. DoRA)")
        if param == "weight":
            tensor = tensor + layer.get_delta_weight(a).to(tensor.dtype)
        elif param == "bias" and layer.lora_bias.get(a, False):
            tensor = tensor + (layer.lora_B[a].bias * layer.scaling[a]).to(tensor.dtype)
    return tensor


@torch.no_grad()
def export_weights(model: torch.nn.Module) -> Iterator[Named]:
    """(HF checkpoint name, tensor) pairs, what vLLM's `model.load_weights` takes: a plain model's state_dict,
    or a peft `PeftModel`'s base names with the LoRA adapters merged in. Lazy: one merged tensor at a time."""
    peft = sys.modules.get("peft")  # a PeftModel implies peft is imported; a plain model never imports it
    if peft is None or not isinstance(model, peft.PeftModel):
        yield from model.state_dict().items()
        return
    from peft.tuners.lora import LoraLayer

    adapter = model.active_adapter
    if not isinstance(adapter, str):
        raise ValueError(f"export_weights needs one active adapter, got {adapter!r}")
    lora = {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}
    for key, tensor in model.state_dict().items():
        name = checkpoint_name(key, adapter)
        if name is not None:
            owner, _, param = key.rpartition(".base_layer.")
            yield name, (_merged(lora[owner], param, tensor) if owner in lora else tensor)


def batches(named: Iterable[Named], max_bytes: int) -> Iterator[list[Named]]:
    """Consecutive groups of at most max_bytes (a larger tensor goes alone), in order: vLLM fuses q/k/v and
    gate/up per layer, so a layer's tensors should arrive together."""
    batch: list[Named] = []
    size = 0
    for name, tensor in named:
        nbytes = tensor.numel() * tensor.element_size()
        if batch and size + nbytes > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append((name, tensor))
        size += nbytes
    if batch:
        yield batch


def sampling_kwargs(params: SamplingParams, *, num_prompts: int, num_samples: int, seed: int,
                    eos_ids: Collection[int], first_group: int = 0) -> list[dict[str, Any]]:
    """`vllm.SamplingParams` arguments, one per prompt. Prompt i is group first_group + i and its request is
    seeded with `group_seed(seed, first_group + i)` alone (the HF engine's contract, `base.py`): vLLM gives each
    seeded request its own generator, and child j the seed + j, so a group's samples do not depend on the other
    prompts of the call, and splitting the prompts across calls with first_group changes no seed. A repeated
    prompt gets other samples, the same seed the same ones (given the same logits: vLLM's numerics may still
    depend on the batch). Only our EOS ids stop a row (ignore_eos drops the model's own), as in the HF engine.
    Greedy rows are requested once (vLLM refuses n > 1 without sampling) and copied by `completion_rows`."""
    greedy = params.temperature < GREEDY_BELOW
    base = {"n": 1 if greedy else num_samples, "temperature": max(params.temperature, 0.0), "top_p": params.top_p,
            "max_tokens": params.max_new_tokens, "logprobs": 0, "stop_token_ids": sorted(eos_ids),
            "ignore_eos": True, "detokenize": False}
    return [{**base, "seed": group_seed(seed, first_group + i)} for i in range(num_prompts)]


def completion_rows(outputs: Sequence[Any], copies: int = 1) -> tuple[list[list[int]], list[list[float]]]:
    """Token ids and sampled-token log-probs of vLLM `RequestOutput`s, group-major, each completion `copies`
    times. `CompletionOutput.logprobs[t]` maps token id -> `Logprob`; with logprobs=0 it holds the sampled one."""
    tokens: list[list[int]] = []
    logps: list[list[float]] = []
    for request in outputs:
        for completion in sorted(request.outputs, key=lambda c: c.index):
            if completion.logprobs is None:
                raise ValueError("vLLM returned no logprobs: SamplingParams needs logprobs=0")
            ids = list(completion.token_ids)
            tokens += [ids] * copies
            logps += [[float(pos[t].logprob) for t, pos in zip(ids, completion.logprobs, strict=True)]] * copies
    return tokens, logps


def outputs_to_generation(token_lists: Sequence[Sequence[int]], logprob_lists: Sequence[Sequence[float]],
                          eos_ids: Collection[int], pad_id: int) -> Generation:
    """Completions as the HF engine returns them: [N, T] ids padded with pad_id after the first EOS, mask 1 up
    to and including it, sampler log-probs with 0 on padding, finished = an EOS was emitted."""
    n, width = len(token_lists), max([1, *(len(t) for t in token_lists)])
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    logps = torch.zeros((n, width))
    finished = torch.zeros(n, dtype=torch.bool)
    for r, (toks, lps) in enumerate(zip(token_lists, logprob_lists, strict=True)):
        if len(toks) != len(lps):
            raise ValueError(f"row {r}: {len(toks)} tokens but {len(lps)} log-probs")
        stop = next((t for t, tok in enumerate(toks) if tok in eos_ids), None)
        keep = len(toks) if stop is None else stop + 1
        ids[r, :keep] = torch.tensor(list(toks[:keep]), dtype=torch.long)
        logps[r, :keep] = torch.tensor(list(lps[:keep]), dtype=torch.float32)
        mask[r, :keep] = 1
        finished[r] = stop is not None
    return Generation(completion_ids=ids, completion_mask=mask, logprobs=logps, finished=finished)


class Event(enum.Enum):
    TRAIN = "train"  # training is about to take the GPU and change the policy
    SYNC = "sync"  # the optimizer stepped: load the policy's weights
    WAKE = "wake"  # everything back on the GPU, before a rollout
    GENERATE = "generate"


class Call(enum.Enum):
    SLEEP = "llm.sleep(level=1)"
    WAKE_WEIGHTS = "llm.wake_up(tags=['weights'])"
    WAKE_KV_CACHE = "llm.wake_up(tags=['kv_cache'])"
    LOAD_WEIGHTS = "load_weights(export_weights(policy))"
    RESET_PREFIX_CACHE = "llm.reset_prefix_cache()"
    GENERATE = "llm.generate(...)"


_WAKE = {"weights": Call.WAKE_WEIGHTS, "kv_cache": Call.WAKE_KV_CACHE}  # weights first: the documented RLHF order


@dataclass(frozen=True)
class EngineState:
    asleep: frozenset[str] = frozenset()
    """Sleep-mode allocations off the GPU ("weights", "kv_cache")."""
    stale: bool = False
    """Training may have changed the policy since the engine's weights were loaded."""


def plan(state: EngineState, event: Event, *, sleep_mode: bool) -> tuple[list[Call], EngineState]:
    """The vLLM calls `event` needs, in order, and the state after them. vLLM ignores `sleep` while part of
    the engine is still asleep, so a partly awake engine is woken before it sleeps again."""
    wake = [call for tag, call in _WAKE.items() if tag in state.asleep]
    if event is Event.TRAIN:
        calls = [*wake, Call.SLEEP] if sleep_mode and state.asleep != set(_WAKE) else []
        return calls, EngineState(asleep=frozenset(_WAKE) if sleep_mode else frozenset(), stale=True)
    if event is Event.SYNC:
        calls = [c for c in wake if c is Call.WAKE_WEIGHTS] + [Call.LOAD_WEIGHTS, Call.RESET_PREFIX_CACHE]
        return calls, EngineState(asleep=state.asleep - {"weights"}, stale=False)
    if event is Event.WAKE:
        return wake, EngineState(stale=state.stale)
    if state.stale:
        raise RuntimeError("vLLM holds the weights from before training: call update_weights(model) after the "
                           "optimizer step, before generating")
    return [*wake, Call.GENERATE], EngineState()


class VLLMGenerator:
    """Samples with a `vllm.LLM` in this process. `model_path` holds the initial policy (for a LoRA policy,
    its base model) and its tokenizer. `llm` injects a built engine, which must run in-process (weights are
    handed over as tensors); `sampling_params_cls` defaults to `vllm.SamplingParams`."""

    def __init__(self, model_path: str, *, eos_token_id: int | Sequence[int], pad_token_id: int,
                 dtype: str = "bfloat16", gpu_memory_utilization: float = 0.3, max_model_len: int | None = None,
                 seed: int = 0, enable_sleep_mode: bool = True, load_batch_bytes: int = 1 << 30,
                 llm: Any = None, sampling_params_cls: Callable[..., Any] | None = None) -> None:
        self.eos_ids = frozenset([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id)
        self.pad_token_id = pad_token_id
        self.sleep_mode = enable_sleep_mode
        self.load_batch_bytes = load_batch_bytes
        self.state = EngineState()
        if llm is None or sampling_params_cls is None:
            try:
                import vllm
            except ImportError:
                raise ImportError(INSTALL_HINT) from None
            _check_version(vllm.__version__)
            sampling_params_cls = sampling_params_cls or vllm.SamplingParams
            if llm is None:
                llm = _build_llm(vllm, model_path, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                                 max_model_len=max_model_len, seed=seed, enable_sleep_mode=enable_sleep_mode)
        self.llm = llm
        self.sampling_params_cls = sampling_params_cls

    def sleep(self) -> None:
        """Free the GPU for training; the next `generate` needs `update_weights` first."""
        self._run(Event.TRAIN)

    def wake(self) -> None:
        """Weights and KV cache back on the GPU (`generate` does this itself)."""
        self._run(Event.WAKE)

    def update_weights(self, model: torch.nn.Module) -> None:
        """Load `model`'s weights (LoRA merged), in batches of load_batch_bytes; then reset the prefix cache."""
        self._run(Event.SYNC, partial(self._load, model))

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, *, num_samples: int = 1,
                 seed: int = 0, first_group: int = 0) -> Generation:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if params.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}")
        prompts = [list(p) for p in prompt_ids]
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("generate needs prompts of at least one token")
        if first_group < 0:
            raise ValueError(f"first_group must be >= 0, got {first_group}")
        kwargs = sampling_kwargs(params, num_prompts=len(prompts), num_samples=num_samples, seed=seed,
                                 eos_ids=self.eos_ids, first_group=first_group)
        requests = [{"prompt_token_ids": p} for p in prompts]  # a vllm.TokensPrompt: no tokenizer round trip
        outputs = self._run(Event.GENERATE, partial(self.llm.generate, requests,
                                                    [self.sampling_params_cls(**kw) for kw in kwargs], use_tqdm=False))
        tokens, logps = completion_rows(outputs, copies=num_samples // kwargs[0]["n"])
        return outputs_to_generation(tokens, logps, self.eos_ids, self.pad_token_id)

    def _run(self, event: Event, action: Callable[[], Any] | None = None) -> Any:
        """Execute `plan` for `event`; `action` is its LOAD_WEIGHTS or GENERATE step."""
        calls, state = plan(self.state, event, sleep_mode=self.sleep_mode)
        engine: dict[Call, Callable[[], Any]] = {
            Call.SLEEP: partial(self.llm.sleep, level=1), Call.RESET_PREFIX_CACHE: self._reset_prefix_cache,
            **{call: partial(self.llm.wake_up, tags=[tag]) for tag, call in _WAKE.items()}}
        result = None
        for call in calls:
            if call in engine:
                engine[call]()
            elif action is not None:
                result = action()
        self.state = state
        return result

    def _reset_prefix_cache(self) -> None:
        if self.llm.reset_prefix_cache() is False:
            raise RuntimeError("vLLM did not reset its prefix cache (requests still running?)")

    def _load(self, model: torch.nn.Module) -> None:
        # apply_model runs fn(model) on each worker; in-process that is a plain call, so the tensors are handed
        # over as they are (vLLM's weight loaders copy them into its parameters, casting the dtype).
        for batch in batches(export_weights(model), self.load_batch_bytes):
            self.llm.apply_model(lambda vllm_model, batch=batch: vllm_model.load_weights(batch))


def _check_version(version: str) -> None:
    from packaging.specifiers import SpecifierSet

    if version not in SpecifierSet(SUPPORTED, prereleases=True):
        warnings.warn(f"r1kit's vLLM engine is written for vllm{SUPPORTED}, found {version}", stacklevel=3)


def _build_llm(vllm: Any, model_path: str, **kwargs: Any) -> Any:
    # An in-process engine core: apply_model can take our tensors, and scheduling is deterministic (vLLM's
    # reproducibility docs). Read when the engine is built; vLLM caches its env vars after the first one.
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    # In-process, vLLM seeds random/numpy/torch at start-up; every request carries its own seed, so give the
    # trainer its random streams back.
    python_state = random.getstate()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        # processed_logprobs: log-probs after temperature and top-p, the law the tokens were drawn from.
        llm = vllm.LLM(model=model_path, logprobs_mode="processed_logprobs", **kwargs)
    random.setstate(python_state)
    return llm
