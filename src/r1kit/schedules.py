"""Step schedules: a config value that changes with the training step.

R1 raised its completion budget from 32,768 to 65,536 tokens at step 8.2k; `rollout.max_new_tokens`,
`rollout.temperature` and `grpo.kl_coef` may therefore each be a plain value (constant) or a mapping
{first_step: value}, read by one function, `value_at`:

- the mapping must hold step 0, so that every step has a value written in the config (no implicit
  "the first key applies before it");
- `interpolation="step"` (the default): a value holds from its step until the next key (R1's length
  schedule); `"linear"`: values are interpolated between neighbouring keys, and the last one holds after
  it (an integer schedule rounds to the nearest integer, half to even). The run config says which, in one
  key for all its schedules (`ZeroConfig.schedule`), so the mapping itself stays plain data that survives
  a YAML or JSON round trip.

Steps are 0-based optimizer-step rounds, as in `r1kit.trainers.grpo.train_step`, which reads its config
at its step first (`ZeroConfig.at_step`): everything below it sees plain values, and `scalar` says so
where they are used (a schedule reaching it is a bug, not a value). Sizes fixed for the whole run (the
packing budget, vLLM's context, the reference model) follow `schedule_values`: the largest budget, a
reference when any step's KL coefficient is > 0. Pure and torch-free, in the lowest layer: config checks
and every trainer read schedules here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

V = TypeVar("V", int, float)

Interpolation = Literal["step", "linear"]


def value_at(schedule: V | Mapping[int, V], step: int, *, interpolation: Interpolation = "step") -> V:
    """The value of `schedule` at 0-based `step`: a plain value is constant; a mapping {first_step: value}
    is read by `interpolation` (see the module docstring).

    >>> value_at(0.01, 500)
    0.01
    >>> [value_at({0: 64, 60: 128}, s) for s in (0, 59, 60, 1000)]
    [64, 64, 128, 128]
    >>> [value_at({0: 1.0, 10: 0.0}, s, interpolation="linear") for s in (0, 4, 10, 20)]
    [1.0, 0.6, 0.0, 0.0]
    >>> value_at({0: 64, 10: 128}, 5, interpolation="linear")  # 64 + 64 * 5/10
    96
    """
    if not isinstance(schedule, Mapping):
        return schedule
    check_steps(schedule)
    keys = sorted(schedule)
    at = max(k for k in keys if k <= step) if step >= 0 else 0
    after = [k for k in keys if k > at]
    if interpolation == "step" or not after or step <= at:
        return schedule[at]
    nxt = after[0]
    a, b = schedule[at], schedule[nxt]
    mixed = a + (b - a) * (step - at) / (nxt - at)
    # An integer schedule (a token budget) stays integer; isinstance, not type(), so bool never gets here.
    return round(mixed) if isinstance(a, int) and isinstance(b, int) else mixed


def scalar(value: V | Mapping[int, V]) -> V:
    """`value` as already read at its step (`ZeroConfig.at_step`). A schedule here is a config passed on
    unread, a bug: it raises rather than guess a step.

    >>> scalar(0.7)
    0.7
    """
    if isinstance(value, Mapping):
        raise TypeError(f"a step schedule {dict(value)} where its value at a step was expected: read the config "
                        "at the step first (ZeroConfig.at_step)")
    return value


def schedule_values(schedule: V | Mapping[int, V]) -> list[V]:
    """Every value `schedule` takes at some step (its keys' values in step order; interpolation stays
    between them), for checks such as "all > 0" and sizes such as the largest budget.

    >>> schedule_values(96), schedule_values({60: 128, 0: 64}), max(schedule_values({0: 0.0, 5: 0.01}))
    ([96], [64, 128], 0.01)
    """
    if not isinstance(schedule, Mapping):
        return [schedule]
    return [schedule[k] for k in sorted(schedule)]


def check_steps(schedule: Mapping[int, object]) -> None:
    """ValueError unless `schedule`'s keys are integer steps >= 0 including 0.

    >>> check_steps({10: 64})
    Traceback (most recent call last):
    ...
    ValueError: a schedule needs a value at step 0, got steps 10
    """
    if any(isinstance(k, bool) or not isinstance(k, int) for k in schedule):
        raise ValueError(f"a schedule's keys are integer steps, got {', '.join(repr(k) for k in schedule)}")
    if any(k < 0 for k in schedule):
        raise ValueError(f"a schedule's steps must be >= 0, got {', '.join(str(k) for k in sorted(schedule))}")
    if 0 not in schedule:
        raise ValueError(f"a schedule needs a value at step 0, got steps {', '.join(str(k) for k in sorted(schedule))}"
                         if schedule else "a schedule needs a value at step 0, got an empty mapping")
