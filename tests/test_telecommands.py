"""The TC packet codec: packets equal to ones built by hand (struct, and the standard library's
CRC-CCITT as the independent checksum), every command of every station profile read back as
encoded, each kind of bad packet rejected with its reason, and argument checks that name the
argument."""

from __future__ import annotations

import binascii
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilrs_ops import wire
from ilrs_ops.commanding import Telecommands, value_range
from ilrs_ops.errors import CommandError
from ilrs_ops.profiles import Catalog, Command, Profile, load_catalog

ROOT = Path(__file__).parents[1]
STATION = load_catalog(ROOT / "hardware_profiles")
COMMANDS = [(i.profile, c) for i in STATION for c in i.profile.commands]


def by_hand(apid: int, seq: int, opcode: int, body: bytes) -> bytes:
    """A TC packet from its parts: header (type 1, secondary header, unsegmented), opcode, body,
    CRC-16-CCITT-FALSE (binascii.crc_hqx with 0xFFFF) over what precedes it."""
    data_len = 1 + len(body) + 2
    head = struct.pack(">HHH", (1 << 12) | (1 << 11) | apid, (3 << 14) | seq, data_len - 1)
    packet = head + bytes([opcode]) + body
    return packet + struct.pack(">H", binascii.crc_hqx(packet, 0xFFFF))


def rover(catalog: Catalog = STATION) -> Profile:
    return catalog.instruments["sup-rover-1"].profile


def test_a_packet_is_the_one_built_by_hand() -> None:
    tc = Telecommands(rover())
    drive = tc.codec("drive")
    args = drive.arguments({"distance": 2.5})  # speed takes its default, 3
    assert args == {"distance": 2.5, "speed": 3} and drive.raw(args) == {
        "distance": 250,
        "speed": 3,
    }
    packet = drive.encode(args, seq=5)
    assert packet == by_hand(0x2A2, 5, 0x10, struct.pack(">HB", 250, 3))
    mode = tc.codec("set_mode")
    assert mode.encode(mode.arguments({"mode": "SCIENCE"}), 16385) == by_hand(
        0x2A2, 1, 0x01, bytes([2])
    )  # the sequence count wraps at 14 bits; SCIENCE is state 2
    assert tc.codec("safe").encode({}, 0) == by_hand(0x2A2, 0, 0x7F, b"")


def _mid(c: Command) -> dict[str, object]:
    out: dict[str, object] = {}
    for a in c.arguments:
        if a.enum:
            out[a.name] = sorted(set(a.enum.values()))[-1]
        else:
            lo, hi = value_range(a)
            out[a.name] = (
                (lo + hi) / 2 if a.type.startswith("f") or a.calibration else (int((lo + hi) // 2))
            )
    return out


@pytest.mark.parametrize(
    ("p", "c"), COMMANDS, ids=[f"{p.instrument}-{c.name}" for p, c in COMMANDS]
)
def test_every_station_command_reads_back_as_encoded(p: Profile, c: Command) -> None:
    tc = Telecommands(p)
    codec = tc.codec(c.name)
    args = codec.arguments(_mid(c))
    read = tc.read(codec.encode(args, 77))
    assert (read.reason, read.seq, read.command) == (wire.TC_NONE, 77, c)
    assert read.args is not None
    for name, value in args.items():
        got = read.args[name]
        assert got == value or got == pytest.approx(value, rel=1e-6), name


@settings(max_examples=200, deadline=None)
@given(distance=st.floats(0.1, 50.0), speed=st.integers(1, 5), seq=st.integers(0, 16383))
def test_drive_round_trips_within_its_count_resolution(
    distance: float, speed: int, seq: int
) -> None:
    tc = Telecommands(rover())
    drive = tc.codec("drive")
    args = drive.arguments({"distance": distance, "speed": speed})
    assert abs(args["distance"] - distance) <= 0.005 + 1e-9  # counts of 0.01 m, rounded
    read = tc.read(drive.encode(args, seq))
    assert read.reason == wire.TC_NONE and read.seq == seq
    assert read.args == {"distance": pytest.approx(args["distance"]), "speed": speed}


def _recrc(packet: bytes) -> bytes:
    return packet[:-2] + struct.pack(">H", binascii.crc_hqx(packet[:-2], 0xFFFF))


def test_bad_packets_are_rejected_with_their_reason() -> None:
    tc = Telecommands(rover())
    good = tc.codec("drive").encode({"distance": 1.0, "speed": 2}, 9)
    flipped = good[:8] + bytes([good[8] ^ 0x01]) + good[9:]
    cases = {
        wire.TC_BAD_CHECKSUM: flipped,
        wire.TC_BAD_LENGTH: _recrc(good[:-3] + good[-2:]),  # one octet short
        wire.TC_BAD_APID: by_hand(0x2A1, 9, 0x10, good[7:-2]),  # the TM APID
        wire.TC_UNKNOWN_OPCODE: by_hand(0x2A2, 9, 0x55, good[7:-2]),
        wire.TC_BAD_ARGUMENT: by_hand(0x2A2, 9, 0x10, struct.pack(">HB", 9000, 2)),  # 90 m
    }
    for reason, packet in cases.items():
        read = tc.read(packet)
        assert read.reason == reason, (reason, read)
        assert read.detail
    mode = by_hand(0x2A2, 3, 0x01, bytes([9]))  # no state 9
    assert tc.read(mode).reason == wire.TC_BAD_ARGUMENT
    assert "is no state" in tc.read(mode).detail
    tm = by_hand(0x2A2, 3, 0x01, bytes([1]))
    tm = bytes([tm[0] & ~0x10]) + tm[1:]  # a telemetry packet (type 0)
    assert tc.read(_recrc(tm)).reason == wire.TC_BAD_APID


@pytest.mark.parametrize(
    ("name", "given", "argument", "text"),
    [
        ("drive", {"distance": 50.5}, "distance", "50.5 is outside [0.1, 50] m"),
        ("drive", {"distance": "far"}, "distance", "'far' is not a number"),
        ("drive", {"distance": True}, "distance", "is not a number"),
        ("drive", {"distance": 1.0, "speed": 2.5}, "speed", "2.5 is not a whole number"),
        ("drive", {}, "distance", "argument 'distance' is required"),
        ("drive", {"distance": 1.0, "angle": 3}, "angle", "drive has no argument 'angle'"),
        ("set_mode", {"mode": "warp"}, "mode", "'warp' is not one of"),
        ("set_mode", {"mode": 1}, "mode", "1 is not one of"),
    ],
)
def test_bad_arguments_name_the_argument(
    name: str, given: dict[str, object], argument: str, text: str
) -> None:
    with pytest.raises(CommandError) as err:
        Telecommands(rover()).codec(name).arguments(given)
    assert err.value.argument == argument and text in str(err.value)


def test_an_unknown_command_lists_the_known_ones() -> None:
    with pytest.raises(
        CommandError, match="sup-rover-1 has no command 'warp'; its commands: set_mode, drive, safe"
    ):
        Telecommands(rover()).codec("warp")
