"""Strings, blobs, integers wider than 64 bits and 2-D arrays (``axes``): where the compiler
puts their octets and samples, what the processor stores (text, binary, exact octets, one array
channel per axis), text that is not text, the simulator's values through the processor and the
store, and what the language refuses. Located errors: tests/data/broken_profiles/acme/octets.yaml
and axes.yaml; random layouts with all of them: tests/test_profiles_v2.py.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest

from ilrs_ops.console import create_token
from ilrs_ops.errors import InputError
from ilrs_ops.history import History
from ilrs_ops.processing import Processor, ProcessState
from ilrs_ops.profiles import Catalog, ProfileError, load_catalog
from pipelines.decode import decode
from pipelines.encode import encode
from tests.conftest import DATA
from tests.inline import START_NS, instrument, process, profile, simulated
from tests.test_console_replay import serving

#: The test magnetometer: two strings, a u96, a blob, 10 x 3 interleaved and 2 x 2 planar.
MAG = load_catalog([DATA / "v2_profiles"]).instruments["acme-mag"]
NS = 1_000_000_000


def mag_packet(
    *,
    fw: bytes = b"v1.0",
    label: bytes = "Grüße".encode(),
    events: int = 2**95 + 5,
    dump: bytes = bytes(range(16)),
    samples: list[tuple[int, int, int]] | None = None,
    heater: tuple[list[int], list[int]] = ([1, 2], [3, 4]),
    seq: int = 0,
) -> bytes:
    """One acme-mag packet made by hand: the simulator's header and time, our own data."""
    head = simulated(MAG, seq + 1)[seq * 124 : seq * 124 + 12]
    samples = samples or [(j, -j, 100 + j) for j in range(10)]
    body = (
        fw.ljust(8, b"\0")
        + label.ljust(12, b"\0")
        + events.to_bytes(12, "big")
        + dump
        + struct.pack(">30h", *[v for xyz in samples for v in xyz])  # x0 y0 z0 x1 ...
        + bytes(heater[0] + heater[1])  # planar: a0 a1 b0 b1
    )
    assert len(head + body) == MAG.profile.packet_length
    return head + body


def run(*packets: bytes) -> tuple[Processor, pa.Table]:
    proc = Processor(MAG)
    out = proc.process([b"".join(packets)], np.array([START_NS + 10 * NS]), MAG.topic())
    assert out.quarantine.num_rows == 0, out.quarantine.column("detail").to_pylist()
    return proc, out.telemetry


def test_octets_are_u8_slots_and_axes_stride_over_each_other() -> None:
    layout = MAG.layout

    def bits(name: str) -> list[int]:
        f = layout.field_index(name)
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        assert (layout.bit_width[s0 : s0 + count] == (8 if name in OCTETS else 16)).all() or (
            name.startswith("heater")
        )
        return layout.bit_offset[s0 : s0 + count].tolist()

    assert bits("fw_version") == list(range(96, 160, 8))
    assert bits("events") == list(range(256, 352, 8))  # a u96: 12 octets
    assert bits("b_x") == [480 + 48 * j for j in range(10)]  # x0 y0 z0 x1 ...
    assert bits("b_y") == [496 + 48 * j for j in range(10)]
    assert bits("b_z") == [512 + 48 * j for j in range(10)]
    assert bits("heater_a") == [960, 968] and bits("heater_b") == [976, 984]  # planar
    assert MAG.channels == ["fw_version", "label", "events", "dump", "b_x", "b_y", "b_z",
                            "heater_a", "heater_b", "b_total"]  # fmt: skip


OCTETS = ("fw_version", "label", "events", "dump")


def test_a_hand_made_packet_is_stored_as_text_octets_and_one_channel_per_axis() -> None:
    samples = [(3 * j, -2 * j, 1000 - j) for j in range(10)]
    _, tm = run(mag_packet(fw=b"v2 .1 \0 ", samples=samples))
    row = tm.to_pylist()[0]
    assert tm.schema.field("fw_version").type == pa.string()
    assert tm.schema.field("dump").type == pa.binary()
    assert tm.schema.field("events").type == pa.binary(12)
    assert tm.schema.field("label__raw").type == pa.binary(12)
    assert row["fw_version"] == "v2 .1"  # trailing NUL and spaces stripped, inner ones kept
    assert row["fw_version__raw"] == b"v2 .1 \0 "  # the octets exactly
    assert row["label"] == "Grüße"  # utf-8
    assert (
        int.from_bytes(row["events"], "big")
        == 2**95 + 5
        == int.from_bytes(row["events__raw"], "big")
    )
    assert row["dump"] == bytes(range(16)) == row["dump__raw"]
    assert row["b_x"] == [1.5 * j for j in range(10)]  # calibrated per axis, 0.5 nT/count
    assert row["b_y"] == [-1.0 * j for j in range(10)]
    assert row["b_z__raw"] == [1000 - j for j in range(10)]
    assert (row["heater_a"], row["heater_b"]) == ([1.0, 2.0], [3.0, 4.0])
    mean = [np.mean([s[a] * 0.5 for s in samples]) for a in range(3)]
    assert row["b_total"] == pytest.approx(float(np.sqrt(np.sum(np.square(mean)))))


