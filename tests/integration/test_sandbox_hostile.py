"""Hostile programs against the code sandbox. Each test checks the program was contained (its status and what
it reports about its attempts) and, through `Host.assert_unchanged`, that the host is as it was: the canary
file intact, no file named after the test's token anywhere the program aimed, a host sentinel process alive,
a fresh sandboxed run still working, and no process left whose command line carries the token.

Every process of a hostile program carries a unique token in its argv (`_TAG` re-executes the program with
it; children inherit or are given it), so a scan of the host's /proc finds anything that outlived the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import skip_without_sandbox

from r1kit.sandbox import SandboxResult, run_python

REPO = Path(__file__).resolve().parents[2]

# Re-exec with the token as the last argument, so that every process of the program shows it in /proc.
_TAG = """\
import os, sys
if sys.argv[-1] != "TOKEN":
    os.execv(sys.executable, [sys.executable, "-I", sys.argv[0], "TOKEN"])
import json

def attempt(fn):
    try:
        fn()
        return "done"
    except BaseException as e:
        return type(e).__name__
"""


@dataclass
class Host:
    token: str
    secret: str
    canary: Path
    expected: Path
    sentinel: subprocess.Popen[bytes]

    @property
    def escape_targets(self) -> list[Path]:
        """Where programs try to write `escape-<token>`: none may appear on the host."""
        dirs = ["/", "/tmp", "/var/tmp", "/dev/shm", "/dev", "/root", "/etc", "/home", "/var", "/usr", "/usr/lib",
                "/usr/bin", "/work", str(REPO), str(self.canary.parent),
                os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(os.__file__)]
        return [Path(d) / f"escape-{self.token}" for d in dirs]

    def run(self, code: str, **limits) -> SandboxResult:
        program = (_TAG + textwrap.dedent(code)).replace("TOKEN", self.token).replace("CANARY", str(self.canary))
        program = program.replace("EXPECTED", str(self.expected))
        return run_python(program, **limits)

    def report(self, result: SandboxResult) -> dict:
        assert result.stdout, (result.status, result.stderr[-2000:])
        return json.loads(result.stdout.splitlines()[-1])

    def assert_unchanged(self, *results: SandboxResult) -> None:
        for r in results:
            assert self.secret not in r.stdout + r.stderr
        assert self.canary.read_text() == self.secret
        assert sorted(p.name for p in self.canary.parent.iterdir()) == ["canary.txt", "expected.txt"]
        assert [p for p in self.escape_targets if p.exists()] == []
        assert self.sentinel.poll() is None, "the host sentinel process was killed"
        assert _processes_with(self.token) == []
        assert run_python("print(6 * 7)").stdout == "42\n"


def _processes_with(token: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(pid + ": " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    skip_without_sandbox()
    token = f"r1kit-hostile-{uuid.uuid4().hex}"
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("R1KIT_HOST_SECRET", secret)
    canary = tmp_path / "canary.txt"
    canary.write_text(secret)
    expected = tmp_path / "expected.txt"
    expected.write_text(f"the expected output is {secret}\n")
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield Host(token, secret, canary, expected, sentinel)
    finally:
        sentinel.kill()
        sentinel.wait()
        for found in _processes_with(token):  # only after a failure: what escaped, found by its token
            with contextlib.suppress(OSError):
                os.kill(int(found.split(":")[0]), signal.SIGKILL)
        for path in [*Host(token, secret, canary, expected, sentinel).escape_targets, *Path("/tmp").glob(f"*{token}*")]:
            path.unlink(missing_ok=True)


def test_fork_bomb(host):
    # Forks are counted up to 64 first, and the bomb only goes off when the limit stopped them: a sandbox
    # that lost its process limit fails this test instead of flooding the machine.
    r = host.run("""
        import time
        n = 0
        while n < 64:
            try:
                if os.fork() == 0:
                    time.sleep(100)
                    os._exit(0)
                n += 1
            except OSError:
                break
        print(json.dumps({"forked": n}), flush=True)
        while n < 64:
            try:
                os.fork()
            except OSError:
                pass
    """, timeout_s=2.0, max_processes=16)
    assert r.status == "timeout"
    assert host.report(r)["forked"] < 16
    host.assert_unchanged(r)


def test_memory_bomb(host):
    r = host.run("""
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))
    """, memory_mb=256)
    assert r.status == "memory"
    host.assert_unchanged(r)


def test_disk_fill_in_tmp_stops_at_the_tmpfs_size(host):
    r = host.run("""
        written, error, i = 0, "", 0
        try:
            while i < 32:  # at most 32 MiB even if the tmpfs lost its size
                with open(f"/tmp/fill-TOKEN-{i}", "wb") as f:
                    for _ in range(4):
                        f.write(b"x" * (256 << 10))
                        f.flush()
                        written += 256 << 10
                i += 1
        except OSError as e:
            error = e.strerror
        big = attempt(lambda: open("/tmp/big", "wb").write(b"y" * (5 << 20)))
        print(json.dumps({"written": written, "error": error, "big": big}))
    """, tmp_mb=8, max_file_mb=4)
    report = host.report(r)
    assert report["written"] <= 8 << 20
    assert report["error"] == "No space left on device"
    assert report["big"] == "OSError"  # a file past max_file_mb: EFBIG (or the tmpfs is full first)
    host.assert_unchanged(r)


def test_disk_fill_elsewhere_is_read_only(host):
    r = host.run("""
        targets = ["/", "/usr", "/usr/lib", "/bin", "/dev", "/proc", "/var", "/home", os.path.dirname(os.__file__),
                   os.path.dirname(sys.executable)]
        out = {t: attempt(lambda t=t: open(os.path.join(t, "escape-TOKEN"), "wb").write(b"x")) for t in targets}
        out["/dev/shm big"] = attempt(lambda: open("/dev/shm/escape-TOKEN", "wb").write(b"x" * (2 << 20)))
        # Writes that would change nothing if they succeeded: a broken sandbox fails this test, unharmed.
        import socket
        out["hostname"] = attempt(lambda: open("/proc/sys/kernel/hostname", "w").write(socket.gethostname()))
        out["chmod python"] = attempt(lambda: os.chmod(sys.executable, os.stat(sys.executable).st_mode))
        out["append python"] = attempt(lambda: open(sys.executable, "ab").write(b""))
        print(json.dumps(out))
    """)
    report = host.report(r)
    assert "done" not in report.values(), report
    host.assert_unchanged(r)


def test_write_and_delete_outside(host):
    r = host.run("""
        out = {}
        for d in ["/work", "REPO", "/root", "/etc", os.path.dirname("CANARY"), "/var/tmp"]:
            out[d] = attempt(lambda d=d: open(os.path.join(d, "escape-TOKEN"), "w").write("x"))
        out["delete canary"] = attempt(lambda: os.remove("CANARY"))
        out["truncate canary"] = attempt(lambda: open("CANARY", "w").write("pwned"))
        # The sandbox's own /tmp is writable, but it is a tmpfs that dies with the run.
        out["/tmp"] = attempt(lambda: open("/tmp/escape-TOKEN", "w").write("x"))
        def recreate():
            os.makedirs(os.path.dirname("CANARY"), exist_ok=True)
            open("CANARY", "w").write("pwned")
        out["recreate canary"] = attempt(recreate)
        print(json.dumps(out))
    """.replace("REPO", str(REPO)))
    report = host.report(r)
    assert report.pop("/tmp") == "done"
    assert report.pop("recreate canary") in ("done", "PermissionError")  # /tmp/pytest-of-* inside the tmpfs
    assert "done" not in report.values(), report
    host.assert_unchanged(r)


def test_read_host_files(host):
    r = host.run("""
        paths = ["CANARY", "EXPECTED", "/etc/shadow", "/etc/passwd", "/etc/hostname", "/root/.bashrc",
                 "REPO/README.md", "REPO/pyproject.toml", "/work/shared/STYLE.md", "/home"]
        out = {p: attempt(lambda p=p: print(open(p).read())) for p in paths}
        out["list /"] = sorted(os.listdir("/"))
        print(json.dumps(out))
    """.replace("REPO", str(REPO)))
    report = host.report(r)
    listing = report.pop("list /")
    assert set(report.values()) <= {"FileNotFoundError", "PermissionError", "IsADirectoryError"}, report
    assert not {"etc", "work", "home", "var"} & set(listing)
    host.assert_unchanged(r)


def test_network_is_unreachable(host):
    r = host.run("""
        import socket
        def tcp(addr):
            with socket.create_connection(addr, timeout=2):
                pass
        def udp():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", ("8.8.8.8", 53))
        out = {"tcp 1.1.1.1:80": attempt(lambda: tcp(("1.1.1.1", 80))), "udp 8.8.8.8": attempt(udp),
               "dns": attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
               "interfaces": [name for _, name in socket.if_nameindex()]}
        print(json.dumps(out))
    """)
    report = host.report(r)
    assert report.pop("interfaces") == ["lo"]
    assert "done" not in report.values(), report
    host.assert_unchanged(r)


def test_loopback_does_not_reach_host_sockets(host):
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(f"\0{host.token}")
    abstract.listen()
    with tcp, udp, abstract:
        r = host.run(f"""
            import socket
            def tcp():
                with socket.create_connection(("127.0.0.1", {tcp.getsockname()[1]}), timeout=2) as s:
                    s.sendall(b"hello host")
            def udp():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(b"hello host", ("127.0.0.1", {udp.getsockname()[1]}))
            def unix():
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect("\\0TOKEN")
                    s.sendall(b"hello host")
            print(json.dumps({{"tcp": attempt(tcp), "unix": attempt(unix), "udp": attempt(udp)}}))
        """)
        for server in (tcp, udp, abstract):
            server.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            abstract.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    report = host.report(r)
    assert report["tcp"] == "ConnectionRefusedError" and report["unix"] == "ConnectionRefusedError"
    # UDP sends into the sandbox's own loopback, where nobody listens; the host socket got nothing (above).
    host.assert_unchanged(r)


def test_daemon_escape_by_double_fork_and_setsid(host):
    r = host.run("""
        for _ in range(4):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.closerange(0, 3)
                    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "TOKEN"])
                os._exit(0)
        import time
        time.sleep(0.3)
        print(json.dumps({"spawned": 4}))
    """)
    assert r.status == "ok"
    host.assert_unchanged(r)


def test_killing_the_parent_and_everything(host):
    r = host.run("""
        import signal, time
        if os.getpid() > 8 or len([p for p in os.listdir("/proc") if p.isdigit()]) > 8:
            print(json.dumps({"not in a pid namespace": os.getpid()}))  # never signal a host's processes
            sys.exit(0)
        child = os.fork()
        if child == 0:
            time.sleep(300)
        out = {"ppid": attempt(lambda: os.kill(os.getppid(), signal.SIGKILL)),
               "init": attempt(lambda: os.kill(1, signal.SIGKILL)),
               "kill -9 -1": attempt(lambda: os.kill(-1, signal.SIGKILL))}  # all this user may signal
        out["child"] = os.waitpid(child, 0)[1]
        print(json.dumps(out), flush=True)
        os.killpg(0, signal.SIGKILL)
    """)
    report = host.report(r)
    assert r.status == "error" and r.returncode == -9
    # The namespace's init (the parent) ignores or refuses the signal; kill -1 reaches the program's own child.
    assert report["ppid"] in ("done", "PermissionError") and report["init"] in ("done", "PermissionError")
    assert report["kill -9 -1"] == "done" and report["child"] == 9
    host.assert_unchanged(r)


def test_infinite_stdout(host):
    r = host.run("""
        while True:
            print("y" * 100)
    """, max_output_bytes=64 * 1024)
    assert (r.status, len(r.stdout)) == ("output_limit", 64 * 1024)
    host.assert_unchanged(r)


def test_huge_stderr(host):
    r = host.run("""
        sys.stderr.write("e" * (50 << 20))
    """)
    assert (r.status, len(r.stderr)) == ("output_limit", 64 * 1024)
    host.assert_unchanged(r)


def test_sleep_forever(host):
    r = host.run("""
        import time
        time.sleep(10 ** 9)
    """, timeout_s=1.0)
    assert r.status == "timeout" and r.wall_s < 3
    host.assert_unchanged(r)


def test_spawned_subprocesses_die_with_the_run(host):
    r = host.run("""
        import subprocess
        sleeper = [sys.executable, "-c", "import time; time.sleep(300)", "TOKEN"]
        procs = [subprocess.Popen(sleeper) for _ in range(3)]
        line = "sh -c 'exec " + sys.executable + " -c \\"import time; time.sleep(300)\\" TOKEN' &"
        shell = attempt(lambda: os.system(line))
        print(json.dumps({"started": len(procs), "shell": shell}))
    """)
    assert r.status == "ok" and host.report(r)["started"] == 3
    host.assert_unchanged(r)


def test_cpu_spin_in_threads_and_processes(host):
    r = host.run("""
        import threading
        def spin():
            while True:
                pass
        for _ in range(3):
            if os.fork() == 0:
                spin()
        for _ in range(3):
            threading.Thread(target=spin, daemon=True).start()
        spin()
    """, timeout_s=1.0)
    assert r.status == "timeout" and r.wall_s < 3
    host.assert_unchanged(r)


def test_too_many_open_files(host):
    r = host.run("""
        files = []
        try:
            while True:
                files.append(open("/dev/null"))
        except OSError as e:
            print(json.dumps({"opened": len(files), "error": e.strerror}))
    """, max_open_files=64)
    report = host.report(r)
    assert report == {"opened": report["opened"], "error": "Too many open files"} and report["opened"] < 64
    host.assert_unchanged(r)


def test_ptrace_and_proc_are_confined(host):
    r = host.run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def ptrace_init():
            if libc.ptrace(16, 1, 0, 0) != 0:  # PTRACE_ATTACH
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        out = {"ptrace": attempt(ptrace_init), "pids": pids,
               "init root": attempt(lambda: os.listdir("/proc/1/root/")),
               "sysrq": attempt(lambda: open("/proc/sysrq-trigger", "w").write("b"))}
        print(json.dumps(out))
    """)
    report = host.report(r)
    assert report["ptrace"] == "PermissionError" and report["sysrq"] != "done"
    assert report["init root"] in ("PermissionError", "done")  # if readable, it is the sandbox's own root
    assert report["pids"][0] == 1 and len(report["pids"]) <= 4  # a new pid namespace: no host process visible
    host.assert_unchanged(r)


