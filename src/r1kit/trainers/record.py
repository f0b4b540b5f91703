"""The record of a training run in its out_dir: the settings that made it, and every invocation since.

A run directory is resumed by rerunning the same command. Resuming under other settings would mix two
runs under one name, so every training command first compares its settings with the ones the directory
was made with (`check_resume`) and stops before any work, naming the keys that differ. Allowed changes
are the ones that cannot change what is computed:

- where and how the run is observed or stored: `out_dir`, `save_every`, `keep_checkpoints`, `eval.every`
  (evaluations draw from their own seeded generator, so they never shift the training samples),
  `logging.*`;
- where it runs: `threads`, `model.device`, `dist.*` and `cluster.*` (the world size: work is split in
  whole groups, sampling is seeded per group and gradients are summed over globally normalised losses,
  `r1kit.distributed`). These change floating-point summation order only, so a
  resumed run stays the same run but is bit-identical to an uninterrupted one only on the same device
  with the same thread count;
- raising `steps`, when nothing is derived from it: a constant learning-rate schedule (warm-up counts
  absolute steps), and no window counted back from the last step. Under the cosine schedule the decay
  is stretched over `steps`, so raising it changes every past learning rate: it is refused like any
  other change. Lowering `steps` is always refused.

`config.yaml` holds the settings of the latest invocation (equal to the first one's, but for the changes
above); `invocations.jsonl` gains one row per invocation (time, command line, r1kit version, the step it
resumed from, the allowed keys it changed, the full config), and no row is ever rewritten.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

import r1kit
from r1kit.config import ConfigError, to_dict
from r1kit.trainers.checkpoint import write_atomic

CONFIG_FILE = "config.yaml"
INVOCATIONS = "invocations.jsonl"

SAFE_KEYS = ("out_dir", "save_every", "keep_checkpoints", "eval.every", "logging", "threads", "model.device", "dist",
             "cluster")
"""Keys (or whole sections) whose change never changes what a run computes; see the module docstring."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}; mappings that are values (rewards) flatten too."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def fingerprint(cfg: Any, safe: Sequence[str] = SAFE_KEYS) -> str:
    """A short hash of the settings that change results (everything but `safe` keys and `steps`)."""
    kept = {k: v for k, v in flatten(to_dict(cfg)).items() if not _is_safe(k, safe) and k != "steps"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def previous_settings(out: Path) -> dict[str, Any] | None:
    """The config of the latest invocation recorded in `out`, or None for a new run directory."""
    history = out / INVOCATIONS
    if history.is_file():
        for line in reversed(history.read_text().splitlines()):
            try:
                return dict(json.loads(line)["config"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
    config = out / CONFIG_FILE
    if config.is_file():  # a run made before invocations were recorded
        loaded = yaml.safe_load(config.read_text())
        return loaded if isinstance(loaded, dict) else None
    return None


def check_resume(out: Path, cfg: Any, *, steps_derived: Callable[[Any], str] = lambda cfg: "",
                 safe: Sequence[str] = SAFE_KEYS) -> list[str]:
    """Refuse (ConfigError, one line) to continue the run in `out` under settings that change results.

    Returns the allowed keys that changed (empty for a new run). `steps_derived(cfg)` names what is
    derived from `steps` ("" when nothing is), which makes raising `steps` a change like any other. Keys
    that the recorded config lacks (added to r1kit later) count as unchanged while they hold their
    default, which is the behaviour the run had."""
    before = previous_settings(out)
    if before is None:
        return []
    old, new = flatten(before), flatten(to_dict(cfg))
    defaults = flatten(to_dict(type(cfg)()))
    changed, allowed = [], []
    for key in sorted(old.keys() | new.keys()):
        was = old.get(key, defaults.get(key, "<unset>"))
        now = new.get(key, "<unset>")
        if _same(was, now):
            continue
        if _is_safe(key, safe):
            allowed.append(key)
            continue
        if key == "steps" and isinstance(was, int) and isinstance(now, int):
            why = "lowered" if now < was else steps_derived(cfg)
            if not why:
                allowed.append(key)
                continue
            changed.append(f"steps {was} -> {now} ({why})")
            continue
        changed.append(f"{key} {was!r} -> {now!r}")
    if changed:
        raise ConfigError(f"{out} holds a run made with other settings: {', '.join(changed)}; rerun with its "
                          f"settings to resume (only {', '.join(safe)} and a higher steps may change), "
                          "or use another out_dir")
    return allowed


def record_invocation(out: Path, cfg: Any, *, resumed_from: int, changed: Sequence[str]) -> None:
    """Write config.yaml (this invocation's settings) and append this invocation to invocations.jsonl."""
    settings = to_dict(cfg)
    write_atomic(out / CONFIG_FILE, yaml.safe_dump(settings, sort_keys=False))
    row = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "argv": sys.argv,
           "r1kit": r1kit.__version__, "fingerprint": fingerprint(cfg), "resumed_from_step": resumed_from,
           "changed": list(changed), "config": settings}
    with open(out / INVOCATIONS, "a") as f:
        f.write(json.dumps(row) + "\n")


def _is_safe(key: str, safe: Sequence[str]) -> bool:
    return any(key == s or key.startswith(f"{s}.") for s in safe)


def _same(a: Any, b: Any) -> bool:
    # YAML and JSON turn tuples into lists and may write 1.0 as 1: compare as plain data.
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and \
            not isinstance(b, bool):
        return float(a) == float(b)
    return bool(a == b)
