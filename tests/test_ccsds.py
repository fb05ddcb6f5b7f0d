"""Tests for ilrs_ops.ccsds: expected values are worked out here by hand, not by the module."""

import dataclasses
import itertools
import struct
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ilrs_ops.ccsds import (
    MAX_APID,
    PRIMARY_HEADER_OCTETS,
    SEQ_COUNT_MODULO,
    TAI_MINUS_UTC,
    PrimaryHeader,
    build_packet,
    cds_to_utc_ns,
    cuc_to_utc_ns,
    decode_cds,
    decode_cuc,
    decode_primary_header,
    encode_cds,
    encode_cuc,
    encode_primary_header,
    next_seq_count,
    seq_count_diff,
    utc_ns_to_cds,
    utc_ns_to_cuc,
)

NS = 1_000_000_000
UNIX = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH58 = datetime(1958, 1, 1, tzinfo=UTC)
EPOCH58_NS = -4383 * 86_400 * NS  # 12 years incl. 1960, 1964, 1968 leap days


def utc(*args: int, ns: int = 0) -> int:
    """UTC Unix ns of a calendar time, computed with datetime (independent of the module)."""
    return (datetime(*args, tzinfo=UTC) - UNIX) // timedelta(microseconds=1) * 1000 + ns


def secs58(*args: int) -> int:
    """Whole UTC seconds (no leap seconds) since 1958-01-01."""
    return (datetime(*args, tzinfo=UTC) - EPOCH58) // timedelta(seconds=1)


def days58(*args: int) -> int:
    return (date(*args) - date(1958, 1, 1)).days


# IERS Leap_Second.dat, copied separately from the module's table to catch typos in either.
IERS_STEPS = [
    ((1972, 1, 1), 10), ((1972, 7, 1), 11), ((1973, 1, 1), 12), ((1974, 1, 1), 13),
    ((1975, 1, 1), 14), ((1976, 1, 1), 15), ((1977, 1, 1), 16), ((1978, 1, 1), 17),
    ((1979, 1, 1), 18), ((1980, 1, 1), 19), ((1981, 7, 1), 20), ((1982, 7, 1), 21),
    ((1983, 7, 1), 22), ((1985, 7, 1), 23), ((1988, 1, 1), 24), ((1990, 1, 1), 25),
    ((1991, 1, 1), 26), ((1992, 7, 1), 27), ((1993, 7, 1), 28), ((1994, 7, 1), 29),
    ((1996, 1, 1), 30), ((1997, 7, 1), 31), ((1999, 1, 1), 32), ((2006, 1, 1), 33),
    ((2009, 1, 1), 34), ((2012, 7, 1), 35), ((2015, 7, 1), 36), ((2017, 1, 1), 37),
]  # fmt: skip
LEAP_UTC_NS = [utc(*d) for d, _ in IERS_STEPS]


# --------------------------------------------------------------------------- primary header


def test_encode_header_matches_hand_packed_bits():
    h = PrimaryHeader(0, 0, 1, 0x2A1, 3, 1234, 99)
    expected = struct.pack(">HHH", (0 << 13) | (0 << 12) | (1 << 11) | 0x2A1, (3 << 14) | 1234, 99)
    assert encode_primary_header(h) == expected
    assert expected.hex() == "0aa1c4d20063"


def test_decode_header_known_bytes_and_offset():
    data = b"\xff\xff" + bytes.fromhex("1fffc0000000") + b"\xee"
    h = decode_primary_header(memoryview(data), offset=2)
    assert h == PrimaryHeader(0, 1, 1, MAX_APID, 3, 0, 0)
    assert h.packet_length == 7
    # version bits are reported, not rejected: the ingest counts them as "bad version"
    assert decode_primary_header(b"\xe0\x00\x00\x00\xff\xff").version == 7
    assert decode_primary_header(b"\xe0\x00\x00\x00\xff\xff").packet_length == 65542


