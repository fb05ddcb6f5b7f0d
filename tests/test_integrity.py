"""Packet integrity checks: the kernel against the standard library's CRCs and plain sums, the
profile's ``integrity`` checked with located errors, and ``bad_crc`` in processing: a corrupted
packet is quarantined with what was computed and what it said, its neighbours are stored."""

from __future__ import annotations

import binascii
import zlib
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops.processing import Processor
from ilrs_ops.profiles import ProfileError, load_catalog
from ilrs_ops.sim import Environment, Module
from pipelines.integrity import KINDS, checks, fingerprints
from tests.conftest import DATA

REFERENCE = {
    "crc16-ccitt-false": lambda b: binascii.crc_hqx(b, 0xFFFF),
    "crc16-xmodem": lambda b: binascii.crc_hqx(b, 0),
    "crc32": zlib.crc32,
    "sum8": lambda b: sum(b) % 256,
    "sum16": lambda b: sum(b) % 65536,
    "xor8": lambda b: reduce(lambda a, x: a ^ x, b, 0),
}
ROVER = (DATA / "good_profiles" / "acme" / "rover.yaml").read_text()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=8, max_size=80), min_size=1, max_size=6),
    st.sampled_from(KINDS),
    st.data(),
)
def test_checks_equal_the_standard_library(packets: list[bytes], kind: str, data) -> None:
    size = min(len(p) for p in packets)
    begin = data.draw(st.integers(0, size))
    stop = data.draw(st.integers(begin, size))
    buf = np.frombuffer(b"".join(packets), np.uint8)
    starts = np.cumsum([0, *(len(p) for p in packets[:-1])])
    got = checks(buf, starts, begin, stop, kind).tolist()
    assert got == [REFERENCE[kind](p[begin:stop]) for p in packets]


def test_known_check_values() -> None:
    # The catalogue check value of each CRC: the CRC of the octets of "123456789".
    buf = np.frombuffer(b"123456789", np.uint8)
    got = {k: int(checks(buf, np.array([0]), 0, 9, k)[0]) for k in KINDS[:3]}
    assert got == {"crc16-ccitt-false": 0x29B1, "crc16-xmodem": 0x31C3, "crc32": 0xCBF43926}


def crc_rover(tmp_path: Path, integrity: str, crc_type: str = "u16") -> Path:
    """The test rover with a CRC field at its end (packet 2 octets longer)."""
    text = ROVER.replace("packet_length: 33", "packet_length: 35")
    text = text.replace(
        "\nderived:", f"\n  - {{name: crc, type: {crc_type}}}\n{integrity}\nderived:"
    )
    folder = tmp_path / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rover.yaml").write_text(text)
    return folder / "rover.yaml"


def test_a_bad_crc_is_quarantined_and_its_neighbours_stored(tmp_path: Path) -> None:
    crc_rover(tmp_path, "integrity: {check: crc16-ccitt-false, field: crc}")
    inst = load_catalog([tmp_path]).instruments["acme-rover-1"]
    start = 1_790_000_000 * 10**9
    packets = Module(inst, Environment(epoch_ns=0), seed=2, start_ns=start).next_batch(6).packets
    assert all(binascii.crc_hqx(p[:-2], 0xFFFF) == int.from_bytes(p[-2:], "big") for p in packets)
    hit = bytearray(packets[2])
    hit[20] ^= 0x04  # one flipped bit in the data: the value is wrong, the layout fine
    frames = [*packets[:2], bytes(hit), *packets[3:]]
    out = Processor(inst).process(frames, np.full(6, start + 10**12), "t/tm/acme/acme-rover-1")
    assert out.raw.column("data").to_pylist() == packets[:2] + packets[3:]
    assert out.quarantine.column("reason").to_pylist() == ["bad_crc"]
    detail = out.quarantine.column("detail")[0].as_py()
    want = binascii.crc_hqx(bytes(hit[:-2]), 0xFFFF)
    assert f"{want:#06x}" in detail and f"{int.from_bytes(hit[-2:], 'big'):#06x}" in detail


@pytest.mark.parametrize(
    ("integrity", "crc_type", "what"),
    [
        ("integrity: {check: crc16-ccitt-false, field: nope}", "u16", "'nope' is not a field"),
        ("integrity: {check: crc32, field: crc}", "u16", "needs an octet-aligned big-endian u32"),
        ("integrity: {check: sum8, field: crc, start: 40}", "u8", "is not before the check"),
        ("integrity: {check: md5, field: crc}", "u16", "'md5' is not allowed here; use"),
    ],
)
def test_integrity_mistakes_are_located(tmp_path: Path, integrity, crc_type, what) -> None:
    path = crc_rover(tmp_path, integrity, crc_type)
    if crc_type == "u8":  # keep packet_length right: one octet less
        path.write_text(path.read_text().replace("packet_length: 35", "packet_length: 34"))
    with pytest.raises(ProfileError) as err:
        load_catalog([tmp_path])
    assert what in str(err.value)
    assert "rover.yaml:" in str(err.value)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def test_fingerprints_are_fnv1a_64() -> None:
    """The published FNV-1a test vectors ("", "a", "foobar"), packed in one buffer."""
    buf = np.frombuffer(b"afoobar", np.uint8)
    got = [int(fingerprints(buf, np.array([s]), n)[0]) for s, n in ((0, 0), (0, 1), (1, 6))]
    assert got == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=9, max_size=9), min_size=1, max_size=20))
def test_fingerprints_match_the_reference(packets: list[bytes]) -> None:
    buf = np.frombuffer(b"".join(packets), np.uint8)
    got = fingerprints(buf, np.arange(len(packets)) * 9, 9).tolist()
    assert got == [fnv1a64(p) for p in packets]
    with pytest.raises(ValueError, match="past the end"):
        fingerprints(buf, np.array([buf.shape[0] - 8]), 9)
