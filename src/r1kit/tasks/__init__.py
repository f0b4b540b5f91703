"""Tasks: a name -> a loader of `Example` records (prompt, reference answer, verifier name, info).

Every loader has the signature `load(split, *, n=None, seed=0) -> list[Example]` with split "train"
or "test"; data-set tasks also take `path` (a local file or directory; None loads from the hub).
Adding a task is one line in `TASKS` (and in `DATASET_TASKS` if it reads data).
"""

from __future__ import annotations

from collections.abc import Callable

from r1kit.tasks import arithmetic, countdown, gsm8k, humaneval, knights_knaves
from r1kit.tasks.general import GENERAL_TASKS
from r1kit.types import Example

Loader = Callable[..., list[Example]]

TASKS: dict[str, Loader] = {
    arithmetic.NAME: arithmetic.load,
    arithmetic.NAME_ZH: arithmetic.load_zh,
    arithmetic.NAME_BILINGUAL: arithmetic.load_bilingual,
    countdown.NAME: countdown.load,
    gsm8k.NAME: gsm8k.load,
    knights_knaves.NAME: knights_knaves.load_knights_knaves,
    humaneval.NAME: humaneval.load,
    **GENERAL_TASKS,
}

DATASET_TASKS = {gsm8k.NAME, knights_knaves.NAME, humaneval.NAME}


def load_task(name: str, split: str, *, n: int | None = None, seed: int = 0,
              path: str | None = None) -> list[Example]:
    """The examples of task `name`.

    >>> load_task("arithmetic", "test", n=1)[0].verifier
    'integer'
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    if name in DATASET_TASKS:
        return TASKS[name](split, n=n, seed=seed, path=path)
    if path is not None:
        raise ValueError(f"task {name!r} is generated, it reads no data: leave task.path unset")
    return TASKS[name](split, n=n, seed=seed)
