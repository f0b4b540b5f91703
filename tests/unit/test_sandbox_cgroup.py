"""The sandbox's whole-program budget: where per-run cgroups go, the fallback shares, and that a run leaves
no cgroup behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conftest import skip_without_sandbox

from r1kit.sandbox import cgroup, run_python

HYBRID = """\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_own_cgroups_are_found_in_each_hierarchy():
    own = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ab12\n0::/\n"
    found = cgroup.candidate_parents(own, HYBRID)
    assert found == {"v2": (Path("/sys/fs/cgroup/unified"),),
                     "v1": (Path("/sys/fs/cgroup/memory/process_api/ab12"), Path("/sys/fs/cgroup/pids"))}


def test_a_pure_v2_machine_and_a_container_mount_root():
    # In a container the hierarchy is often mounted from a sub-directory: paths are relative to that root.
    mountinfo = "30 25 0:26 /docker/c0ffee /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup.candidate_parents("0::/docker/c0ffee/jobs\n", mountinfo) == {
        "v2": (Path("/sys/fs/cgroup/jobs"),)}
    assert cgroup.candidate_parents("0::/\n", "") == {}


def test_fallback_shares_never_exceed_the_budget():
    for memory_mb in (1, 16, 100, 256, 512, 1000, 4096):
        for processes in (1, 2, 16, 64):
            per, n = cgroup.split_budget(memory_mb, processes)
            assert per * n <= memory_mb and 1 <= n <= processes
            assert per >= min(memory_mb, cgroup.MIN_PROCESS_MB)


def test_a_directory_without_delegated_controllers_is_not_used(tmp_path, monkeypatch):
    (tmp_path / "cgroup.subtree_control").write_text("cpu io\n")
    (tmp_path / "cgroup.procs").write_text("")
    monkeypatch.setenv(cgroup.ENV_PARENT, str(tmp_path))
    cgroup.controller.cache_clear()
    try:
        assert cgroup.controller() is None
    finally:
        monkeypatch.delenv(cgroup.ENV_PARENT)
        cgroup.controller.cache_clear()


def test_a_run_leaves_no_cgroup_behind():
    skip_without_sandbox()
    ctrl = cgroup.controller()
    if ctrl is None:
        pytest.skip("no writable cgroup here: runs use per-process shares")
    before = {p.name for parent in ctrl.parents for p in parent.glob("r1kit-sandbox-*")}
    r = run_python("print(1)", memory_mb=64)
    assert r.status == "ok" and r.memory_peak_mb is not None and 0 < r.memory_peak_mb <= 64
    after = {p.name for parent in ctrl.parents for p in parent.glob("r1kit-sandbox-*")}
    assert after == before


def test_the_pids_budget_counts_the_whole_program():
    skip_without_sandbox()
    if cgroup.controller() is None:
        pytest.skip("no writable cgroup here")
    r = run_python("""
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        n += 1
except OSError:
    print(n)
""", max_processes=6, timeout_s=3)
    assert r.status == "ok" and 0 < int(r.stdout) < 6, (r.status, r.stdout, r.stderr[-300:])


def test_stale_cgroups_of_dead_processes_are_swept(tmp_path):
    dead = 2**22 + 12345  # above pid_max's default: no such process
    while Path(f"/proc/{dead}").exists():
        dead += 1
    stale, live = tmp_path / f"r1kit-sandbox-{dead}-0", tmp_path / f"r1kit-sandbox-{os.getpid()}-0"
    stale.mkdir()
    live.mkdir()
    cgroup._sweep((tmp_path,))
    assert not stale.exists() and live.exists()
