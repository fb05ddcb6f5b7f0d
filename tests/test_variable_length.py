"""Variable-length arrays (``count_from``): an array whose element count a field gives, or the
rest of the packet; the fields after it move up with it. Packets are checked against a
struct-based parse written here, the kernels against random layouts, and the processor's
length checks name what did not fit.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.history import History
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import ProfileError, load_catalog
from ilrs_ops.replay import Recorder, create_recording, import_packets
from ilrs_ops.store import Store
from pipelines.decode import decode, element_counts
from pipelines.encode import encode
from pipelines.integrity import checks
from pipelines.layout import SIGNED, UNSIGNED, Layout
from tests.conftest import DATA
from tests.inline import START_NS, instrument, process, profile, profile_text, simulated

#: 6 header + 6 time + n_samples u16 + up to 64 x i16 + board_t (little-endian i16) + CRC.
WAVE = load_catalog([DATA / "v2_profiles"]).instruments["acme-wave"]


def wave_packet(seq: int, samples: list[int], board_t: int, n: int | None = None) -> bytes:
    """A wave-probe packet built with struct (an independent encoder), CRC included."""
    body = struct.pack(">IH", 1_000_000 + seq, 0) + struct.pack(
        ">H", len(samples) if n is None else n
    )
    body += struct.pack(f">{len(samples)}h", *samples) + struct.pack("<h", board_t)
    size = 6 + len(body) + 2
    head = struct.pack(">HHH", 0x0800 | WAVE.profile.apid, 0xC000 | seq, size - 7)
    packet = np.frombuffer(head + body + b"\0\0", np.uint8)
    crc = int(checks(packet, np.array([0]), 0, size - 2, "crc16-ccitt-false")[0])
    return head + body + struct.pack(">H", crc)


def parse_wave(packet: bytes) -> dict:
    """The wave-probe fields of one packet, read with struct from its own length."""
    (n,) = struct.unpack_from(">H", packet, 12)
    samples = list(struct.unpack_from(f">{n}h", packet, 14))
    (board_t,) = struct.unpack_from("<h", packet, 14 + 2 * n)
    return {"n_samples": n, "samples": samples, "board_t": board_t}


def test_the_layout_puts_the_array_at_its_most_and_knows_the_lengths() -> None:
    layout = WAVE.layout
    assert layout.variable and layout.var_slots[1:] == (64, 16)
    assert layout.fixed_bits == 8 * (146 - 128)
    assert layout.lengths(np.array([0, 1, 64])).tolist() == [18, 20, 146]
    assert layout.moves("board_t") and layout.moves("crc") and not layout.moves("n_samples")


def test_hand_made_packets_of_every_length_decode_like_struct() -> None:
    packets = [wave_packet(k, list(range(-k, k * 3, 2))[:k], 100 * k - 250) for k in (0, 1, 7, 64)]
    buf = np.frombuffer(b"".join(packets), np.uint8)
    lengths = np.array([len(p) for p in packets])
    starts = np.cumsum(lengths) - lengths
    counts, fits = element_counts(buf, starts, lengths, WAVE.layout)
    assert fits.all() and counts.tolist() == [0, 1, 7, 64]
    cols = decode(buf, starts, WAVE.layout, counts)
    for k, packet in enumerate(packets):
        want = parse_wave(packet)
        assert cols["n_samples"][k] == want["n_samples"]
        assert cols["samples"][k, : counts[k]].tolist() == want["samples"]
        assert not cols["samples"][k, counts[k] :].any()  # past the count: 0, not other octets
        assert cols["board_t"][k] == want["board_t"]


def test_simulated_packets_vary_in_length_and_are_all_stored() -> None:
    n = 15
    data = simulated(WAVE, n)
    out = process(WAVE, data, n)  # every one accepted, CRC and lengths checked
    stored = out.raw.column("data").to_pylist()
    assert {len(p) for p in stored} == {146, 38, 18, 84, 20}  # n = 64, 10, 0, 33, 1
    assert b"".join(stored) == data
    tm = out.telemetry
    for k, packet in enumerate(stored):
        want = parse_wave(packet)
        assert tm.column("samples__raw")[k].as_py() == want["samples"]
        assert tm.column("samples")[k].as_py() == [0.5 * v for v in want["samples"]]
        assert tm.column("board_t__raw")[k].as_py() == want["board_t"]
        assert tm.column("n_samples__raw")[k].as_py() == want["n_samples"]
    # An empty array is nothing out of limits; a row's mean is over the elements it has.
    empty = [k for k, p in enumerate(stored) if parse_wave(p)["n_samples"] == 0]
    assert empty and all(tm.column("samples__state")[k].as_py() == 0 for k in empty)
    last = parse_wave(stored[-1])
    assert out.latest["values"]["samples"] == [0.5 * v for v in last["samples"]]


def test_a_length_that_does_not_fit_the_count_is_bad_length_and_the_rest_are_stored() -> None:
    good = [wave_packet(k, [k] * k, 20) for k in range(1, 6)]
    short = wave_packet(9, [1, 2, 3], 20, n=5)  # says 5 samples, carries 3
    many = wave_packet(10, [1] * 3, 20, n=65)  # more than the 64 it may have
    crc = bytearray(wave_packet(11, [7] * 4, 20))
    crc[15] ^= 0x40
    frame = b"".join([good[0], short, good[1], many, good[2], bytes(crc), *good[3:]])
    out = Processor(WAVE).process([frame], np.array([START_NS]), WAVE.topic())
    assert out.telemetry.column("n_samples__raw").to_pylist() == [1, 2, 3, 4, 5]
    q = out.quarantine
    assert q.column("reason").to_pylist() == ["bad_length", "bad_length", "bad_crc"]
    details = q.column("detail").to_pylist()
    assert details[0] == "n_samples = 5 needs 28 octets, the packet has 24"
    assert details[1] == "n_samples = 65 is more than the 64 elements samples has at most"
    assert details[2].startswith("crc16-ccitt-false of octets [0, 24) is")
    assert q.column("data").to_pylist() == [short, many, bytes(crc)]


def test_a_truncated_packet_is_bad_length_with_the_range() -> None:
    head = struct.pack(">HHH", 0x0800 | WAVE.profile.apid, 0xC000, 10 - 7)
    out = Processor(WAVE).process([head + b"\0" * 4], np.array([START_NS]), WAVE.topic())
    assert out.quarantine.column("detail").to_pylist() == [
        "10 octets, a acme-wave packet has 18..146 (0..64 elements of 16 bits in samples)"
    ]


def test_resync_after_garbage_finds_variable_length_packets() -> None:
    good = [wave_packet(k, [k] * (3 * k), 20) for k in range(6)]
    garbage = bytes([0x08, 0x01, 0xC0, 0x00, 0xFF, 0xFF, 0xAA, 0x55])  # a length past the end
    frame = b"".join(good[:2]) + garbage + b"".join(good[2:])
    out = Processor(WAVE).process([frame], np.array([START_NS]), WAVE.topic())
    assert out.telemetry.column("n_samples__raw").to_pylist() == [0, 3, 6, 9, 12, 15]
    assert out.quarantine.column("data").to_pylist() == [garbage]


def test_arrival_order_dedupes_variable_length_packets_by_their_own_octets() -> None:
    fields = ["{name: n, type: u8}", "{name: x, type: u8, count: 8, count_from: n}"]
    inst = instrument(profile(fields, 15, time="{code: none}"))
    data = simulated(inst, 4)
    first = data[: (data[4] << 8 | data[5]) + 7]
    out = Processor(inst).process([data, first], np.array([START_NS, START_NS + 1]), inst.topic())
    assert out.telemetry.num_rows == 4
    assert out.quarantine.column("reason").to_pylist() == ["duplicate"]


def test_an_array_to_the_rest_of_the_packet_takes_what_the_length_leaves() -> None:
    p = profile(
        ["{name: tag, type: u8}", "{name: dump, type: u8, count: 100, count_from: rest}"], 113
    )
    inst = instrument(p)
    packets = []
    for k, size in enumerate((13, 14, 50, 113)):
        head = struct.pack(">HHH", 0x0800 | p.apid, 0xC000 | k, size - 7)
        packets.append(
            head + struct.pack(">IH", 1_000_000 + k, 0) + bytes([k]) + bytes(range(size - 13))
        )
    out = Processor(inst).process([b"".join(packets)], np.array([START_NS]), inst.topic())
    assert out.quarantine.num_rows == 0
    assert out.telemetry.column("dump__raw").to_pylist() == [
        list(range(n)) for n in (0, 1, 37, 100)
    ]
    data = simulated(inst, 3)  # the simulator sends the most: the longest packet
    assert len(data) == 3 * 113


def test_rest_of_12_bit_elements_leaves_at_most_7_bits_over() -> None:
    fields = [
        "{name: pad, type: u8, ignore: true}",
        "{name: w, type: u12, count: 4, count_from: rest}",
    ]
    layout = instrument(profile(fields, 19)).layout
    # 13 fixed octets, then 12-bit elements: c elements take ceil((104 + 12 c) / 8) octets
    lengths = np.arange(12, 21)
    buf = np.zeros(int(lengths.sum()), np.uint8)
    counts, fits = element_counts(buf, np.cumsum(lengths) - lengths, lengths, layout)
    assert fits.tolist() == [False, True, False, True, True, False, True, True, False]
    assert counts[fits].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("fields", "length", "text", "hint"),
    [
        (["{name: n, type: u8}", "{name: a, type: u8, count_from: n}"], 14,
         "needs count: N, the most elements", "add count: N"),
        (["{name: a, type: u8, count: 4, count_from: n}", "{name: n, type: u8}"], 17,
         "'n' is not a field listed before it", "or 'rest'"),
        (["{name: f, type: f32}", "{name: a, type: u8, count: 4, count_from: f}"], 20,
         "'f' is f32, not an unsigned scalar", "'rest'"),
        (["{name: n, type: u8}", "{name: a, type: u8, count: 4, count_from: n}",
          "{name: b, type: u8, count: 4, count_from: rest}"], 21,
         "'a' is already the variable-length array", "give this one a fixed count"),
        (["{name: n, type: u8}", "{name: a, type: u12, count: 4, count_from: n}",
          "{name: t, type: u8}"], 20,
         "must stay on octet boundaries, but u12 elements", "list the array last"),
        (["{name: n, type: u8}",
          "{name: a, type: i16, count: 10, count_from: n, sample_rate_hz: 10}"], 33,
         "join up only at a fixed count", "remove sample_rate_hz"),
        (["{name: n, type: u8}", "{name: d, type: bytes, length: 4, count_from: n}"], 17,
         "a bytes field cannot vary in length", "type: u8, count: N, count_from"),
        (["{name: n, type: u8}", "{name: a, type: u8, count: 2, axes: [x, y], count_from: n}"],
         17, "a 2-D array (axes) cannot vary in length", "one axis per field"),
    ],
)  # fmt: skip
def test_profile_mistakes_are_located_with_a_hint(
    fields: list[str], length: int, text: str, hint: str
) -> None:
    with pytest.raises(ProfileError) as info:
        profile(fields, length)
    problems = [p for p in info.value.problems if text in p.message]
    assert len(problems) == 1, str(info.value)
    problem = problems[0]
    assert problem.hint is not None and hint in problem.hint
    line = profile_text(fields, length).splitlines()[problem.line - 1]
    assert any(k in line for k in ("count_from", "sample_rate_hz", "u12")), str(problem)


@st.composite
def variable_layouts(draw: st.DrawFn) -> tuple[Layout, np.ndarray, dict[str, np.ndarray]]:
    """A layout: a u8 count, an array of 1..6 elements of 1..64 bits (whole octets when fields
    follow it), then 0..2 trailing fields; with counts and values for 1..5 packets."""
    trailing = draw(st.integers(0, 2))
    width = draw(st.sampled_from([8, 16, 24, 32, 64]) if trailing else st.integers(1, 64))
    most = draw(st.integers(1, 6))
    kind = draw(st.sampled_from([UNSIGNED, SIGNED]))
    tail = [draw(st.sampled_from([8, 16, 3, 5])) for _ in range(trailing)]
    widths = [8] + [width] * most + tail
    bits = 8 + most * width + sum(tail)
    pad = (-bits) % 8
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]])
    names = ("n", "x", *(f"t{j}" for j in range(trailing)))
    layout = Layout(
        packet_length=(bits + pad) // 8,
        names=names,
        field_slot=np.array([0, 1, *(1 + most + j for j in range(trailing))]),
        field_count=np.array([1, most, *([1] * trailing)]),
        bit_offset=offsets,
        bit_width=np.array(widths),
        kind=np.array([UNSIGNED, *[kind] * most, *[UNSIGNED] * trailing], np.int8),
        array_fields=frozenset({"x"}),
        var_field=1,
        count_field=0,
    )
    n = draw(st.integers(1, 5))
    counts = np.array(draw(st.lists(st.integers(0, most), min_size=n, max_size=n)))
    lo, hi = (
        (-(1 << (width - 1)), (1 << (width - 1)) - 1) if kind == SIGNED else (0, (1 << width) - 1)
    )
    x = np.array(draw(st.lists(st.lists(st.integers(lo, hi), min_size=most, max_size=most),
                               min_size=n, max_size=n)), dtype=object)  # fmt: skip
    x[np.arange(most) >= counts[:, None]] = 0  # what decode gives past each count
    values = {"n": counts, "x": x}
    for j, w in enumerate(tail):
        values[f"t{j}"] = np.array(
            draw(st.lists(st.integers(0, (1 << w) - 1), min_size=n, max_size=n))
        )
    return layout, counts, values


@given(variable_layouts())
@settings(max_examples=200, deadline=None)
def test_random_variable_layouts_round_trip(
    case: tuple[Layout, np.ndarray, dict[str, np.ndarray]],
) -> None:
    layout, counts, values = case
    buf = encode(layout, values, counts.shape[0], counts)
    lengths = layout.lengths(counts)
    assert buf.shape[0] == lengths.sum()
    starts = np.cumsum(lengths) - lengths
    got, fits = element_counts(buf, starts, lengths, layout)
    assert fits.all() and got.tolist() == counts.tolist()
    out = decode(buf, starts, layout, got)
    for name, want in values.items():
        assert out[name].astype(object).tolist() == np.asarray(want, object).tolist(), name


def test_a_packet_file_imports_into_the_store_and_reads_back_everywhere(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    catalog = load_catalog([DATA / "v2_profiles"])
    n = 120
    data = simulated(WAVE, n)
    file = tmp_path / "wave.bin"
    file.write_bytes(data)
    rec = create_recording(tmp_path / "data", "wave", "imported", str(file))
    with Store(rec.path) as store:
        summary = import_packets(file, Recorder(store, catalog), {WAVE.profile.apid: WAVE})
    assert dict(summary.quarantined) == {} and summary.decoded["acme-wave"] == n
    with History.at(rec.path, catalog) as history:
        tm = history.query("acme-wave", None, 0, 2**62, raw=True)
        b = history.query("acme-wave", ["samples"], START_NS, START_NS + n * 10**9, buckets=4,
                          source="telemetry")  # fmt: skip
    packets = [parse_wave(data[s:]) for s in _starts(data)]
    assert tm.column("samples__raw").to_pylist() == [p["samples"] for p in packets]
    # A bucket's mean is the mean of its packets' means (an empty array counts as no value).
    means = [np.mean(p["samples"]) * 0.5 if p["samples"] else np.nan for p in packets]
    for k in range(4):
        part = np.array(means[30 * k : 30 * (k + 1)])
        assert b.column("samples__count")[k].as_py() == np.isfinite(part).sum()
        assert b.column("samples__mean")[k].as_py() == pytest.approx(np.nanmean(part))
    glob = f"{rec.path}/telemetry/**/*.parquet"
    row = duckdb.sql(
        f"select sum(len(samples__raw)), max(len(samples)) from read_parquet('{glob}')"
    ).fetchall()[0]
    assert row == (sum(p["n_samples"] for p in packets), 64)


def _starts(data: bytes) -> list[int]:
    """Where each packet of a file starts, by its length field."""
    out, at = [], 0
    while at < len(data):
        out.append(at)
        at += (data[at + 4] << 8 | data[at + 5]) + 7
    return out
