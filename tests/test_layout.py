"""The import rule of DESIGN §2, read from the source of checks/:

steps -> analyses -> engine/io/project -> findings/vocab. A module may import its own layer or a lower
one, never a higher one; a step module never imports another step; no import cycle anywhere in checks/.
The engine reaches the step modules only through the registry's import by name, which this test does not
see as an import (and so allows).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKS = Path(__file__).resolve().parents[1] / "checks"
LAYERS = {"findings": 0, "vocab": 0, "wording": 0, "engine": 1, "io": 1, "project": 1, "analyses": 2, "steps": 3}
# Modules outside the layers: the package's public face and the training-loop hook (imports only torch).
OUTSIDE = {"", "monitor", "monitor_callbacks"}


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules(root: Path = CHECKS) -> dict[str, Path]:
    return {module_name(root, p): p for p in root.rglob("*.py")}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The checks/ modules a module imports (relative or absolute, at any depth in the file)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("mltriage.checks"):
                target = node.module.removeprefix("mltriage.checks").strip(".")
            else:
                continue
            targets = [f"{target}.{a.name}".strip(".") for a in node.names] + [target]
        elif isinstance(node, ast.Import):
            targets = [a.name.removeprefix("mltriage.checks.") for a in node.names
                       if a.name.startswith("mltriage.checks.")]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def layer(name: str) -> int | None:
    top = name.split(".")[0]
    return None if name in OUTSIDE or top in OUTSIDE else LAYERS.get(top)


def graph(root: Path = CHECKS) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imported(name, path, set(mods)) for name, path in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{name} -> {t}" for name, targets in g.items() if layer(name) is not None
                  for t in targets if layer(t) is not None and layer(t) > layer(name))


def cross_step_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{name} -> {t}" for name, targets in g.items() if name.startswith("steps.")
                  for t in targets if t.startswith("steps.") and t.split(".")[1] != name.split(".")[1])


def cycles(g: dict[str, set[str]]) -> list[str]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                found.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    return found


def test_every_module_belongs_to_a_layer():
    strays = [m for m in modules() if m not in OUTSIDE and m.split(".")[0] not in LAYERS]
    assert strays == [], f"modules outside DESIGN §2's layers: {strays}"


def test_no_module_imports_a_higher_layer():
    assert upward_imports(graph()) == [], "against steps -> analyses -> engine/io/project -> findings/vocab"


def test_no_step_imports_another_step():
    assert cross_step_imports(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {"findings.py": "", "engine/__init__.py": "", "engine/context.py": "", "analyses/__init__.py": "",
        "analyses/probe.py": "", "steps/__init__.py": "", "steps/data.py": "", "steps/problem.py": ""}


def test_planted_upward_import_is_caught(tmp_path):
    root = plant(tmp_path, {**BASE, "engine/context.py": "def f():\n    from ..steps.data import x\n"})
    assert upward_imports(graph(root)) == ["engine.context -> steps.data"]


def test_planted_step_to_step_import_is_caught(tmp_path):
    root = plant(tmp_path, {**BASE, "steps/data.py": "from mltriage.checks.steps.problem import baseline\n"})
    assert cross_step_imports(graph(root)) == ["steps.data -> steps.problem"]


def test_planted_cycle_is_caught_and_clean_twin_is_not(tmp_path):
    clean = plant(tmp_path / "clean", {**BASE, "analyses/probe.py": "from ..engine.context import C\n"})
    assert cycles(graph(clean)) == [] and upward_imports(graph(clean)) == []
    looped = plant(tmp_path / "loop", {**BASE, "analyses/probe.py": "from . import labels\n",
                                       "analyses/labels.py": "from .probe import p\n"})
    assert cycles(graph(looped)) == ["analyses.labels -> analyses.probe -> analyses.labels"]
