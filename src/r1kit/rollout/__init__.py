"""Rollout engines behind one `Generator` interface (HF now; vLLM as an optional extra)."""

from r1kit.rollout.base import Generation, Generator, SamplingParams, left_pad
from r1kit.rollout.hf import HFGenerator

__all__ = ["Generation", "Generator", "HFGenerator", "SamplingParams", "left_pad"]
