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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from r1kit.rewards import REWARDS, check_reward_names, combine
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
                 settings: Mapping[str, Any] | None = None) -> None:
        check_reward_names(weights)
        self.weights = dict(weights)
        self.timeout_s = timeout_s
        self.settings = dict(settings or {})
        self._pool = WorkerPool(score_one, size=workers, name="r1kit-reward") if workers > 0 else None
        # One background thread hands chunks to the pool in order; the pool parallelises inside a chunk.
        self._feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1kit-scoring")

    def submit(self, prompts: Sequence[str], completions: Sequence[str], examples: Sequence[Example],
               completion_lengths: Sequence[int]) -> PendingScores:
        args = (list(prompts), list(completions), list(examples), [int(n) for n in completion_lengths])
        if self._pool is None:
            # In-process scoring runs now: its failures are already caught per reward.
            future: Future[RewardResult] = Future()
            future.set_result(self._score_in_process(*args))
            return PendingScores(future)
        return PendingScores(self._feeder.submit(self._score_in_workers, *args))

    def _score_in_process(self, prompts: list[str], completions: list[str], examples: list[Example],
                          lengths: list[int]) -> RewardResult:
        from r1kit.rewards import compute_rewards

        return compute_rewards(prompts, completions, examples, self.weights,
                               settings={**self.settings, "completion_lengths": lengths})

    def _score_in_workers(self, prompts: list[str], completions: list[str], examples: list[Example],
                          lengths: list[int]) -> RewardResult:
        assert self._pool is not None
        items = [(self.weights, p, c, e, {**self.settings, "completion_length": n})
                 for p, c, e, n in zip(prompts, completions, examples, lengths, strict=True)]
        outcomes = self._pool.map(items, timeout_s=self.timeout_s)
        per_reward: dict[str, list[float]] = {name: [] for name in self.weights}
        timeouts = errors = 0
        for outcome in outcomes:
            timeouts += outcome.status == "timeout"
            errors += outcome.status in ("error", "crash")
            for name in self.weights:
                per_reward[name].append(outcome.value[name] if outcome.status == "ok" else 0.0)
        return combine(per_reward, self.weights, timeouts=timeouts, errors=errors)

    def close(self) -> None:
        self._feeder.shutdown(wait=True)
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
