"""Run untrusted Python (model-written code) in a bubblewrap sandbox with hard limits.

`run_python(code, stdin=..., timeout_s=..., memory_mb=...)` runs `code` as `python -I main.py` inside
`bwrap` and returns a `SandboxResult`. What the program gets:

- namespaces: new mount, pid, ipc, uts and network namespaces (no network at all, not even the host's
  loopback), a new session, killed with its parent;
- files: a read-only root made of `/usr` (with the `/bin`, `/lib*` links), the interpreter's own prefix
  when it lies outside `/usr` (its site-packages hidden: the standard library only), a fresh `/proc`,
  a minimal `/dev`, and a size-capped tmpfs `/tmp` as working directory holding `main.py`. No `/etc`, no
  home, no repository; the environment is `PATH`, `LANG` and `HOME=/tmp` only;
- a user without privileges. When the caller is not root, bwrap maps it to uid/gid 65534 in a new user
  namespace. When the caller is root, a user namespace would map the program onto host uid 0, and the
  kernel never enforces RLIMIT_NPROC for uid 0, so a fork bomb would be unbounded: there, bwrap keeps
  the host user namespace and the program switches to an unused host uid (60000 + a slot, one per
  concurrent run, as the IOI judge `isolate` does) before it starts, with no capabilities and
  no_new_privs;
- rlimits on CPU seconds, address space, processes, file size and open files, and a seccomp filter
  refusing new user namespaces, ptrace, io_uring, bpf and the like (`r1kit.sandbox.seccomp`);
- a wall-clock kill of the whole process group at `timeout_s` (the pid namespace dies with its init, so
  nothing the program started outlives the run), and a per-stream output cap read by the parent;
- one memory and process budget for all the program's processes together, in a cgroup of its own (v2
  where a delegated subtree is writable, v1 as root); where no cgroup can be made, per-process shares of
  the budget (`r1kit.sandbox.cgroup`). The cgroup's OOM killer makes the status "memory".

Not covered: CPU time summed over the program's processes (RLIMIT_CPU is per process; the wall-clock
kill bounds the total). Linux only.

Without bubblewrap `run_python` raises `SandboxUnavailableError` unless `unsafe_local=True`, which runs
the same launcher with the same rlimits and process-group kill but no namespaces, with a loud warning.
"""

from r1kit.sandbox.install import main_setup_sandbox, setup_sandbox
from r1kit.sandbox.run import (
    SETUP_HINT,
    SandboxResult,
    SandboxUnavailableError,
    Status,
    require_sandbox,
    run_python,
    sandbox_available,
)

__all__ = [
    "SETUP_HINT",
    "SandboxResult",
    "SandboxUnavailableError",
    "Status",
    "main_setup_sandbox",
    "require_sandbox",
    "run_python",
    "sandbox_available",
    "setup_sandbox",
]
