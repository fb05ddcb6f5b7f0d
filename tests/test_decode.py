"""decode and encode against hand-made packets and the pure-Python reference decoder."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.decode import decode, packet_fields, slot_plan
from pipelines.encode import encode
from pipelines.layout import FLOAT32, FLOAT64, SIGNED, Layout
from tests.layouts import header_columns, make_layout, reference_fields
from tests.reference import decode_packet, encode_packet

HOUSEKEEPING = [
    ("mode", "u", 8, None, False),
    ("batt_v", "u", 12, None, False),
    ("pad", "u", 4, None, False),
    ("wheel_temp", "i", 16, 2, False),
    ("counter", "u", 16, None, True),
    ("current", "f", 32, None, False),
    ("flag", "u", 1, None, False),
]


def as_bits(a: np.ndarray) -> np.ndarray:
    """Floats as their unsigned bit patterns (so NaNs compare exactly); integers unchanged."""
    if a.dtype.kind == "f":
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    return a


def reference_columns(data: bytes, starts, layout: Layout) -> dict[str, list]:
    fields = reference_fields(layout)
    per_packet = [
        decode_packet(data[s : s + layout.packet_length], fields, float_bits=True) for s in starts
    ]
    return {name: [p[name] for p in per_packet] for name in layout.names}


def assert_matches_reference(out: dict, data: bytes, starts, layout: Layout) -> None:
    ref = reference_columns(data, starts, layout)
    assert list(out) == list(layout.names)
    for name in layout.names:
        col = out[name]
        assert col.dtype == layout.field_dtype(name), name
        count = int(layout.field_count[layout.field_index(name)])
        expected_shape = (len(starts), count) if name in layout.array_fields else (len(starts),)
        assert col.shape == expected_shape, name
        assert col.flags.c_contiguous, name
        assert as_bits(col).tolist() == ref[name], name


def test_layout_of_a_housekeeping_packet():
    layout = make_layout(HOUSEKEEPING)
    # 48 header + 8 + 12 + 4 + 32 + 16 + 32 + 1 = 153 bits, padded to 160.
    assert layout.packet_length == 20
    assert layout.names[:7] == ("_version", "_type", "_sec_hdr", "_apid", "_seq_flags",
                                "_seq_count", "_length")  # fmt: skip
    assert layout.names[-1] == "_spare"
    assert layout.bit_offset.tolist() == [0, 3, 4, 5, 16, 18, 32, 48, 56, 68, 72, 88, 104, 120,
                                          152, 153]  # fmt: skip
    assert layout.field_dtype("batt_v") == np.uint16
    assert layout.field_dtype("wheel_temp") == np.int16
    assert layout.field_dtype("flag") == np.uint8
    assert layout.array_fields == {"wheel_temp"}


def test_decode_a_hand_made_packet():
    layout = make_layout(HOUSEKEEPING)
    header = struct.pack(">HHH", 0x0800 | 0x2A1, 0xC000 | 16383, 13)  # sec hdr flag, seq 16383
    body = (
        bytes([2])  # mode
        + bytes([0xAB, 0xC5])  # batt_v 0xABC, pad 5
        + struct.pack(">hh", -2, 300)  # wheel_temp
        + struct.pack("<H", 0x1234)  # counter, little-endian
        + struct.pack(">f", -1.5)  # current
        + bytes([0x80])  # flag 1, then 7 spare bits
    )
    data = b"\xff" * 3 + header + body
    out = decode(np.frombuffer(data, np.uint8), np.array([3]), layout)
    assert out["_version"].tolist() == [0]
    assert out["_sec_hdr"].tolist() == [1]
    assert out["_apid"].tolist() == [0x2A1]
    assert out["_seq_flags"].tolist() == [3]
    assert out["_seq_count"].tolist() == [16383]
    assert out["_length"].tolist() == [13]
    assert out["mode"].tolist() == [2]
    assert out["batt_v"].tolist() == [0xABC]
    assert out["pad"].tolist() == [5]
    assert out["wheel_temp"].tolist() == [[-2, 300]]
    assert out["counter"].tolist() == [0x1234]
    assert out["current"].tolist() == [-1.5]
    assert out["flag"].tolist() == [1]
    assert out["_spare"].tolist() == [0]
    assert_matches_reference(out, data, [3], layout)


def test_unaligned_64_bit_fields_span_nine_octets():
    layout = make_layout(
        [
            ("a", "u", 3, None, False),
            ("u", "u", 64, None, False),
            ("i", "i", 64, None, False),
            ("d", "f", 64, None, False),
            ("b", "u", 7, None, False),
        ]
    )
    n = 3
    cols = header_columns(layout, n)
    cols["a"] = np.array([7, 0, 5], np.uint8)
    cols["u"] = np.array([2**64 - 1, 0x8000_0000_0000_0001, 0x0123_4567_89AB_CDEF], np.uint64)
    cols["i"] = np.array([-(2**63), 2**63 - 1, -1], np.int64)
    cols["d"] = np.array([np.pi, -np.inf, 1e-310])
    cols["b"] = np.array([0x7F, 1, 0], np.uint8)
    buf = encode(layout, cols, n)
    out = decode(buf, np.arange(n) * layout.packet_length, layout)
    for name in ("a", "u", "i", "d", "b"):
        np.testing.assert_array_equal(out[name], cols[name], err_msg=name)
    assert_matches_reference(out, buf.tobytes(), np.arange(n) * layout.packet_length, layout)


def test_sequence_count_wraps():
    layout = make_layout([("x", "u", 8, None, False)])
    cols = header_columns(layout, 4, seq0=16382)
    cols["x"] = np.zeros(4, np.uint8)
    out = decode(encode(layout, cols, 4), np.arange(4) * layout.packet_length, layout)
    assert out["_seq_count"].tolist() == [16382, 16383, 0, 1]
    _, seq, _ = packet_fields(encode(layout, cols, 4), np.arange(4) * layout.packet_length)
    assert seq.tolist() == [16382, 16383, 0, 1]


def test_empty_batch_and_single_packet():
    layout = make_layout(HOUSEKEEPING)
    out = decode(np.zeros(0, np.uint8), np.zeros(0, np.int64), layout)
    assert out["wheel_temp"].shape == (0, 2) and out["wheel_temp"].dtype == np.int16
    assert out["current"].shape == (0,) and out["current"].dtype == np.float32
    empty = {name: np.zeros((0, 2) if name == "wheel_temp" else 0) for name in layout.names}
    empty = {k: v.astype(np.float32 if k == "current" else np.int64) for k, v in empty.items()}
    assert encode(layout, empty, 0).shape == (0,)

    cols = header_columns(layout, 1)
    cols.update(mode=[1], batt_v=[4095], pad=[0], wheel_temp=[[-32768, 32767]], counter=[65535],
                current=np.array([2.5], np.float32), flag=[1])  # fmt: skip
    buf = encode(layout, cols, 1)
    assert buf.shape == (layout.packet_length,) and buf.dtype == np.uint8
    out = decode(buf, np.array([0]), layout)
    assert out["wheel_temp"].tolist() == [[-32768, 32767]]
    assert out["counter"].tolist() == [65535]
    assert out["current"].tolist() == [2.5]


def test_packet_fields():
    layout = make_layout([("x", "u", 8, None, False)])
    cols = header_columns(layout, 2, apid=0x7FF, seq0=99)
    cols["x"] = np.zeros(2, np.uint8)
    buf = np.concatenate([np.zeros(1, np.uint8), encode(layout, cols, 2)])
    apid, seq, length = packet_fields(buf, np.array([1, 1 + layout.packet_length]))
    assert apid.tolist() == [0x7FF, 0x7FF]
    assert seq.tolist() == [99, 100]
    assert length.tolist() == [layout.packet_length] * 2


def test_decode_checks_packet_bounds():
    layout = make_layout([("x", "u", 8, None, False)])
    buf = np.zeros(2 * layout.packet_length, np.uint8)
    with pytest.raises(ValueError, match="within"):
        decode(buf, np.array([layout.packet_length + 1]), layout)
    with pytest.raises(ValueError, match="within"):
        decode(buf, np.array([-1]), layout)
    with pytest.raises(TypeError, match="uint8"):
        decode(buf.astype(np.int16), np.array([0]), layout)


def test_layout_checks():
    with pytest.raises(ValueError, match="not on an octet"):
        make_layout([("x", "u", 3, None, False), ("le", "u", 16, None, True)])
    bad = make_layout([("le", "u", 16, None, True), ("x", "u", 8, None, False)])
    slot = int(bad.field_slot[bad.field_index("le")])
    bad.octet_map[slot, 1] = -1  # a 16-bit slot with one octet to read it from
    with pytest.raises(ValueError, match=r"'le'.*octet_map"):
        slot_plan(bad)
    bad.octet_map[slot, :2] = [6, 6]  # the same octet twice
    with pytest.raises(ValueError, match=r"'le'.*distinct"):
        slot_plan(bad)
    bad.octet_map[slot, :2] = [7, bad.packet_length]  # past the packet
    with pytest.raises(ValueError, match=r"'le'.*octet_map"):
        slot_plan(bad)
    layout = make_layout([("x", "u", 8, None, False)])
    layout.bit_width[-1] = 65
    with pytest.raises(ValueError, match=r"'x'.*65"):
        slot_plan(layout)
    layout = make_layout([("x", "u", 8, None, False)])
    layout.bit_offset[-1] = 60
    with pytest.raises(ValueError, match=r"'x'.*outside"):
        slot_plan(layout)


def test_encode_rejects_missing_and_extra_columns():
    layout = make_layout([("x", "u", 8, None, False)])
    cols = header_columns(layout, 1)
    with pytest.raises(ValueError, match=r"missing column.*'x'"):
        encode(layout, cols, 1)
    with pytest.raises(ValueError, match=r"unknown column.*'y'"):
        encode(layout, {**cols, "x": [1], "y": [2]}, 1)
    with pytest.raises(ValueError, match=r"'x'.*shape"):
        encode(layout, {**cols, "x": [1, 2, 3]}, 1)


@pytest.mark.parametrize(
    ("kind", "width", "value", "message"),
    [
        ("u", 12, 4096, "4096 does not fit u12"),
        ("u", 12, -1, "-1 does not fit u12"),
        ("u", 64, 2**64, "does not fit u64"),
        ("i", 5, 16, "16 does not fit i5"),
        ("i", 5, -17, "-17 does not fit i5"),
        ("i", 64, 2**63, "does not fit i64"),
        ("i", 1, 1, "1 does not fit i1"),
        ("i", 1, -2, "-2 does not fit i1"),
        ("f", 32, 1e39, "does not fit f32"),
        ("u", 8, 1.5, "needs integers"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(kind, width, value, message):
    layout = make_layout([("field", kind, width, None, False)])
    cols = {**header_columns(layout, 1), "field": np.array([value])}
    with pytest.raises(ValueError, match=f"'field'.*{message}"):
        encode(layout, cols, 1)


def test_i1_holds_0_and_minus_1():
    layout = make_layout([("a", "i", 1, None, False), ("b", "i", 1, 3, False)])
    cols = {**header_columns(layout, 2), "a": [0, -1], "b": [[-1, 0, -1], [0, 0, -1]]}
    buf = encode(layout, cols, 2)
    assert buf[6] >> 4 == 0b0101  # a, then b: bits 0 1 0 1 of packet 0
    out = decode(buf, np.array([0, layout.packet_length]), layout)
    assert out["a"].dtype == np.int8 and out["a"].tolist() == [0, -1]
    assert out["b"].tolist() == [[-1, 0, -1], [0, 0, -1]]


def test_encode_accepts_the_edges_and_python_ints():
    layout = make_layout([("u", "u", 64, None, False), ("i", "i", 5, None, False)])
    cols = {**header_columns(layout, 2), "u": [0, 2**64 - 1], "i": np.array([-16, 15])}
    out = decode(encode(layout, cols, 2), np.array([0, layout.packet_length]), layout)
    assert out["u"].tolist() == [0, 2**64 - 1]
    assert out["i"].tolist() == [-16, 15]


# Hypothesis: random layouts of odd widths, signed (i1 too), arrays, floats, byte orders
# (little, word-swapped and any other permutation of whole octets) and sub-fields (bits of an
# earlier scalar integer field, in its byte order).

SPECIAL_F32 = [0x7FC00000, 0x7FA00001, 0xFFFFFFFF, 0x7F800000, 0xFF800000, 0x80000000, 1]
SPECIAL_F64 = [0x7FF8000000000000, 0x7FF0000000000001, 0xFFF0000000000000, 1 << 63, 1]


@st.composite
def byte_orders(draw, width: int) -> str:
    """ccsdspy's digits of a random order of a field's octets."""
    digits = [str(k) for k in range(1, width // 8 + 1)]
    return "".join(draw(st.permutations(digits)))


@st.composite
def layouts(draw) -> Layout:
    fields: list[tuple] = []
    parents: list[tuple[str, int]] = []  # scalar integer fields: (name, width)
    bit = 48
    for i in range(draw(st.integers(1, 8))):
        choice = draw(st.sampled_from(["u", "i", "i1", "f32", "f64", "le", "order", "sub"]))
        if choice == "sub" and parents:
            parent, p_width = draw(st.sampled_from(parents))
            width = draw(st.integers(1, p_width))
            count = draw(st.one_of(st.none(), st.integers(1, max(1, p_width // width))))
            if width * (count or 1) > p_width:
                count = None
            at = draw(st.integers(0, p_width - width * (count or 1)))
            kind = draw(st.sampled_from(["u", "i"]))
            fields.append((f"f{i}", kind, width, count, None, (parent, at)))
            continue
        order: bool | str = False
        if choice in ("le", "order", "sub"):
            kind = draw(st.sampled_from(["u", "i", "f"]))
            widths = [32, 64] if kind == "f" else [8, 16, 24, 32, 40, 48, 56, 64]
            width = draw(st.sampled_from(widths))
            order = True if choice == "le" else draw(byte_orders(width))
        elif choice in ("f32", "f64"):
            kind, width = "f", int(choice[1:])
        elif choice == "i1":
            kind, width = "i", 1
        else:
            kind, width = choice, draw(st.integers(1, 64))
        count = draw(st.one_of(st.none(), st.integers(1, 3)))
        if order and bit % 8:
            pad = 8 - bit % 8
            fields.append((f"pad{i}", "u", pad, None, False))
            bit += pad
        fields.append((f"f{i}", kind, width, count, order))
        if count is None and kind != "f":
            parents.append((f"f{i}", width))
        bit += width * (count or 1)
    return make_layout(fields)


def overwritten(layout: Layout) -> set[str]:
    """Fields whose bits a later slot writes again (parents of sub-fields, and sub-fields
    overlapped by later ones): they decode to the merged bits, not to what was given. Bit
    offsets of reordered slots count in their field's big-endian image, which lies on the
    field's own octets, so overlapping offsets are overlapping bits here too."""
    lo = layout.bit_offset
    hi = layout.bit_offset + layout.bit_width
    out = set()
    for f, name in enumerate(layout.names):
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        later = slice(s0 + count, layout.n_slots)
        for s in range(s0, s0 + count):
            if ((lo[later] < hi[s]) & (lo[s] < hi[later])).any():
                out.add(name)
    return out


