"""pipelines.detectors.sta_lta against a pure-Python loop, across batches, and on a quake."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.errors import ProfileError
from ilrs_ops.profiles import compile_plans, load_profile
from pipelines.detectors import StaLtaPlan, StaLtaState, sta_lta

SEISMOMETER = Path(__file__).parents[1] / "hardware_profiles" / "cnsa" / "seismometer.yaml"


def reference(x, n_sta, n_lta, on, off):
    """The same recursion, one sample at a time, from a cold start."""
    c_sta, c_lta = 1.0 / n_sta, 1.0 / n_lta
    sta = lta = 0.0
    triggered, seen = False, 0
    ratio, ons, offs = [], [], []
    for i, v in enumerate(x):
        v = float(v)
        if math.isnan(v):
            ratio.append(math.nan)
            continue
        energy = v * v
        sta = c_sta * energy + (1.0 - c_sta) * sta
        lta = c_lta * energy + (1.0 - c_lta) * lta
        seen += 1
        r = sta / lta if seen >= n_lta and lta > 0 else 0.0
        ratio.append(r)
        if triggered and r < off:
            triggered = False
            offs.append(i)
        elif not triggered and r > on:
            triggered = True
            ons.append(i)
    return ratio, ons, offs, StaLtaState(sta, lta, triggered, seen)


sample = st.one_of(st.floats(-1e3, 1e3), st.just(math.nan), st.just(0.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(sample, max_size=200),
    st.integers(1, 5),
    st.integers(2, 30),
    st.lists(st.integers(0, 200), max_size=4),
)
def test_matches_reference_and_carries_across_batches(x, n_sta, extra, cuts):
    n_lta = n_sta + extra
    plan = StaLtaPlan(n_sta, n_lta, on=2.0, off=1.2, sample_rate_hz=1.0)
    assert (plan.n_sta, plan.n_lta) == (n_sta, n_lta)
    x = np.array(x, np.float64)
    ratio, ons, offs, state = reference(x, n_sta, n_lta, 2.0, 1.2)
    whole = sta_lta(x, plan)
    np.testing.assert_array_equal(whole.ratio, ratio)
    assert whole.on_index.tolist() == ons and whole.off_index.tolist() == offs
    assert whole.state == state
    # In batches, carrying the state: bit for bit the same.
    parts, st_, offset, got_on, got_off = [], None, 0, [], []
    for part in np.split(x, sorted(c for c in cuts if c <= x.size)):
        r = sta_lta(part, plan, st_)
        parts.append(r.ratio)
        got_on += (r.on_index + offset).tolist()
        got_off += (r.off_index + offset).tolist()
        st_, offset = r.state, offset + part.size
    np.testing.assert_array_equal(np.concatenate(parts), ratio)
    assert (got_on, got_off, st_) == (ons, offs, state)


def test_quake_triggers_once_near_onset_and_releases_after():
    rate = 50.0
    plan = StaLtaPlan(sta_s=1.0, lta_s=30.0, on=4.0, off=1.5, sample_rate_hz=rate)
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, int(240 * rate))
    onset, end = int(100 * rate), int(110 * rate)
    x[onset:end] += rng.normal(0.0, 20.0, end - onset)
    r = sta_lta(x, plan)
    assert r.on_index.size == 1 and r.off_index.size == 1
    assert onset <= r.on_index[0] < onset + int(0.5 * rate)
    assert end <= r.off_index[0] < end + int(30 * rate)
    assert not r.state.triggered
    # The same signal fed as one-second packets.
    state, ons, offs = None, [], []
    for k in range(0, x.size, int(rate)):
        p = sta_lta(x[k : k + int(rate)], plan, state)
        ons += (p.on_index + k).tolist()
        offs += (p.off_index + k).tolist()
        state = p.state
    assert (ons, offs) == (r.on_index.tolist(), r.off_index.tolist())


def test_no_trigger_before_the_lta_window_fills():
    plan = StaLtaPlan(1, 10, on=1.5, off=1.0, sample_rate_hz=1.0)
    x = np.r_[np.zeros(5), np.full(3, 100.0), np.ones(20)]
    r = sta_lta(x, plan)
    assert np.all(r.ratio[:9] == 0.0) and r.ratio[9] > 0
    assert r.on_index.size == 0 or r.on_index[0] >= 9


def test_nan_leaves_the_state_alone():
    plan = StaLtaPlan(2, 5, on=3.0, off=1.0, sample_rate_hz=1.0)
    x = np.array([1.0, 2.0, 3.0])
    a = sta_lta(x, plan)
    b = sta_lta(np.array([1.0, np.nan, 2.0, np.nan, np.nan, 3.0]), plan)
    assert b.state == a.state
    np.testing.assert_array_equal(b.ratio[[0, 2, 5]], a.ratio)
    assert np.isnan(b.ratio[[1, 3, 4]]).all()


def test_empty_and_single_sample():
    plan = StaLtaPlan(1, 3, on=2.0, off=1.0, sample_rate_hz=1.0)
    state = StaLtaState(sta=5.0, lta=1.0, triggered=True, seen=10)
    e = sta_lta(np.empty(0), plan, state)
    assert e.ratio.shape == (0,) and e.on_index.size == e.off_index.size == 0 and e.state == state
    one = sta_lta(np.array([0.0]), plan, state)
    assert one.off_index.tolist() == [0] and not one.state.triggered
    assert sta_lta(np.array([3], np.int32), plan).state.seen == 1


def test_plan_from_the_seismometer_profile():
    (det,) = compile_plans(load_profile(SEISMOMETER)).detectors
    assert (det.kind, det.channel) == ("sta_lta", "vel_z")
    assert det.sta_lta.sample_rate_hz == 50.0
    assert (det.sta_lta.n_sta, det.sta_lta.n_lta) == (100, 3000)
    assert (det.sta_lta.on, det.sta_lta.off) == (4.0, 1.5)


def test_detector_windows_that_round_together_are_a_profile_error():
    profile = load_profile(SEISMOMETER)
    det = profile.detectors[0].model_copy(
        update={"channel": "sensor_t", "sta_s": 0.4, "lta_s": 0.6}
    )
    with pytest.raises(ProfileError, match="shorter than the LTA window"):
        compile_plans(profile.model_copy(update={"detectors": [det]}))


def test_invalid_input():
    with pytest.raises(ValueError, match="positive"):
        StaLtaPlan(0, 10, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="shorter"):
        StaLtaPlan(10, 10, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="off"):
        StaLtaPlan(1, 10, 2.0, 3.0, 1.0)
    plan = StaLtaPlan(1, 10, 2.0, 1.0, 1.0)
    with pytest.raises(TypeError, match="1-D"):
        sta_lta(np.zeros((2, 2)), plan)
    with pytest.raises(ValueError, match="state"):
        sta_lta(np.zeros(2), plan, StaLtaState(lta=-1.0))