def test_text_that_does_not_decode_is_kept_with_replacement_and_counted() -> None:
    packets = [
        mag_packet(seq=0),
        mag_packet(fw=b"v\xff1", label=b"ok \xc3(", seq=1),  # not ASCII; not UTF-8
        mag_packet(fw=b"\0" * 8, label=b" " * 12, seq=2),  # padding only: empty text
    ]
    proc, tm = run(*packets)
    assert tm.num_rows == 3  # nothing dropped, nothing quarantined
    assert tm.column("fw_version").to_pylist() == ["v1.0", "v\ufffd1", ""]
    assert tm.column("label").to_pylist() == ["Grüße", "ok \ufffd(", ""]
    assert tm.column("fw_version__raw").to_pylist()[1] == b"v\xff1".ljust(8, b"\0")
    assert proc.state.bad_text == {"fw_version": 1, "label": 1}
    doc = json.loads(json.dumps(proc.state.to_json()))
    assert doc["counters"]["bad_text"] == {"fw_version": 1, "label": 1}
    assert ProcessState.from_json(doc).bad_text == proc.state.bad_text
    assert "bad_text" not in Processor(MAG).state.to_json()["counters"]  # none: as before


def test_latest_values_are_json_text_hex_and_decimal() -> None:
    proc = Processor(MAG)
    out = proc.process([mag_packet()], np.array([START_NS + 10 * NS]), MAG.topic())
    values = out.latest["values"]
    assert values["fw_version"] == "v1.0" and values["label"] == "Grüße"
    assert values["dump"] == bytes(range(16)).hex()
    assert values["events"] == str(2**95 + 5)  # beyond a JSON number's exact range
    json.dumps(out.latest)


def test_encode_and_decode_round_trip_the_octets() -> None:
    layout = MAG.layout
    n = 5
    rng = np.random.default_rng(1)
    cols = {}
    for f, name in enumerate(layout.names):
        count = int(layout.field_count[f])
        if name in layout.array_fields:
            hi = 256 if name in OCTETS or name.startswith("heater") else 1 << 15
            lo = 0 if hi == 256 else -hi
            cols[name] = rng.integers(lo, hi, size=(n, count))
        else:
            cols[name] = np.zeros(n, np.int64)
    buf = encode(layout, cols, n)
    out = decode(buf, np.arange(n) * MAG.profile.packet_length, layout)
    for name in layout.array_fields:
        assert np.array_equal(out[name], cols[name]), name
    assert out["dump"].dtype == np.uint8 and out["dump"].shape == (n, 16)


def test_the_simulator_sends_text_and_random_octets_through_the_store(tmp_path: Path) -> None:
    n = 20
    data = simulated(MAG, n)
    out = process(MAG, data, n)
    tm = out.telemetry
    assert set(tm.column("fw_version").to_pylist()) == {"v2.4.1"}
    assert set(tm.column("label").to_pylist()) == {"Grüße"}
    dumps = tm.column("dump").to_pylist()
    assert len(set(dumps)) == n and all(len(d) == 16 for d in dumps)  # random, every packet
    rolled = set(out.rollups.column("channel").to_pylist())
    assert {"b_x", "b_y", "b_z", "heater_a", "b_total"} <= rolled
    assert not rolled & set(OCTETS)  # no min/max/mean of text
    catalog = Catalog({MAG.id: MAG})
    with History.at(tmp_path, catalog) as history:
        wal = history.store.wal(MAG.id)
        recv = np.array([START_NS + n * NS])
        wal.append(recv, MAG.topic(), [data])
        got = history.query(MAG.id, ["fw_version", "events", "dump", "b_y"], START_NS,
                            START_NS + n * NS)  # fmt: skip
        assert got.column("dump").equals(tm.column("dump"))
        assert got.column("events").equals(tm.column("events"))
        assert got.column("b_y").equals(tm.column("b_y"))
        with pytest.raises(InputError, match=r"\['dump'\].*no buckets"):
            history.query(MAG.id, ["dump", "b_y"], START_NS, START_NS + n * NS, buckets=4)


def test_limits_and_events_work_per_axis() -> None:
    samples = [(0, 0, 0)] * 9 + [(0, 5000, 0)]  # y: 2500 nT, past yellow 2000
    _, tm = run(mag_packet(samples=samples))
    assert tm.column("b_y__state").to_pylist() == [1]
    assert tm.column("b_x__state").to_pylist() == [0] == tm.column("b_z__state").to_pylist()


