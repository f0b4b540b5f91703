"""Evaluation: the paper's metrics and the held-out evaluation loop."""

from r1kit.evaluation.metrics import mean_pass_at_k, pass_at_k
from r1kit.evaluation.runner import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate", "mean_pass_at_k", "pass_at_k"]
