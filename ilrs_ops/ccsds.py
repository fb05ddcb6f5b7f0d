"""CCSDS Space Packet primary header and CUC/CDS time codes: encode and decode, scalar and numpy.

Times are UTC nanoseconds since the Unix epoch (int64, no leap seconds), as everywhere in ilrs-ops.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from ilrs_ops.errors import InputError

__all__ = [
    "MAX_APID",
    "PRIMARY_HEADER_OCTETS",
    "SEQ_COUNT_MODULO",
    "TAI_MINUS_UTC",
    "PrimaryHeader",
    "build_packet",
    "cds_to_utc_ns",
    "cuc_to_utc_ns",
    "decode_cds",
    "decode_cuc",
    "decode_primary_header",
    "encode_cds",
    "encode_cuc",
    "encode_primary_header",
    "next_seq_count",
    "seq_count_diff",
    "tai58_ns_to_utc_ns",
    "utc_ns_to_cds",
    "utc_ns_to_cuc",
    "utc_ns_to_tai58_ns",
]

# --------------------------------------------------------------------------- primary header

PRIMARY_HEADER_OCTETS = 6
SEQ_COUNT_MODULO = 16384
# 0x7FF is also the idle APID (CCSDS 133.0-B-2): idle packets carry fill, not telemetry.
MAX_APID = 0x7FF
_MAX_DATA_LENGTH = 0xFFFF
_MIN_PACKET_OCTETS = PRIMARY_HEADER_OCTETS + 1
_MAX_PACKET_OCTETS = PRIMARY_HEADER_OCTETS + _MAX_DATA_LENGTH + 1  # 65542
_HEADER = struct.Struct(">HHH")


@dataclass(frozen=True, slots=True)
class PrimaryHeader:
    """The six-octet Space Packet primary header, one field per attribute."""

    version: int
    packet_type: int
    secondary_header_flag: int
    apid: int
    sequence_flags: int
    sequence_count: int
    data_length: int

    @property
    def packet_length(self) -> int:
        """Total packet octets, header included (the length field counts data octets minus one)."""
        return self.data_length + _MIN_PACKET_OCTETS


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return `value` as an int, or raise InputError naming `name` and the range lo..hi."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"{name} must be an integer in {lo}..{hi}, got {value!r}") from None
    if not lo <= number <= hi:
        raise InputError(f"{name} = {number} is out of range; allowed {lo}..{hi}")
    return number


def encode_primary_header(h: PrimaryHeader) -> bytes:
    """Encode `h` as six big-endian octets, after checking every field fits its bits."""
    _check_int("version", h.version, 0, 0)
    _check_int("packet_type", h.packet_type, 0, 1)
    _check_int("secondary_header_flag", h.secondary_header_flag, 0, 1)
    _check_int("apid", h.apid, 0, MAX_APID)
    _check_int("sequence_flags", h.sequence_flags, 0, 3)
    _check_int("sequence_count", h.sequence_count, 0, SEQ_COUNT_MODULO - 1)
    _check_int("data_length", h.data_length, 0, _MAX_DATA_LENGTH)
    word0 = (h.version << 13) | (h.packet_type << 12) | (h.secondary_header_flag << 11) | h.apid
    word1 = (h.sequence_flags << 14) | h.sequence_count
    return _HEADER.pack(word0, word1, h.data_length)


def decode_primary_header(data: bytes | memoryview, offset: int = 0) -> PrimaryHeader:
    """Decode the header at `offset`; fields are returned as found (callers judge the version)."""
    view = memoryview(data).cast("B")
    if offset < 0:
        raise InputError(f"offset = {offset} is negative; allowed 0..{len(view)}")
    available = len(view) - offset
    if available < PRIMARY_HEADER_OCTETS:
        raise InputError(
            f"primary header needs {PRIMARY_HEADER_OCTETS} octets at offset {offset}, "
            f"only {max(available, 0)} available"
        )
    word0, word1, data_length = _HEADER.unpack_from(view, offset)
    return PrimaryHeader(
        version=word0 >> 13,
        packet_type=(word0 >> 12) & 1,
        secondary_header_flag=(word0 >> 11) & 1,
        apid=word0 & MAX_APID,
        sequence_flags=word1 >> 14,
        sequence_count=word1 & (SEQ_COUNT_MODULO - 1),
        data_length=data_length,
    )


def next_seq_count(n: int) -> int:
    """The sequence count after `n` (16383 wraps to 0)."""
    n = _check_int("sequence_count", n, 0, SEQ_COUNT_MODULO - 1)
    return (n + 1) % SEQ_COUNT_MODULO


def seq_count_diff(a: int, b: int) -> int:
    """Forward steps from count `a` to count `b`, modulo 16384: 1 = consecutive, >1 = a gap."""
    a = _check_int("a (sequence_count)", a, 0, SEQ_COUNT_MODULO - 1)
    b = _check_int("b (sequence_count)", b, 0, SEQ_COUNT_MODULO - 1)
    return (b - a) % SEQ_COUNT_MODULO


def build_packet(
    apid: int,
    seq_count: int,
    secondary_header: bytes,
    user_data: bytes,
    *,
    packet_type: int = 0,
) -> bytes:
    """Assemble an unsegmented packet: header (length field filled in) + secondary header + data."""
    total = PRIMARY_HEADER_OCTETS + len(secondary_header) + len(user_data)
    if not _MIN_PACKET_OCTETS <= total <= _MAX_PACKET_OCTETS:
        raise InputError(
            f"packet length = {total} octets is out of range; allowed "
            f"{_MIN_PACKET_OCTETS}..{_MAX_PACKET_OCTETS} (header + at least one data octet)"
        )
    header = PrimaryHeader(
        version=0,
        packet_type=packet_type,
        secondary_header_flag=1 if secondary_header else 0,
        apid=apid,
        sequence_flags=3,
        sequence_count=seq_count,
        data_length=total - _MIN_PACKET_OCTETS,
    )
    return encode_primary_header(header) + bytes(secondary_header) + bytes(user_data)


# --------------------------------------------------------------------------- time scales

# TAI - UTC in seconds, from the date (00:00:00 UTC) it took effect. Source: IERS Bulletin C and
# the IERS leap-second list (Leap_Second.dat; identical to tzdata's leap-seconds.list). No leap
# second has been announced after 2017-01-01. When IERS announces one, append it here; the lookup
# arrays below are derived from this tuple.
TAI_MINUS_UTC: tuple[tuple[date, int], ...] = (
    (date(1972, 1, 1), 10),
    (date(1972, 7, 1), 11),
    (date(1973, 1, 1), 12),
    (date(1974, 1, 1), 13),
    (date(1975, 1, 1), 14),
    (date(1976, 1, 1), 15),
    (date(1977, 1, 1), 16),
    (date(1978, 1, 1), 17),
    (date(1979, 1, 1), 18),
    (date(1980, 1, 1), 19),
    (date(1981, 7, 1), 20),
    (date(1982, 7, 1), 21),
    (date(1983, 7, 1), 22),
    (date(1985, 7, 1), 23),
    (date(1988, 1, 1), 24),
    (date(1990, 1, 1), 25),
    (date(1991, 1, 1), 26),
    (date(1992, 7, 1), 27),
    (date(1993, 7, 1), 28),
    (date(1994, 7, 1), 29),
    (date(1996, 1, 1), 30),
    (date(1997, 7, 1), 31),
    (date(1999, 1, 1), 32),
    (date(2006, 1, 1), 33),
    (date(2009, 1, 1), 34),
    (date(2012, 7, 1), 35),
    (date(2015, 7, 1), 36),
    (date(2017, 1, 1), 37),
)
# Before 1972 UTC used fractional rate offsets (the "rubber second"); we use a flat 10 s instead.
# Telemetry from a lunar station never carries such dates; this only keeps the maths total.
_PRE_1972_TAI_MINUS_UTC = 10

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
_S_PER_DAY = 86_400
_NS_PER_DAY = _S_PER_DAY * _NS_PER_S
_MS_PER_DAY = _S_PER_DAY * 1000
_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
_EPOCH_1958_DAYS = (date(1970, 1, 1) - date(1958, 1, 1)).days  # 4383: CCSDS epoch -> Unix epoch
_EPOCH_1958_S = _EPOCH_1958_DAYS * _S_PER_DAY
_EPOCH_1958_NS = _EPOCH_1958_S * _NS_PER_S


def _unix_ns(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _NS_PER_DAY


# Lookup arrays for np.searchsorted(side="right"): index i selects _OFFSET_*[i], the offset in
# force before threshold i (index 0 = before 1972); _NEXT_UTC_NS[i] is the UTC instant that ends it.
_LEAP_UTC_NS = np.array([_unix_ns(d) for d, _ in TAI_MINUS_UTC], dtype=np.int64)
_OFFSET_S = np.array([_PRE_1972_TAI_MINUS_UTC] + [s for _, s in TAI_MINUS_UTC], dtype=np.int64)
_OFFSET_NS = _OFFSET_S * _NS_PER_S
_LEAP_TAI58_NS = _LEAP_UTC_NS + _OFFSET_NS[1:] + _EPOCH_1958_NS  # TAI ns since 1958 at each step
_NEXT_UTC_NS = np.append(_LEAP_UTC_NS, np.int64(_INT64_MAX))

_CUC_MAX_COARSE = (1 << 32) - 1
_CDS_MAX_DAYS = (1 << 24) - 1
_CDS_MAX_MS = _MS_PER_DAY + 999  # 86400999: the last ms of a day with an inserted leap second
# Per submillisecond octets: (rounding unit in ns, max field value, ns per field unit scale)
_CDS_SUBMS_UNIT_NS = {0: _NS_PER_MS, 2: 1_000, 4: 1}
_CDS_SUBMS_MAX = {0: 0, 2: 999, 4: 999_999_999}


def _iso(utc_ns: int) -> str:
    return f"{np.datetime64(utc_ns, 'ns')}Z"


def _index_text(arr: np.ndarray, flat_index: int) -> str:
    if arr.ndim == 0:
        return ""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, arr.shape)) + "]"


def _raise_first(name: str, arr: np.ndarray, bad: np.ndarray, problem: str) -> None:
    """Raise InputError for the first element of `arr` flagged in `bad`, if any."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{name}{_index_text(arr, i)} = {int(arr.flat[i])} {problem}")