headers = st.builds(
    PrimaryHeader,
    version=st.just(0),
    packet_type=st.integers(0, 1),
    secondary_header_flag=st.integers(0, 1),
    apid=st.integers(0, MAX_APID),
    sequence_flags=st.integers(0, 3),
    sequence_count=st.integers(0, SEQ_COUNT_MODULO - 1),
    data_length=st.integers(0, 0xFFFF),
)


@given(headers)
def test_header_round_trip(h):
    raw = encode_primary_header(h)
    assert len(raw) == PRIMARY_HEADER_OCTETS
    assert decode_primary_header(raw) == h
    assert decode_primary_header(raw).packet_length == h.data_length + 7


@given(st.binary(min_size=6, max_size=6))
def test_header_decode_encode_any_version0_bytes(raw):
    raw = bytes([raw[0] & 0x1F]) + raw[1:]
    assert encode_primary_header(decode_primary_header(raw)) == raw


VALID = PrimaryHeader(0, 0, 1, 0x100, 3, 5, 10)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("version", 1),
        ("packet_type", 2),
        ("secondary_header_flag", -1),
        ("apid", MAX_APID + 1),
        ("apid", -1),
        ("sequence_flags", 4),
        ("sequence_count", SEQ_COUNT_MODULO),
        ("data_length", 0x10000),
    ],
)
def test_encode_header_rejects_out_of_range(field, bad):
    with pytest.raises(ValueError, match=rf"^{field} = {bad} is out of range; allowed \d+\.\.\d+"):
        encode_primary_header(dataclasses.replace(VALID, **{field: bad}))


def test_encode_header_rejects_non_integer():
    with pytest.raises(ValueError, match=r"apid must be an integer in 0\.\.2047"):
        encode_primary_header(dataclasses.replace(VALID, apid=1.5))


@pytest.mark.parametrize(("data", "offset"), [(b"\x00" * 5, 0), (b"\x00" * 10, 5), (b"", 0)])
def test_decode_header_short_data(data, offset):
    with pytest.raises(ValueError, match="primary header needs 6 octets"):
        decode_primary_header(data, offset)


def test_decode_header_negative_offset():
    with pytest.raises(ValueError, match="offset = -1"):
        decode_primary_header(b"\x00" * 8, -1)


def test_header_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VALID.apid = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- sequence counts


def test_seq_count_wrap_and_diff():
    assert next_seq_count(0) == 1
    assert next_seq_count(16383) == 0
    assert seq_count_diff(16383, 0) == 1
    assert seq_count_diff(16380, 2) == 6
    assert seq_count_diff(0, 16383) == 16383  # one step back = a near-full wrap forward
    assert seq_count_diff(7, 7) == 0


@given(st.integers(0, 16383), st.integers(0, 16383))
def test_seq_count_diff_walks_forward(a, b):
    d = seq_count_diff(a, b)
    assert 0 <= d < SEQ_COUNT_MODULO
    assert (a + d) % 16384 == b
    n = a
    for _ in range(d % 50):
        n = next_seq_count(n)
    assert seq_count_diff(a, n) == d % 50


@pytest.mark.parametrize("bad", [-1, 16384])
def test_seq_count_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="sequence_count"):
        next_seq_count(bad)
    with pytest.raises(ValueError, match=r"b \(sequence_count\) = "):
        seq_count_diff(0, bad)


# --------------------------------------------------------------------------- build_packet


def test_build_packet_layout():
    pkt = build_packet(0x2A1, 16383, b"\x01\x02\x03\x04\x05\x06", b"\xaa\xbb")
    word0, word1, length = struct.unpack(">HHH", pkt[:6])
    assert word0 == (1 << 11) | 0x2A1
    assert word1 == (3 << 14) | 16383
    assert length == 6 + 2 - 1
    assert len(pkt) == length + 7
    assert pkt[6:] == b"\x01\x02\x03\x04\x05\x06\xaa\xbb"


def test_build_packet_without_secondary_header_and_tc_type():
    pkt = build_packet(5, 0, b"", b"\x00", packet_type=1)
    assert pkt == struct.pack(">HHH", (1 << 12) | 5, 3 << 14, 0) + b"\x00"


