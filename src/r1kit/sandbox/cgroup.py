"""One memory and process budget for a whole sandboxed program, all its processes together.

rlimits are per process: under `RLIMIT_AS` = 512 MB a program that forks 8 children holding 400 MB each
holds 3.2 GB. In code RL many sandboxes run at once beside the trainer, so one rollout batch could take
the host down. The kernel's cgroups count every process of the program together. Each run gets its own
cgroup, made before bwrap starts and removed after the run; the run's first process (a `/bin/sh` that
then execs bwrap) enters it, so everything the program starts is inside. Which cgroups, decided once per
process (`controller()`):

- **cgroup v2** where a writable cgroup delegates the `memory` and `pids` controllers to its children:
  `R1KIT_SANDBOX_CGROUP` naming such a directory (e.g. a systemd unit with `Delegate=yes`), or the
  caller's own cgroup when its `cgroup.subtree_control` lists both (a container's root cgroup). Limits:
  `memory.max`, `memory.swap.max` = 0, `pids.max`; OOM kills are read from `memory.events`.
- **cgroup v1** as root, where the `memory` and `pids` hierarchies are mounted and writable (the
  machines r1kit is developed on): a child of the caller's memory cgroup and one of its pids cgroup.
  Limits: `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where swap is accounted),
  `pids.max`; OOM kills are read from `memory.oom_control`.
- **neither**: no total can be enforced, so `split_budget` divides memory_mb into per-process address
  spaces of at least 128 MB and allows only as many processes as there are shares, so that processes x
  limit <= memory_mb still holds (512 MB and 16 processes become 4 processes of 128 MB). A program then
  gets less memory per process and fewer processes than asked.

When the cgroup's OOM killer fires, the run's status is "memory" (`SandboxResult.status`), whatever the
program's exit code; the peak of the cgroup's memory use is reported as `memory_peak_mb`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

ENV_PARENT = "R1KIT_SANDBOX_CGROUP"
MIN_PROCESS_MB = 128
"""The smallest per-process address space `split_budget` gives: Python needs about 24 MB to start, and
ordinary test programs a few tens more."""
_PREFIX = "r1kit-sandbox-"
_counter = itertools.count()

# Started as the run's first process: enter each cgroup given, then become bwrap.
ENTER_AND_EXEC = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || '
                  '{ echo "r1kit sandbox: cannot enter cgroup $1" >&2; exit 125; }; shift; n=$((n-1)); done; '
                  'exec "$@"')


@dataclass(frozen=True)
class Controller:
    """Where per-run cgroups are made: "v2" with one parent directory, or "v1" with the memory and pids
    parents."""

    version: str
    parents: tuple[Path, ...]


@dataclass(frozen=True)
class RunCgroup:
    """The cgroup(s) of one run."""

    version: str
    dirs: tuple[Path, ...]
    """v2: (the group,); v1: (memory group, pids group)."""

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def launch_prefix(self) -> list[str]:
        """argv to put before bwrap's: a shell that moves itself into the cgroup(s), then execs."""
        return ["/bin/sh", "-c", ENTER_AND_EXEC, "sh", str(len(self.dirs)), *self.procs_files]

    def oom_kills(self) -> int:
        """How many processes the cgroup's OOM killer has killed."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        return _read_key(self.dirs[0] / name, "oom_kill")

    def peak_mb(self) -> float | None:
        name = "memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.dirs[0] / name).read_text().split()[0]) / (1 << 20)
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        """rmdir each group; the run's processes are gone by now, but the kernel may take a moment."""
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)


def create(ctrl: Controller, memory_mb: int, max_processes: int) -> RunCgroup:
    """A fresh cgroup under `ctrl` limited to `memory_mb` in total and `max_processes` processes (plus
    bwrap's own two). Raises OSError when the kernel refuses."""
    name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
    dirs = tuple(parent / name for parent in ctrl.parents)
    group = RunCgroup(ctrl.version, dirs)
    try:
        for d in dirs:
            d.mkdir()
        memory, pids = memory_mb << 20, str(max_processes + 2)
        if ctrl.version == "v2":
            _write(dirs[0] / "memory.max", str(memory))
            with contextlib.suppress(FileNotFoundError):  # no swap controller: nothing to limit
                _write(dirs[0] / "memory.swap.max", "0")
            _write(dirs[0] / "pids.max", pids)
        else:
            _write(dirs[0] / "memory.limit_in_bytes", str(memory))
            with contextlib.suppress(FileNotFoundError):  # swap not accounted on this kernel
                _write(dirs[0] / "memory.memsw.limit_in_bytes", str(memory))
            _write(dirs[1] / "pids.max", pids)
    except OSError:
        group.remove()
        raise
    return group


