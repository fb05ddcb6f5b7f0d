"""The station simulator: deterministic, plausible values, packets that decode, faults as told."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ilrs_ops.ccsds import decode_cuc
from ilrs_ops.profiles import Catalog, calibrate
from ilrs_ops.sim import SOC_DAWN, STRAY_APID, SYNODIC_S, Environment, Faults, Module
from tests.by_apid import decode_frames
from tests.conftest import reference_fields
from tests.reference import decode_packet

START = 1_795_000_000 * 10**9  # 2026-11-18, a fixed start for reproducible packets


def module(
    catalog: Catalog, name: str, seed: int = 7, faults: Faults | None = None, scale: float = 1.0
):
    env = Environment(epoch_ns=START, time_scale=scale)
    return Module(catalog.instruments[name], env, seed=seed, start_ns=START, faults=faults)


def test_same_seed_same_packets_other_seed_other_packets(station: Catalog) -> None:
    for inst in station:
        a = module(station, inst.id, seed=1).next_batch(20).packets
        b = module(station, inst.id, seed=1).next_batch(20).packets
        c = module(station, inst.id, seed=2).next_batch(20).packets
        assert a == b, inst.id
        if any(f.sim and f.sim.noise for f in inst.profile.fields):
            assert a != c, inst.id


def test_packets_decode_with_independent_reference_to_generated_values(station: Catalog) -> None:
    for inst in station:
        m = module(station, inst.id)
        t = m.times(50)
        values = m.values(t)
        buf = m.encode(t, values).tobytes()
        fields = reference_fields(inst.profile)
        size = inst.profile.packet_length
        for i in (0, 17, 49):
            got = decode_packet(buf[i * size : (i + 1) * size], fields)
            assert got["_apid"] == inst.profile.apid and got["_seq_count"] == i
            assert got["_length"] == size - 7 and got["_version"] == 0 and got["_seq_flags"] == 3
            if inst.profile.time.code == "cuc":
                coarse = got["_time_coarse"].to_bytes(inst.profile.time.coarse, "big")
                fine = got.get("_time_fine", 0).to_bytes(inst.profile.time.fine, "big")
                stamp = decode_cuc(coarse + fine, inst.profile.time.coarse, inst.profile.time.fine)
                resolution = 1e9 / 256**inst.profile.time.fine
                assert abs(stamp - int(t[i])) <= resolution / 2 + 1
            for f in inst.profile.fields:
                if f.ignore or f.base == "f":
                    continue
                eng = calibrate(f.calibration, np.asarray(got[f.name]))
                want = np.asarray(values[f.name][i])
                step = _resolution(f, want)
                assert np.all(np.abs(eng - want) <= step), (inst.id, f.name, eng, want)


def _resolution(f, want: np.ndarray) -> np.ndarray:
    """How far a value may move when rounded to raw counts and clipped to the raw range."""
    if f.enum is not None or f.calibration is None:
        return np.full(np.shape(want), 0.5 + 1e-9) if f.sim and f.sim.model != "counter" else 0.5
    lo = 0 if f.base == "u" else -(1 << (f.width - 1))
    hi = (1 << f.width) - 1 if f.base == "u" else (1 << (f.width - 1)) - 1
    grid = calibrate(f.calibration, np.linspace(lo, hi, 4097))
    steps = np.nanmax(np.abs(np.diff(grid))) / ((hi - lo) / 4096)  # per raw count, at its steepest
    return np.full(np.shape(want), steps + 1e-6)


def test_nominal_values_stay_inside_yellow_limits(station: Catalog) -> None:
    for inst in station:
        m = module(station, inst.id, scale=20000.0)  # a full lunar cycle in ~2 minutes
        t = m.times(int(150 / inst.profile.expected_period_s))
        values = m.values(t)
        for f in inst.profile.fields:
            if f.limits is None or f.limits.yellow is None or f.limits.when:
                continue
            lo, hi = f.limits.yellow
            v = values[f.name]
            if lo is not None:
                assert v.min() >= lo, (inst.id, f.name, v.min(), lo)
            if hi is not None:
                assert v.max() <= hi, (inst.id, f.name, v.max(), hi)


def test_environment_follows_the_lunar_cycle() -> None:
    env = Environment(epoch_ns=0, time_scale=1.0, phase0=0.0)
    quarter = int(SYNODIC_S / 4 * 1e9)
    t = np.array([0, quarter, 2 * quarter + 10**9, 3 * quarter], dtype=np.int64)
    sun = env.sun(t)
    assert sun[0] == pytest.approx(0.0, abs=1e-9) and sun[1] == pytest.approx(1.0)
    assert sun[2] == 0.0 and sun[3] == 0.0  # night: the sun is below the horizon
    soc = env.state_of_charge(np.linspace(0, 4 * quarter, 1000).astype(np.int64))
    assert soc.min() >= SOC_DAWN - 1e-9 and soc.max() <= 1.0


def test_every_fault_kind_shows_up_as_what_the_ground_can_see(rover: Catalog) -> None:
    faults = Faults(corrupt=0.05, truncate=0.05, wrong_apid=0.05, duplicate=0.05, gap=0.05)
    m = module(rover, "acme-rover-1", faults=faults)
    packets = m.next_batch(2000).packets
    decoded, rejected = decode_frames(rover, packets)  # one packet per message
    reasons = rejected.counts()
    assert reasons["bad_version"] == m.injected["corrupt"] > 0
    assert reasons["unknown_apid"] == m.injected["wrong_apid"] > 0
    truncated = reasons["truncated"] + reasons["length_past_end"]
    assert truncated == m.injected["truncate"] > 0
    assert all(
        p[1] | (p[0] & 7) << 8 == STRAY_APID
        for p, r in zip(rejected.data, rejected.reasons, strict=True)
        if r == "unknown_apid"
    )
    seq = np.concatenate([d.seq_count for d in decoded])
    counts = Counter(seq.tolist())
    assert sum(c - 1 for c in counts.values()) == m.injected["duplicate"] > 0
    missing = (
        2000
        - len(counts)
        - m.injected["corrupt"]
        - m.injected["truncate"]
        - m.injected["wrong_apid"]
    )
    assert missing == m.injected["gap"] > 0
    assert np.all(np.diff(seq.astype(np.int64)) >= 0)  # nothing out of order was asked for


def test_reordered_packets_arrive_after_their_successor(rover: Catalog) -> None:
    m = module(rover, "acme-rover-1", faults=Faults(reorder=0.1))
    decoded, rejected = decode_frames(rover, m.next_batch(2000).packets)
    seq = np.concatenate([d.seq_count for d in decoded]).astype(np.int64)
    assert not rejected.reasons and sorted(seq.tolist()) == list(range(2000))
    assert int(np.sum(np.diff(seq) < 0)) == m.injected["reorder"] > 0


def test_limit_excursion_goes_past_the_limit_for_its_duration(rover: Catalog) -> None:
    m = module(rover, "acme-rover-1", faults=Faults(limit=0.02, limit_s=3.0))
    t = m.times(3000)
    values = m.values(t)
    assert m.injected["limit"] > 0
    f = {x.name: x for x in rover.instruments["acme-rover-1"].profile.fields}
    lo, hi = f["batt_v"].limits.red
    wl, wh = f["wheel_temp"].limits.red
    past = (values["batt_v"] > hi) | (values["batt_v"] < lo)
    past |= ((values["wheel_temp"] > wh) | (values["wheel_temp"] < wl)).any(axis=1)
    assert past.any()


def test_dropout_silences_the_module_for_its_duration(rover: Catalog) -> None:
    m = module(rover, "acme-rover-1", faults=Faults(dropout=0.01, dropout_s=10.0))
    sent = m.next_batch(4000).packets
    assert m.injected["dropout"] > 0
    assert len(sent) == 4000 - m.injected["dropped"]
    # 10 s at 2 packets/s: 20 packets silent per dropout.
    assert m.injected["dropped"] >= 20 * (m.injected["dropout"] - 1)  # the last may be cut short


@pytest.mark.parametrize(
    "text, expect",
    [
        ("limit=0.01,gap=0.5", Faults(limit=0.01, gap=0.5)),
        (
            "all=0.1",
            Faults(
                **dict.fromkeys(
                    (
                        "limit",
                        "dropout",
                        "gap",
                        "duplicate",
                        "reorder",
                        "corrupt",
                        "truncate",
                        "wrong_apid",
                    ),
                    0.1,
                )
            ),
        ),
        ("", Faults()),
    ],
)
def test_fault_spec_parses(text: str, expect: Faults) -> None:
    assert Faults.parse(text) == expect


@pytest.mark.parametrize(
    "text, message",
    [
        ("lmit=0.1", "bad fault 'lmit=0.1'"),
        ("gap", "bad fault 'gap'"),
        ("gap=x", "not a number"),
        ("gap=2", "not a probability"),
    ],
)
def test_bad_fault_spec_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults.parse(text)


def test_the_next_terminator_follows_the_phase() -> None:
    """The console's header clock asks the simulator's model for day/night and the next
    terminator: day from sunrise (phase 0) to sunset (0.5), at the model's time scale."""
    env = Environment(epoch_ns=0, time_scale=10_000.0, phase0=0.1)
    day, nxt, at = env.terminator(0)
    assert (day, nxt) == (True, "sunset")
    assert at == pytest.approx(0.4 * SYNODIC_S / 10_000 * 1e9, rel=1e-9)
    day, nxt, at2 = env.terminator(at + 1_000_000)
    assert (day, nxt) == (False, "sunrise")
    assert at2 - at == pytest.approx(0.5 * SYNODIC_S / 10_000 * 1e9, rel=1e-6)
    assert env.sun(np.array([at - 10**9]))[0] > 0 and env.sun(np.array([at + 10**9]))[0] == 0
