"""The derived-channel expression language: same results as Python arithmetic, nothing unsafe."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ilrs_ops.errors import ExpressionError
from ilrs_ops.profiles import parse

# The reference is Python itself, per element, on trusted literal strings in this test only.
REFERENCE_NAMES = {"abs": abs, "sqrt": math.sqrt, "max": max, "min": min, "hypot": math.hypot}
CASES = [
    "a + b * c",
    "(a - b) / (abs(c) + 1)",
    "a ** 2 + b ** 2",
    "sqrt(abs(a)) - 3.5",
    "max(a, b, c) - min(a, b)",
    "hypot(a, b)",
    "-a + +b",
    "a // 3 + b % 2",
    "1.0 if a > b else 2.0",
    "(a < b) * 1.0 + (b <= c) * 2.0",
    "(0 < a < 10) * 1.0",
]

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@pytest.mark.parametrize("source", CASES)
@given(a=finite, b=finite, c=finite)
def test_matches_python_on_scalars(source: str, a: float, b: float, c: float) -> None:
    expr = parse(source)
    got = float(expr.evaluate({"a": np.array([a]), "b": np.array([b]), "c": np.array([c])})[0])
    want = float(eval(source, {"__builtins__": {}}, {"a": a, "b": b, "c": c, **REFERENCE_NAMES}))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_names_are_the_channels_read() -> None:
    assert parse("batt_v * batt_i + max(t1, t2)").names == {"batt_v", "batt_i", "t1", "t2"}


def test_arrays_index_and_reduce_per_packet() -> None:
    temps = np.array([[1.0, 5.0, 3.0], [-2.0, -1.0, -7.0]])
    assert list(parse("max(wheel)").evaluate({"wheel": temps})) == [5.0, -1.0]
    assert list(parse("mean(wheel)").evaluate({"wheel": temps})) == [3.0, -10.0 / 3]
    assert list(parse("wheel[2]").evaluate({"wheel": temps})) == [3.0, -7.0]


def test_where_and_boolean_ops_are_element_wise() -> None:
    x = np.array([-1.0, 0.5, 2.0])
    got = parse("where(x > 0 and x < 1, 10, x)").evaluate({"x": x})
    assert list(got) == [-1.0, 10.0, 2.0]
    assert list(parse("not x > 0 or x > 1").evaluate({"x": x})) == [1.0, 0.0, 1.0]


def test_nan_propagates_without_warnings() -> None:
    got = parse("a / b").evaluate({"a": np.array([1.0, 0.0]), "b": np.array([0.0, 0.0])})
    assert np.isinf(got[0]) and np.isnan(got[1])


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("__import__('os').system('rm -rf /')", "calling"),
        ("a.__class__", "Attribute"),
        ("open('/etc/passwd')", "calling 'open'"),
        ("[x for x in a]", "ListComp"),
        ("lambda: 1", "Lambda"),
        ("a[1:2]", "indexing"),
        ("'text'", "constant"),
        ("max(a, key=b)", "keyword"),
        ("a in b", "comparisons"),
        ("a @ b", "MatMult"),
        ("sqrt(a, b)", "takes 1..1 arguments"),
        ("a +", "not a valid expression"),
    ],
)
def test_everything_outside_the_language_is_refused(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        parse(source)


def test_function_names_are_not_channels_unless_called() -> None:
    assert parse("abs").names == {"abs"}  # a channel named 'abs' (the checker refuses such names)
    assert parse("abs(x)").names == {"x"}


def test_indexed_elements_are_reported_for_checking() -> None:
    assert parse("t[0] + t[5] - u").indexed == {("t", 0), ("t", 5)}


@pytest.mark.parametrize(
    "source", ["a" + "+a" * 3000, "-" * 100_000 + "a", "(" * 500 + "a" + ")" * 500]
)
def test_huge_or_deep_expressions_are_refused_cleanly(source: str) -> None:
    with pytest.raises(ExpressionError, match=r"characters long|nested too deeply"):
        parse(source)
