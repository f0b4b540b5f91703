"""Where a run's metrics go besides out_dir/metrics.jsonl: TensorBoard and Weights & Biases (TRL's
`report_to`), both off by default. Each reporter receives the rows of metrics.jsonl as they are written.

A resumed run replays the steps after its checkpoint. TensorBoard is told to purge events from the first
replayed step on (`purge_step`), so its curves hold each step once; Weights & Biases resumes the same run
id and ignores steps it has already seen, whose values an exact resume reproduces anyway.
"""

from __future__ import annotations

import hashlib
import importlib.util
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from r1kit.config import ConfigError, LoggingConfig
from r1kit.trainers.checkpoint import Reporter


def check_reporting(logging: LoggingConfig) -> None:
    """Raise ConfigError (one line, before any work) when a requested reporter's package is missing."""
    if logging.tensorboard and not _installed("tensorboard"):
        raise ConfigError("logging.tensorboard=true needs the tensorboard package: pip install tensorboard")
    if logging.wandb is not None:
        if not logging.wandb.strip():
            raise ConfigError("logging.wandb must name a project, e.g. logging.wandb=r1kit")
        if not _installed("wandb"):
            raise ConfigError(f"logging.wandb={logging.wandb} needs the wandb package: pip install wandb")


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # in sys.modules as None: imports of it are blocked
        return False


def open_reporters(logging: LoggingConfig, out: Path, *, config: Mapping[str, Any],
                   first_step: int) -> list[Reporter]:
    """The reporters `logging` asks for; `first_step` is the first step this invocation logs."""
    reporters: list[Reporter] = []
    if logging.tensorboard:
        reporters.append(TensorBoardReporter(out / "tensorboard", first_step))
    if logging.wandb is not None:
        reporters.append(WandbReporter(logging.wandb, out, config))
    return reporters


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of a row, without its step."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, numbers.Real) and not isinstance(v, bool)}


class TensorBoardReporter:
    """Scalars through TensorBoard's event-file writer (torch.utils.tensorboard), flushed every row."""

    def __init__(self, log_dir: Path, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # Readers drop the events at or after purge_step that an earlier, killed invocation wrote.
        self.writer = SummaryWriter(str(log_dir), purge_step=first_step)

    def log(self, row: Mapping[str, Any]) -> None:
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, global_step=int(row["step"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    """One W&B run per out_dir (its id derived from the directory), resumed across invocations."""

    def __init__(self, project: str, out: Path, config: Mapping[str, Any]) -> None:
        import wandb

        run_id = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=project, id=run_id, name=out.name, dir=str(out), resume="allow",
                              config=dict(config))

    def log(self, row: Mapping[str, Any]) -> None:
        self.run.log(scalars(row), step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()
