"""The processing chain of one instrument: simulator packets in, the stored tables out."""

from __future__ import annotations

import itertools
import json
import struct
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ilrs_ops.ccsds import decode_cuc
from ilrs_ops.processing import DEDUPE_WINDOW, Processed, Processor, ProcessState
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW, ROLLUPS, telemetry_schema
from ilrs_ops.sim import STRAY_APID, Environment, Faults, Module
from pipelines.rollups import rollup
from tests.conftest import reference_fields
from tests.reference import decode_packet

START = 1_795_000_000 * 10**9  # 2026-11-18, as in test_sim
TOPIC = "test/tm/acme/acme-rover-1"
ALL_FAULTS = Faults(
    corrupt=0.03,
    truncate=0.03,
    wrong_apid=0.03,
    duplicate=0.03,
    gap=0.03,
    reorder=0.03,
    limit=0.01,
    limit_s=3.0,
)


def module(inst: Instrument, seed: int = 7, faults: Faults | None = None) -> Module:
    return Module(inst, Environment(epoch_ns=START), seed=seed, start_ns=START, faults=faults)


def bundle(packets: list[bytes], per_frame: int) -> list[bytes]:
    return [b"".join(packets[i : i + per_frame]) for i in range(0, len(packets), per_frame)]


def recv_times(frames: list[bytes]) -> np.ndarray:
    """Receive times 1 ms apart, a day after the first packet time: a ground station receives
    after the packets were made (a packet time after its receive time is a clock fault)."""
    return START + 86_400 * 10**9 + 10**6 * np.arange(len(frames), dtype=np.int64)


def process(proc: Processor, frames: list[bytes], recv: np.ndarray | None = None) -> Processed:
    return proc.process(frames, recv_times(frames) if recv is None else recv, TOPIC)


def concat(outs: list[Processed], name: str) -> pa.Table:
    return pa.concat_tables([getattr(o, name) for o in outs])


def combined_rollups(table: pa.Table) -> dict:
    """Rows of one (channel, width, bucket) combined as readers do (schemas.ROLLUPS)."""
    cols = {
        name: table.column(name).cast(pa.int64()).to_numpy()
        if pa.types.is_timestamp(table.schema.field(name).type)
        else table.column(name).to_pylist()
        for name in table.column_names
    }
    out: dict = {}
    for i in range(table.num_rows):
        r = {name: col[i] for name, col in cols.items()}
        key = (r["channel"], r["width_s"], int(r["bucket"]))
        if key not in out:
            out[key] = r
            continue
        c = out[key]
        c["count"] += r["count"]
        c["sum"] += r["sum"]
        c["min"] = float(np.fmin(c["min"], r["min"]))
        c["max"] = float(np.fmax(c["max"], r["max"]))
        c["first"], c["last"] = min(c["first"], r["first"]), max(c["last"], r["last"])
    return out


def ns(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()


def rows(table: pa.Table) -> list[dict]:
    """The rows as dicts, times as int ns (datetime has only microseconds)."""
    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    for name in times:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.int64()))
    return table.to_pylist()


# --------------------------------------------------------------------------- (1) calibration


def reference_engineering(inst: Instrument, packet: bytes) -> dict:
    """Engineering values of one packet by hand: tests/reference.py decode, then each
    calibration form written out with NumPy, derived channels as the profile's formulas."""
    got = decode_packet(packet, reference_fields(inst.profile))
    out: dict = {}
    for f in inst.profile.fields:
        if f.ignore:
            continue
        x = np.asarray(got[f.name], dtype=np.float64)
        cal = f.calibration
        if f.enum is not None:
            out[f.name] = np.asarray(got[f.name], dtype=np.int64)
        elif cal is None:
            out[f.name] = x
        elif cal.poly is not None:
            out[f.name] = np.polynomial.polynomial.polyval(x, cal.poly)
        elif cal.segments is not None:
            starts = [s.start for s in cal.segments]

            def seg(v: float, starts: list = starts, cal=cal) -> float:
                k = max([j for j, s in enumerate(starts) if s <= v], default=0)
                return float(np.polynomial.polynomial.polyval(v, cal.segments[k].poly))

            out[f.name] = np.vectorize(seg)(x)
        else:
            xs, ys = zip(*cal.table, strict=True)
            outside = np.nan if cal.outside == "nan" else None
            out[f.name] = np.interp(x, xs, ys, left=outside, right=outside)
    return out


