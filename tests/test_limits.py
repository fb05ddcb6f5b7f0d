"""pipelines.limits against a pure-Python reference, and limit plans compiled from profiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.errors import ProfileError
from ilrs_ops.profiles import Limits, compile_plans, limit_plan, load_profile
from pipelines.limits import (
    INVALID,
    NOMINAL,
    RED,
    YELLOW,
    LimitPlan,
    channel_states,
    limit_states,
    select_context,
    transitions,
)

DATA = Path(__file__).parent / "data"
ROVER = DATA / "good_profiles" / "acme" / "rover.yaml"
SEISMOMETER = Path(__file__).parents[1] / "hardware_profiles" / "cnsa" / "seismometer.yaml"


def ref_state(v: float, ylo: float, yhi: float, rlo: float, rhi: float) -> int:
    if math.isnan(v):
        return INVALID
    if v < rlo or v > rhi:
        return RED
    if v < ylo or v > yhi:
        return YELLOW
    return NOMINAL


def ref_states(values: np.ndarray, plan: LimitPlan, ctx: np.ndarray) -> np.ndarray:
    sets = plan.sets()
    rows = values if values.ndim == 2 else values[:, None]
    out = [
        [ref_state(float(v), *sets[int(c) + 1]) for v in row]
        for row, c in zip(rows, ctx, strict=True)
    ]
    return np.array(out, np.int8).reshape(values.shape)


def ref_transitions(states, prev):
    out = []
    for i, s in enumerate(states):
        if s != prev:
            out.append((i, prev, int(s)))
            prev = int(s)
    return out, prev


bound = st.sampled_from([-np.inf, np.inf, -10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0])


@st.composite
def plans(draw):
    n_sets = draw(st.integers(1, 4))
    rows = []
    for _ in range(n_sets):
        ylo, yhi = sorted([draw(bound), draw(bound)])
        rlo = draw(st.sampled_from([-np.inf, ylo, ylo - 2.0]))
        rhi = draw(st.sampled_from([np.inf, yhi, yhi + 2.0]))
        rows.append((ylo, yhi, rlo, rhi))
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    return LimitPlan(*cols, ("ctx",) * (n_sets - 1), np.arange(n_sets - 1, dtype=np.float64))


value = st.one_of(
    bound,
    st.floats(-20, 20),
    st.sampled_from([np.nan, -12.0, -7.0, 7.0, 12.0, 3.0]),
)


@settings(max_examples=300, deadline=None)
@given(plans(), st.data(), st.integers(0, 30), st.sampled_from([None, 1, 4]))
def test_states_match_reference(plan, data, n, width):
    shape = (n,) if width is None else (n, width)
    values = np.array(
        data.draw(st.lists(value, min_size=n * (width or 1), max_size=n * (width or 1)))
    )
    values = values.reshape(shape)
    ctx = np.array(data.draw(st.lists(st.integers(-1, plan.n_sets - 2), min_size=n, max_size=n)))
    ctx = ctx.astype(np.int64)
    got = limit_states(values, plan, ctx if plan.n_sets > 1 else None)
    assert got.dtype == np.int8 and got.shape == shape
    np.testing.assert_array_equal(got, ref_states(values, plan, ctx))


def test_bounds_are_inclusive_nominal():
    plan = LimitPlan.single(yellow=(24.0, 33.0), red=(22.0, 34.5))
    v = np.array([np.nan, 21.9, 22.0, 23.9, 24.0, 30.0, 33.0, 33.1, 34.5, 34.6, np.inf, -np.inf])
    want = [INVALID, RED, YELLOW, YELLOW, NOMINAL, NOMINAL, NOMINAL, YELLOW, YELLOW, RED, RED, RED]
    assert limit_states(v, plan).tolist() == want
    assert limit_states(v.astype(np.float32), plan).tolist() == want
    # Integer values (e.g. raw or derived counts) are compared as float64.
    assert limit_states(np.array([21, 22, 24], np.int16), plan).tolist() == [RED, YELLOW, NOMINAL]


def test_only_yellow_or_only_red():
    only_yellow = LimitPlan.single(yellow=(None, 120.0))
    assert limit_states(np.array([-1e300, 120.0, 121.0]), only_yellow).tolist() == [0, 0, 1]
    only_red = LimitPlan.single(red=(0.0, None))
    assert limit_states(np.array([-0.5, 0.0, 1e300, np.inf]), only_red).tolist() == [2, 0, 0, 0]
    none = LimitPlan.single()
    assert limit_states(np.array([np.inf, np.nan]), none).tolist() == [NOMINAL, INVALID]


def test_empty_and_single():
    plan = LimitPlan.single(yellow=(0.0, 1.0))
    assert limit_states(np.empty(0), plan).shape == (0,)
    assert limit_states(np.empty((0, 6)), plan).shape == (0, 6)
    assert limit_states(np.array([2.0]), plan).tolist() == [YELLOW]
    assert limit_states(np.array([[2.0]]), plan).tolist() == [[YELLOW]]


def test_select_context_first_match_wins_and_nan_matches_nothing():
    plan = LimitPlan(
        np.zeros(4), np.ones(4), np.full(4, -np.inf), np.full(4, np.inf),
        ("mode", "sun", "mode"), np.array([1.0, 0.0, 2.0]),
    )  # fmt: skip
    mode = np.array([1, 1, 2, 2, 0, 0, np.nan])
    sun = np.array([0, 1, 0, 1, 0, 1, np.nan])
    ctx = select_context(plan, {"mode": mode, "sun": sun}, 7)
    assert ctx.tolist() == [0, 0, 1, 2, 1, -1, -1]
    assert select_context(plan, {"mode": np.empty(0), "sun": np.empty(0)}, 0).shape == (0,)
    with pytest.raises(KeyError, match="sun"):
        select_context(plan, {"mode": mode}, 7)
    with pytest.raises(ValueError, match="expected"):
        select_context(plan, {"mode": mode, "sun": sun[:3]}, 7)


def test_channel_states_worst_element():
    s = np.array([[0, 1, -1], [-1, -1, -1], [-1, 0, -1], [2, 1, 0], [0, 0, 0]], np.int8)
    assert channel_states(s).tolist() == [YELLOW, INVALID, NOMINAL, RED, NOMINAL]
    one = np.array([1, -1], np.int8)
    assert channel_states(one) is one
    assert channel_states(np.empty((0, 4), np.int8)).shape == (0,)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([-1, 0, 1, 2]), max_size=60),
    st.sampled_from([-1, 0, 1, 2]),
    st.lists(st.integers(0, 60), max_size=4),
)
def test_transitions_match_reference_and_carry_across_batches(states, prev, cuts):
    s = np.array(states, np.int8)
    want, want_last = ref_transitions(states, prev)
    t = transitions(s, prev)
    assert (
        list(zip(t.index.tolist(), t.from_state.tolist(), t.to_state.tolist(), strict=True)) == want
    )
    assert t.last == want_last
    assert t.index.dtype == np.int64 and t.from_state.dtype == t.to_state.dtype == np.int8
    # Cut into batches, carrying the last state: the same transitions.
    got, carry, offset = [], prev, 0
    for part in np.split(s, sorted(c for c in cuts if c <= len(states))):
        t = transitions(part, carry)
        got += [
            (i + offset, f, to) for i, f, to in zip(t.index, t.from_state, t.to_state, strict=True)
        ]
        carry, offset = t.last, offset + len(part)
    assert got == want and carry == want_last


def test_transitions_default_prev_is_nominal():
    assert transitions(np.array([0, 0], np.int8)).index.size == 0
    t = transitions(np.array([2, 2, 0], np.int8))
    assert t.index.tolist() == [0, 2] and t.to_state.tolist() == [RED, NOMINAL]
    empty = transitions(np.empty(0, np.int8), YELLOW)
    assert empty.index.size == 0 and empty.last == YELLOW


def test_invalid_inputs():
    plan = LimitPlan(np.zeros(2), np.ones(2), np.zeros(2) - 1, np.ones(2) + 1, ("m",), [0.0])
    v = np.zeros(3)
    with pytest.raises(ValueError, match="context"):
        limit_states(v, plan)
    with pytest.raises(ValueError, match=r"-1\.\.0"):
        limit_states(v, plan, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match="one per sample"):
        limit_states(v, plan, np.array([0, 0]))
    with pytest.raises(TypeError, match="1-D or 2-D"):
        limit_states(np.zeros((1, 1, 1)), plan)
    with pytest.raises(TypeError, match="int8"):
        transitions(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="prev state"):
        transitions(np.zeros(3, np.int8), 5)
    with pytest.raises(ValueError, match="NaN"):
        LimitPlan.single(yellow=(float("nan"), 1.0))
    with pytest.raises(ValueError, match="context channel"):
        LimitPlan(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="read-only"):
        plan.red_hi[0] = 5.0  # plans are shared by every batch


def test_rover_plans_when_set_replaces_only_its_colours():
    plans = compile_plans(load_profile(ROVER)).limits
    assert list(plans) == ["batt_v", "wheel_temp", "power_w"]
    assert plans["batt_v"].sets() == [(24.0, 33.0, 22.0, 34.5)]
    wheel = plans["wheel_temp"]
    # when mode == SAFE (code 0): yellow [-60, 80], red inherited from the default set.
    assert wheel.sets() == [(-40.0, 60.0, -50.0, 70.0), (-60.0, 80.0, -50.0, 70.0)]
    assert wheel.context_channels == ("mode",) and wheel.context_values.tolist() == [0.0]
    assert plans["power_w"].sets() == [(-np.inf, 120.0, -np.inf, np.inf)]

    # End to end: 3 packets of 6 wheel temperatures, mode DRIVE, SAFE, DRIVE.
    temps = np.array([[20, 65, 20, 20, 20, 20], [20, 65, 20, 20, 20, 20], [np.nan] * 6])
    mode = np.array([1, 0, 1], np.uint8)
    ctx = select_context(wheel, {"mode": mode}, 3)
    assert ctx.tolist() == [-1, 0, -1]
    states = limit_states(temps, wheel, ctx)
    assert states[:, 1].tolist() == [YELLOW, NOMINAL, INVALID]
    assert channel_states(states).tolist() == [YELLOW, NOMINAL, INVALID]
    # In SAFE mode 75 is above red high 70, which SAFE does not override.
    assert limit_states(np.array([[75.0]]), wheel, np.array([0])).tolist() == [[RED]]


def test_seismometer_context_is_enum_code():
    plans = compile_plans(load_profile(SEISMOMETER)).limits
    sensor = plans["sensor_t"]
    assert sensor.context_channels == ("sun_state",)
    assert sensor.context_values.tolist() == [0.0]  # NIGHT
    assert sensor.sets()[1] == (12.0, 25.0, 5.0, 30.0)
    assert plans["peak_z"].sets() == [(-np.inf, 20000.0, -np.inf, 60000.0)]


def test_limit_plan_numeric_equals_and_bad_label():
    profile = load_profile(ROVER)
    fields = {f.name: f for f in profile.fields}
    lim = Limits(red=(0.0, 10.0), when=[{"channel": "heater_on", "equals": 1, "yellow": (2, 8)}])
    plan = limit_plan(lim, fields)
    assert plan.sets() == [(-np.inf, np.inf, 0.0, 10.0), (2.0, 8.0, 0.0, 10.0)]
    assert plan.context_values.tolist() == [1.0]
    bad = profile.model_copy(
        update={
            "fields": [
                f.model_copy(
                    update={"limits": Limits(when=[{"channel": "mode", "equals": "PARKED"}])}
                )
                if f.name == "batt_v"
                else f
                for f in profile.fields
            ]
        }
    )
    with pytest.raises(ProfileError, match="'PARKED' is not a state of 'mode'"):
        compile_plans(bad)
