"""pipelines.calibrate against the NumPy reference of ilrs_ops.profiles, and the compiled plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.profiles import (
    Calibration,
    calibration_plan,
    compile_layout,
    compile_plans,
    load_profile,
)
from ilrs_ops.profiles import calibrate as _reference
from pipelines.calibrate import NONE, POLY, SEGMENTS, TABLE, CalPlan, calibrate

ROOT = Path(__file__).parents[1]
ROVER = Path(__file__).parent / "data" / "good_profiles" / "acme" / "rover.yaml"

coefficient = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
raw_value = st.one_of(
    st.floats(-1e5, 1e5, allow_nan=False),
    st.integers(-70000, 70000).map(float),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
)
raw_values = st.lists(raw_value, max_size=40).map(lambda v: np.array(v, np.float64))


def reference(cal: Calibration | None, raw: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 in polyval: NaN is the answer
        return _reference(cal, raw)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float64
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here, every other value exactly


def test_rover_profile_every_field_matches_reference():
    profile = load_profile(ROVER)
    plans = compile_plans(profile).calibrations
    layout = compile_layout(profile)
    rng = np.random.default_rng(1)
    for f in profile.fields:
        if f.ignore:
            assert f.name not in plans
            continue
        dtype = layout.field_dtype(f.name)  # as decoded
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        shape = (50, f.count) if f.count else (50,)
        raw = rng.integers(lo, hi, shape, dtype=dtype, endpoint=True)
        raw.flat[:2] = lo, hi
        cal = None if f.enum else f.calibration
        assert_same(calibrate(raw, plans[f.name]), reference(cal, raw))


def test_rover_plan_kinds():
    plans = compile_plans(load_profile(ROVER)).calibrations
    assert {n: p.kind for n, p in plans.items()} == {
        "mode": NONE,  # enum: stays the code
        "batt_v": POLY,
        "batt_i": POLY,
        "wheel_temp": POLY,
        "heater_on": NONE,
        "thermistor": TABLE,
        "odo": SEGMENTS,
    }
    odo = plans["odo"]
    assert odo.starts.tolist() == [0.0, 1000.0]
    assert odo.coef.tolist() == [[0.0, 0.1], [100.0, 0.2]]
    # Below the first start the first segment applies; from a start on, that segment.
    got = calibrate(np.array([-10, 0, 999, 1000, 1001], np.int64), odo)
    np.testing.assert_allclose(got, [-1.0, 0.0, 99.9, 300.0, 300.2])


def test_every_station_profile_calibrates_like_the_reference():
    rng = np.random.default_rng(2)
    for path in sorted((ROOT / "hardware_profiles").glob("*/*.yaml")):
        profile = load_profile(path)
        plans = compile_plans(profile).calibrations
        for f in profile.fields:
            if f.ignore or f.base == "f":
                continue
            raw = rng.integers(-(2 ** min(f.width, 20)), 2 ** min(f.width, 20), 64)
            cal = None if f.enum else f.calibration
            assert_same(calibrate(raw, plans[f.name]), reference(cal, raw))


@settings(max_examples=200, deadline=None)
@given(st.lists(coefficient, min_size=1, max_size=8), raw_values)
def test_poly_matches_reference(coef, raw):
    assert_same(calibrate(raw, CalPlan.poly(coef)), reference(Calibration(poly=coef), raw))


@st.composite
def segments(draw):
    starts = sorted(draw(st.sets(st.integers(-2000, 2000), min_size=1, max_size=6)))
    polys = [draw(st.lists(coefficient, min_size=1, max_size=4)) for _ in starts]
    return [{"start": float(s), "poly": p} for s, p in zip(starts, polys, strict=True)]


@settings(max_examples=200, deadline=None)
@given(segments(), raw_values)
def test_segments_match_reference(segs, raw):
    cal = Calibration(segments=segs)
    # Hit every start exactly and the values around it.
    starts = np.array([s["start"] for s in segs])
    raw = np.concatenate([raw, starts, starts - 0.5, starts + 0.5])
    plan = calibration_plan(cal)
    assert plan.kind == SEGMENTS
    assert_same(calibrate(raw, plan), reference(cal, raw))


@st.composite
def tables(draw):
    xs = sorted(draw(st.sets(st.integers(-5000, 5000), min_size=2, max_size=12)))
    ys = draw(st.lists(coefficient, min_size=len(xs), max_size=len(xs)))
    return [(float(x), y) for x, y in zip(xs, ys, strict=True)]


@settings(max_examples=200, deadline=None)
@given(tables(), st.sampled_from(["clamp", "nan"]), raw_values)
def test_table_matches_reference(table, outside, raw):
    cal = Calibration(table=table, outside=outside)
    xs = np.array([x for x, _ in table])
    raw = np.concatenate([raw, xs, xs - 0.25, xs + 0.25, [xs[0] - 1e9, xs[-1] + 1e9]])
    plan = calibration_plan(cal)
    assert plan.kind == TABLE
    assert_same(calibrate(raw, plan), reference(cal, raw))


def test_table_outside_clamp_or_nan():
    x = np.array([-1, 0, 5, 10, 11], np.int16)
    clamp = calibrate(x, CalPlan.table([0, 10], [100.0, 200.0]))
    nan = calibrate(x, CalPlan.table([0, 10], [100.0, 200.0], outside="nan"))
    np.testing.assert_array_equal(clamp, [100.0, 100.0, 150.0, 200.0, 200.0])
    np.testing.assert_array_equal(nan, [np.nan, 100.0, 150.0, 200.0, np.nan])


@pytest.mark.parametrize(
    "plan",
    [
        CalPlan.none(),
        CalPlan.poly([1.0, 2.0]),
        CalPlan.segmented([0.0, 10.0], [[1.0], [2.0, 3.0, 4.0]]),
        CalPlan.table([0.0, 1.0, 4.0], [5.0, 6.0, 0.0]),
    ],
    ids=["none", "poly", "segments", "table"],
)
@pytest.mark.parametrize("dtype", ["u1", "i2", "u4", "i8", "u8", "f4", "f8", ">i4"])
@pytest.mark.parametrize("shape", [(0,), (1,), (0, 3), (1, 1), (7, 3)])
def test_shapes_and_dtypes(plan, dtype, shape):
    raw = (np.arange(int(np.prod(shape))) % 13).astype(dtype).reshape(shape)
    got = calibrate(raw, plan)
    assert got.shape == shape and got.dtype == np.float64
    cal = {
        NONE: None,
        POLY: Calibration(poly=[1.0, 2.0]),
        SEGMENTS: Calibration(
            segments=[{"start": 0, "poly": [1]}, {"start": 10, "poly": [2, 3, 4]}]
        ),
        TABLE: Calibration(table=[(0, 5), (1, 6), (4, 0)]),
    }[plan.kind]
    assert_same(got, reference(cal, raw))
    if plan.kind == NONE:
        assert not np.shares_memory(got, raw)


def test_non_contiguous_and_large_unsigned_input():
    raw = np.arange(40, dtype=np.uint64).reshape(8, 5)[:, ::2] + np.uint64(2**63)
    plan = CalPlan.poly([0.5, 1e-9])
    assert_same(calibrate(raw, plan), reference(Calibration(poly=[0.5, 1e-9]), raw))


def test_invalid_plans_and_inputs():
    with pytest.raises(ValueError, match="strictly increasing"):
        CalPlan.segmented([0.0, 0.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="strictly increasing"):
        CalPlan.table([0.0, 2.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 points"):
        CalPlan.table([0.0], [1.0])
    with pytest.raises(ValueError, match="outside"):
        CalPlan.table([0.0, 1.0], [0.0, 1.0], outside="extrapolate")
    with pytest.raises(ValueError, match="at least one coefficient"):
        CalPlan.poly([])
    with pytest.raises(ValueError, match="kind"):
        CalPlan(7)
    with pytest.raises(ValueError, match="ncoef"):
        CalPlan(SEGMENTS, np.array([0.0]), np.array([3]), np.ones((1, 2)))
    plan = CalPlan.poly([1.0])
    with pytest.raises(ValueError, match="read-only"):
        plan.coef[0, 0] = 2.0  # plans are shared by every batch
    with pytest.raises(TypeError, match="1-D or 2-D"):
        calibrate(np.zeros((2, 2, 2)), plan)
    with pytest.raises(TypeError, match="integer or float"):
        calibrate(np.array(["a"]), plan)
    with pytest.raises(TypeError, match="CalPlan"):
        calibrate(np.zeros(3), Calibration(poly=[1.0]))


def test_signalling_nan_from_the_wire_is_data_not_a_warning() -> None:
    """Found by fuzzing: widening a float32 signalling NaN raised 'invalid value in cast'."""
    snan = np.array([0x7F800001, 0x3F800000], dtype=np.uint32).view(np.float32)
    out = calibrate(snan, CalPlan.none())
    assert np.isnan(out[0]) and out[1] == 1.0