def _int_array(name: str, values: npt.ArrayLike, lo: int, hi: int) -> npt.NDArray[np.int64]:
    """`values` as int64 after checking dtype and range, so later arithmetic cannot overflow."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise InputError(f"{name} must be an integer array, got dtype {arr.dtype}")
    _raise_first(name, arr, (arr < lo) | (arr > hi), f"is out of range; allowed {lo}..{hi}")
    return arr.astype(np.int64)


def _div_round(a: npt.NDArray[np.int64], b: int) -> npt.NDArray[np.int64]:
    """a / b rounded to nearest, halves up, for b > 0; divmod keeps it free of overflow."""
    q, r = np.divmod(a, b)
    return q + (2 * r >= b)


def _check_octets(name: str, value: int, allowed: tuple[int, ...]) -> int:
    if value not in allowed:
        raise InputError(f"{name} = {value!r} octets is not supported; allowed {allowed}")
    return value


def tai58_ns_to_utc_ns(tai58_ns: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """TAI ns since 1958-01-01 -> UTC ns since 1970 (leap seconds applied)."""
    return _tai58_to_utc_ns(_int_array("tai58_ns", tai58_ns, _INT64_MIN, _INT64_MAX))


def utc_ns_to_tai58_ns(utc_ns: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """UTC ns since 1970 -> TAI ns since 1958-01-01 (leap seconds applied)."""
    utc = _int_array("utc_ns", utc_ns, _INT64_MIN, _INT64_MAX)
    return utc + _OFFSET_NS[np.searchsorted(_LEAP_UTC_NS, utc, side="right")] + _EPOCH_1958_NS


def _tai58_to_utc_ns(tai58_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """TAI ns since 1958 -> UTC Unix ns; an inserted leap second maps to the next 00:00:00 UTC."""
    i = np.searchsorted(_LEAP_TAI58_NS, tai58_ns, side="right")
    # Inside a leap second, TAI - old offset lands in [step, step + 1 s); clamping to the step
    # keeps decoded times monotonic (never earlier than an already decoded later instant).
    return np.minimum(tai58_ns - _EPOCH_1958_NS - _OFFSET_NS[i], _NEXT_UTC_NS[i])


# --------------------------------------------------------------------------- CUC


def cuc_to_utc_ns(
    coarse: npt.ArrayLike, fine: npt.ArrayLike, fine_octets: int
) -> npt.NDArray[np.int64]:
    """Decode CUC fields (TAI since 1958) to UTC ns, each rounded to the nearest ns."""
    _check_octets("fine_octets", fine_octets, (0, 1, 2, 3))
    scale = 1 << (8 * fine_octets)
    c = _int_array("coarse", coarse, 0, _CUC_MAX_COARSE)
    f = _int_array("fine", fine, 0, scale - 1)
    c, f = np.broadcast_arrays(c, f)
    tai58_ns = c * _NS_PER_S + _div_round(f * _NS_PER_S, scale)
    return _tai58_to_utc_ns(tai58_ns)


def utc_ns_to_cuc(
    utc_ns: npt.ArrayLike, fine_octets: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Encode UTC ns as CUC (coarse, fine) fields, rounded to the nearest fine unit (halves up).

    Coarse values are checked against 4 octets; fewer octets are the caller's (encode_cuc's) check.
    """
    _check_octets("fine_octets", fine_octets, (0, 1, 2, 3))
    scale = 1 << (8 * fine_octets)
    utc = _int_array("utc_ns", utc_ns, _INT64_MIN, _INT64_MAX)
    seconds, ns = np.divmod(utc, _NS_PER_S)
    offset_s = _OFFSET_S[np.searchsorted(_LEAP_UTC_NS, utc, side="right")]
    fine = _div_round(ns * scale, _NS_PER_S)  # 0..scale; scale means "carry one second"
    coarse = seconds + offset_s + _EPOCH_1958_S + fine // scale
    fine %= scale
    bad = (coarse < 0) | (coarse > _CUC_MAX_COARSE)
    if bad.any():
        first = _tai58_to_utc_ns(np.int64(0))
        last = _tai58_to_utc_ns(np.int64(_CUC_MAX_COARSE * _NS_PER_S))
        _raise_first(
            "utc_ns",
            utc,
            bad,
            f"is outside the CUC range (TAI seconds since 1958-01-01 in 0..{_CUC_MAX_COARSE}); "
            f"allowed UTC {_iso(int(first))} .. {_iso(int(last))}",
        )
    return coarse.astype(np.uint64), fine.astype(np.uint64)


