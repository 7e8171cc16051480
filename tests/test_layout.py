"""The package's shape: imports point one way (no cycles; the library never reaches into the pipeline
plumbing or the stage scripts) and no module grows past what a reader can hold."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "zfnet"
ALIASES = {"zfnet.models": "zfnet.nets.models", "zfnet.deconv": "zfnet.probes.deconv"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def zfnet_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zfnet"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("zfnet")}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = {ALIASES.get(t, t) for t in zfnet_imports(path)}
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
        graph[name] -= {t for t in graph[name] if modules[t].name == "__init__.py"}  # packages stay empty
    return graph


def test_no_import_cycles():
    graph, state, cycles = import_graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, f"import cycles: {cycles}"


def test_library_never_imports_the_pipeline_plumbing():
    for name, targets in import_graph().items():
        if not name.startswith("zfnet.pipeline") and name not in ALIASES:
            assert not {t for t in targets if t.startswith("zfnet.pipeline")}, f"{name} imports {targets}"
    for path in PACKAGE.rglob("*.py"):
        assert "pipelines" not in {n.split(".")[0] for n in zfnet_imports(path)} | {
            a.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import)
            for a in node.names}, path


def test_modules_stay_readable():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 600, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
