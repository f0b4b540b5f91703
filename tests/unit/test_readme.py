"""The README's quickstart is what CI runs: exactly two commands, the second one in .ci/run verbatim."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _quickstart_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quickstart\n.*?```(?:bash|sh)?\n(.*?)```", text, re.DOTALL)
    assert block, "README.md needs a '## Quickstart' section with a code block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_quickstart_is_two_commands_and_ci_runs_the_second():
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert commands[0].rstrip().endswith("r1kit zero")
    ci_lines = [line for line in (REPO / ".ci/run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines[-1].strip() == commands[1].strip()