def test_host_environment_does_not_leak(host):
    r = host.run("""
        out = {"environ": dict(os.environ), "self": attempt(lambda: print(open("/proc/self/environ").read())),
               "init": attempt(lambda: print(open("/proc/1/environ").read()))}
        print(json.dumps(out))
    """)
    report = host.report(r)
    assert set(report["environ"]) <= {"PATH", "LANG", "HOME", "PWD"}
    assert "R1KIT_HOST_SECRET" not in r.stdout
    host.assert_unchanged(r)


def test_privileges_cannot_be_regained(host):
    r = host.run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def call(fn, *args):
            if fn(*args) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        out = {"uid": os.getuid(), "setuid 0": attempt(lambda: os.setuid(0)),
               "user namespace": attempt(lambda: call(libc.unshare, 0x10000000)),
               "mount": attempt(lambda: call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)),
               "chroot": attempt(lambda: os.chroot("/tmp")),
               "no_new_privs": status["NoNewPrivs"].strip(), "caps": status["CapEff"].strip()}
        print(json.dumps(out))
    """)
    report = host.report(r)
    assert report.pop("uid") != 0
    assert report.pop("no_new_privs") == "1" and int(report.pop("caps"), 16) == 0
    assert "done" not in report.values(), report
    host.assert_unchanged(r)


_USERNS_PYTHON = "/usr/bin/python3"
_USERNS_PROGRAMS = {
    "fork": """
