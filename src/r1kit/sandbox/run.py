"""`run_python`: one sandboxed run, start to finish; see the package docstring for what isolates it.

How a run goes: the code and the input become sealed memory files (no host file holds them); bwrap builds
the namespaces and mounts and starts a launcher that drops to the sandbox user, sets the rlimits and
execs `python -I main.py`; the parent reads both output pipes against the cap and the deadline, then
kills the namespace's init and waits until the kernel has reaped every process in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import pwd
import re
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from r1kit.sandbox import cgroup
from r1kit.sandbox.seccomp import seccomp_program

Status = Literal["ok", "error", "timeout", "memory", "output_limit"]

SETUP_HINT = "run `r1kit setup-sandbox` (as root) or `sudo apt-get install -y bubblewrap`"

# Started with the limits as arguments: drop to the sandbox user (when started as root), set rlimits, then
# replace itself with a fresh `python -I main.py`, so the program sees a clean interpreter.
_LAUNCHER = """\
import os, resource, sys
cpu, mem, nproc, fsize, nofile, uid, gid = map(int, sys.argv[1:8])
if uid >= 0 and os.getuid() == 0:
    os.setgroups([]); os.setresgid(gid, gid, gid); os.setresuid(uid, uid, uid)
R = resource
for what, soft, hard in ((R.RLIMIT_CPU, cpu, cpu + 1), (R.RLIMIT_AS, mem, mem), (R.RLIMIT_NPROC, nproc, nproc),
                         (R.RLIMIT_FSIZE, fsize, fsize), (R.RLIMIT_NOFILE, nofile, nofile), (R.RLIMIT_CORE, 0, 0)):
    resource.setrlimit(what, (soft, hard))
os.execv(sys.executable, [sys.executable, "-I", "-X", "utf8", "main.py"])
"""
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
_MEMORY_ERROR = re.compile(r"^(MemoryError\b|.*std::bad_alloc|.*Cannot allocate memory)", re.MULTILINE)
_TEARDOWN_S = 10.0
"""The longest wait for a killed pid namespace to be torn down (it takes milliseconds)."""
_EXIT_GRACE_S = 0.2
"""How long pipes may stay open after the program exits (only without bwrap: a daemon can hold them)."""


@dataclass(frozen=True)
class SandboxResult:
    """How one run ended, and what it printed (each stream cut at the output cap)."""

    status: Status
    """ok: exit 0. error: any other exit. timeout: wall clock or CPU limit. memory: the cgroup's OOM killer
    killed a process of the program, or a process hit its address-space limit. output_limit: a stream
    passed the cap and the run was killed."""
    returncode: int | None
    """The program's exit status; -N when killed by signal N (bwrap's 128+N is read as a signal)."""
    stdout: str
    stderr: str
    wall_s: float
    memory_peak_mb: float | None = None
    """The most memory all the program's processes held together, where a cgroup accounts it; else None."""


