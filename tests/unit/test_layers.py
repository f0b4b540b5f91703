"""The dependency direction of STYLE.md, kept true by parsing imports: a lower layer never imports a
higher one, and rewards stay free of torch (they run in CPU worker processes)."""

from __future__ import annotations

import ast
from pathlib import Path

import r1kit

SRC = Path(r1kit.__file__).parent

# Lower number = lower layer. A module may import its own layer or lower ones.
LAYERS = {
    "types": 0, "config": 0, "schedules": 0, "templates": 0, "hub": 0, "world": 0,
    "algorithms": 1,
    "rewards": 2, "sandbox": 2,
    "tasks": 3,
    "models": 4, "rollout": 4, "distributed": 4,
    "trainers": 5, "sampling": 5, "evaluation": 5, "judges": 5,
    "stages": 6, "cluster": 6, "pipeline": 7, "cli": 8, "__main__": 8,
}


def _layer_of(module: str) -> str:
    return module.split(".")[1] if module.startswith("r1kit.") else ""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lower_layers_never_import_higher_ones():
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        own = rel.parts[0].removesuffix(".py")
        assert own in LAYERS, f"{rel}: add its package to LAYERS"
        for imported in _imports(path):
            other = _layer_of(imported)
            if other and other in LAYERS and LAYERS[other] > LAYERS[own]:
                problems.append(f"{rel} imports {imported}")
    assert not problems, "\n".join(problems)


def test_rewards_do_not_import_torch():
    for path in (SRC / "rewards").rglob("*.py"):
        assert not any(i == "torch" or i.startswith("torch.") for i in _imports(path)), path
