"""Scoring a rollout: rewards in worker processes, concurrently with generation (R1's async reward).

The paper ran rule rewards in a separate module so that scoring one batch overlapped generating the
next. `RewardScorer` does that on one machine:

- `scorer.submit(prompts, completions, examples, completion_lengths)` returns at once with a
  `PendingScores`; the completions are scored in `workers` processes (`r1kit.rewards.workers`),
  one sample per item, while the trainer generates the next chunk of groups.
- `pending.result()` waits and returns a `RewardResult`. A sample whose rewards take longer than
  `timeout_s` is killed and scores 0 on every reward; it is counted in `reward/timeouts`. A reward
  that raises or crashes its worker scores 0 too (`reward/errors`). Training never stalls on a reward.
- `workers=0` scores in the trainer's own thread (the embedded arithmetic task's verifier takes
  microseconds, far less than a process round trip); math answers are then still graded in
  `r1kit.rewards.math`'s own killable workers.
- A multi-task stage gives each task its own rewards (`task_weights`, by `Example.task`): a sample is
  scored with its task's weights only, and in `per_reward` a reward that does not apply to a sample is
  NaN (so that its mean is over the samples it scores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from r1kit.rewards import REWARDS, check_reward_names
from r1kit.rewards.workers import WorkerPool
from r1kit.types import Example, RewardResult


def score_one(weights: Mapping[str, float], prompt: str, completion: str, example: Example,
              extra: Mapping[str, Any]) -> dict[str, float]:
    """Every weighted reward of one sample (what a worker runs). Extra holds scalar settings and the
    sample's own `completion_length`."""
    columns: dict[str, Any] = {"answer": [example.answer], "verifier": [example.verifier],
                               "info": [example.info], "task": [example.task],
                               "completion_lengths": [extra.get("completion_length", 0)]}
    settings = {k: v for k, v in extra.items() if k != "completion_length"}
    return {name: float(REWARDS[name]([prompt], [completion], **columns, **settings)[0]) for name in weights}


class PendingScores:
    """Rewards being computed for one chunk of completions."""

    def __init__(self, future: Future[RewardResult]) -> None:
        self._future = future

    def result(self) -> RewardResult:
        return self._future.result()


class RewardScorer:
    """See the module docstring. Use as a context manager, or call `close()`."""

    def __init__(self, weights: Mapping[str, float], *, workers: int = 0, timeout_s: float = 10.0,
                 settings: Mapping[str, Any] | None = None,
                 task_weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        check_reward_names(weights)
        for task_specific in (task_weights or {}).values():
            check_reward_names(task_specific)
        self.weights = dict(weights)
        self.task_weights = {task: dict(w) for task, w in (task_weights or {}).items()}
        self.timeout_s = timeout_s
        self.settings = dict(settings or {})
        self._pool = WorkerPool(score_one, size=workers, name="r1kit-reward") if workers > 0 else None
        # One background thread hands chunks to the pool in order; the pool parallelises inside a chunk.
        self._feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1kit-scoring")

    def submit(self, prompts: Sequence[str], completions: Sequence[str], examples: Sequence[Example],
               completion_lengths: Sequence[int], *, step: int | None = None,
               settings: Mapping[str, Any] | None = None) -> PendingScores:
        """Score asynchronously; `step` (0-based) reaches the rewards as the `step` setting (a reward
        model's active window reads it). `settings`: this chunk's own over the scorer's (a step's
        `max_completion_tokens` under a `rollout.max_new_tokens` schedule)."""
        args = (list(prompts), list(completions), list(examples), [int(n) for n in completion_lengths], step,
                {**self.settings, **(settings or {})})
        if self._pool is None:
            # In-process scoring runs now: its failures are already caught per reward.
            future: Future[RewardResult] = Future()
            future.set_result(self._score_in_process(*args))
            return PendingScores(future)
        return PendingScores(self._feeder.submit(self._score_in_workers, *args))

    def weights_of(self, example: Example) -> dict[str, float]:
        """The rewards that score `example`: its task's, else the stage's."""
        return self.task_weights.get(example.task, self.weights)

    def _score_in_process(self, prompts: list[str], completions: list[str], examples: list[Example],
                          lengths: list[int], step: int | None, settings: dict[str, Any]) -> RewardResult:
        from r1kit.rewards import compute_rewards

        groups: dict[str, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(e.task if e.task in self.task_weights else "", []).append(i)
        parts = []
        for task, rows in groups.items():
            weights = self.task_weights.get(task, self.weights)
            scored = compute_rewards([prompts[i] for i in rows], [completions[i] for i in rows],
                                     [examples[i] for i in rows], weights,
                                     settings={**settings, "step": step,
                                               "completion_lengths": [lengths[i] for i in rows]})
            parts.append((rows, scored))
        return _merge(parts, len(examples))

    def _score_in_workers(self, prompts: list[str], completions: list[str], examples: list[Example],
                          lengths: list[int], step: int | None, settings: dict[str, Any]) -> RewardResult:
        assert self._pool is not None
        weights = [self.weights_of(e) for e in examples]
        items = [(w, p, c, e, {**settings, "step": step, "completion_length": n})
                 for w, p, c, e, n in zip(weights, prompts, completions, examples, lengths, strict=True)]
        outcomes = self._pool.map(items, timeout_s=self.timeout_s)
        names = list(dict.fromkeys(name for w in weights for name in w))
        per_reward: dict[str, list[float]] = {name: [math.nan] * len(examples) for name in names}
        total, timeouts, errors = [0.0] * len(examples), 0, 0
        for i, (w, outcome) in enumerate(zip(weights, outcomes, strict=True)):
            timeouts += outcome.status == "timeout"
            errors += outcome.status in ("error", "crash")
            for name, weight in w.items():
                per_reward[name][i] = outcome.value[name] if outcome.status == "ok" else 0.0
                total[i] += weight * per_reward[name][i]
        return RewardResult(total=total, per_reward=per_reward, timeouts=timeouts, errors=errors)

    def close(self) -> None:
        self._feeder.shutdown(wait=True)
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(parts: Sequence[tuple[list[int], RewardResult]], n: int) -> RewardResult:
    """One RewardResult for n samples from results of disjoint subsets (rows); NaN where a reward did
    not score a sample."""
    if len(parts) == 1 and parts[0][0] == list(range(n)):
        return parts[0][1]
    names = list(dict.fromkeys(name for _, r in parts for name in r.per_reward))
    per_reward = {name: [math.nan] * n for name in names}
    total = [0.0] * n
    for rows, result in parts:
        for j, i in enumerate(rows):
            total[i] = result.total[j]
            for name, values in result.per_reward.items():
                per_reward[name][i] = values[j]
    return RewardResult(total=total, per_reward=per_reward, timeouts=sum(r.timeouts for _, r in parts),
                        errors=sum(r.errors for _, r in parts))
