"""The package's shape: imports point one way (no cycles; the library never reaches into the pipeline
plumbing or the stage scripts) and no module grows past what a reader can hold."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "zfnet"
ALIASES = {"zfnet.models": "zfnet.nets.models", "zfnet.deconv": "zfnet.probes.deconv",
           "zfnet.occlusion": "zfnet.probes.occlusion"}  # public names kept importable (README: Layout)


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


# The layers, bottom to top: a module may import its own layer and those below it, never one above.
# Stage scripts (pipelines/) sit on top of them all.
LAYERS = (
    ("base", ("zfnet", "zfnet.errors", "zfnet.io", "zfnet.paper", "zfnet.tiles")),
    ("data", ("zfnet.data",)),
    ("nets", ("zfnet.nets",)),
    ("probes", ("zfnet.probes", "zfnet.transfer", "zfnet.studies")),
    ("experiments", ("zfnet.experiments",)),
    ("viz", ("zfnet.viz",)),
    ("report", ("zfnet.report",)),
    ("pipeline", ("zfnet.pipeline",)),
)
STAGES = REPO / "pipelines"
STAGE_LINES, PIPELINES_LINES = 100, 1000


def layer_of(module: str) -> int:
    ranks = [rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
             if module == prefix or (prefix != "zfnet" and module.startswith(prefix + "."))]
    assert ranks, f"{module} is in no layer of tests/test_layout.py: LAYERS"
    return max(ranks)


def test_every_module_has_a_layer_and_imports_none_above_it():
    upward = []
    for name, targets in import_graph().items():
        if name in ALIASES:
            continue
        upward += [f"{name} ({LAYERS[layer_of(name)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                   for t in sorted(targets) if layer_of(t) > layer_of(name)]
    assert not upward, "\n".join(upward)


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("zfnet.nets.training") < layer_of("zfnet.viz.figures")
    assert layer_of("zfnet.probes.deconv") < layer_of("zfnet.experiments.occlusion") < layer_of("zfnet.viz.occlusion")
    assert layer_of("zfnet.tiles") == 0 < layer_of("zfnet.data.images")


def test_stage_scripts_stay_thin():
    sizes = {p.name: len(p.read_text().splitlines()) for p in STAGES.glob("*.py")}
    assert sizes, STAGES
    assert not {name: n for name, n in sizes.items() if n > STAGE_LINES}, sorted(sizes.items(), key=lambda kv: -kv[1])
    assert sum(sizes.values()) <= PIPELINES_LINES, sum(sizes.values())


def test_stage_scripts_import_only_the_library():
    for path in STAGES.glob("*.py"):
        tree = ast.parse(path.read_text())
        local = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        local |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        assert "pipelines" not in local, f"{path.name}: a stage script imports another stage script"