n = 0
try:
    while True:
        if os.fork() == 0:
            import time
            time.sleep(100)
        n += 1
except OSError:
    print(n)
""",
    "outside": """
import socket
print(attempt(lambda: open("/work/escape-TOKEN", "w")), attempt(lambda: open("/root/.bashrc")),
      attempt(lambda: socket.create_connection(("1.1.1.1", 80), timeout=1)), os.getuid())
""",
    "userns": "import ctypes\nprint(ctypes.CDLL(None).unshare(0x10000000))",
    "fork_memory": """
held = 0
for i in range(8):
    pid = os.fork()
    if pid == 0:
        try:
            block = bytearray(400 << 20)
            os._exit(0)
        except MemoryError:
            os._exit(1)
    held += os.waitpid(pid, 0)[1] == 0
print(held)
""",
    "daemon": """
import time
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "TOKEN"])
time.sleep(5)
""",
}


def _package_copy_for(uid: int) -> Path | None:
    """A copy of the `r1kit.sandbox` package in a directory that `uid` can read, or None.

    The repository may live where `uid` cannot enter (a clone in /root or in `mktemp -d`, both mode 700), so
    the test never imports from it: it copies the package into a fresh world-readable directory under the
    first shared temporary directory that `uid` can reach, and checks the import as `uid` before using it."""
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        if not os.path.isdir(base):
            continue
        root = Path(tempfile.mkdtemp(prefix="r1kit-sandbox-pkg-", dir=base))
        root.chmod(0o755)
        shutil.copytree(REPO / "src" / "r1kit" / "sandbox", root / "r1kit" / "sandbox",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "src" / "r1kit" / "__init__.py", root / "r1kit" / "__init__.py")
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        probe = subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                                _USERNS_PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {str(root)!r}); "
                                "import r1kit.sandbox"], capture_output=True, timeout=60, cwd="/")
        if probe.returncode == 0:
            return root
        shutil.rmtree(root, ignore_errors=True)
    return None


@pytest.fixture
def package_for_nobody() -> Iterator[Path]:
    root = _package_copy_for(65534)
    if root is None:
        pytest.skip("uid 65534 can read none of /tmp, /var/tmp, /dev/shm, so no copy of r1kit it can import")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(_USERNS_PYTHON),
                    reason="runs the non-root (user-namespace) mode by dropping to nobody: needs root and setpriv")
def test_non_root_callers_get_the_same_containment(host, package_for_nobody):
    # A caller that is not root gets uid 65534 in a user namespace instead of a host uid: check that mode
    # too, as nobody, with the system Python (nobody cannot read a Python under /root) and a copy of the
    # package that nobody can read (the clone itself may be private).
    programs = {name: (_TAG + code).replace("TOKEN", host.token) for name, code in _USERNS_PROGRAMS.items()}
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(package_for_nobody)!r})
        from r1kit.sandbox import run_python
        out = {{}}
        for name, code in {programs!r}.items():
            r = run_python(code, timeout_s=1.0, max_processes=16)
            out[name] = [r.status, r.stdout.strip()]
        print(json.dumps(out))
    """)
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", _USERNS_PYTHON,
                           "-I", "-c", script], capture_output=True, text=True, timeout=60, cwd="/")
    if "cannot create the sandbox" in done.stderr:
        pytest.skip("user namespaces are not available to unprivileged users here")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fork"][0] == "ok" and 0 < int(report["fork"][1]) < 16
    assert report["outside"] == ["ok", "FileNotFoundError FileNotFoundError OSError 65534"]
    assert report["userns"] == ["ok", "-1"]
    assert report["fork_memory"] == ["ok", "0"]  # no cgroup for nobody here: 128 MB shares, no 400 MB child
    assert report["daemon"] == ["timeout", ""]
    host.assert_unchanged()


