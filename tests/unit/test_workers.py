"""`r1kit.rewards.workers.WorkerPool`: verdicts, errors, hard kills and replacement, no leftovers."""

from __future__ import annotations

import math
import os
import time

from r1kit.rewards.workers import WorkerPool


def test_values_and_errors_come_back_without_killing_the_worker():
    with WorkerPool(math.sqrt, size=1) as pool:
        assert pool.call(16.0, timeout_s=30).value == 4.0
        outcome = pool.call("x", timeout_s=30)
        assert outcome.status == "error" and "TypeError" in outcome.error
        assert pool.call(9.0, timeout_s=30).value == 3.0
        assert pool.restarts == 0


def test_a_hung_item_is_killed_at_the_timeout_and_the_worker_replaced():
    with WorkerPool(time.sleep, size=1) as pool:
        assert pool.call(0, timeout_s=30).status == "ok"  # started and warm
        old = pool._workers[0].process
        start = time.monotonic()
        outcome = pool.call(3600, timeout_s=0.5)
        assert outcome.status == "timeout" and time.monotonic() - start < 3
        assert old.poll() is not None  # the hung process is gone, not orphaned
        assert pool.restarts == 1
        assert pool.call(0, timeout_s=30).status == "ok"


def test_a_dying_worker_is_a_crash_and_is_replaced():
    with WorkerPool(os._exit, size=1) as pool:
        assert pool.call(3, timeout_s=30).status == "crash"
        assert pool.restarts == 1 and len(pool._workers) == 1


def test_map_runs_on_every_worker_in_input_order_and_close_leaves_nothing():
    pool = WorkerPool(math.factorial, size=2)
    outcomes = pool.map([(n,) for n in range(10)], timeout_s=30)
    assert [o.value for o in outcomes] == [math.factorial(n) for n in range(10)]
    processes = [w.process for w in pool._workers]
    pool.close()
    assert all(p.poll() is not None for p in processes)
