"""Held-out evaluation: k samples per prompt through a `Generator`, scored by the rule rewards.

The trainer's periodic evaluation and `r1kit zero`'s before/after numbers come from this one path; it
votes (cons@k) and counts reflective words with the same functions as `r1kit eval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from r1kit.evaluation.analysis import reflection_stats
from r1kit.evaluation.metrics import majority_index, mean_pass_at_k
from r1kit.evaluation.voting import same_answer, vote_answer
from r1kit.rewards import compute_rewards
from r1kit.rollout import Generator, SamplingParams
from r1kit.types import Example


@dataclass(frozen=True)
class EvalResult:
    pass_at_1: float
    """Mean correctness over the k samples, averaged over prompts (the paper's pass@1)."""
    pass_at_k: dict[int, float]
    """Unbiased pass@k' for k' in 1, 2, 4, ... up to k."""
    format_rate: float
    mean_response_tokens: float
    n_prompts: int
    k: int
    completions: list[list[str]]
    """The k decoded completions of each prompt."""
    correct: list[list[bool]]
    cons_at_k: float = 0.0
    """Correctness of the verifier-equivalent majority answer (`r1kit eval`'s cons@k), over prompts."""
    reflective_words: float = 0.0
    """Reflective words ("wait", "verify", ...) per response, as `r1kit eval` counts them."""
    reflective_per_word: dict[str, float] = field(default_factory=dict)
    """Occurrences per response of each reflective word (`analysis.REFLECTIVE_WORDS`), for the plot of
    each word against training step."""
    language_consistency: float = 0.0
    """Mean share of chain-of-thought words in the prompt's language (R1's stage-2 reward; 1 = unmixed)."""
    by_task: dict[str, dict[str, float]] = field(default_factory=dict)
    """pass@1, reflective words, mean tokens and language consistency of each task, when several."""

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        out = {f"{prefix}pass@1": self.pass_at_1, f"{prefix}format_rate": self.format_rate,
               f"{prefix}mean_response_tokens": self.mean_response_tokens, f"{prefix}cons@k": self.cons_at_k,
               f"{prefix}reflective_words": self.reflective_words,
               f"{prefix}language_consistency": self.language_consistency}
        out.update({f"{prefix}reflective_words/{w}": v for w, v in self.reflective_per_word.items()})
        out.update({f"{prefix}pass@{k}": v for k, v in self.pass_at_k.items() if k > 1})
        out.update({f"{prefix}{task}/{k}": v for task, values in self.by_task.items() for k, v in values.items()})
        return out

    def summary(self) -> dict[str, Any]:
        return {"pass@1": self.pass_at_1, "pass@k": {str(k): v for k, v in self.pass_at_k.items()},
                "format_rate": self.format_rate, "mean_response_tokens": self.mean_response_tokens,
                "n_prompts": self.n_prompts, "k": self.k}


def evaluate(
    generator: Generator,
    tokenizer: Any,
    examples: Sequence[Example],
    prompt_ids: Sequence[Sequence[int]],
    *,
    k: int,
    params: SamplingParams,
    seed: int,
    format_reward: str = "format",
) -> EvalResult:
    """Sample k completions for each example's (already templated and tokenized) prompt and score them;
    `format_rate` by `format_reward` (`readable_format` for R1's chat template, `template=r1`)."""
    if not examples:
        raise ValueError("no held-out examples to evaluate")
    gen = generator.generate(prompt_ids, params, num_samples=k, seed=seed)
    texts = tokenizer.batch_decode(gen.completion_ids, skip_special_tokens=True)
    repeated = [e for e in examples for _ in range(k)]
    scored = compute_rewards([e.prompt for e in repeated], texts, repeated,
                             {"accuracy": 1.0, format_reward: 1.0, "language_consistency": 1.0})
    accuracy = scored.per_reward["accuracy"]
    correct = [[accuracy[p * k + j] > 0 for j in range(k)] for p in range(len(examples))]
    ks = [2**i for i in range(k.bit_length()) if 2**i <= k]
    lengths = gen.completion_mask.sum(dim=1).tolist()
    votes = []
    for p, e in enumerate(examples):
        winner = majority_index([vote_answer(t, e.verifier) for t in texts[p * k : (p + 1) * k]],
                                same_answer(e.verifier, e.info))
        votes.append(winner is not None and correct[p][winner])
    consistency = scored.per_reward["language_consistency"]
    by_task: dict[str, dict[str, float]] = {}
    tasks = [e.task for e in examples]
    if len(set(tasks)) > 1:
        for task in dict.fromkeys(tasks):
            rows = [p * k + j for p, t in enumerate(tasks) if t == task for j in range(k)]
            by_task[task] = {"pass@1": sum(accuracy[i] for i in rows) / len(rows),
                             "reflective_words": reflection_stats([texts[i] for i in rows])["per_response"],
                             "mean_response_tokens": sum(lengths[i] for i in rows) / len(rows),
                             "language_consistency": sum(consistency[i] for i in rows) / len(rows)}
    reflection = reflection_stats(texts)
    return EvalResult(
        cons_at_k=sum(votes) / len(votes),
        reflective_words=reflection["per_response"],
        reflective_per_word={w: c / len(texts) for w, c in reflection["per_word"].items()},
        language_consistency=sum(consistency) / len(consistency),
        by_task=by_task,
        pass_at_1=sum(accuracy) / len(accuracy),
        pass_at_k={kk: mean_pass_at_k(correct, kk) for kk in ks},
        format_rate=sum(scored.per_reward[format_reward]) / len(texts),
        mean_response_tokens=sum(lengths) / len(lengths),
        n_prompts=len(examples),
        k=k,
        completions=[texts[p * k : (p + 1) * k] for p in range(len(examples))],
        correct=correct,
    )