def split_budget(memory_mb: int, max_processes: int) -> tuple[int, int]:
    """(per-process address space in MB, process limit) with product <= memory_mb, for machines where no
    cgroup can hold the total: memory_mb / max_processes each, or, when that is under MIN_PROCESS_MB,
    MIN_PROCESS_MB-sized shares and correspondingly fewer processes (at least one, of all memory_mb).

    >>> split_budget(2048, 16)
    (128, 16)
    >>> split_budget(512, 16)
    (128, 4)
    >>> split_budget(100, 4)
    (100, 1)
    """
    per = memory_mb // max_processes
    if per >= MIN_PROCESS_MB:
        return per, max_processes
    processes = max(1, memory_mb // MIN_PROCESS_MB)
    return memory_mb // processes, processes


@functools.cache
def controller() -> Controller | None:
    """The cgroups runs can be placed in on this machine, or None (checked once per process)."""
    override = os.environ.get(ENV_PARENT)
    if override:
        return Controller("v2", (Path(override),)) if _v2_delegates(Path(override)) else None
    with contextlib.suppress(OSError):
        candidates = candidate_parents(Path("/proc/self/cgroup").read_text(),
                                       Path("/proc/self/mountinfo").read_text())
        if "v2" in candidates and _v2_delegates(candidates["v2"][0]):
            return Controller("v2", candidates["v2"])
        if os.geteuid() == 0 and "v1" in candidates and all(_writable_dir(p) for p in candidates["v1"]):
            _sweep(candidates["v1"])
            return Controller("v1", candidates["v1"])
    return None


def candidate_parents(proc_cgroup: str, mountinfo: str) -> dict[str, tuple[Path, ...]]:
    """Where this process's own cgroups lie, from the text of /proc/self/cgroup and /proc/self/mountinfo:
    "v2" -> (its v2 cgroup directory,) and "v1" -> (its memory cgroup, its pids cgroup), as far as the
    hierarchies are mounted. Whether they can be used is checked separately."""
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            own[name] = path
    mounts: dict[str, tuple[str, str]] = {}  # controller ("" for v2) -> (mount point, hierarchy root there)
    for line in mountinfo.splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3].split(",")
        for name in [""] if fstype == "cgroup2" else [n for n in ("memory", "pids") if n in options] \
                if fstype == "cgroup" else []:
            mounts.setdefault(name, (fields[4], fields[3]))
    out: dict[str, tuple[Path, ...]] = {}
    if "" in own and "" in mounts:
        out["v2"] = (_join(mounts[""], own[""]),)
    if all(n in own and n in mounts for n in ("memory", "pids")):
        out["v1"] = (_join(mounts["memory"], own["memory"]), _join(mounts["pids"], own["pids"]))
    return out


def _v2_delegates(parent: Path) -> bool:
    try:
        enabled = (parent / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False
    if {"memory", "pids"} <= set(enabled) and _writable_dir(parent):
        _sweep((parent,))
        return True
    return False


def _join(mount: tuple[str, str], path: str) -> Path:
    point, root = mount
    rel = path[len(root):] if root != "/" and path.startswith(root) else path
    return Path(point) / rel.lstrip("/")


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK) and os.access(path / "cgroup.procs", os.W_OK)


def _sweep(parents: tuple[Path, ...]) -> None:
    """Remove the empty cgroups of runs whose process died before it could (rmdir fails on busy ones)."""
    for parent in parents:
        for d in parent.glob(f"{_PREFIX}*"):
            pid = d.name.removeprefix(_PREFIX).split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    d.rmdir()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_key(path: Path, key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0
