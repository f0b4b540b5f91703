"""Rollout engines behind one `Generator` interface: HF (the policy module itself) and vLLM (an optional
extra, `r1kit.rollout.vllm`, imported only when `rollout.engine=vllm`)."""

from r1kit.rollout.base import Generation, Generator, SamplingParams, left_pad
from r1kit.rollout.hf import HFGenerator

__all__ = ["Generation", "Generator", "HFGenerator", "SamplingParams", "left_pad"]