DERIVED = {  # tests/data/good_profiles/acme/rover.yaml, written out by hand
    "power_w": lambda c: c["batt_v"] * c["batt_i"],
    "hottest_wheel": lambda c: np.max(c["wheel_temp"]),
}


def reference_state(value: float, mode: int) -> int:
    """acme-rover-1 wheel_temp: yellow [-40, 60], red [-50, 70]; in SAFE (0) yellow [-60, 80]."""
    ylo, yhi = (-60, 80) if mode == 0 else (-40, 60)
    if np.isnan(value):
        return -1
    if value < -50 or value > 70:
        return 2
    return 1 if value < ylo or value > yhi else 0


def test_calibrated_telemetry_equals_an_independent_reference(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    m = module(inst, faults=Faults(limit=0.05, limit_s=2.0))
    packets = m.next_batch(400).packets
    out = process(Processor(inst), bundle(packets, 10))
    tm = out.telemetry.to_pydict()
    assert out.telemetry.num_rows == len(packets) and not out.quarantine.num_rows
    p = inst.profile
    for i, packet in enumerate(packets):
        ref = reference_engineering(inst, packet)
        for name, fn in DERIVED.items():
            ref[name] = fn(ref)
        raw = decode_packet(packet, reference_fields(p))
        t = decode_cuc(
            raw["_time_coarse"].to_bytes(4, "big") + raw["_time_fine"].to_bytes(2, "big"), 4, 2
        )
        assert ns(out.telemetry.column("time"))[i] == t
        assert tm["seq"][i] == raw["_seq_count"] == i
        for name in inst.channels:
            np.testing.assert_array_equal(np.asarray(tm[name][i], float), ref[name], err_msg=name)
        states = [reference_state(v, int(ref["mode"])) for v in ref["wheel_temp"]]
        assert tm["wheel_temp__state"][i] == max(states)
        assert out.raw.column("data")[i].as_py() == packet


# --------------------------------------------------------------------------- (2) determinism


def stream(inst: Instrument, n: int, faults: Faults, per_frame: int, seed: int = 3) -> list:
    return bundle(module(inst, seed=seed, faults=faults).next_batch(n).packets, per_frame)


def run_in_batches(inst: Instrument, frames: list, cuts: list[int], via_json: bool) -> tuple:
    recv = recv_times(frames)
    proc, outs = Processor(inst), []
    bounds = [0, *sorted(set(cuts)), len(frames)]
    for a, b in itertools.pairwise(bounds):
        if via_json:
            state = ProcessState.from_json(json.loads(json.dumps(proc.state.to_json())))
            proc = Processor(inst, state)
        outs.append(proc.process(frames[a:b], recv[a:b], TOPIC))
    return outs, proc.state


def assert_same_output(whole: list[Processed], parts: list[Processed]) -> None:
    for name in ("raw", "telemetry", "events", "quarantine"):
        a, b = concat(whole, name), concat(parts, name)
        assert a.num_rows == b.num_rows, name
        assert a.equals(b), name
    a, b = combined_rollups(concat(whole, "rollups")), combined_rollups(concat(parts, "rollups"))
    assert a.keys() == b.keys()
    for key, row in a.items():
        other = b[key]
        for k in ("count", "first", "last", "min", "max"):
            assert row[k] == other[k] or (row[k] != row[k] and other[k] != other[k]), (key, k)
        assert row["sum"] == pytest.approx(other["sum"], rel=1e-12, abs=1e-9), key
    last = next(o.latest for o in reversed(parts) if o.latest)
    assert whole[-1].latest == last


class Run:
    """A faulty stream processed in one batch (a short repr for hypothesis' reports)."""

    def __init__(self, inst: Instrument, frames: list) -> None:
        self.inst, self.frames = inst, frames
        self.whole, state = run_in_batches(inst, frames, [], via_json=False)
        self.state = state.to_json()

    def __iter__(self):
        return iter((self.inst, self.frames, self.whole, self.state))

    def __repr__(self) -> str:
        return f"Run({self.inst.id}, {len(self.frames)} frames)"


@pytest.fixture(scope="module")
def faulty_rover(rover: Catalog) -> Run:
    inst = rover.instruments["acme-rover-1"]
    return Run(inst, stream(inst, 3000, ALL_FAULTS, per_frame=3))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(0, 1000), max_size=12), via_json=st.booleans())
