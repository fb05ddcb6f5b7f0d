"""Where a packet's time comes from, beyond a CUC/CDS code after the header: a counter in
fields (Unix seconds, GPS weeks + seconds in TAI scale, any epoch), calendar fields (year, day
of year, h, m, s, us), or none (the receive time). Each is checked against a time computed
independently with datetime, and simulator packets come back with the times they were made at."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ilrs_ops.processing import Processed, Processor
from ilrs_ops.profiles import Instrument, ProfileError, load_catalog
from ilrs_ops.sim import Environment, Module
from tests.conftest import DATA

ROVER = (DATA / "good_profiles" / "acme" / "rover.yaml").read_text()
CUC = "time: {code: cuc, coarse: 4, fine: 2}"
UNIX = 1_790_000_000 * 10**9
TOPIC = "t/tm/acme/acme-rover-1"


def profile(tmp_path: Path, time: str, fields: list[str], octets: int) -> Instrument:
    """The test rover with ``time`` and ``fields`` first in its data field (``octets`` long)
    instead of its CUC code (6 octets)."""
    text = ROVER.replace(CUC, time).replace("packet_length: 33", f"packet_length: {27 + octets}")
    text = text.replace("fields:\n", "fields:\n" + "".join(f"  - {f}\n" for f in fields), 1)
    folder = tmp_path / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rover.yaml").write_text(text)
    return load_catalog([tmp_path]).instruments["acme-rover-1"]


def utc_ns(t: dt.datetime) -> int:
    d = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (d.days * 86_400 + d.seconds) * 10**9 + d.microseconds * 1000


def with_time(inst: Instrument, head: bytes) -> bytes:
    """A simulator packet whose first data octets are ``head`` (the time fields)."""
    pkt = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=UNIX).next_batch(1).packets[0]
    return pkt[:6] + head + pkt[6 + len(head) :]


def made_and_decoded(inst: Instrument, start_ns: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The times ``n`` simulator packets are made at from ``start_ns``, and the times they
    decode to."""
    m = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=start_ns)
    made = m.times(n)
    m.index = 0
    got = times(inst, m.next_batch(n).packets).raw.column("time").cast(pa.int64()).to_numpy()
    return made, got


def times(inst: Instrument, packets: list[bytes], recv: int = UNIX + 10**15) -> Processed:
    """The packets through a fresh processor, received (long) after they were made."""
    return Processor(inst).process(packets, np.full(len(packets), recv), TOPIC)


