"""`r1kit setup-sandbox`: install bubblewrap on a Debian-like machine and check that sandboxed runs work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from r1kit.sandbox.run import SandboxUnavailableError, require_sandbox, run_python


def setup_sandbox() -> str:
    """Install bubblewrap when it is missing (apt-get, as root), then run a sandboxed smoke test.

    Returns a one-line report; raises SandboxUnavailableError saying what to do when it cannot succeed
    (not root and no passwordless sudo: the command to run; no apt-get: the package to install; bwrap
    failing: why).
    """
    if shutil.which("bwrap") is None:
        if shutil.which("apt-get") is None:
            raise SandboxUnavailableError("bubblewrap is missing and apt-get is not available: install the "
                                          "`bubblewrap` package with this system's package manager")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        if sudo and shutil.which("sudo") is None:
            raise SandboxUnavailableError("bubblewrap is missing; install it with:\n"
                                          "  sudo apt-get update && sudo apt-get install -y bubblewrap")
        _apt_install("bubblewrap", sudo)
    require_sandbox(recheck=True)
    result = run_python("print(1)", timeout_s=30.0)
    if result.status != "ok" or result.stdout != "1\n":
        raise SandboxUnavailableError(f"sandbox smoke test failed: {result}")
    mode = "host uid 60000+ (caller is root)" if os.geteuid() == 0 else "uid 65534 in a user namespace"
    return f"code sandbox ready: {shutil.which('bwrap')}, {mode}, print(1) ran in {result.wall_s * 1000:.0f} ms"


def _apt_install(package: str, sudo: list[str]) -> None:
    """`apt-get install -y` (through passwordless `sudo -n` when not root), refreshing the package lists
    first when the install fails (a fresh image)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env).returncode == 0:
        return
    subprocess.run([*sudo, "apt-get", "update"], env=env, check=False)
    if subprocess.run(install, env=env).returncode != 0:
        raise SandboxUnavailableError(f"`{' '.join(install)}` failed (after `apt-get update`)")


def main_setup_sandbox(argv: list[str] | None = None) -> int:
    """`r1kit setup-sandbox`: exit 0 once sandboxed runs work here, 1 with the reason (and the command to
    run) on stderr otherwise."""
    import argparse

    parser = argparse.ArgumentParser(prog="r1kit setup-sandbox",
                                     description="Install bubblewrap if missing and check that the code sandbox "
                                                 "runs here.")
    parser.parse_args(argv)
    try:
        print(setup_sandbox())
    except SandboxUnavailableError as e:
        print(f"r1kit setup-sandbox: {e}", file=sys.stderr)
        return 1
    return 0
