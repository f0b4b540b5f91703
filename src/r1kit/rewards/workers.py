"""Long-lived worker processes with a hard wall-clock kill per item: isolation for verifiers.

Why not math-verify's own timeouts: they use `signal.alarm`, which only works on the main thread of
the main interpreter; called from a reward thread they raise, and a peer that caught the error scored
every MATH reward 0. A pure-Python `sympy.simplify` can also ignore signals for a long time, or blow
the stack on 10,000 nested braces. So r1kit runs each item in a separate process that it can kill:

- `WorkerPool(fn)` starts `size` fresh interpreters (never forked: the parent may hold torch threads)
  that each import `fn` once and then serve items over a socket.
- `pool.call(*args, timeout_s=...)` sends one item to an idle worker and waits at most `timeout_s`;
  past it the worker is SIGKILLed and replaced, and the item's outcome is `timeout`. A worker that
  dies (segfault, out of memory) gives `crash` and is replaced too. Calls are safe from any thread:
  each one checks a worker out of a queue, so `size` calls run in parallel.
- `pool.map(items, timeout_s=...)` keeps every worker busy, for batches (a rollout's completions).

`fn` must be a module-level function (it is pickled by name) and should not raise; an exception
inside it is reported as `error` with its message, never re-raised in the caller.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "error", "timeout", "crash"]
IN_WORKER_ENV = "R1KIT_IN_WORKER"
"""Set in every worker: code that would start its own pool (math grading) runs in place instead, under
the timeout of the worker it is already in."""


def in_worker() -> bool:
    return os.environ.get(IN_WORKER_ENV) == "1"


@dataclass(frozen=True)
class Outcome:
    """What happened to one item: its value when `status == "ok"`, else why there is none."""

    status: Status
    value: Any = None
    error: str = ""


def _serve(fn: Callable[..., Any], conn: Connection, warmup: Sequence[Any] | None) -> None:
    """Worker loop: warm up, say ready, then receive argument tuples and send back ("ok", value) or
    ("error", message)."""
    if warmup is not None:
        with contextlib.suppress(Exception):
            fn(*warmup)
    conn.send(("ready", None))
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # a verdict, never a dead worker
            reply = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # an unpicklable value
            conn.send(("error", f"unpicklable result: {exc}"))


_WORKER_MAIN = "import sys; from r1kit.rewards.workers import worker_main; worker_main(sys.argv[1])"


class _Worker:
    """One worker: a fresh interpreter running `worker_main(FD)`, talking over a socket pair.

    A plain subprocess rather than `multiprocessing`'s spawn: spawn re-runs the caller's `__main__`
    in every worker (a script without an `if __name__ == "__main__"` guard would recurse, and a
    training script would import torch once more per worker)."""

    def __init__(self, fn: Callable[..., Any], warmup: Sequence[Any] | None) -> None:
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, IN_WORKER_ENV: "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_MAIN, str(child.fileno())],
            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.conn.send((fn, None if warmup is None else tuple(warmup)))
        self.ready = False

    def wait_ready(self, timeout_s: float) -> bool:
        """Imports and warm-up are not charged to the first item's timeout."""
        if not self.ready and self.conn.poll(timeout_s):
            self.ready = self.conn.recv()[0] == "ready"
        return self.ready

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.conn.close()


class WorkerPool:
    """`size` worker processes serving `fn`; see the module docstring."""

    def __init__(self, fn: Callable[..., Any], *, size: int | None = None, name: str = "r1kit-worker",
                 warmup: Sequence[Any] | None = None, start_timeout_s: float = 120.0) -> None:
        self.fn = fn
        self.warmup = None if warmup is None else tuple(warmup)
        self.start_timeout_s = start_timeout_s
        self.size = max(1, size or os.cpu_count() or 1)
        self.name = name
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False
        self.restarts = 0
        for _ in range(self.size):
            self._add()

    def _add(self) -> None:
        worker = _Worker(self.fn, self.warmup)
        with self._lock:
            self._workers.append(worker)
        self._idle.put(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            self.restarts += 1
            closed = self._closed
        if not closed:
            self._add()

    def call(self, *args: Any, timeout_s: float) -> Outcome:
        """Run `fn(*args)` in a worker; at most `timeout_s` seconds of waiting once it is sent."""
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        worker = self._idle.get()
        try:
            if not worker.wait_ready(self.start_timeout_s):
                self._replace(worker)
                return Outcome("crash", error=f"worker did not start within {self.start_timeout_s:g}s")
            worker.conn.send(args)
            if not worker.conn.poll(timeout_s):
                self._replace(worker)
                return Outcome("timeout", error=f"no verdict within {timeout_s:g}s; worker killed")
            status, value = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._replace(worker)
            return Outcome("crash", error=f"worker died: {type(exc).__name__}")
        except BaseException:
            # Interrupted mid-item (KeyboardInterrupt): the worker's state is unknown, replace it.
            self._replace(worker)
            raise
        self._idle.put(worker)
        return Outcome("ok", value) if status == "ok" else Outcome("error", error=value)

    def map(self, items: Iterable[Sequence[Any]], *, timeout_s: float) -> list[Outcome]:
        """`call` on every argument tuple, `size` at a time; outcomes in input order."""
        items = list(items)
        if len(items) <= 1:
            return [self.call(*args, timeout_s=timeout_s) for args in items]
        with ThreadPoolExecutor(max_workers=self.size) as executor:
            return list(executor.map(lambda args: self.call(*args, timeout_s=timeout_s), items))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.kill()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[tuple[str, int], WorkerPool] = {}
_shared_lock = threading.Lock()


def shared_pool(fn: Callable[..., Any], *, size: int | None = None,
                warmup: Sequence[Any] | None = None) -> WorkerPool:
    """One pool per function and process, made on first use and closed at exit.

    Keyed by pid too: a pool inherited through `fork` belongs to the parent and must not be used.
    """
    key = (f"{fn.__module__}.{fn.__qualname__}", os.getpid())
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None or pool._closed:
            pool = _shared[key] = WorkerPool(fn, size=size, name=f"r1kit-{fn.__name__}",
                                                   warmup=warmup)
        return pool


@atexit.register
def _close_shared() -> None:
    for pool in list(_shared.values()):
        pool.close()


def _set_parent_death_signal() -> None:
    """Linux: the kernel SIGKILLs this worker when its parent dies, even mid-item."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def worker_main(fd: str) -> None:
    """Entry point of a worker process (see `_Worker`)."""
    _set_parent_death_signal()
    conn = Connection(int(fd))
    fn, warmup = conn.recv()
    _serve(fn, conn, warmup)