def _pss_mb(token: str) -> float:
    """Anonymous and shared-memory proportional set size of every process carrying `token`, summed
    (shared pages counted once; the interpreter's file pages, already cached by the host, left out)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in rollup.splitlines()
                     if line.startswith(("Pss_Anon:", "Pss_Shmem:")))
    return total / 1024


def test_forking_memory_bomb_stays_within_the_total_budget(host):
    # 8 children each touch 400 MB and hold it: 3.2 GB asked under a 512 MB budget for the whole program.
    # The budget is one cgroup for all the program's processes, or per-process shares where none exists.
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _pss_mb(host.token))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = host.run("""
            import time
            kids = []
            for i in range(8):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(400 << 20)
                    for j in range(0, len(block), 4096):
                        block[j] = 1
                    print("held", flush=True)
                    time.sleep(3)
                    os._exit(0)
                kids.append(pid)
            codes = [os.waitpid(pid, 0)[1] for pid in kids]
            print(json.dumps({"failed": sum(c != 0 for c in codes)}))
            sys.exit(1 if any(codes) else 0)
        """, memory_mb=512, timeout_s=20)
    finally:
        stop.set()
        sampler.join()
    assert r.status == "memory", (r.status, r.stderr[-500:])
    assert r.stdout.count("held") <= 1
    assert host.report(r)["failed"] >= 7
    # Sampled from outside, process after process (not one snapshot: a child killed after it was read can
    # be counted beside the next one's growth, which CI once saw as 564 MB), hence the allowance. It stays
    # below two 400 MB children at once (800 MB); all eight together would be 3,200 MB.
    assert peak[0] < 2 * 400, f"the program held {peak[0]:.0f} MB together"
    if r.memory_peak_mb is not None:  # the cgroup's own accounting, exact
        assert r.memory_peak_mb <= 512
    host.assert_unchanged(r)