class SandboxUnavailableError(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; untrusted code is not run without it."""


def run_python(code: str, *, stdin: str = "", timeout_s: float = 10.0, memory_mb: int = 512,
               max_output_bytes: int = 64 * 1024, max_processes: int = 16, max_file_mb: int = 16,
               max_open_files: int = 64, tmp_mb: int = 64, unsafe_local: bool = False) -> SandboxResult:
    """Run `code` as a Python program with `stdin` as its standard input; never raises for what the
    program does. Raises SandboxUnavailableError when bwrap cannot run here and `unsafe_local` is False.

    `timeout_s` is wall-clock (CPU time is capped at its ceiling + 1 s per process); `memory_mb` is the
    memory of all the program's processes together (a cgroup; where none can be made, each process gets an
    equal share of address space, `cgroup.split_budget`); `max_output_bytes` caps stdout and stderr each;
    `max_processes` bounds the program's processes; `max_file_mb` (largest file written) and
    `max_open_files` are rlimits; `tmp_mb` sizes the tmpfs /tmp, which counts towards `memory_mb`.
    `unsafe_local` runs without bwrap: for machines without it, never for untrusted code.
    """
    if memory_mb < 1 or max_processes < 1:
        raise ValueError(f"memory_mb and max_processes must be >= 1, got {memory_mb} and {max_processes}")
    group = _run_cgroup(memory_mb, max_processes)
    per_process_mb, nproc = (memory_mb, max_processes) if group else cgroup.split_budget(memory_mb, max_processes)
    limits = (int(timeout_s) + 1, per_process_mb << 20, nproc, max_file_mb << 20, max_open_files)
    try:
        return _run_python(code, stdin, timeout_s, max_output_bytes, limits, tmp_mb, unsafe_local, group)
    finally:
        if group is not None:
            group.remove()


def _run_cgroup(memory_mb: int, max_processes: int) -> cgroup.RunCgroup | None:
    ctrl = cgroup.controller()
    if ctrl is None:
        return None
    try:
        return cgroup.create(ctrl, memory_mb, max_processes)
    except OSError as e:  # the kernel refused this one (e.g. too many cgroups): per-process shares instead
        warnings.warn(f"r1kit.sandbox: cannot create a cgroup ({e}); per-process memory limits instead",
                      RuntimeWarning, stacklevel=3)
        return None


def _run_python(code: str, stdin: str, timeout_s: float, max_output_bytes: int, limits: tuple[int, ...],
                tmp_mb: int, unsafe_local: bool, group: cgroup.RunCgroup | None) -> SandboxResult:
    if unsafe_local:
        warnings.warn("r1kit.sandbox: unsafe_local=True runs untrusted code WITHOUT isolation (rlimits and a "
                      "process-group kill only): it can read and write your files and reach the network",
                      RuntimeWarning, stacklevel=2)
        with tempfile.TemporaryDirectory(prefix="r1kit-unsafe-") as workdir:
            Path(workdir, "main.py").write_text(code, encoding="utf-8", errors="replace")
            argv = [_interpreter().executable, "-I", "-c", _LAUNCHER, *map(str, limits), "-1", "-1"]
            return _run(argv, stdin, timeout_s, max_output_bytes, cwd=workdir, bwrap=False, group=group)
    error = _probe_error()
    if error:
        raise SandboxUnavailableError(error)
    return _run_bwrap(code, stdin, timeout_s, max_output_bytes, limits, tmp_mb, group)


def sandbox_available() -> bool:
    """True when bwrap is installed and can start a sandboxed interpreter here (checked once per process)."""
    return not _probe_error()


def require_sandbox(*, recheck: bool = False) -> None:
    """Raise SandboxUnavailableError, saying how to fix it, when `sandbox_available()` is False.
    `recheck` forgets the cached answer (after installing bwrap)."""
    if recheck:
        _probe_error.cache_clear()
    error = _probe_error()
    if error:
        raise SandboxUnavailableError(error)


@dataclass(frozen=True)
class _Interpreter:
    executable: str
    """The host's base interpreter, symlinks resolved (a venv's python points at it)."""
    binds: tuple[str, ...]
    """Directories bound read-only besides /usr: the installation prefixes that lie outside it."""
    hidden: tuple[str, ...]
    """Site-packages directories covered by an empty tmpfs: sandboxed code gets the standard library only."""


@functools.cache
def _interpreter() -> _Interpreter:
    import site

    executable = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(executable))}
    binds = tuple(sorted(p for p in prefixes if not _under(p, "/usr")))
    roots = ("/usr", *binds)
    hidden = tuple(p for p in (os.path.realpath(s) for s in site.getsitepackages([sys.base_prefix]))
                   if os.path.isdir(p) and any(_under(p, r) for r in roots))
    return _Interpreter(executable, binds, hidden)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _root_links() -> list[str]:
    """/bin, /lib, /lib64, /sbin as on the host: a symlink into /usr is recreated, a real directory bound."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    return args