def encode_cuc(utc_ns: int, coarse: int = 4, fine: int = 2) -> bytes:
    """Encode one UTC ns time as a CUC time code (no P-field), rounded to the nearest fine unit."""
    _check_octets("coarse", coarse, (1, 2, 3, 4))
    _check_octets("fine", fine, (0, 1, 2, 3))
    utc = _check_int("utc_ns", utc_ns, _INT64_MIN, _INT64_MAX)
    c, f = utc_ns_to_cuc(np.int64(utc), fine)
    coarse_value = int(c)
    if coarse_value >= 1 << (8 * coarse):
        raise InputError(
            f"utc_ns = {utc} ({_iso(utc)}) is {coarse_value} TAI seconds after 1958-01-01, "
            f"which does not fit coarse = {coarse} octet(s); allowed 0..{(1 << (8 * coarse)) - 1}"
        )
    return coarse_value.to_bytes(coarse, "big") + int(f).to_bytes(fine, "big")


def decode_cuc(data: bytes | memoryview, coarse: int = 4, fine: int = 2) -> int:
    """Decode a CUC time code of exactly `coarse` + `fine` octets to UTC ns."""
    _check_octets("coarse", coarse, (1, 2, 3, 4))
    _check_octets("fine", fine, (0, 1, 2, 3))
    raw = bytes(data)
    if len(raw) != coarse + fine:
        raise InputError(
            f"CUC data is {len(raw)} octets; expected coarse + fine = {coarse} + {fine} = "
            f"{coarse + fine}"
        )
    c = int.from_bytes(raw[:coarse], "big")
    f = int.from_bytes(raw[coarse:], "big")
    return int(cuc_to_utc_ns(np.int64(c), np.int64(f), fine))


