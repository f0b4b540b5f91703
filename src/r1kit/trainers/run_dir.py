"""A stage's run directory, the same for every stage (GRPO, SFT, sampling, ...).

    run = RunDir(cfg)                      # refuses other settings than the directory's (before any work)
    resumed = run.resume(load)             # the newest intact checkpoint, loaded, or None
    log = run.begin(resumed_step)          # out_dir made, invocation recorded, metrics log opened
    ... log.append(row); run.save(step, model, tokenizer, state) ...
    run.finish(summary)                    # summary.json: the marker that the stage is done

What it holds: `config.yaml` and `invocations.jsonl` (`r1kit.trainers.record`), `metrics.jsonl` and the
configured reporters (`r1kit.trainers.reporting`), verified checkpoints (`r1kit.trainers.checkpoint`),
`summary.json`. A stage config needs `out_dir`; `keep_checkpoints` if it saves checkpoints, `logging`
if its metrics go to reporters.

In a distributed run only rank 0 writes; the other ranks read what it wrote once (after a barrier) and
keep their metrics rows in memory, so every rank sees the same log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from r1kit import distributed as dist
from r1kit.config import to_dict
from r1kit.trainers.checkpoint import (
    Checkpoint,
    CheckpointError,
    MetricsLog,
    checkpoints,
    resume_checkpoint,
    save_checkpoint,
    write_atomic,
)
from r1kit.trainers.record import check_resume, record_invocation
from r1kit.trainers.reporting import open_reporters

SUMMARY = "summary.json"
T = TypeVar("T")


def warn(message: str) -> None:
    print(f"r1kit: warning: {message}", file=sys.stderr, flush=True)


class RunDir:
    """See the module docstring."""

    def __init__(self, cfg: Any, *, steps_derived: Callable[[Any], str] = lambda cfg: "") -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.changed = check_resume(self.out, cfg, steps_derived=steps_derived)
        self.log: MetricsLog | None = None

    def resume(self, load: Callable[[Checkpoint], T]) -> tuple[Checkpoint, T] | None:
        """The newest checkpoint that verifies and loads (`load` reads it), or None; damage is warned. In a
        distributed run rank 0 chooses and every other rank loads the very checkpoint it chose (a rank that
        picked on its own could start from another step)."""
        if not dist.world().distributed:
            return resume_checkpoint(self.out, load, warn)
        picked: tuple[Checkpoint, T] | None = None
        error = ""
        if dist.world().main:
            try:
                picked = resume_checkpoint(self.out, load, warn)
            except CheckpointError as e:
                error = str(e)
        step, error = dist.same((picked[0].step if picked else None, error))
        if error:
            raise CheckpointError(error)
        if picked is not None or step is None:
            return picked
        ckpt = next(c for c in checkpoints(self.out) if c.step == step)
        return ckpt, load(ckpt)

    def begin(self, resumed_step: int | None) -> MetricsLog:
        """Create out_dir, record this invocation and open the metrics log: rows after `resumed_step` are
        dropped (a resumed run writes them again); None starts the log afresh."""
        if not dist.world().main:
            dist.barrier()  # rank 0 has truncated the log
            self.log = MetricsLog(self.out / "metrics.jsonl", write=False)
            self.log.truncate(resumed_step if resumed_step is not None else -1)
            return self.log
        self.out.mkdir(parents=True, exist_ok=True)
        record_invocation(self.out, self.cfg, resumed_from=resumed_step or 0, changed=self.changed)
        first = resumed_step + 1 if resumed_step is not None else 0
        logging = getattr(self.cfg, "logging", None)  # stages without a metrics stream have no reporters
        reporters = open_reporters(logging, self.out, config=to_dict(self.cfg), first_step=first) if logging else []
        self.log = MetricsLog(self.out / "metrics.jsonl", reporters)
        self.log.truncate(resumed_step if resumed_step is not None else -1)
        dist.barrier()
        return self.log

    def save(self, step: int, model: Any, tokenizer: Any, state: dict[str, Any]) -> Checkpoint:
        """Rank 0 writes (`model`: the plain module, `state`: full tensors); every rank waits for it."""
        main = dist.world().main
        ckpt = (save_checkpoint(self.out, step, model, tokenizer, state, keep=self.cfg.keep_checkpoints) if main
                else Checkpoint(step, self.out))
        dist.barrier()
        return ckpt

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Write summary.json (atomically, last): the stage is done."""
        if dist.world().main:
            write_atomic(self.out / SUMMARY, json.dumps(summary, indent=2) + "\n")
        return summary
