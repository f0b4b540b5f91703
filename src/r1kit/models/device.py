"""Where models run and in what precision: `model.device` and `model.dtype` made concrete.

Mixed precision follows what FSDP's MixedPrecisionPolicy and verl do: the trained policy keeps float32
master weights (so its gradients and AdamW state are float32 too) and runs its forward passes under
`torch.autocast` in the compute dtype; frozen copies (the reference) are stored in the compute dtype;
log-softmax and the loss are always computed in float32 (`completion_logprobs` casts the logits). With
dtype float32 none of this applies and the CPU path is the plain float32 one.
"""

from __future__ import annotations

import contextlib

import torch

from r1kit.config import ConfigError, ModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cpu`, `cuda`, `cuda:N` as given. Raises ValueError naming
    the problem for a device that does not exist here, before anything is loaded."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device here (a CPU build of "
                         "torch, or no GPU): use device=cpu or auto")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} asked for, but there are {torch.cuda.device_count()} CUDA devices")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[object]:
    """The forward passes' precision: nothing for float32, else autocast to `dtype` on `device`."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def check_trainable(model: ModelConfig, *, lora: bool = False) -> None:
    """One-line ConfigError, before any work, for a model setting the training stage cannot run with
    (`lora`: whether the stage trains LoRA adapters)."""
    if model.lora.rank > 0 and not lora:
        raise ConfigError("model.lora: LoRA is wired into the GRPO stages (r1kit zero, r1kit grpo); this stage trains "
                          "every weight: set model.lora.rank=0")
    if model.dtype == "float16":
        raise ConfigError("model.dtype=float16 needs loss scaling to train, which r1kit does not do: use bfloat16")
    try:
        resolve_device(model.device)
    except ValueError as e:
        raise ConfigError(f"model.device: {e}") from None
