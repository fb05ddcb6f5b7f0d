"""split_frames against hand-made frames and the pure-Python reference splitter."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.decode import decode
from pipelines.encode import encode
from pipelines.frames import (
    BAD_VERSION,
    LENGTH_PAST_END,
    OK,
    STATUS_NAMES,
    TRUNCATED,
    Packets,
    split_frames,
)
from tests.layouts import header_columns, make_layout
from tests.reference import split_reference


def packet(apid: int, payload: bytes, version: int = 0, seq: int = 0) -> bytes:
    """One space packet: a primary header then ``payload`` (at least one octet)."""
    word0 = (version << 13) | apid
    return struct.pack(">HHH", word0, (3 << 14) | seq, len(payload) - 1) + payload


def split(frames: list[bytes], gap: int = 0) -> tuple[bytes, list[tuple[int, int]], Packets]:
    """Concatenate frames (with ``gap`` junk octets before each) and split them."""
    data = b""
    bounds = []
    for frame in frames:
        data += b"\xee" * gap
        bounds.append((len(data), len(data) + len(frame)))
        data += frame
    buf = np.frombuffer(data, np.uint8)
    start = np.array([b[0] for b in bounds], np.int64)
    end = np.array([b[1] for b in bounds], np.int64)
    return data, bounds, split_frames(buf, start, end)


def rows(p: Packets) -> list[tuple]:
    return [
        (int(s), int(n), int(f), int(a), STATUS_NAMES[int(c)])
        for s, n, f, a, c in zip(p.start, p.length, p.frame, p.apid, p.status, strict=True)
    ]


def assert_covers(p: Packets, bounds: list[tuple[int, int]]) -> None:
    """Every octet of every frame lies in exactly one item, and items stay in their frame."""
    for f, (start, end) in enumerate(bounds):
        mine = p.frame == f
        starts, lengths = p.start[mine], p.length[mine]
        assert np.all(lengths > 0)
        assert np.all(np.diff(starts) > 0)
        expected = start
        for s, n in zip(starts, lengths, strict=True):
            assert s == expected
            expected += n
        assert expected == end


def test_status_names_cover_the_codes():
    assert STATUS_NAMES == {
        OK: "ok",
        TRUNCATED: "truncated",
        LENGTH_PAST_END: "length_past_end",
        BAD_VERSION: "bad_version",
    }
    assert len(set(STATUS_NAMES)) == 4


def test_good_packets():
    a, b, c = packet(0x2A1, b"\x01"), packet(0x7FF, bytes(100), seq=5), packet(0, b"xyz")
    _, bounds, p = split([a + b + c])
    assert rows(p) == [
        (0, 7, 0, 0x2A1, "ok"),
        (7, 106, 0, 0x7FF, "ok"),
        (113, 9, 0, 0, "ok"),
    ]
    assert p.start.dtype == p.length.dtype == p.frame.dtype == np.int64
    assert p.apid.dtype == np.int32 and p.status.dtype == np.int8
    assert len(p) == 3
    assert_covers(p, bounds)


def test_truncated_header():
    _, bounds, p = split([packet(5, b"ab") + b"\x00\x01\x02\x03"])
    assert rows(p) == [(0, 8, 0, 5, "ok"), (8, 4, 0, -1, "truncated")]
    assert_covers(p, bounds)


def test_frame_shorter_than_a_header():
    _, _, p = split([b"\x00"])
    assert rows(p) == [(0, 1, 0, -1, "truncated")]


def test_length_past_end_takes_the_rest_of_the_frame():
    bad = packet(9, bytes(100))[:16]
    _, bounds, p = split([packet(5, b"ab") + bad])
    assert rows(p) == [(0, 8, 0, 5, "ok"), (8, 16, 0, 9, "length_past_end")]
    assert_covers(p, bounds)


def test_header_only_with_length_past_end():
    _, _, p = split([packet(3, b"a")[:6]])
    assert rows(p) == [(0, 6, 0, 3, "length_past_end")]


def test_bad_version_in_the_middle_still_skips_by_its_length():
    layout = make_layout([("x", "u", 16, None, False)])
    cols = header_columns(layout, 3, apid=0x10)
    cols["x"] = np.array([1, 2, 3], np.uint16)
    cols["_version"] = np.array([0, 4, 0], np.uint8)
    frame = encode(layout, cols, 3).tobytes()
    data, bounds, p = split([frame])
    assert [r[4] for r in rows(p)] == ["ok", "bad_version", "ok"]
    assert list(p.length) == [8, 8, 8]
    good = p.start[p.status == OK]
    out = decode(np.frombuffer(data, np.uint8), good, layout)
    assert list(out["x"]) == [1, 3]
    assert_covers(p, bounds)


def test_bad_version_with_length_past_end_is_bad_version_clipped_to_the_frame():
    _, bounds, p = split([packet(1, b"a") + packet(2, bytes(50), version=1)[:20]])
    assert rows(p) == [(0, 7, 0, 1, "ok"), (7, 20, 0, 2, "bad_version")]
    assert_covers(p, bounds)


def test_empty_frame_and_empty_batch():
    _, _, p = split([b"", packet(1, b"a"), b""])
    assert rows(p) == [(0, 7, 1, 1, "ok")]
    _, _, p = split([])
    assert len(p) == 0
    assert p.start.dtype == np.int64 and p.status.dtype == np.int8


def test_a_bad_frame_between_good_frames_does_not_leak():
    good = packet(1, b"abc") + packet(2, b"defg")
    frames = [good, packet(3, bytes(40))[:12], b"\x00\x00", good, packet(4, b"z", version=7), good]
    data, bounds, p = split(frames, gap=3)
    assert rows(p) == split_reference(data, bounds)
    for f in (0, 3, 5):
        mine = p.frame == f
        assert list(p.status[mine]) == [OK, OK]
        assert list(p.apid[mine]) == [1, 2]
    assert list(p.status[p.frame == 1]) == [LENGTH_PAST_END]
    assert list(p.status[p.frame == 2]) == [TRUNCATED]
    assert list(p.status[p.frame == 4]) == [BAD_VERSION]
    assert_covers(p, bounds)


def test_frames_need_not_be_in_buffer_order():
    data = packet(1, b"a") + packet(2, b"bb")
    buf = np.frombuffer(data, np.uint8)
    p = split_frames(buf, np.array([7, 0]), np.array([15, 7]))
    assert rows(p) == [(7, 8, 0, 2, "ok"), (0, 7, 1, 1, "ok")]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ([0], [20], "within the buffer"),
        ([-1], [3], "within the buffer"),
        ([5], [4], "frame 0 ends before it starts"),
        ([0, 1], [2], "differ in length"),
    ],
)
def test_bad_frame_bounds_raise(start, end, message):
    buf = np.zeros(10, np.uint8)
    with pytest.raises(ValueError, match=message):
        split_frames(buf, np.array(start), np.array(end))


def test_bad_argument_types_raise():
    with pytest.raises(TypeError, match="uint8"):
        split_frames(np.zeros(10, np.int8), np.array([0]), np.array([1]))
    with pytest.raises(TypeError, match="integer"):
        split_frames(np.zeros(10, np.uint8), np.array([0.0]), np.array([1]))


chunks = st.one_of(
    st.builds(
        packet,
        st.integers(0, 0x7FF),
        st.binary(min_size=1, max_size=30),
        st.sampled_from([0, 0, 0, 1, 7]),
        st.integers(0, 16383),
    ),
    st.binary(min_size=0, max_size=12),
)
frames = st.lists(st.lists(chunks, max_size=5).map(b"".join), max_size=8)


@settings(max_examples=300, deadline=None)
@given(frames, st.integers(0, 3))
def test_matches_reference_and_covers_every_octet(frame_list, gap):
    data, bounds, p = split(frame_list, gap=gap)
    assert rows(p) == split_reference(data, bounds)
    assert_covers(p, bounds)
    assert int(p.length.sum()) == sum(e - s for s, e in bounds)


# ---------------------------------------------------------------------- resync

APIDS_KNOWN = {0x2A1: 0, 0x123: 12}  # any length for 0x2A1; exactly 12 octets for 0x123


def tables(known: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.zeros(2048, bool), np.zeros(2048, np.int64)
    for apid, length in known.items():
        k[apid], n[apid] = True, length
    return k, n


def split_resync(data: bytes, bounds: list[tuple[int, int]]) -> Packets:
    buf = np.frombuffer(data, np.uint8)
    start = np.array([b[0] for b in bounds], np.int64)
    end = np.array([b[1] for b in bounds], np.int64)
    return split_frames(buf, start, end, *tables(APIDS_KNOWN))


def test_garbage_mid_frame_loses_only_its_own_octets() -> None:
    good = [packet(0x2A1, bytes(range(k, k + 9)), seq=k) for k in range(4)]
    garbage = b"\xff\x07\x12\x34\xff\xf0" + b"\xaa" * 7  # version 7, a length past the end
    frame = good[0] + garbage + good[1] + good[2] + good[3]
    p = split_resync(frame, [(0, len(frame))])
    assert rows(p) == [
        (0, 15, 0, 0x2A1, "ok"),
        (15, len(garbage), 0, 0x707, "bad_version"),
        *[(15 + len(garbage) + 15 * k, 15, 0, 0x2A1, "ok") for k in range(3)],
    ]


def test_a_huge_length_field_does_not_swallow_the_packets_behind_it() -> None:
    good = [packet(0x123, bytes(6), seq=k) for k in range(3)]
    bad = struct.pack(">HHH", 0x123, 3 << 14, 0xFFF0) + b"\x01\x02"  # 0x123, length past end
    frame = bad + b"".join(good)
    p = split_resync(frame, [(0, len(frame))])
    assert rows(p)[0] == (0, len(bad), 0, 0x123, "length_past_end")
    assert [r[4] for r in rows(p)[1:]] == ["ok"] * 3
    # Without the tables nothing is resynced: the bad header takes the whole frame.
    assert rows(split([frame])[2]) == [(0, len(frame), 0, 0x123, "length_past_end")]


def test_a_bad_version_whose_length_is_right_still_skips_by_it() -> None:
    # A flipped version bit in a real packet: its length lands on the next packet.
    good = [packet(0x2A1, b"\x00" * 5, seq=k) for k in range(3)]
    flipped = packet(0x2A1, b"\x00\x00\x2a\xa1\x00", version=1)  # plausible bytes inside
    frame = good[0] + flipped + good[1] + good[2]
    p = split_resync(frame, [(0, len(frame))])
    assert [r[4] for r in rows(p)] == ["ok", "bad_version", "ok", "ok"]
    assert rows(p)[1][1] == len(flipped)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(lambda n, s: packet(0x2A1, b"\x5a" * n, seq=s), st.integers(1, 20),
                      st.integers(0, 16383)),
            st.builds(lambda s: packet(0x123, b"\x00" * 6, seq=s), st.integers(0, 16383)),
            st.binary(min_size=1, max_size=30),  # garbage
        ),
        max_size=12,
    ),
    st.integers(1, 4),
)  # fmt: skip
def test_resync_equals_the_reference_and_covers_every_octet(parts, n_frames) -> None:
    data = b"".join(parts)
    cut = [len(data) * k // n_frames for k in range(n_frames + 1)]
    bounds = [(cut[k], cut[k + 1]) for k in range(n_frames)]
    p = split_resync(data, bounds)
    assert rows(p) == split_reference(data, bounds, APIDS_KNOWN)
    assert_covers(p, bounds)


# ---------------------------------------------------------------------- prefix


def assert_covers_with_prefix(p: Packets, bounds: list[tuple[int, int]], prefix: int) -> None:
    """Every octet of every frame lies in exactly one item or is a good packet's prefix."""
    for f, (start, end) in enumerate(bounds):
        mine = p.frame == f
        expected = start
        for s, n, c in zip(p.start[mine], p.length[mine], p.status[mine], strict=True):
            assert n > 0
            assert s == expected + (prefix if c == OK else 0)
            expected = s + n
        assert expected == end


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(lambda m, n, s: m + packet(0x2A1, b"\x5a" * n, seq=s),
                      st.binary(min_size=4, max_size=4), st.integers(1, 20),
                      st.integers(0, 16383)),
            st.builds(lambda m, s: m + packet(0x123, b"\x00" * 6, seq=s),
                      st.binary(min_size=4, max_size=4), st.integers(0, 16383)),
            st.binary(min_size=1, max_size=30),  # garbage
        ),
        max_size=12,
    ),
    st.integers(1, 3),
    st.booleans(),
)  # fmt: skip
def test_prefix_split_equals_the_reference_and_loses_no_octet(parts, n_frames, resync) -> None:
    """Packets each after a 4-octet prefix (any octets), garbage between them: the kernel's
    items are the reference's, with and without resync."""
    data = b"".join(parts)
    cut = [len(data) * k // n_frames for k in range(n_frames + 1)]
    bounds = [(cut[k], cut[k + 1]) for k in range(n_frames)]
    buf = np.frombuffer(data, np.uint8)
    start = np.array([b[0] for b in bounds], np.int64)
    end = np.array([b[1] for b in bounds], np.int64)
    known = tables(APIDS_KNOWN) if resync else ()
    p = split_frames(buf, start, end, *known, prefix=4)
    assert rows(p) == split_reference(data, bounds, APIDS_KNOWN if resync else None, prefix=4)
    assert_covers_with_prefix(p, bounds, 4)


def test_prefixed_good_packets_skip_their_prefix() -> None:
    good = [packet(0x2A1, bytes(range(k, k + 9)), seq=k) for k in range(3)]
    frame = b"".join(b"\x60\xf0\x60\x60" + g for g in good) + b"\x60\xf0"
    buf = np.frombuffer(frame, np.uint8)
    p = split_frames(buf, np.array([0]), np.array([len(frame)]), prefix=4)
    assert rows(p) == [
        *[(4 + 19 * k, 15, 0, 0x2A1, "ok") for k in range(3)],
        (57, 2, 0, -1, "truncated"),  # a prefix cut short: its octets kept
    ]