# --------------------------------------------------------------------------- CDS


def cds_to_utc_ns(
    days: npt.ArrayLike, ms_of_day: npt.ArrayLike, subms: npt.ArrayLike, subms_octets: int
) -> npt.NDArray[np.int64]:
    """Decode CDS fields (UTC days since 1958, ms of day, sub-ms) to UTC ns, rounded to ns.

    ms_of_day up to 86400999 (a leap second, 23:59:60) is accepted on any day and maps to the next
    00:00:00, as for CUC; the day is not checked against the leap table, so a stale table never
    rejects data.
    """
    _check_octets("subms_octets", subms_octets, (0, 2, 4))
    d = _int_array("days", days, 0, _CDS_MAX_DAYS)
    ms = _int_array("ms_of_day", ms_of_day, 0, _CDS_MAX_MS)
    sub = _int_array("subms", subms, 0, _CDS_SUBMS_MAX[subms_octets])
    d, ms, sub = np.broadcast_arrays(d, ms, sub)
    sub_ns = _div_round(sub, 1000) if subms_octets == 4 else sub * _CDS_SUBMS_UNIT_NS[subms_octets]
    in_day_ns = np.minimum(ms * _NS_PER_MS + sub_ns, _NS_PER_DAY)
    last_day = _INT64_MAX // _NS_PER_DAY + _EPOCH_1958_DAYS  # (last_day - epoch) * day fits int64
    _raise_first("days", d, d > last_day, f"is after {_iso(_INT64_MAX)}, the end of int64 UTC ns")
    base_ns = (d - _EPOCH_1958_DAYS) * _NS_PER_DAY
    _raise_first(
        "days",
        d,
        base_ns > _INT64_MAX - in_day_ns,
        f"is after {_iso(_INT64_MAX)} at this ms_of_day",
    )
    return base_ns + in_day_ns


