"""The package's shape: no import circles, imports only point down the stages, light imports."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "rockseg"

# the stages, lowest first; a module may import its own stage's package and lower stages only
# (cli -> course/compat -> training/analysis -> evaluation -> inference -> models/preprocess -> data -> base)
LAYERS = {
    "base": 0, "data": 1, "models": 2, "preprocess": 2, "inference": 3, "evaluation": 4,
    "training": 5, "analysis": 5, "course": 6, "compat": 6, "cli": 7,
}
BASE = {"rockseg", "rockseg._tf", "rockseg.config", "rockseg.errors", "rockseg.progress"}


def module_names(root: Path = PKG) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module in the package (packages by their ``__init__``)."""
    out = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges ``a -> b`` for every import of ``b`` anywhere in ``a`` (function-level imports too).

    ``from P import x`` counts as importing the module ``P.x`` when there is one, else ``P``.
    """
    graph = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (each reported once per back edge)."""
    state, stack, cycles = {}, [], []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u)
    return cycles


def stage(mod: str) -> str:
    return "base" if mod in BASE else mod.split(".")[1]


def upward_imports(graph) -> list[str]:
    bad = []
    for a, targets in graph.items():
        for b in targets:
            sa, sb = stage(a), stage(b)
            if sa != sb and LAYERS[sb] >= LAYERS[sa]:
                bad.append(f"{a} ({sa}) imports {b} ({sb})")
    return sorted(bad)


def test_the_checks_catch_a_circle_and_an_upward_import():
    """The two checks below can fail: a made-up graph with both faults is caught."""
    g = {"rockseg.data.io": {"rockseg.inference.tiling"}, "rockseg.inference.tiling": {"rockseg.data.io"}}
    assert find_cycles(g) == [["rockseg.data.io", "rockseg.inference.tiling", "rockseg.data.io"]]
    assert upward_imports(g) == ["rockseg.data.io (data) imports rockseg.inference.tiling (inference)"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_every_module_belongs_to_a_stage():
    mods = module_names()
    assert {"rockseg.data.io", "rockseg.inference.predictor", "rockseg.training.fit",
            "rockseg.evaluation.records", "rockseg.analysis.petrophysics", "rockseg.models.classical"} <= set(mods)
    unknown = sorted(m for m in mods if stage(m) not in LAYERS)
    assert not unknown, f"modules outside the stages {sorted(LAYERS)}: {unknown}"


def test_no_import_circles():
    cycles = find_cycles(import_graph(module_names()))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_point_down_the_stages():
    bad = upward_imports(import_graph(module_names()))
    assert not bad, "imports against the direction cli -> training/analysis -> evaluation -> " \
                    "inference -> models/preprocess -> data -> base:\n" + "\n".join(bad)


def test_no_module_left_at_the_old_flat_paths():
    old = ["io", "volumes", "registry", "datasets", "splits", "patches", "synth", "metrics", "losses",
           "pipeline", "train", "runs", "infer", "analysis", "plotting", "baselines"]
    assert not [m for m in old if (PKG / f"{m}.py").exists()]


@pytest.mark.parametrize("package, absent", [
    ("rockseg.data", "tensorflow"), ("rockseg.evaluation", "tensorflow"), ("rockseg.inference", "tensorflow"),
    ("rockseg.training", "tensorflow"), ("rockseg.analysis", "tensorflow"), ("rockseg.preprocess", "tensorflow"),
    ("rockseg.models", "segmentation_models"),
])
def test_heavy_imports_stay_lazy(package, absent):
    code = f"import sys, {package}; assert {absent!r} not in sys.modules, 'imported {absent}'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1500:]


def test_each_stage_names_its_public_functions():
    import rockseg.analysis
    import rockseg.data
    import rockseg.evaluation
    import rockseg.inference
    import rockseg.training

    for pkg in (rockseg.data, rockseg.evaluation, rockseg.inference, rockseg.training, rockseg.analysis):
        missing = [n for n in pkg.__all__ if not hasattr(pkg, n)]
        assert pkg.__all__ and not missing, f"{pkg.__name__}.__all__ names missing {missing}"
    from rockseg.data import load_dataset  # noqa: F401  (the paths the notebooks use)
    from rockseg.inference import predict_volume  # noqa: F401
