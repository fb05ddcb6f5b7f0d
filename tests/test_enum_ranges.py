"""Enumerations with ranges (``6..100: NOMINAL``): the keys, the label of any raw value, limit
contexts on a label that covers a range (the context kernel against a reference), labels in
the live status and in the simulator. Located errors: tests/data/broken_profiles/enum_ranges.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.errors import InputError
from ilrs_ops.profiles import Enumeration, compile_plans
from pipelines.limits import LimitPlan, limit_states, select_context
from tests.inline import instrument, process, profile, simulated

#: A mode word with a range label, a temperature whose limits depend on it, a link quality.
MODES = [
    "{name: mode, type: u3, enum: {0: SAFE, 1..5: NOMINAL, 6: SURVIVAL, 7: FAULT},"
    " sim: {model: cycle, values: [NOMINAL, SURVIVAL, 3], period_s: 2}}",
    "{name: quality, type: u5, enum: {0: NO_LINK, 1..9: WEAK, 10..31: GOOD},"
    " sim: {model: cycle, values: [GOOD, WEAK, 20], period_s: 2}}",
    "{name: bus_v, type: u16, calibration: {poly: [0, 0.001]},"
    " limits: {yellow: [26.0, 32.0], red: [24.0, 34.0], when: ["
    "{channel: mode, equals: NOMINAL, yellow: [27.0, 31.0]},"
    "{channel: mode, equals: SURVIVAL, yellow: [24.5, 33.0], red: [23.0, 35.0]}]},"
    " sim: {model: constant, value: 28.5}}",
]


@pytest.mark.parametrize(
    ("key", "want"),
    [
        (5, (5, 5)),
        (-3, (-3, -3)),
        ("6..100", (6, 100)),
        ("-5..-1", (-5, -1)),
        (" 7 .. 9 ", (7, 9)),
        ("0x10..0x1F", (16, 31)),
        ("007..010", (7, 10)),  # leading zeros are decimal, as YAML 1.2 reads 007
        ("12", (12, 12)),
    ],
)
def test_enum_keys(key: int | str, want: tuple[int, int]) -> None:
    (state,) = Enumeration({key: "X"}).states
    assert (state.lo, state.hi) == want


@pytest.mark.parametrize(
    ("key", "message"),
    [("6..", "not a raw value"), ("a..b", "not a raw value"), ("6-100", "not a raw value"),
     ("100..6", "high to low"), ("1.5", "not a raw value")],
)  # fmt: skip
def test_bad_enum_keys(key: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Enumeration({key: "X"})


def test_enumeration_finds_the_state_of_any_value() -> None:
    e = Enumeration({0: "NO_LINK", "1..99": "WEAK", "100..255": "GOOD", 300: "TEST"})
    assert [e.get(v, v) for v in (0, 1, 50, 99, 100, 255, 256, 300, -1)] == [
        "NO_LINK", "WEAK", "WEAK", "WEAK", "GOOD", "GOOD", 256, "TEST", -1]  # fmt: skip
    assert e.ranges("WEAK") == [(1, 99)] and e.ranges("NOPE") == []
    assert e.code("GOOD") == 100 and e.lowest == 0
    assert e.labels == ["GOOD", "NO_LINK", "TEST", "WEAK"]
    assert 150 in e and 256 not in e


def test_the_old_mapping_form_still_loads() -> None:
    p = profile(["{name: mode, type: u8, enum: {0: SAFE, 1: DRIVE, 2: SCIENCE}}"], 13)
    e = p.fields[0].enumeration
    assert e is not None and [(s.lo, s.hi, s.label) for s in e.states] == [
        (0, 0, "SAFE"), (1, 1, "DRIVE"), (2, 2, "SCIENCE")]  # fmt: skip


def test_a_range_label_is_a_limit_context_over_its_range() -> None:
    plan = compile_plans(profile(MODES, 15)).limits["bus_v"]
    assert plan.context_channels == ("mode", "mode")
    assert plan.context_values.tolist() == [1.0, 6.0]  # NOMINAL is 1..5, SURVIVAL 6
    assert plan.context_hi.tolist() == [5.0, 6.0]
    mode = np.array([0, 1, 3, 5, 6, 7, np.nan])
    ctx = select_context(plan, {"mode": mode}, 7)
    assert ctx.tolist() == [-1, 0, 0, 0, 1, -1, -1]
    # 26.5 V: inside the default yellow [26, 32] and SURVIVAL's [24.5, 33], below NOMINAL's 27.
    assert limit_states(np.full(7, 26.5), plan, ctx).tolist() == [0, 1, 1, 1, 0, 0, 0]


def test_a_label_of_several_entries_is_in_force_in_each() -> None:
    p = profile(
        [
            "{name: mode, type: u8, enum: {0: 'OFF', 1..2: OK, 5..9: OK, 10: FAULT}}",
            "{name: temp, type: i16, limits: {yellow: [-10, 10], when: "
            "[{channel: mode, equals: OK, yellow: [-50, 50]}, "
            "{channel: mode, equals: 10, yellow: [-1, 1]}]}}",
        ],
        15,
    )
    plan = compile_plans(p).limits["temp"]
    assert plan.context_values.tolist() == [1.0, 5.0, 10.0]
    assert plan.context_hi.tolist() == [2.0, 9.0, 10.0]
    ctx = select_context(plan, {"mode": np.array([0, 1, 2, 3, 5, 9, 10])}, 7)
    assert limit_states(np.full(7, 20.0), plan, ctx).tolist() == [1, 0, 0, 1, 0, 0, 1]


def reference_context(plan: LimitPlan, contexts: dict, i: int) -> int:
    for j, name in enumerate(plan.context_channels):
        if plan.context_values[j] <= contexts[name][i] <= plan.context_hi[j]:
            return j
    return -1


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_select_context_matches_a_reference(data: st.DataObject) -> None:
    k = data.draw(st.integers(0, 6))
    names = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=k, max_size=k))
    lo = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=k, max_size=k)), float)
    span = np.array(data.draw(st.lists(st.integers(0, 4), min_size=k, max_size=k)), float)
    n = data.draw(st.integers(0, 30))
    value = st.one_of(st.integers(-8, 8).map(float), st.just(float("nan")))
    contexts = {c: np.array(data.draw(st.lists(value, min_size=n, max_size=n))) for c in "abc"}
    sets = np.zeros(k + 1)
    plan = LimitPlan(sets, sets + 1, sets, sets + 1, tuple(names), lo, lo + span)
    got = select_context(plan, contexts, n)
    assert got.tolist() == [reference_context(plan, contexts, i) for i in range(n)]


def test_limit_plan_checks_its_context_ranges() -> None:
    with pytest.raises(ValueError, match="lo <= hi"):
        LimitPlan(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), ("m",), [3.0], [2.0])
    with pytest.raises(ValueError, match="context_hi"):
        LimitPlan(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), ("m",), [3.0], [3.0, 4.0])
    equality = LimitPlan(np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), ("m",), [3.0])
    assert equality.context_hi.tolist() == [3.0]  # no context_hi: the context is an equality


def test_range_codes_show_as_their_labels_and_sim_labels_take_their_lowest_code() -> None:
    inst = instrument(profile(MODES, 15))
    out = process(inst, simulated(inst, 12), 12)
    tm = out.telemetry
    # cycle [NOMINAL, SURVIVAL, 3] and [GOOD, WEAK, 20], each for 2 s: a label stands for the
    # lowest raw value it covers.
    mode, quality = tm.column("mode").to_pylist(), tm.column("quality").to_pylist()
    pairs = {1: 10, 6: 1, 3: 20}  # the two cycles run in step
    assert set(mode) == {1, 6, 3} and quality == [pairs[m] for m in mode]
    labels = {1: "NOMINAL", 6: "SURVIVAL", 3: "NOMINAL"}
    assert out.latest["values"]["mode"] == labels[mode[-1]]
    assert out.latest["values"]["quality"] == {10: "GOOD", 1: "WEAK", 20: "GOOD"}[quality[-1]]
    # 28.5 V is nominal in every state.
    assert tm.column("bus_v__state").to_pylist() == [0] * 12