def _bwrap_argv(fds: list[int], tmp_bytes: int, as_root: bool) -> list[str]:
    """bwrap's options; `fds` holds the code, then the seccomp filter if there is one."""
    interp = _interpreter()
    # As root: no user namespace (it would map the program to host uid 0, exempt from RLIMIT_NPROC); the
    # launcher keeps only the capabilities it needs to switch to the sandbox user, and loses them there.
    user = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
             "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if as_root else
            ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"])
    argv = [shutil.which("bwrap") or "bwrap", *user, "--new-session", "--die-with-parent",
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr", *_root_links()]
    for path in interp.binds:
        # bwrap would copy the host modes of the parents it creates (/root is 0700): open them up.
        parents = [str(p) for p in reversed(Path(path).parents) if str(p) != "/"]
        for parent in parents:
            argv += ["--perms", "0755", "--dir", parent]
        argv += ["--ro-bind", path, path]
    for path in interp.hidden:
        argv += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
    # /dev read-only (in a user namespace its tmpfs would be the program's to fill), with a small /dev/shm
    # for multiprocessing's semaphores.
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev", "--perms", "1777", "--size", str(1 << 20),
             "--tmpfs", "/dev/shm", "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp",
             "--perms", "0444", "--file", str(fds[0]), "/tmp/main.py", "--chdir", "/tmp", "--remount-ro", "/"]
    if len(fds) > 1:
        argv += ["--seccomp", str(fds[1])]
    return argv


_UID_BASE, _UID_COUNT = 60000, 4096