def test_batches_give_what_one_batch_gives(faulty_rover, cuts: list[int], via_json: bool) -> None:
    inst, frames, whole, state = faulty_rover
    parts, split_state = run_in_batches(inst, frames, cuts, via_json)
    assert_same_output(whole, parts)
    assert split_state.to_json() == state


def test_many_small_batches_through_json(faulty_rover) -> None:
    inst, frames, whole, state = faulty_rover
    parts, split_state = run_in_batches(inst, frames, list(range(0, 1000, 3)), via_json=True)
    assert_same_output(whole, parts)
    assert split_state.to_json() == state
    assert {e["kind"] for e in rows(concat(parts, "events"))} == {"gap", "limit"}


def test_state_round_trips_through_json(faulty_rover) -> None:
    _, _, _, state = faulty_rover
    again = ProcessState.from_json(json.loads(json.dumps(state))).to_json()
    assert again == state
    assert len(state["dedupe"]["key"]) == min(DEDUPE_WINDOW, state["counters"]["packets"])
    with pytest.raises(ValueError, match="version"):
        ProcessState.from_json({**state, "version": 99})
    with pytest.raises(ValueError, match="not a processing state"):
        ProcessState.from_json({"version": 1})


# --------------------------------------------------------------------------- (3) faults


def test_every_fault_kind_is_accounted_for(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    faults = Faults(
        corrupt=0.05, truncate=0.05, wrong_apid=0.05, duplicate=0.05, gap=0.05, dropout=0.003
    )
    m = module(inst, faults=faults)
    frames = m.next_batch(2000).packets  # one packet per message, as test_sim does
    proc = Processor(inst)
    out = process(proc, frames)
    reasons = Counter(out.quarantine.column("reason").to_pylist())
    assert reasons["bad_version"] == m.injected["corrupt"] > 0
    assert reasons["truncated"] + reasons["length_past_end"] == m.injected["truncate"] > 0
    assert reasons["wrong_apid"] == m.injected["wrong_apid"] > 0
    assert reasons["duplicate"] == m.injected["duplicate"] > 0
    assert reasons.keys() <= {"bad_version", "truncated", "length_past_end"} | {
        "wrong_apid",
        "duplicate",
    }
    assert proc.state.rejects == dict(reasons)
    assert m.injected["dropout"] > 0
    lost = m.injected["dropped"] + m.injected["corrupt"] + m.injected["truncate"]
    lost += m.injected["wrong_apid"]
    assert out.raw.num_rows == out.telemetry.num_rows == 2000 - lost
    seq = out.telemetry.column("seq").to_numpy()
    assert len(set(seq.tolist())) == len(seq)  # duplicates are not telemetry
    gaps = [e for e in rows(out.events) if e["kind"] == "gap"]
    # Packets lost before the first or after the last accepted one leave no gap to see.
    assert sum(e["value"] for e in gaps) == seq.max() - seq.min() + 1 - len(seq)
    assert seq.min() == 0 or 0 < seq.min() <= lost
    for e in gaps:
        a, b = map(int, e["detail"].removeprefix("seq ").split(" -> "))
        assert b - a - 1 == e["value"]
    for row in rows(out.quarantine):
        if row["reason"] == "wrong_apid":
            assert (row["data"][0] & 7) << 8 | row["data"][1] == STRAY_APID
            assert "0x7fe" in row["detail"]
        assert row["topic"] == TOPIC
    counters = proc.state.to_json()["counters"]
    assert counters["packets"] == out.raw.num_rows
    assert counters["octets"] == sum(map(len, frames))


def test_reordered_packets_are_quarantined_out_of_order(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    m = module(inst, faults=Faults(reorder=0.1))
    out = process(Processor(inst), bundle(m.next_batch(2000).packets, 10))
    reasons = Counter(out.quarantine.column("reason").to_pylist())
    assert reasons == {"out_of_order": m.injected["reorder"]} and m.injected["reorder"] > 0
    assert np.all(np.diff(ns(out.telemetry.column("time"))) > 0)
    gaps = [e for e in rows(out.events) if e["kind"] == "gap"]
    assert len(gaps) == m.injected["reorder"] and {e["value"] for e in gaps} == {1.0}
    assert all(
        "before the latest accepted" in d for d in out.quarantine.column("detail").to_pylist()
    )


def test_a_redelivery_in_a_later_batch_is_a_duplicate(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    frames = bundle(module(inst).next_batch(300).packets, 10)
    proc = Processor(inst)
    first = process(proc, frames[:20])
    again = process(proc, frames[15:30])  # QoS 1 redelivery of 5 frames, then 10 new ones
    assert first.raw.num_rows == 200 and again.raw.num_rows == 100
    assert again.quarantine.column("reason").to_pylist() == ["duplicate"] * 50
    assert again.quarantine.column("data").to_pylist() == [
        bytes(p) for f in frames[15:20] for p in (f[i : i + 33] for i in range(0, len(f), 33))
    ]
    assert not [e for e in rows(again.events) if e["kind"] == "gap"]


def test_a_repeat_beyond_the_dedupe_window_is_out_of_order(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    packets = module(inst).next_batch(DEDUPE_WINDOW + 10).packets
    frames = bundle([*packets, packets[5], packets[-3]], 1)
    out = process(Processor(inst), frames)
    assert out.quarantine.column("reason").to_pylist() == ["out_of_order", "duplicate"]


# --------------------------------------------------------------------------- (4) limits


def test_an_excursion_raises_red_then_clears(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    m = module(inst, faults=Faults(limit=0.02, limit_s=3.0))
    out = process(Processor(inst), bundle(m.next_batch(3000).packets, 20))
    assert m.injected["limit"] > 0
    limit = [e for e in rows(out.events) if e["kind"] == "limit"]
    assert limit and limit[0]["to_state"] == 2 and limit[0]["from_state"] == 0
    by_channel: dict = {}
    for e in limit:
        by_channel.setdefault(e["channel"], []).append(e)
    lims = {f.name: f.limits for f in inst.profile.fields if f.limits}
    for channel, events in by_channel.items():
        assert all(a["to_state"] == b["from_state"] for a, b in itertools.pairwise(events))
        for e in events:
            lo, hi = lims[channel].red
            if e["to_state"] == 2:
                assert e["value"] < lo or e["value"] > hi, e
        assert events[-1]["to_state"] == 0  # every excursion ends
    # The events are exactly the changes of the state columns.
    tm = out.telemetry
    for channel in lims:
        col = tm.column(channel + "__state").to_numpy()
        changes = np.flatnonzero(np.diff(np.concatenate([[0], col])) != 0)
        times = ns(tm.column("time"))
        assert [e["time"] for e in by_channel.get(channel, [])] == times[changes].tolist()


def test_the_context_channel_chooses_the_limit_set(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    m = module(inst)
    t = m.times(40)
    values = m.values(t)
    values["wheel_temp"][:] = 65.0  # yellow by default, nominal while mode == SAFE
    frames = bundle(list(bytes(p) for p in m.encode(t, values).reshape(40, -1)), 8)
    out = process(Processor(inst), frames)
    mode = out.telemetry.column("mode").to_numpy()
    state = out.telemetry.column("wheel_temp__state").to_numpy()
    assert set(mode.tolist()) == {0, 1}
    np.testing.assert_array_equal(state, np.where(mode == 0, 0, 1))
    limit = [e for e in rows(out.events) if e["kind"] == "limit"]
    assert len(limit) == int(np.sum(np.diff(np.concatenate([[0], state])) != 0))
    assert all(e["channel"] == "wheel_temp" and e["value"] == 65.0 for e in limit)
    assert out.latest["states"]["wheel_temp"] == state[-1]
    assert out.latest["values"]["mode"] in ("SAFE", "DRIVE")


# --------------------------------------------------------------------------- (5) detectors


def quake_frames(station: Catalog, quiet_s: int = 90, burst_s: int = 8, after_s: int = 60):
    inst = station.instruments["cnsa-seismometer"]
    m = module(inst)
    n = quiet_s + burst_s + after_s
    t = m.times(n)
    values = m.values(t)
    rng = np.random.default_rng(5)
    burst = slice(quiet_s, quiet_s + burst_s)
    values["vel_z"][burst] += rng.normal(0.0, 3000.0, size=values["vel_z"][burst].shape)
    buf = m.encode(t, values)
    m.index += n
    return inst, bundle([bytes(p) for p in buf.reshape(n, -1)], 4), t


def test_sta_lta_triggers_on_a_quake_and_releases(station: Catalog) -> None:
    inst, frames, t = quake_frames(station)
    out = process(Processor(inst), frames)
    det = [e for e in rows(out.events) if e["kind"] == "detector"]
    assert [e["detail"] for e in det] == ["on", "off"]
    on, off = det
    onset = int(t[90])
    on_ns = on["time"]
    assert onset <= on_ns < onset + 10**9  # within the first second of the burst
    assert on_ns % 20_000_000 == onset % 20_000_000  # on a 50 Hz sample
    assert on["value"] > 4 and off["value"] < 1.5 and on["channel"] == "vel_z"
    assert off["time"] > on["time"]


def test_detector_is_the_same_whatever_the_batches(station: Catalog) -> None:
    inst, frames, _ = quake_frames(station)
    whole, state = run_in_batches(inst, frames, [], via_json=False)
    parts, split_state = run_in_batches(inst, frames, [1, 5, 22, 23, 24, 30], via_json=True)
    assert_same_output(whole, parts)
    assert split_state.to_json() == state.to_json()


# --------------------------------------------------------------------------- (6) odd batches


def test_empty_batch(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    proc = Processor(inst)
    before = proc.state.to_json()
    out = proc.process([], np.empty(0, np.int64), TOPIC)
    assert_schemas(inst, out)
    for name in ("raw", "telemetry", "events", "rollups", "quarantine"):
        assert getattr(out, name).num_rows == 0
    assert out.latest == {} and proc.state.to_json() == before


def test_all_bad_batch(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    good = module(inst).next_batch(3).packets[0]
    frames = [
        b"\xff",  # truncated: no room for a header
        b"\xe0" + good[1:],  # bad version
        good[:20],  # length past the end
        b"\xe0" + good[1:] + good[:4],  # bad version, then 4 octets: truncated
        good[:-1],  # one octet short: length past the end
        good[:4] + b"\x00\x05" + good[6:12],  # the right APID in 12 octets: bad length
    ]
    proc = Processor(inst)
    out = process(proc, frames)
    assert_schemas(inst, out)
    assert out.raw.num_rows == out.telemetry.num_rows == 0
    assert out.quarantine.column("reason").to_pylist() == [
        "truncated",
        "bad_version",
        "length_past_end",
        "bad_version",
        "truncated",
        "length_past_end",
        "bad_length",
    ]
    assert sum(len(d) for d in out.quarantine.column("data").to_pylist()) == sum(map(len, frames))
    recv = ns(out.quarantine.column("recv"))
    assert recv[3] == recv[4] == recv_times(frames)[3]  # two items of one frame
    assert proc.state.packets == 0 and sum(proc.state.rejects.values()) == 7
    assert out.latest == {} and proc.state.last_seq is None


def test_another_instruments_packets_are_wrong_apid(rover: Catalog, station: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    other = module(station.instruments["cnsa-eps"]).next_batch(5).packets
    mine = module(inst).next_batch(5).packets
    out = process(Processor(inst), [b"".join(other), b"".join(mine)])
    assert out.quarantine.column("reason").to_pylist() == ["wrong_apid"] * 5
    assert out.raw.num_rows == 5


def test_an_invalid_time_code_is_quarantined(station: Catalog) -> None:
    inst = station.instruments["cnsa-lander-hk"]  # CDS: ms of day stops at 86400999
    packets = module(inst).next_batch(6).packets
    off = 6 + 2  # primary header, 2 octets of days
    bad = packets[2][:off] + (90_000_000).to_bytes(4, "big") + packets[2][off + 4 :]
    out = process(Processor(inst), [b"".join([*packets[:2], bad, *packets[3:]])])
    assert out.quarantine.column("reason").to_pylist() == ["bad_time"]
    assert "ms_of_day" in out.quarantine.column("detail")[0].as_py()
    assert out.raw.num_rows == 5


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_octet_is_raw_or_quarantine(
    rover: Catalog, station: Catalog, data: st.DataObject
) -> None:
    # A CUC rover and a CDS lander: a corrupted CDS time code can be no time at all.
    inst = data.draw(
        st.sampled_from([rover.instruments["acme-rover-1"], station.instruments["cnsa-lander-hk"]])
    )
    seed = data.draw(st.integers(0, 2**16))
    packets = module(inst, seed=seed, faults=ALL_FAULTS).next_batch(120).packets
    per_frame = data.draw(st.integers(1, 12))
    frames = [bytearray(f) for f in bundle(packets, per_frame)]
    for _ in range(data.draw(st.integers(0, 20))):
        f = frames[data.draw(st.integers(0, len(frames) - 1))]
        if not f:
            continue
        what = data.draw(st.sampled_from(["flip", "cut", "splice"]))
        i = data.draw(st.integers(0, len(f) - 1))
        if what == "flip":
            f[i] ^= data.draw(st.integers(1, 255))
        elif what == "cut":
            del f[i:]
        else:
            f[i:i] = data.draw(st.binary(max_size=40))
    frames = [bytes(f) for f in frames]
    proc = Processor(inst)
    cut = data.draw(st.integers(0, len(frames)))
    outs = [process(proc, frames[:cut]), process(proc, frames[cut:], recv_times(frames)[cut:])]
    for out in outs:
        assert_schemas(inst, out)
        assert set(out.quarantine.column("topic").to_pylist()) <= {TOPIC}
        assert out.raw.num_rows == out.telemetry.num_rows
        assert out.raw.column("seq").equals(out.telemetry.column("seq"))
        assert out.raw.column("time").equals(out.telemetry.column("time"))
    raw = concat(outs, "raw").column("data").to_pylist()
    quarantined = concat(outs, "quarantine").column("data").to_pylist()
    assert sum(map(len, raw)) + sum(map(len, quarantined)) == sum(map(len, frames))
    assert all(len(d) == inst.profile.packet_length for d in raw)
    stored = concat(outs, "raw")
    seen = list(
        zip(stored.column("seq").to_pylist(), ns(stored.column("time")).tolist(), strict=True)
    )
    assert len(set(seen)) == len(seen)  # no packet is stored twice
    assert proc.state.packets == len(raw) and sum(proc.state.rejects.values()) == len(quarantined)


# --------------------------------------------------------------------------- (7) schemas


def assert_schemas(inst: Instrument, out: Processed) -> None:
    assert out.raw.schema.equals(RAW)
    assert out.telemetry.schema.equals(telemetry_schema(inst))
    assert out.events.schema.equals(EVENTS)
    assert out.rollups.schema.equals(ROLLUPS)
    assert out.quarantine.schema.equals(QUARANTINE)


def test_every_station_instrument_gives_the_schemas(station: Catalog) -> None:
    for inst in station:
        m = module(inst, faults=Faults(duplicate=0.1, corrupt=0.1, gap=0.1, limit=0.1))
        out = process(Processor(inst), bundle(m.next_batch(30).packets, 5))
        assert_schemas(inst, out)
        assert out.telemetry.num_rows > 0 and out.quarantine.num_rows > 0, inst.id
        assert set(out.latest["values"]) == set(inst.channels)


def test_rollups_are_those_of_the_pipelines_kernel(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    out = process(Processor(inst), bundle(module(inst).next_batch(500).packets, 10))
    tm, roll = out.telemetry, out.rollups
    t = ns(tm.column("time"))
    enums = {f.name for f in inst.profile.fields if f.enum}
    channels = [c for c in inst.channels if c not in enums]
    assert list(dict.fromkeys(roll.column("channel").to_pylist())) == channels
    for name in channels:
        v = np.array(tm.column(name).to_pylist(), float)
        v = v.mean(axis=1) if v.ndim == 2 else v
        for width in (1, 60):
            want = rollup(t, v, width * 10**9)
            got = roll.filter(
                pa.compute.and_(
                    pa.compute.equal(roll.column("channel"), name),
                    pa.compute.equal(roll.column("width_s"), width),
                )
            )
            np.testing.assert_array_equal(ns(got.column("bucket")), want.start_ns)
            np.testing.assert_array_equal(got.column("count").to_numpy(), want.count)
            np.testing.assert_array_equal(got.column("sum").to_numpy(), want.sum)
            np.testing.assert_array_equal(got.column("min").to_numpy(), want.min)
            np.testing.assert_array_equal(got.column("max").to_numpy(), want.max)
            np.testing.assert_array_equal(ns(got.column("first")), want.first_ns)
            np.testing.assert_array_equal(ns(got.column("last")), want.last_ns)


def test_garbage_mid_frame_loses_no_good_packet_behind_it(rover: Catalog) -> None:
    inst = rover.instruments["acme-rover-1"]
    packets = module(inst).next_batch(8).packets
    header = struct.pack(">HHH", 0x2A1, 3 << 14, 0xFFF0)  # our APID, a length past the end
    garbage = [b"\xe0" + bytes(range(11)), header + b"\x00" * 4]
    frame = b"".join([*packets[:2], garbage[0], *packets[2:5], garbage[1], *packets[5:]])
    out = process(Processor(inst), [frame])
    assert out.raw.column("data").to_pylist() == packets  # every good packet, in order
    assert out.quarantine.column("data").to_pylist() == garbage  # only the garbage octets
    assert out.quarantine.column("reason").to_pylist() == ["bad_version", "length_past_end"]


def test_one_future_time_does_not_put_the_good_packets_after_it_out_of_order(
    rover: Catalog,
) -> None:
    inst = rover.instruments["acme-rover-1"]  # CUC, 4 octets of seconds right after the header
    packets = module(inst).next_batch(10).packets
    future = bytearray(packets[3])
    future[6] ^= 0x10  # 2**28 s (8.5 years) ahead: a flipped bit in the clock
    frames = [*packets[:3], bytes(future), *packets[4:]]
    out = process(Processor(inst), frames)
    assert out.raw.column("data").to_pylist() == packets[:3] + packets[4:]  # all later ones too
    assert out.quarantine.column("reason").to_pylist() == ["bad_time"]
    assert "future_tolerance_s" in out.quarantine.column("detail")[0].as_py()
    # Without the tolerance the cascade is back: the future time becomes the latest accepted.
    loose = inst.profile.model_copy(
        update={"time": inst.profile.time.model_copy(update={"future_tolerance_s": None})}
    )
    out = process(Processor(Instrument(loose, inst.path)), frames)
    assert out.quarantine.column("reason").to_pylist() == ["out_of_order"] * 6