def field_values(draw, layout: Layout, name: str, n: int) -> np.ndarray:
    f = layout.field_index(name)
    s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
    kind, width = int(layout.kind[s0]), int(layout.bit_width[s0])
    shape = (n, count) if name in layout.array_fields else (n,)
    size = int(np.prod(shape))
    if kind in (FLOAT32, FLOAT64):
        special = SPECIAL_F32 if kind == FLOAT32 else SPECIAL_F64
        bits = st.one_of(st.integers(0, 2**width - 1), st.sampled_from(special))
        raw = draw(st.lists(bits, min_size=size, max_size=size))
        utype, ftype = (np.uint32, np.float32) if kind == FLOAT32 else (np.uint64, np.float64)
        return np.array(raw, utype).view(ftype).reshape(shape)
    if kind == SIGNED:
        ints = st.integers(-(2 ** (width - 1)), 2 ** (width - 1) - 1)
        return np.array(draw(st.lists(ints, min_size=size, max_size=size)), np.int64).reshape(shape)
    ints = st.integers(0, 2**width - 1)
    return np.array(draw(st.lists(ints, min_size=size, max_size=size)), np.uint64).reshape(shape)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_round_trip_and_reference(data):
    layout = data.draw(layouts())
    n = data.draw(st.integers(0, 4))
    cols = {name: field_values(data.draw, layout, name, n) for name in layout.names}
    buf = encode(layout, cols, n)
    assert buf.shape == (n * layout.packet_length,)
    starts = np.arange(n, dtype=np.int64) * layout.packet_length
    out = decode(buf, starts, layout)
    merged = overwritten(layout)
    for name in layout.names:
        if name not in merged:
            np.testing.assert_array_equal(as_bits(out[name]), as_bits(cols[name]), err_msg=name)
    assert_matches_reference(out, buf.tobytes(), starts, layout)
    # The encoder agrees with the reference encoder, octet for octet.
    fields = reference_fields(layout)
    for i in range(n):
        values = {name: as_bits(cols[name][i]).tolist() for name in layout.names}
        packet = encode_packet(values, fields, layout.packet_length)
        assert buf[starts[i] : starts[i] + layout.packet_length].tobytes() == packet


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_decode_random_octets_like_the_reference(data):
    layout = data.draw(layouts())
    n = data.draw(st.integers(1, 4))
    gap = data.draw(st.integers(0, 5))
    size = n * (layout.packet_length + gap)
    raw = data.draw(st.binary(min_size=size, max_size=size))
    starts = np.arange(n, dtype=np.int64) * (layout.packet_length + gap) + gap
    out = decode(np.frombuffer(raw, np.uint8), starts, layout)
    assert_matches_reference(out, raw, starts.tolist(), layout)


def test_many_packets_across_kernel_blocks_and_chunks(monkeypatch):
    import pipelines.decode

    monkeypatch.setattr(pipelines.decode, "_CHUNK_OCTETS", 1)  # one kernel block per chunk
    layout = make_layout([*HOUSEKEEPING, ("wide", "i", 64, None, False)])
    n = 2 * pipelines.decode._BLOCK + 77
    raw = np.random.default_rng(7).integers(0, 256, n * layout.packet_length + 3, np.uint8)
    starts = np.arange(n, dtype=np.int64)[::-1] * layout.packet_length + 3
    out = decode(raw, starts, layout)
    assert_matches_reference(out, raw.tobytes(), starts.tolist(), layout)
