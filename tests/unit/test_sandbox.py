"""The code sandbox's contract: statuses, stdin, output caps, the interpreter the program gets, concurrent
runs, the unsafe local mode and the setup command. Hostile programs: tests/integration/test_sandbox_hostile.py.

Without bubblewrap these tests skip, naming `r1kit setup-sandbox`; with CI set they fail instead."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.conftest import skip_without_sandbox

from r1kit.sandbox import main_setup_sandbox, run_python


@pytest.fixture(autouse=True)
def _needs_sandbox() -> None:
    skip_without_sandbox()


def test_ok_keeps_stdout_and_stderr_apart():
    r = run_python("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (r.status, r.returncode, r.stdout, r.stderr) == ("ok", 0, "out\n", "err\n")
    assert 0 < r.wall_s < 5


@pytest.mark.parametrize(("code", "returncode", "in_stderr"), [
    ("raise ValueError('boom')", 1, "ValueError: boom"),
    ("import sys; sys.exit(3)", 3, ""),
    ("def f(:\n  pass", 1, "SyntaxError"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM, ""),
])
def test_failures_are_errors_with_their_exit_status(code, returncode, in_stderr):
    r = run_python(code)
    assert (r.status, r.returncode) == ("error", returncode)
    assert in_stderr in r.stderr


def test_wall_clock_timeout_keeps_what_was_printed():
    r = run_python("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout_s=0.5)
    assert (r.status, r.stdout) == ("timeout", "started\n")
    assert r.returncode == -signal.SIGKILL
    assert 0.5 <= r.wall_s < 3


def test_cpu_spin_times_out():
    r = run_python("while True:\n    pass", timeout_s=0.5)
    assert r.status == "timeout" and r.wall_s < 3


def test_address_space_limit_gives_memory():
    r = run_python("x = bytearray(2 << 30)", memory_mb=256)
    assert (r.status, r.returncode) == ("memory", 1)
    assert "MemoryError" in r.stderr
    grow = run_python("x = []\nwhile True:\n    x.append(bytearray(10 << 20))", memory_mb=256, timeout_s=5)
    assert grow.status == "memory"


def test_memory_below_the_limit_is_fine():
    r = run_python("x = bytearray(100 << 20)\nprint(len(x) >> 20)", memory_mb=256)
    assert (r.status, r.stdout) == ("ok", "100\n")


def test_output_cap_applies_to_each_stream():
    exact = run_python("import sys; sys.stdout.write('x' * 1000)", max_output_bytes=1000)
    assert (exact.status, len(exact.stdout)) == ("ok", 1000)
    over = run_python("import sys; sys.stdout.write('x' * 1001)", max_output_bytes=1000)
    assert (over.status, over.stdout) == ("output_limit", "x" * 1000)
    err = run_python("import sys; sys.stderr.write('e' * 5000); print('fine')", max_output_bytes=1000)
    assert (err.status, err.stderr) == ("output_limit", "e" * 1000)


def test_stdin_reaches_the_program():
    code = "import sys\ndata = sys.stdin.read()\nprint(len(data), data.splitlines()[:2])"
    r = run_python(code, stdin="héllo ✓\nsecond line\n" + "z" * 1_000_000)
    assert (r.status, r.stdout) == ("ok", "1000020 ['héllo ✓', 'second line']\n")
    eof = run_python("input()")
    assert eof.status == "error" and "EOFError" in eof.stderr


def test_program_cannot_rewrite_its_stdin():
    code = "import os\nos.write(0, b'x')"
    r = run_python(code, stdin="data")
    assert r.status == "error"
    assert "Bad file descriptor" in r.stderr or "Operation not permitted" in r.stderr


def test_undecodable_output_is_replaced():
    r = run_python("import sys; sys.stdout.buffer.write(b'a\\xffb')")
    assert (r.status, r.stdout) == ("ok", "a\ufffdb")


def test_program_gets_a_clean_isolated_interpreter():
    code = textwrap.dedent("""
        import os, sys
        print(sys.flags.isolated, sys.version_info[:3], os.getcwd(), sys.argv[0])
        print(sorted(os.environ))
        print(os.getuid() != 0, os.getgid() != 0)
        print(sorted(os.listdir('/tmp')), sorted(os.listdir('/')))
        try:
            import yaml
        except ImportError:
            print('no site-packages')
        exit(0)
    """)
    r = run_python(code)
    assert r.status == "ok", r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"1 {tuple(sys.version_info[:3])} /tmp main.py"
    assert set(eval(lines[1])) <= {"PATH", "LANG", "HOME", "PWD"}
    assert lines[2] == "True True"
    tmp, root = lines[3].split("] [")
    assert tmp == "['main.py'"
    assert not {"etc", "home", "work", "var", "sys"} & set(eval("[" + root))
    assert lines[4] == "no site-packages"


def test_concurrent_runs_do_not_see_each_other():
    code = textwrap.dedent("""
        import os
        seen = sorted(os.listdir('/tmp'))
        name = input()
        open('/tmp/' + name, 'w').write(name)
        print(name, seen)
    """)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: run_python(code, stdin=f"run{i}\n"), range(16)))
    assert [r.stdout for r in results] == [f"run{i} ['main.py']\n" for i in range(16)]


@pytest.mark.skipif(os.geteuid() != 0, reason="uid slots are for root callers; others get uid 65534 in a user ns")
def test_overlapping_runs_of_a_root_caller_get_distinct_uids():
    # Each run its own host uid, so that RLIMIT_NPROC, counted per uid, is each run's own.
    code = "import os, time\ntime.sleep(0.5)\nprint(os.getuid())"
    with ThreadPoolExecutor(4) as pool:
        uids = [int(r.stdout) for r in pool.map(lambda _: run_python(code), range(4))]
    assert len(set(uids)) == 4 and min(uids) >= 60000


def test_unsafe_local_runs_with_limits_and_a_warning():
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        r = run_python("print(input()[::-1])", stdin="abc", unsafe_local=True)
    assert (r.status, r.stdout) == ("ok", "cba\n")
    with pytest.warns(RuntimeWarning):
        slow = run_python("import time; time.sleep(60)", timeout_s=0.5, unsafe_local=True)
        big = run_python("x = bytearray(2 << 30)", memory_mb=256, unsafe_local=True)
    assert (slow.status, big.status) == ("timeout", "memory")


def test_setup_sandbox_command_passes_its_smoke_test(capsys):
    assert main_setup_sandbox([]) == 0
    assert "code sandbox ready" in capsys.readouterr().out

