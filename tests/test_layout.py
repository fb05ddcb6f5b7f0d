"""The house follows its data flow: the import graph of ilrs_ops and pipelines, read from the
source (AST), has no cycles between packages, runs one way (pipelines imports no ilrs_ops; the
store imports no processing; the console imports no ingest), and no package reaches into
another's private module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("ilrs_ops", "pipelines")


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The ilrs_ops/pipelines modules ``name`` imports (at any depth in the file)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    return {m for m in found if m.split(".")[0] in PACKAGES}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    """The unit of layering: ``ilrs_ops.store`` for ``ilrs_ops.store._wal``, the module itself
    for top-level modules (``ilrs_ops.wire``), ``pipelines`` for all of pipelines."""
    parts = module.split(".")
    if parts[0] == "pipelines":
        return "pipelines"
    path = MODULES.get(".".join(parts[:2]))
    return ".".join(parts[:2]) if path is not None else module


def test_the_graph_sees_the_known_edges() -> None:
    # Guards the parser itself: edges that certainly exist must be found.
    assert "ilrs_ops.processing._lane" in GRAPH["ilrs_ops.processing"]
    assert "ilrs_ops.store" in GRAPH["ilrs_ops.processing._recover"]
    assert "pipelines.decode" in GRAPH["ilrs_ops.processing._processor"]


def test_no_cycles_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for src, targets in GRAPH.items():
        for dst in targets:
            a, b = _package(src), _package(dst)
            if a != b and not (a == "ilrs_ops" or b == "ilrs_ops"):
                edges.setdefault(a, set()).add(b)
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node, [])


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("pipelines", "ilrs_ops"),
        ("ilrs_ops.store", "ilrs_ops.processing"),
        ("ilrs_ops.store", "ilrs_ops.ingest"),
        ("ilrs_ops.processing", "ilrs_ops.ingest"),
        ("ilrs_ops.processing", "ilrs_ops.console"),
        ("ilrs_ops.console", "ilrs_ops.ingest"),
        ("ilrs_ops.wire", "ilrs_ops.ingest"),
    ],
)
def test_the_flow_runs_one_way(importer: str, forbidden: str) -> None:
    bad = sorted(
        f"{src} imports {dst}"
        for src, targets in GRAPH.items()
        if src == importer or src.startswith(importer + ".")
        for dst in targets
        if dst == forbidden or dst.startswith(forbidden + ".")
    )
    assert not bad, bad


def test_no_package_reaches_into_another_private_module() -> None:
    bad = []
    for src, targets in GRAPH.items():
        for dst in targets:
            private = [i for i, p in enumerate(dst.split(".")) if p.startswith("_")]
            if not private:
                continue
            owner = ".".join(dst.split(".")[: private[0]])  # the package holding it
            if not (src == owner or src.startswith(owner + ".")):
                bad.append(f"{src} imports {dst}")
    assert not bad, "\n".join(sorted(bad))
