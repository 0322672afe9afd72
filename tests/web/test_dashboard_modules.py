"""The dashboard's ES modules (web/dashboard/), without a browser: the placeholder
pattern is the server's, every module app.js imports exists and is served, and no
module is left over. tests/web/test_dashboard.py drives them in Chromium."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import httpx

from server import DashboardFiles

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "web" / "dashboard"
SERVER_TEMPLATES = ROOT / "domain" / "templates.py"
DASHBOARD_TEMPLATES = DASHBOARD / "templates.js"

# `import … from "./x.js"`, `import "./x.js"`, `export … from "./x.js"` (static, relative)
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?(?:\bfrom\s*)?["'](\.{1,2}/[^"']+)["']""", re.MULTILINE)
# A regex literal that opens with `\{\{`: a {{placeholder}} pattern.
PLACEHOLDER_LITERAL = re.compile(r"/(\\\{\\\{(?:[^/\\\n]|\\.)*)/([a-z]*)")


def _server_pattern() -> str:
    """The string given to `re.compile` for PLACEHOLDER in domain/templates.py."""
    tree = ast.parse(SERVER_TEMPLATES.read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "PLACEHOLDER" for t in node.targets)
            and isinstance(node.value, ast.Call)
            and node.value.args
            and isinstance(node.value.args[0], ast.Constant)
            and isinstance(node.value.args[0].value, str)
        ):
            return node.value.args[0].value
    raise AssertionError(f"no PLACEHOLDER = re.compile('…') in {SERVER_TEMPLATES}")


def _dashboard_pattern() -> tuple[str, str]:
    """(source, flags) of `export const PLACEHOLDER = /…/flags;` in web/dashboard/templates.js."""
    match = re.search(r"^export const PLACEHOLDER = /(.+)/([a-z]*);$", DASHBOARD_TEMPLATES.read_text(), re.MULTILINE)
    assert match, f"no `export const PLACEHOLDER = /…/;` in {DASHBOARD_TEMPLATES}"
    return match[1], match[2]


def _modules() -> dict[str, list[str]]:
    """Each module reachable from app.js (path relative to web/dashboard) -> what it imports."""
    graph: dict[str, list[str]] = {}
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        path = DASHBOARD / name
        assert path.is_file(), f"{name} is imported but does not exist"
        imports = []
        for spec in IMPORT.findall(path.read_text()):
            target = (path.parent / spec).resolve()
            assert target.is_relative_to(DASHBOARD), f"{name} imports {spec}, outside web/dashboard"
            imports.append(target.relative_to(DASHBOARD).as_posix())
        graph[name] = imports
        todo.extend(imports)
    return graph


def test_the_dashboards_placeholder_pattern_is_the_servers() -> None:
    source, flags = _dashboard_pattern()
    assert source == _server_pattern()
    assert flags == "g"  # global only: no flag that changes what the pattern matches
    assert re.compile(source).findall("Hi {{name}}, {{ code_2 }} {{first name}} {{a-b}} {{}}") == ["name", "code_2"]


def test_no_other_dashboard_module_has_a_placeholder_pattern_of_its_own() -> None:
    for path in DASHBOARD.rglob("*.js"):
        if path == DASHBOARD_TEMPLATES:
            continue
        assert not PLACEHOLDER_LITERAL.search(path.read_text()), f"{path.name}: use templates.js's PLACEHOLDER"


def test_every_module_app_js_imports_exists_is_served_and_none_is_left_over() -> None:
    graph = _modules()
    assert {"app.js", "api.js", "documents.js", "state.js", "router.js", "ws.js", "chart.js"} <= graph.keys()
    for name in graph:
        assert name.endswith(DashboardFiles.SERVED), f"{name} would not be served"
    on_disk = {p.relative_to(DASHBOARD).as_posix() for p in DASHBOARD.rglob("*.js")}
    assert on_disk == graph.keys(), f"modules nothing imports: {sorted(on_disk - graph.keys())}"
    assert '<script type="module" src="/static/dashboard/app.js">' in (DASHBOARD / "index.html").read_text()


async def test_every_module_is_served_as_javascript(http: httpx.AsyncClient) -> None:
    for name in _modules():
        response = await http.get(f"/static/dashboard/{name}")
        assert response.status_code == 200, name
        assert "javascript" in response.headers["content-type"], name
        assert response.text == (DASHBOARD / name).read_text(), name