def test_a_unix_counter_with_a_fraction(tmp_path: Path) -> None:
    inst = profile(
        tmp_path,
        "time: {code: counter, seconds: unix_s, fraction: unix_sub, fraction_bits: 16}",
        ["{name: unix_s, type: u32, endian: little}", "{name: unix_sub, type: u16}"],
        6,
    )
    pkt = with_time(inst, struct.pack("<I", 1_790_000_123) + struct.pack(">H", 0xC000))
    out = times(inst, [pkt])
    assert out.raw.column("time").cast(pa.int64()).to_pylist() == [1_790_000_123_750_000_000]
    # Simulator packets come back at the times they were made (to the fraction's resolution).
    made, got = made_and_decoded(inst, UNIX + 123_456_789, 20)
    assert np.all(np.abs(got - made) <= 10**9 // 2**17 + 1)


def test_seconds_and_microseconds(tmp_path: Path) -> None:
    """Two 32-bit words, Unix seconds and microseconds (a decimal fraction), as many flight
    software clocks send them; a microsecond count of a whole second or more is no time."""
    inst = profile(
        tmp_path,
        "time: {code: counter, seconds: secs, fraction: usecs, fraction_unit_s: 1.0e-6}",
        ["{name: secs, type: u32}", "{name: usecs, type: u32}"],
        8,
    )
    good = with_time(inst, struct.pack(">II", 1_790_000_123, 999_999))
    bad = with_time(inst, struct.pack(">II", 1_790_000_124, 1_000_000))
    out = times(inst, [good, bad])
    want = utc_ns(dt.datetime(2026, 9, 21, 14, 15, 23, 999_999, tzinfo=dt.UTC))
    assert want == 1_790_000_123 * 10**9 + 999_999_000
    assert out.raw.column("time").cast(pa.int64()).to_pylist() == [want]
    assert out.quarantine.column("reason").to_pylist() == ["bad_time"]
    assert "fraction 1000000 (field usecs)" in out.quarantine.column("detail")[0].as_py()
    made, got = made_and_decoded(inst, UNIX + 123_456_789, 20)
    assert np.array_equal(got, made // 1000 * 1000)


def test_gps_weeks_and_seconds_in_tai_scale(tmp_path: Path) -> None:
    inst = profile(
        tmp_path,
        'time: {code: counter, week: gps_week, seconds: gps_s, scale: tai, epoch: "1980-01-06"}',
        ["{name: gps_week, type: u16}", "{name: gps_s, type: u32}"],
        6,
    )
    pkt = with_time(inst, struct.pack(">HI", 2345, 345_600))
    gps = dt.datetime(1980, 1, 6, tzinfo=dt.UTC) + dt.timedelta(weeks=2345, seconds=345_600)
    want = utc_ns(gps) - 18 * 10**9  # GPS runs 18 s ahead of UTC since 2017
    assert times(inst, [pkt]).raw.column("time").cast(pa.int64()).to_pylist() == [want]


CALENDAR = [
    "{name: t_year, type: u12}",
    "{name: t_doy, type: u9}",
    "{name: t_hour, type: u5}",
    "{name: t_min, type: u6}",
    "{name: t_sec, type: u6}",
    "{name: t_usec, type: u20}",
    "{name: t_pad, type: u6, ignore: true}",
]
CAL_TIME = (
    "time: {code: calendar, year: t_year, doy: t_doy, hour: t_hour, minute: t_min, "
    "second: t_sec, usec: t_usec}"
)


def calendar_bits(year: int, doy: int, h: int, m: int, s: int, us: int) -> bytes:
    word = ((((((year << 9 | doy) << 5 | h) << 6 | m) << 6 | s) << 20) | us) << 6
    return word.to_bytes(8, "big")


def test_calendar_fields_and_a_day_that_is_none(tmp_path: Path) -> None:
    inst = profile(tmp_path, CAL_TIME, CALENDAR, 8)
    good = with_time(inst, calendar_bits(2022, 84, 21, 43, 34, 371_181))
    bad = with_time(inst, calendar_bits(2022, 0, 21, 43, 34, 0))  # day of year 0
    out = times(inst, [good, bad])
    want = utc_ns(dt.datetime(2022, 3, 25, 21, 43, 34, 371_181, tzinfo=dt.UTC))  # doy 84
    assert out.raw.column("time").cast(pa.int64()).to_pylist() == [want]
    assert out.quarantine.column("reason").to_pylist() == ["bad_time"]
    assert "doy 0 is not a doy" in out.quarantine.column("detail")[0].as_py()
    made, got = made_and_decoded(inst, UNIX + 654_321_000, 30)
    assert np.array_equal(got, made // 1000 * 1000)  # microseconds


def test_no_time_is_the_receive_time(tmp_path: Path) -> None:
    inst = profile(tmp_path, "time: {code: none}", [], 0)
    pkts = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=UNIX).next_batch(3).packets
    recv = np.array([UNIX + 5, UNIX + 7, UNIX + 9])
    out = Processor(inst).process(pkts, recv, TOPIC)
    assert out.raw.column("time").cast(pa.int64()).to_pylist() == recv.tolist()


@pytest.mark.parametrize(
    ("time", "what"),
    [
        ("time: {code: counter}", "the counter time code needs 'seconds'"),
        ("time: {code: counter, seconds: unix_s, coarse: 4}", "'coarse' does not apply"),
        ("time: {code: counter, seconds: nope}", "'nope' is not a field"),
        ("time: {code: counter, seconds: f}", "not an integer"),
        ("time: {code: counter, seconds: unix_s, fraction: f}", "fraction goes with one of"),
        (
            "time: {code: counter, seconds: unix_s, fraction: f, fraction_bits: 8, "
            "fraction_unit_s: 0.001}",
            "fraction goes with one of",
        ),
        ('time: {code: counter, seconds: unix_s, epoch: "yesterday"}', "not an ISO 8601"),
    ],
)
def test_time_mistakes_are_located(tmp_path: Path, time: str, what: str) -> None:
    with pytest.raises(ProfileError) as err:
        profile(tmp_path, time, ["{name: unix_s, type: u16}", "{name: f, type: f32}"], 6)
    assert what in str(err.value) and "rover.yaml:" in str(err.value)