def test_build_packet_length_limits():
    biggest = build_packet(1, 0, b"", bytes(65536))
    assert len(biggest) == 65542
    assert struct.unpack(">H", biggest[4:6])[0] == 0xFFFF
    with pytest.raises(ValueError, match=r"packet length = 65543 octets .* allowed 7\.\.65542"):
        build_packet(1, 0, b"", bytes(65537))
    with pytest.raises(ValueError, match=r"packet length = 6 octets"):
        build_packet(1, 0, b"", b"")


def test_build_packet_rejects_bad_apid():
    with pytest.raises(ValueError, match="apid = 2048"):
        build_packet(2048, 0, b"", b"\x00")


# --------------------------------------------------------------------------- leap table


def test_leap_table_matches_iers_list():
    assert [((d.year, d.month, d.day), s) for d, s in TAI_MINUS_UTC] == IERS_STEPS
    steps = [s for _, s in TAI_MINUS_UTC]
    assert all(b - a == 1 for a, b in itertools.pairwise(steps))


# --------------------------------------------------------------------------- CUC known values


def cuc(coarse: int, fine: int, coarse_octets: int = 4, fine_octets: int = 2) -> bytes:
    return coarse.to_bytes(coarse_octets, "big") + fine.to_bytes(fine_octets, "big")


def test_cuc_epoch_1958_uses_pre_1972_offset():
    assert utc(1958, 1, 1) == EPOCH58_NS
    assert encode_cuc(utc(1958, 1, 1), 4, 0) == cuc(10, 0, 4, 0)
    assert decode_cuc(cuc(0, 0, 4, 0), 4, 0) == utc(1957, 12, 31, 23, 59, 50)


def test_cuc_2017_uses_37_seconds():
    t = utc(2017, 1, 1)
    expected = cuc(secs58(2017, 1, 1) + 37, 0)
    assert expected.hex() == "6efaa5250000"
    assert encode_cuc(t) == expected
    assert decode_cuc(expected) == t


def test_cuc_j2000_uses_32_seconds_and_half_second_fine():
    t = utc(2000, 1, 1, 12, ns=500_000_000)
    assert encode_cuc(t) == cuc(secs58(2000, 1, 1, 12) + 32, 0x8000)
    assert encode_cuc(t, 4, 1) == cuc(secs58(2000, 1, 1, 12) + 32, 0x80, 4, 1)
    assert decode_cuc(cuc(secs58(2000, 1, 1, 12) + 32, 0x8000)) == t


def test_cuc_around_2016_leap_second():
    before = utc(2016, 12, 31, 23, 59, 59)
    after = utc(2017, 1, 1)
    c_before = secs58(2016, 12, 31, 23, 59, 59) + 36
    assert encode_cuc(before) == cuc(c_before, 0)
    assert encode_cuc(after) == cuc(c_before + 2, 0)  # 23:59:60 sits in between
    assert decode_cuc(cuc(c_before, 0)) == before
    # the inserted second 23:59:60 (whole and half) maps to the following 00:00:00
    assert decode_cuc(cuc(c_before + 1, 0)) == after
    assert decode_cuc(cuc(c_before + 1, 0x8000)) == after
    assert decode_cuc(cuc(c_before + 2, 0x8000)) == after + NS // 2
    # 1 ns after midnight rounds to the nearest 2^-24 s unit, i.e. back to midnight
    assert encode_cuc(after + 1, 4, 3) == cuc(c_before + 2, 0, 4, 3)
    assert encode_cuc(before + NS - 1, 4, 3) == cuc(c_before + 1, 0, 4, 3)


def test_cuc_decoding_is_monotonic_through_leap_second():
    c0 = secs58(2016, 12, 31, 23, 59, 58) + 36
    coarse = np.repeat(np.arange(c0, c0 + 5, dtype=np.uint64), 65536)
    fine = np.tile(np.arange(65536, dtype=np.uint64), 5)
    out = cuc_to_utc_ns(coarse, fine, 2)
    assert out.dtype == np.int64
    steps = np.diff(out)
    assert steps.min() == 0
    assert np.count_nonzero(steps == 0) == 65536  # only the 65536 codes of 23:59:60 collapse