def _acquire_uid() -> tuple[int, int]:
    """A host uid for one root-mode run and the fd of the lock that holds it, so that concurrent runs, in
    this process or another, never share one: the kernel counts RLIMIT_NPROC per host uid, and one run's
    fork bomb must not use up another's. Uids that /etc/passwd names are skipped; a lock dies with its
    process, so a crash leaves no stale slot."""
    lock_dir = "/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir()
    for uid in range(_UID_BASE, _UID_BASE + _UID_COUNT):
        if _uid_named(uid):
            continue
        fd = os.open(os.path.join(lock_dir, f"r1kit-sandbox-uid-{uid}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise RuntimeError(f"more than {_UID_COUNT} concurrent sandboxes")


@functools.cache
def _uid_named(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _run_bwrap(code: str, stdin: str, timeout_s: float, cap: int, limits: tuple[int, ...],
               tmp_mb: int, group: cgroup.RunCgroup | None = None) -> SandboxResult:
    as_root = os.geteuid() == 0
    uid, uid_lock = _acquire_uid() if as_root else (65534, -1)
    fds = [_sealed_fd(_utf8(code))]
    program = seccomp_program()
    if program is not None:
        fds.append(_sealed_fd(program))
    try:
        argv = [*_bwrap_argv(fds, tmp_mb << 20, as_root), _interpreter().executable, "-I", "-c", _LAUNCHER,
                *map(str, limits), str(uid), str(uid)]
        return _run(argv, stdin, timeout_s, cap, cwd="/", bwrap=True, pass_fds=tuple(fds), group=group)
    finally:
        for fd in fds:
            os.close(fd)
        if uid_lock >= 0:
            os.close(uid_lock)


def _sealed_fd(data: bytes) -> int:
    """An anonymous in-memory file holding `data`, sealed so that the program can neither grow nor
    rewrite it, positioned at its start: no host file ever holds the code or the input."""
    fd = os.memfd_create("r1kit-sandbox", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK
                | fcntl.F_SEAL_SEAL)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="replace")


def _run(argv: list[str], stdin: str, timeout_s: float, cap: int, *, cwd: str, bwrap: bool,
         pass_fds: tuple[int, ...] = (), group: cgroup.RunCgroup | None = None) -> SandboxResult:
    stdin_fd = _sealed_fd(_utf8(stdin))
    info_r, info_w = os.pipe() if bwrap else (-1, -1)
    if bwrap:
        argv = [argv[0], "--info-fd", str(info_w), *argv[1:]]
        pass_fds = (*pass_fds, info_w)
    if group is not None:
        argv = [*group.launch_prefix(), *argv]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                env=_ENV, pass_fds=pass_fds, process_group=0)
    finally:
        for fd in (stdin_fd, info_w):
            if fd >= 0:
                os.close(fd)
    init = None
    try:
        if bwrap:
            init = _open_init(info_r, proc.pid, start + timeout_s)
        out, err, killed = _collect(proc, start + timeout_s, cap)
    finally:
        if info_r >= 0:
            os.close(info_r)
        _kill_all(proc, init)
    wall = time.monotonic() - start
    rc = proc.returncode
    if bwrap and rc is not None and 128 < rc <= 128 + 64:
        rc = 128 - rc
    stdout, stderr = (b.decode("utf-8", errors="replace") for b in (out, err))
    oom = group is not None and group.oom_kills() > 0
    peak = group.peak_mb() if group is not None else None
    return SandboxResult(_status(killed, rc, stderr, oom), rc, stdout, stderr, wall, peak)


def _open_init(info_fd: int, bwrap_pid: int, deadline: float) -> int | None:
    """A pidfd for the sandbox's pid-namespace init, whose host pid bwrap writes to `--info-fd` right after
    creating it; None when bwrap failed first or has already exited (bwrap exits only after init, so the
    namespace is gone then, and the pid could in principle be reused: it is not kept)."""
    data = b""
    while not data.rstrip().endswith(b"}"):
        if not select.select([info_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return None
        chunk = os.read(info_fd, 4096)
        if not chunk:
            return None
        data += chunk
    try:
        pidfd = os.pidfd_open(int(json.loads(data)["child-pid"]))
    except (ValueError, KeyError, OSError):
        return None
    if _exited(bwrap_pid):
        os.close(pidfd)
        return None
    return pidfd


def _collect(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytes, bytes, str]:
    """Read both pipes until they close, the deadline passes ("timeout") or one passes `cap` bytes
    ("output_limit"). The leader is never reaped here: its zombie keeps the process-group id reserved
    until `_kill_all` has signalled the group."""
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    killed, exited_at = "", 0.0
    try:
        while sel.get_map() and not killed:
            now = time.monotonic()
            if now >= deadline:
                killed = "timeout"
                break
            if not exited_at and _exited(proc.pid):
                exited_at = now
            if exited_at and now - exited_at > _EXIT_GRACE_S:
                break
            for key, _ in sel.select(timeout=min(deadline - now, 0.05)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                bufs[key.fd] += chunk
                if len(bufs[key.fd]) > cap:
                    killed = "output_limit"
    finally:
        sel.close()
    out, err = (bytes(b[:cap]) for b in bufs.values())
    return out, err, killed


def _exited(pid: int) -> bool:
    """Whether `pid` has exited, without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_all(proc: subprocess.Popen[bytes], init: int | None) -> None:
    """SIGKILL the pid namespace's init and the launcher's process group, reap the launcher, and wait until
    init has fully exited: the kernel kills and reaps every other process of the namespace (setsid'd
    daemons included) before it lets init exit, so nothing of the run is left when this returns."""
    if init is not None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(init, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if init is not None:
        select.select([init], [], [], _TEARDOWN_S)  # a pidfd turns readable once its process has exited
        os.close(init)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _status(killed: str, rc: int | None, stderr: str, oom: bool = False) -> Status:
    if killed == "output_limit":
        return "output_limit"
    if killed == "timeout":
        return "timeout"
    if oom:
        return "memory"
    if rc == 0:
        return "ok"
    if _MEMORY_ERROR.search(stderr[-4096:]):
        return "memory"
    if rc == -signal.SIGXCPU:  # RLIMIT_CPU's soft limit (the hard one's SIGKILL reads as an error)
        return "timeout"
    return "error"


@functools.cache
def _probe_error() -> str:
    """Why sandboxed runs cannot work here ("" when they can): bwrap missing, or failing to start."""
    if not sys.platform.startswith("linux"):
        return f"the code sandbox needs Linux and bubblewrap; this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed, so model-written code cannot be run safely: {SETUP_HINT}"
    try:
        result = _run_bwrap("print(6 * 7)", "", 30.0, 4096, (31, 256 << 20, 16, 1 << 20, 64), 1)
    except OSError as e:
        return f"bwrap failed to start ({e}): {SETUP_HINT}"
    if result.status == "ok" and result.stdout == "42\n":
        return ""
    return ("bwrap is installed but cannot create the sandbox here "
            f"(status {result.status}, exit {result.returncode}): {result.stderr.strip()[:500]}\n"
            "Unprivileged user namespaces may be disabled: on Ubuntu 24.04 "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, elsewhere "
            "`sudo sysctl -w kernel.unprivileged_userns_clone=1`; in Docker run the container with "
            "`--security-opt seccomp=unconfined` or `--privileged`.")