def utc_ns_to_cds(
    utc_ns: npt.ArrayLike, subms_octets: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Encode UTC ns as CDS (days, ms_of_day, subms) fields, rounded to nearest (halves up).

    Resolution: 1 ms (0 octets), 1 µs (2), exact (4, picoseconds). Days are checked against 3
    octets; fewer octets are the caller's (encode_cds's) check.
    """
    _check_octets("subms_octets", subms_octets, (0, 2, 4))
    unit_ns = _CDS_SUBMS_UNIT_NS[subms_octets]
    utc = _int_array("utc_ns", utc_ns, _INT64_MIN, _INT64_MAX)
    day, in_day_ns = np.divmod(utc, _NS_PER_DAY)
    units = _div_round(in_day_ns, unit_ns)
    units_per_day = _NS_PER_DAY // unit_ns
    day = day + _EPOCH_1958_DAYS + units // units_per_day
    units %= units_per_day
    ms, sub = np.divmod(units, _NS_PER_MS // unit_ns)
    if subms_octets == 4:
        sub = sub * 1000  # ns -> ps
    _raise_first(
        "utc_ns",
        utc,
        (day < 0) | (day > _CDS_MAX_DAYS),
        "is outside the CDS range; allowed UTC from 1958-01-01T00:00:00Z (day 0)",
    )
    return day.astype(np.uint64), ms.astype(np.uint64), sub.astype(np.uint64)


def encode_cds(utc_ns: int, day_octets: int = 2, subms_octets: int = 0) -> bytes:
    """Encode one UTC ns time as a CDS time code (no P-field): days, ms of day, sub-ms."""
    _check_octets("day_octets", day_octets, (2, 3))
    _check_octets("subms_octets", subms_octets, (0, 2, 4))
    utc = _check_int("utc_ns", utc_ns, _INT64_MIN, _INT64_MAX)
    days, ms, sub = utc_ns_to_cds(np.int64(utc), subms_octets)
    day_value = int(days)
    if day_value >= 1 << (8 * day_octets):
        raise InputError(
            f"utc_ns = {utc} ({_iso(utc)}) is day {day_value} since 1958-01-01, which does not "
            f"fit day_octets = {day_octets}; allowed days 0..{(1 << (8 * day_octets)) - 1}"
        )
    return (
        day_value.to_bytes(day_octets, "big")
        + int(ms).to_bytes(4, "big")
        + int(sub).to_bytes(subms_octets, "big")
    )


def decode_cds(data: bytes | memoryview, day_octets: int = 2, subms_octets: int = 0) -> int:
    """Decode a CDS time code of exactly day + 4 + sub-ms octets to UTC ns."""
    _check_octets("day_octets", day_octets, (2, 3))
    _check_octets("subms_octets", subms_octets, (0, 2, 4))
    raw = bytes(data)
    expected = day_octets + 4 + subms_octets
    if len(raw) != expected:
        raise InputError(
            f"CDS data is {len(raw)} octets; expected day + ms + subms = "
            f"{day_octets} + 4 + {subms_octets} = {expected}"
        )
    days = int.from_bytes(raw[:day_octets], "big")
    ms = int.from_bytes(raw[day_octets : day_octets + 4], "big")
    sub = int.from_bytes(raw[day_octets + 4 :], "big")
    return int(cds_to_utc_ns(np.int64(days), np.int64(ms), np.int64(sub), subms_octets))