def test_cuc_1972_first_table_entry_is_continuous():
    t = utc(1972, 1, 1)
    assert encode_cuc(t - NS, 4, 0) == cuc(secs58(1972, 1, 1) - 1 + 10, 0, 4, 0)
    assert encode_cuc(t, 4, 0) == cuc(secs58(1972, 1, 1) + 10, 0, 4, 0)


def test_cuc_rounds_to_nearest():
    t = utc(2020, 6, 1, 12)
    c = secs58(2020, 6, 1, 12) + 37
    assert encode_cuc(t + NS // 2, 4, 0) == cuc(c + 1, 0, 4, 0)  # halves go up
    assert encode_cuc(t + NS // 2 - 1, 4, 0) == cuc(c, 0, 4, 0)
    assert encode_cuc(t + NS - 1, 4, 2) == cuc(c + 1, 0)  # rounding carries into coarse
    # decode gives the ns nearest the coded value: 1e9 / 2**24 = 59.6 ns
    assert decode_cuc(cuc(c, 1, 4, 3), 4, 3) == t + 60
    assert decode_cuc(cuc(c, 0xFFFFFF, 4, 3), 4, 3) == t + 999_999_940


def cuc_utc_bounds(coarse: int) -> tuple[int, int]:
    offset = 37 if coarse == 4 else 10  # 2**24 s after 1958 is still before 1972
    return EPOCH58_NS - 10 * NS, EPOCH58_NS + ((1 << (8 * coarse)) - 1 - offset) * NS


near_leaps = st.sampled_from(LEAP_UTC_NS).flatmap(lambda t: st.integers(t - 2 * NS, t + 2 * NS))


@given(st.data(), st.integers(1, 4), st.integers(0, 3))
def test_cuc_round_trip(data, coarse, fine):
    lo, hi = cuc_utc_bounds(coarse)
    strategy = st.integers(lo, hi) | near_leaps if coarse == 4 else st.integers(lo, hi)
    t = data.draw(strategy)
    raw = encode_cuc(t, coarse, fine)
    assert len(raw) == coarse + fine
    resolution = NS / 2 ** (8 * fine)
    assert abs(decode_cuc(raw, coarse, fine) - t) <= resolution / 2 + 1


@pytest.mark.parametrize("coarse", [1, 2, 3, 4])
def test_cuc_range_edges(coarse):
    lo, hi = cuc_utc_bounds(coarse)
    assert encode_cuc(lo, coarse, 0) == bytes(coarse)
    assert encode_cuc(hi, coarse, 0) == b"\xff" * coarse
    with pytest.raises(ValueError, match=r"utc_ns = .* (does not fit coarse|outside the CUC)"):
        encode_cuc(hi + NS, coarse, 0)
    with pytest.raises(ValueError, match=r"utc_ns = .* outside the CUC range"):
        encode_cuc(lo - NS, coarse, 0)


def test_cuc_rejects_bad_octets_and_lengths():
    with pytest.raises(ValueError, match=r"coarse = 5 octets .* allowed \(1, 2, 3, 4\)"):
        encode_cuc(0, coarse=5)
    with pytest.raises(ValueError, match=r"fine = 4 octets .* allowed \(0, 1, 2, 3\)"):
        decode_cuc(b"\x00" * 8, fine=4)
    with pytest.raises(ValueError, match=r"CUC data is 5 octets; expected .* = 6"):
        decode_cuc(b"\x00" * 5)
    with pytest.raises(ValueError, match="CUC data is 7 octets"):
        decode_cuc(b"\x00" * 7)
    with pytest.raises(ValueError, match="utc_ns must be an integer"):
        encode_cuc(1e18)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fine\[1\] = 256 is out of range; allowed 0\.\.255"):
        cuc_to_utc_ns(np.array([0, 0]), np.array([0, 256]), 1)
    with pytest.raises(ValueError, match="coarse must be an integer array"):
        cuc_to_utc_ns(np.array([0.5]), np.array([0]), 0)


# --------------------------------------------------------------------------- CDS known values


def cds(days: int, ms: int, sub: int = 0, day_octets: int = 2, subms_octets: int = 0) -> bytes:
    return days.to_bytes(day_octets, "big") + ms.to_bytes(4, "big") + sub.to_bytes(subms_octets)


def test_cds_known_values():
    assert encode_cds(utc(1958, 1, 1)) == bytes(6)
    assert encode_cds(utc(2017, 1, 1)) == cds(days58(2017, 1, 1), 0)
    assert cds(days58(2017, 1, 1), 0).hex() == "542e00000000"
    t = utc(2000, 1, 1, 12, 34, 56, ns=789_123_456)
    ms = (12 * 3600 + 34 * 60 + 56) * 1000 + 789
    d = days58(2000, 1, 1)
    assert encode_cds(t) == cds(d, ms)
    assert encode_cds(t, 2, 2) == cds(d, ms, 123, 2, 2)
    assert encode_cds(t, 3, 4) == cds(d, ms, 123_456_000, 3, 4)
    assert decode_cds(cds(d, ms, 123_456_000, 3, 4), 3, 4) == t
    assert decode_cds(cds(d, ms, 123, 2, 2), 2, 2) == t - 456


def test_cds_rounds_to_nearest_with_day_carry():
    t = utc(2016, 12, 30, 23, 59, 59, ns=999_500_000)
    assert encode_cds(t) == cds(days58(2016, 12, 31), 0)
    assert encode_cds(t - 1) == cds(days58(2016, 12, 30), 86_399_999)
    assert encode_cds(t + 499, 2, 2) == cds(days58(2016, 12, 30), 86_399_999, 500, 2, 2)


def test_cds_leap_second_maps_to_next_midnight():
    d = days58(2016, 12, 31)
    assert decode_cds(cds(d, 86_399_999)) == utc(2016, 12, 31, 23, 59, 59, ns=999_000_000)
    assert decode_cds(cds(d, 86_400_000)) == utc(2017, 1, 1)
    assert decode_cds(cds(d, 86_400_999, 999, 2, 2), 2, 2) == utc(2017, 1, 1)


@given(st.data(), st.sampled_from([2, 3]), st.sampled_from([0, 2, 4]))
def test_cds_round_trip(data, day_octets, subms_octets):
    hi = EPOCH58_NS + (1 << 16) * 86_400 * NS - NS if day_octets == 2 else utc(2262, 4, 10)
    t = data.draw(st.integers(EPOCH58_NS, hi) | near_leaps)
    raw = encode_cds(t, day_octets, subms_octets)
    assert len(raw) == day_octets + 4 + subms_octets
    resolution = {0: 1_000_000, 2: 1_000, 4: 0}[subms_octets]
    assert abs(decode_cds(raw, day_octets, subms_octets) - t) <= resolution // 2


def test_cds_range_errors():
    with pytest.raises(ValueError, match="outside the CDS range"):
        encode_cds(EPOCH58_NS - 1, 2, 4)
    with pytest.raises(ValueError, match=r"day 65536 .* day_octets = 2; allowed days 0\.\.65535"):
        encode_cds(EPOCH58_NS + 65536 * 86_400 * NS)
    assert encode_cds(EPOCH58_NS + 65536 * 86_400 * NS, 3) == cds(65536, 0, 0, 3)
    with pytest.raises(ValueError, match="day_octets = 4 octets"):
        encode_cds(0, day_octets=4)
    with pytest.raises(ValueError, match="subms_octets = 1 octets"):
        decode_cds(bytes(7), subms_octets=1)
    with pytest.raises(ValueError, match=r"CDS data is 7 octets; expected .* = 8"):
        decode_cds(bytes(7), subms_octets=2)
    with pytest.raises(ValueError, match=r"ms_of_day = 86401000 is out of range; allowed 0\.\."):
        decode_cds(cds(0, 86_401_000))
    with pytest.raises(ValueError, match=r"subms = 1000 is out of range; allowed 0\.\.999"):
        decode_cds(cds(0, 0, 1000, 2, 2), 2, 2)


def test_cds_int64_end():
    last = 106_751 + 4383  # the day holding 2262-04-11, where int64 ns ends
    assert cds_to_utc_ns(last, 0, 0, 0) == utc(2262, 4, 11)
    with pytest.raises(ValueError, match=r"days\[0\] = 111134 is after 2262-04-11T23:47:16"):
        cds_to_utc_ns([last], [86_000_000], [0], 0)
    with pytest.raises(ValueError, match="days = 111135 is after"):
        cds_to_utc_ns(last + 1, 0, 0, 0)


# --------------------------------------------------------------------------- vectorised == scalar

times = st.lists(st.integers(EPOCH58_NS, utc(2094, 1, 1)) | near_leaps, min_size=1, max_size=40)


@given(times, st.integers(0, 3))
def test_utc_ns_to_cuc_matches_scalar(ts, fine):
    coarse, fine_v = utc_ns_to_cuc(np.array(ts, dtype=np.int64), fine)
    assert coarse.dtype == np.uint64
    assert fine_v.dtype == np.uint64
    packed = [cuc(int(c), int(f), 4, fine) for c, f in zip(coarse, fine_v, strict=True)]
    assert packed == [encode_cuc(t, 4, fine) for t in ts]


@given(st.data(), st.integers(0, 3))
def test_cuc_to_utc_ns_matches_scalar(data, fine):
    n = data.draw(st.integers(1, 40))
    coarse = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
    fine_v = data.draw(st.lists(st.integers(0, 2 ** (8 * fine) - 1), min_size=n, max_size=n))
    out = cuc_to_utc_ns(np.array(coarse, np.uint64), np.array(fine_v, np.uint64), fine)
    assert out.dtype == np.int64
    expected = [
        decode_cuc(cuc(c, f, 4, fine), 4, fine) for c, f in zip(coarse, fine_v, strict=True)
    ]
    assert out.tolist() == expected


@given(times, st.sampled_from([0, 2, 4]))
def test_utc_ns_to_cds_matches_scalar(ts, subms_octets):
    days, ms, sub = utc_ns_to_cds(np.array(ts, dtype=np.int64), subms_octets)
    assert days.dtype == ms.dtype == sub.dtype == np.uint64
    packed = [
        cds(int(d), int(m), int(s), 3, subms_octets) for d, m, s in zip(days, ms, sub, strict=True)
    ]
    assert packed == [encode_cds(t, 3, subms_octets) for t in ts]


@given(st.data(), st.sampled_from([0, 2, 4]))
def test_cds_to_utc_ns_matches_scalar(data, subms_octets):
    n = data.draw(st.integers(1, 40))
    sub_max = {0: 0, 2: 999, 4: 999_999_999}[subms_octets]
    days = data.draw(st.lists(st.integers(0, 65535), min_size=n, max_size=n))
    ms = data.draw(st.lists(st.integers(0, 86_400_999), min_size=n, max_size=n))
    sub = data.draw(st.lists(st.integers(0, sub_max), min_size=n, max_size=n))
    out = cds_to_utc_ns(np.array(days), np.array(ms), np.array(sub), subms_octets)
    assert out.dtype == np.int64
    expected = [
        decode_cds(cds(d, m, s, 2, subms_octets), 2, subms_octets)
        for d, m, s in zip(days, ms, sub, strict=True)
    ]
    assert out.tolist() == expected


def test_vectorised_keeps_shape_and_handles_empty():
    grid = np.array([[0, 1], [2, 3]], dtype=np.uint32)
    assert cuc_to_utc_ns(grid, 0, 0).shape == (2, 2)
    empty_c, empty_f = utc_ns_to_cuc(np.array([], dtype=np.int64), 2)
    assert empty_c.shape == empty_f.shape == (0,)
    assert cds_to_utc_ns(np.array([], np.uint16), np.array([], np.uint32), 0, 0).shape == (0,)
    with pytest.raises(ValueError, match=r"utc_ns\[1, 0\] = .* outside the CUC range"):
        utc_ns_to_cuc(np.array([[0, 0], [EPOCH58_NS - 11 * NS, 0]]), 0)
