"""The pipeline's shape: imports go one way (language → kinds → data → backends → API),
``solvers`` imports nothing of stratlang, no module imports itself back through others,
and checking a spec loads no solver or plotting library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from .conftest import EXAMPLES, ROOT

PACKAGE = ROOT / "stratlang"
LAYERS = ["language", "kinds", "data", "backends", "api"]


def module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "solvers"):
        parts = ("stratlang", "solvers", *path.relative_to(ROOT / "solvers").with_suffix("").parts)
    else:
        parts = ("stratlang", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("language", "kinds", "data", "backends", "solvers",
                                       "grammar"):
        return parts[1]
    return "api"


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (imports for annotations)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imported(path: Path) -> list[tuple[str, int]]:
    """Every stratlang module a file imports at run time (at any depth), with the line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("stratlang")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("stratlang"):
                continue
            # `from . import ir` imports the module stratlang.<pkg>.ir
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                out.append((candidate if _exists(candidate) else target, node.lineno))
    return out


def _exists(module: str) -> bool:
    parts = module.split(".")[1:]
    if parts[:1] == ["solvers"]:
        base = ROOT / "solvers" / Path(*parts[1:]) if len(parts) > 1 else ROOT / "solvers"
    else:
        base = PACKAGE / Path(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "solvers").rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in SOURCES if not p.is_relative_to(ROOT / "solvers")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_one_way(path):
    own = layer(module_name(path))
    if own == "grammar":
        return
    wrong = [(m, line) for m, line in imported(path)
             if layer(m) in LAYERS and LAYERS.index(layer(m)) > LAYERS.index(own)]
    assert not wrong, f"{own} module imports a later layer: {wrong}"


@pytest.mark.parametrize("path", sorted((ROOT / "solvers").rglob("*.py")),
                         ids=lambda p: p.name)
def test_solvers_know_nothing_of_the_language(path):
    assert [m for m, _ in imported(path) if not m.startswith("stratlang.solvers")] == []


def test_no_import_cycles():
    graph = nx.DiGraph()
    for path in SOURCES:
        source = module_name(path)
        for target, _ in imported(path):
            if target != source and not source.startswith(target + "."):  # a package's own
                graph.add_edge(source, target)  # __init__ is not a cycle
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, cycles[:3]


def test_the_layer_test_sees_imports():
    """The checks above would catch a wrong import (they do not pass vacuously)."""
    found = dict(imported(PACKAGE / "backends" / "admm.py"))
    assert "stratlang.data.design" in found and "stratlang.kinds.regularizers" in found
    assert layer("stratlang.model") == "api" and layer("stratlang.language.check") == "language"


@pytest.mark.parametrize("code", [
    "import stratlang",
    "from stratlang.cli import main; main(['check', {spec!r}])",
    "from stratlang.cli import main; main(['show', {spec!r}])",
])
def test_checking_a_spec_loads_no_solver_or_plotting_library(code):
    heavy = ("cvxpy", "dask", "distributed", "matplotlib", "sklearn")
    probe = (code.format(spec=str(EXAMPLES / "elections.strat"))
             + "\nimport sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
             + repr(heavy) + "))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
