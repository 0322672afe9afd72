"""The layers of docs/DESIGN.md, checked: imports go one way.

Each top-level package (or module) has a rank; a module may import the project's
packages of a lower rank, and its own package, nothing else. Packages of one rank
(`schema` and `web`) do not import each other. The simulator and the terminal watcher
stand apart: each imports nothing of the service, and only `cli` and tests import them. Parsed with `ast`, so a
function-level import counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: lowest first; a name is a top-level package or module of the project
LAYERS: list[set[str]] = [
    {"domain"},
    {"settings"},
    {"runtime"},
    {"models"},
    {"providers"},
    {"services"},
    {"live"},
    {"jobs"},
    {"schema", "web"},
    {"server"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
APART = {"simulator", "watch"}
PROJECT = set(RANK) | APART


def _owner(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


def _sources() -> list[Path]:
    files = [ROOT / f"{name}.py" for name in ("settings", "server", "cli")]
    for package in PROJECT - {"settings", "server", "cli"}:
        files += sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)
    return [f for f in files if f.exists()]


def test_imports_only_go_down_the_layers() -> None:
    wrong = []
    for path in _sources():
        owner = _owner(path)
        for imported in _imports(path) - {owner}:
            if owner in APART:
                wrong.append(f"{path.relative_to(ROOT)} imports {imported}: {owner} stands apart")
            elif imported in APART:
                if owner != "cli":
                    wrong.append(f"{path.relative_to(ROOT)} imports {imported}, which only cli may")
            elif RANK[imported] >= RANK[owner]:
                wrong.append(f"{path.relative_to(ROOT)} ({owner}) imports {imported}, which is not below it")
    assert wrong == []


def test_every_package_has_a_place() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench"}
    assert packages <= PROJECT, packages - PROJECT
