"""The safe expression language of derived channels: parsed with ``ast``, checked against a
whitelist, evaluated with numpy over whole columns. Nothing from a profile is ever ``eval``-ed.

Allowed: numbers, channel names, ``+ - * / // % **``, unary ``-``/``+``, comparisons
(``< <= > >= == !=``, chained), ``and``/``or``/``not`` (element-wise), ``x if c else y``,
constant indexing of array channels (``wheel_temp[2]``) and the functions in FUNCTIONS.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ilrs_ops.errors import ExpressionError


def _reduce(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Element-wise over several arguments (``max(a, b, c)``), or along samples for one array."""

    def call(*args: np.ndarray) -> np.ndarray:
        if len(args) == 1:
            a = np.asarray(args[0])
            return fn.reduce(a, axis=-1) if a.ndim > 1 else a  # type: ignore[attr-defined]
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out

    return call


def _mean(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.mean(axis=-1) if x.ndim > 1 else x


FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], int, int]] = {
    # name: (implementation, min args, max args)
    "abs": (np.abs, 1, 1),
    "sqrt": (np.sqrt, 1, 1),
    "exp": (np.exp, 1, 1),
    "log": (np.log, 1, 1),
    "log10": (np.log10, 1, 1),
    "sin": (np.sin, 1, 1),
    "cos": (np.cos, 1, 1),
    "atan2": (np.arctan2, 2, 2),
    "hypot": (np.hypot, 2, 2),
    "min": (_reduce(np.fmin), 1, 8),
    "max": (_reduce(np.fmax), 1, 8),
    "mean": (_mean, 1, 1),
    "where": (np.where, 3, 3),
    "clip": (np.clip, 3, 3),
}

#: Longer expressions belong in several derived channels (and deep nesting would exhaust the stack).
MAX_LENGTH = 1000

_BINARY: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_ALLOWED = (
    "numbers, channel names, + - * / // % **, comparisons, and/or/not, 'a if c else b', "
    f"array[i], and the functions {', '.join(sorted(FUNCTIONS))}"
)


@dataclass(frozen=True)
class Expression:
    """A checked expression: its source, the channels it reads, and its syntax tree."""

    source: str
    names: frozenset[str]
    tree: ast.Expression
    indexed: frozenset[tuple[str, int]] = frozenset()  # (array channel, element) pairs read

    def evaluate(self, channels: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate over whole columns; ``channels`` maps every name in ``names`` to an array."""
        with np.errstate(all="ignore"):  # NaN/inf are data here, not errors
            return np.asarray(_eval(self.tree.body, channels), dtype=np.float64)


def parse(source: str) -> Expression:
    """Parse and check ``source``; raise ExpressionError naming the first disallowed part."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(source)} characters long",
            hint=f"keep it under {MAX_LENGTH}; split it into several derived channels",
        )
    try:
        tree = ast.parse(source.strip(), mode="eval")
        called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        names: set[str] = set()
        indexed: set[tuple[str, int]] = set()
        for node in ast.walk(tree):
            _check(node, names, indexed, called)
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}", exc.offset) from exc
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "the expression is nested too deeply", hint="split it into several derived channels"
        ) from None
    return Expression(source, frozenset(names), tree, frozenset(indexed))


def _fail(node: ast.AST, what: str) -> ExpressionError:
    col = getattr(node, "col_offset", None)
    return ExpressionError(
        f"{what} is not allowed", None if col is None else col + 1, hint=f"use {_ALLOWED}"
    )


def _check(node: ast.AST, names: set[str], indexed: set[tuple[str, int]], called: set[int]) -> None:
    if isinstance(node, ast.Name):
        if id(node) not in called:
            names.add(node.id)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _fail(node, f"calling '{ast.unparse(node.func)}'")
        if node.keywords:
            raise _fail(node, "keyword arguments")
        _, lo, hi = FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            raise ExpressionError(
                f"{node.func.id}() takes {lo}..{hi} arguments, not {len(node.args)}",
                node.col_offset + 1,
            )
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _fail(node, f"the constant {node.value!r}")
        return
    if isinstance(node, ast.Subscript):
        index = node.slice
        if not (
            isinstance(node.value, ast.Name)
            and isinstance(index, ast.Constant)
            and type(index.value) is int
        ):
            raise _fail(node, "indexing other than channel[integer]")
        indexed.add((node.value.id, index.value))
        return
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        raise _fail(node, f"the operator {type(node.op).__name__}")
    if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
        raise _fail(node, "'in'/'is' comparisons")
    allowed = (
        ast.Expression,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.Load,
        ast.operator,
        ast.unaryop,
        ast.boolop,
        ast.cmpop,
    )
    if not isinstance(node, allowed):
        raise _fail(node, f"'{type(node).__name__}'")


def _eval(node: ast.AST, ch: Mapping[str, np.ndarray]) -> np.ndarray:
    match node:
        case ast.Constant(value=v):
            return np.float64(v)
        case ast.Name(id=name):
            return ch[name]
        case ast.Subscript(value=ast.Name(id=name), slice=ast.Constant(value=i)):
            return np.asarray(ch[name])[..., i]
        case ast.BinOp(left=a, op=op, right=b):
            return _BINARY[type(op)](_eval(a, ch), _eval(b, ch))
        case ast.UnaryOp(op=ast.USub(), operand=a):
            return np.negative(_eval(a, ch))
        case ast.UnaryOp(op=ast.UAdd(), operand=a):
            return _eval(a, ch)
        case ast.UnaryOp(op=ast.Not(), operand=a):
            return np.logical_not(_eval(a, ch))
        case ast.BoolOp(op=op, values=values):
            fn = np.logical_and if isinstance(op, ast.And) else np.logical_or
            out = _eval(values[0], ch)
            for v in values[1:]:
                out = fn(out, _eval(v, ch))
            return out
        case ast.Compare(left=left, ops=ops, comparators=rights):
            a, out = _eval(left, ch), None
            for op, r in zip(ops, rights, strict=True):
                b = _eval(r, ch)
                step = _COMPARE[type(op)](a, b)
                out = step if out is None else np.logical_and(out, step)
                a = b
            return out
        case ast.IfExp(test=t, body=b, orelse=o):
            return np.where(_eval(t, ch), _eval(b, ch), _eval(o, ch))
        case ast.Call(func=ast.Name(id=fn), args=args):
            return FUNCTIONS[fn][0](*(_eval(a, ch) for a in args))
    raise ExpressionError(f"cannot evaluate '{ast.unparse(node)}'")  # unreachable after _check
