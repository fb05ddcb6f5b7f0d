"""One exception tree: every ``raise`` in ilrs_ops is a named IlrsError subclass (found by an
AST walk over the sources), each drawn in a module docstring, and the console answers only
those with a 4xx: anything else is a logged 500 that says nothing about the inside."""

from __future__ import annotations

import ast
import asyncio
import builtins
import importlib
import logging
import pkgutil
import re
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import typer

import ilrs_ops
from ilrs_ops.errors import IlrsError, InputError
from tests import test_console
from tests.conftest import ROOT

#: Not errors but the command line's control flow: typer turns them into usage errors and exits.
ALLOWED = {
    "ilrs_ops/cli.py": {typer.BadParameter, typer.Exit},
    "ilrs_ops/_commands.py": {typer.BadParameter, typer.Exit},
    # A stopping task's cancel that a library turned into its own error, given back.
    "ilrs_ops/backoff.py": {asyncio.CancelledError},
    "ilrs_ops/sources/_mqtt.py": {asyncio.CancelledError},
    # PEP 562: a module's __getattr__ answers a name it lacks with AttributeError.
    "ilrs_ops/lazy.py": {AttributeError},
}

#: Raised to be caught in the same module, never past it (why: next to each).
CAUGHT_INSIDE = {
    # A pwrite that makes no progress is made the OSError a full disk gives, so that the one
    # OSError path truncates the torn batch and translates it (StoreError, with the advice).
    ("ilrs_ops/store/_wal.py", "OSError"),
    # A container whose size is not fixed, found deep in its entries: the importer catches it
    # where it walks the containers and skips that one with a note; the others still import.
    ("ilrs_ops/profiles/_import_xtce.py", "_Unfixed"),
    # Containers of one APID that cannot be variants: the importer catches it where it groups
    # them and maps the first container alone, with the reason in the notes.
    ("ilrs_ops/profiles/_import_xtce.py", "_NoVariants"),
}

SOURCES = sorted((ROOT / "ilrs_ops").rglob("*.py"))

console = test_console.console  # the module's console on a real uvicorn, and its client
http = test_console.http


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module, name: str) -> object | None:
    """What ``name`` is bound to by an import anywhere in the file (commands import late)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return getattr(importlib.import_module(node.module), alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname == name:
                    return importlib.import_module(alias.name)
                if alias.asname is None and alias.name.split(".")[0] == name:
                    return importlib.import_module(name)
    return None


def _resolve(expr: ast.expr, module: ModuleType, tree: ast.Module) -> object | None:
    """The object a ``Name`` or dotted ``a.b.C`` stands for in ``module``; None if local."""
    if isinstance(expr, ast.Name):
        if expr.id in vars(module):
            return vars(module)[expr.id]
        return _imported(tree, expr.id) or getattr(builtins, expr.id, None)
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, module, tree)
        return None if base is None else getattr(base, expr.attr)
    return None


def _raised(path: Path) -> Iterator[tuple[int, str, bool, object | None]]:
    """(line, source text, whether called, class raised) of each ``raise X(...)`` / ``raise X``
    in ``path``; the class is None where X is local (an exception caught and raised again)."""
    tree = ast.parse(path.read_text(), str(path))
    raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise) and n.exc is not None]
    raises.sort(key=lambda n: n.lineno)
    if not raises:  # a bare raise re-raises what was caught; __main__ is not imported
        return
    module = importlib.import_module(_module_name(path))
    for node in raises:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        target = _resolve(exc, module, tree)
        if callable(target) and not isinstance(target, type):
            target = typing.get_type_hints(target).get("return")  # a factory: what it returns
        yield node.lineno, ast.unparse(exc), isinstance(node.exc, ast.Call), target


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_raise_is_a_named_ilrs_error(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    bad = []
    for line, text, called, target in _raised(path):
        if target is None and not called:
            continue  # an exception caught before, raised again (``raise exc``)
        if not isinstance(target, type):
            bad.append(f"{rel}:{line}: raise {text}: cannot tell what it raises")
        elif target in ALLOWED.get(rel, set()) or (rel, target.__name__) in CAUGHT_INSIDE:
            continue
        elif not issubclass(target, IlrsError) or target is IlrsError:
            bad.append(f"{rel}:{line}: raise {text}: not a named IlrsError subclass")
    assert not bad, "\n".join(bad)


def test_the_exemptions_are_real_files() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert set(ALLOWED) | {f for f, _ in CAUGHT_INSIDE} <= names


def _all_modules() -> None:
    for info in pkgutil.walk_packages(ilrs_ops.__path__, "ilrs_ops."):
        if not info.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(info.name)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_is_drawn_in_a_tree() -> None:
    _all_modules()
    errors_doc = sys.modules["ilrs_ops.errors"].__doc__ or ""
    ours = {c for c in _subclasses(IlrsError) if c.__module__.startswith("ilrs_ops.")}
    assert InputError in ours and len(ours) > 10
    missing = []
    for cls in sorted(ours, key=lambda c: c.__name__):
        own_doc = sys.modules[cls.__module__].__doc__ or ""
        if not any(re.search(rf"\b{cls.__name__}\b", d) for d in (errors_doc, own_doc)):
            missing.append(f"{cls.__module__}.{cls.__name__}")
    assert not missing, f"not in the docstring of ilrs_ops.errors or their module: {missing}"


# ---------------------------------------------------------------------- the console's answers


def test_a_bug_in_a_route_is_a_logged_500_bad_input_a_400(
    console: test_console.Running,
    http: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = console.app.state.console.history  # type: ignore[attr-defined]
    path = f"/api/instruments/{test_console.A}/telemetry"
    h = console.headers("operator")

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(history, "query", broken)
    with caplog.at_level(logging.ERROR, logger="ilrs_ops.console"):
        r = http.get(path, headers=h)
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error"}  # nothing of the inside
    logged = [rec for rec in caplog.records if rec.name.startswith("ilrs_ops.console")]
    assert len(logged) == 1, logged
    assert path in logged[0].getMessage() and logged[0].exc_info is not None
    assert logged[0].exc_info[0] is ValueError

    def refused(*args: object, **kwargs: object) -> None:
        raise InputError("buckets must be an integer >= 1, not 0")

    monkeypatch.setattr(history, "query", refused)
    r = http.get(path, headers=h)
    assert r.status_code == 400
    assert "buckets must be an integer >= 1" in r.json()["detail"]
    monkeypatch.undo()
    assert http.get(path, headers=h).status_code == 200  # the history as it was