def test_types_the_language_refuses() -> None:
    for bad, msg in [
        ("{name: x, type: u70}", r"type 'u70' is not a type.*u72, u80"),
        ("{name: x, type: i128}", r"type 'i128' is not a type"),
        ("{name: x, type: u520}", r"type 'u520' is not a type"),
        ("{name: x, type: string, length: 0}", r"10:37: .*below the minimum 1"),
    ]:
        with pytest.raises(ProfileError, match=msg):
            profile([bad], 20)


def test_an_inline_profile_with_every_new_kind_round_trips() -> None:
    p = profile(
        [
            "{name: tag, type: string, length: 5, sim: {model: constant, text: ABC}}",
            "{name: odd, type: u3}",  # the next octets start mid-octet: still u8 slots
            "{name: blob, type: bytes, length: 3, sim: {model: random}}",
            "{name: big, type: u72, sim: {model: random}}",
            "{name: v, type: u4, count: 3, axes: [p, q], sim: {model: counter}}",
            "{name: pad, type: u5, ignore: true}",
        ],
        12 + 5 + 3 + 9 + 3 + 1,
    )
    inst = instrument(p)
    out = process(inst, simulated(inst, 4), 4)
    tm = out.telemetry
    assert tm.column("tag").to_pylist() == ["ABC"] * 4
    raw = simulated(inst, 4)
    size = p.packet_length
    for i, b in enumerate(tm.column("blob").to_pylist()):
        packet = int.from_bytes(raw[i * size : (i + 1) * size], "big")
        bit = 8 * size - (96 + 40 + 3) - 24  # shift that puts blob's bits at the bottom
        assert b == ((packet >> bit) & 0xFFFFFF).to_bytes(3, "big")
    assert tm.column("v_p").to_pylist() == [[k] * 3 for k in range(4)]


def test_octets_are_no_clock_no_check_and_no_parent() -> None:
    with pytest.raises(ProfileError, match=r"'big' is u96\b.*not an integer"):
        profile(["{name: big, type: u96}"], 24, time="{code: counter, seconds: big}")
    with pytest.raises(
        ProfileError, match=r"crc16-ccitt-false needs .* u16 field; 'tag' is string"
    ):
        profile(["{name: tag, type: string, length: 2}"], 14,
                tail="integrity: {check: crc16-ccitt-false, field: tag}\n")  # fmt: skip
    with pytest.raises(ProfileError, match=r"'b_x' is not a field of this profile"):
        block = "{name: b, type: u8, count: 1, axes: [x]}"
        profile([block, "{name: s, type: u1, of: b_x, bit: 0}"], 13)


def test_the_console_serves_text_and_octets_as_json_and_csv(tmp_path: Path) -> None:
    """Through a real console: the telemetry JSON gives text as text and octets as hex, the
    CSV export hex too (CSV is text; octets that are not UTF-8 would not be)."""
    n = 20
    data = simulated(MAG, n)
    catalog = load_catalog([DATA / "v2_profiles"])
    with History.at(tmp_path / "data", catalog) as history:
        history.store.wal(MAG.id).append(np.array([START_NS + n * NS]), MAG.topic(), [data])
        want = history.query(MAG.id, ["label", "dump", "events"], START_NS, START_NS + n * NS)
    tokens = tmp_path / "tokens.yaml"
    h = {"Authorization": f"Bearer {create_token(tokens, 'desk', 'operator')}"}
    window = {"start": START_NS, "stop": START_NS + n * NS}
    root = f"test/test_octets-{os.getpid()}"
    with serving(tmp_path / "data", tokens, root, profiles=DATA / "v2_profiles") as (url, _):
        r = httpx.get(f"{url}/api/instruments/{MAG.id}/telemetry", headers=h,
                      params={**window, "channels": "label,dump,events,b_x"})  # fmt: skip
        assert r.status_code == 200, r.text
        cols = r.json()["columns"]
        assert cols["label"] == ["Grüße"] * n
        assert cols["dump"] == [b.hex() for b in want.column("dump").to_pylist()]
        assert cols["events"] == [b.hex() for b in want.column("events").to_pylist()]
        csv = {**window, "format": "csv", "channels": "label,dump", "raw": "true"}
        r = httpx.get(f"{url}/api/instruments/{MAG.id}/export", headers=h, params=csv)
        assert r.status_code == 200, r.text
        lines = r.text.splitlines()
        assert lines[0].split(",")[:4] == ['"time"', '"seq"', '"label"', '"dump"']
        assert f'"{want.column("dump")[0].as_py().hex()}"' in lines[1]
        r = httpx.get(f"{url}/api/instruments/{MAG.id}/telemetry", headers=h,
                      params={**window, "channels": "dump", "max_points": 4})  # fmt: skip
        assert r.status_code == 400 and "no buckets" in r.text
