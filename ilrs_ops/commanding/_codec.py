"""Telecommands as packets: a command's arguments checked and converted to raw counts, encoded
as a CCSDS TC space packet with the telemetry codec, and read back (what a module does).

A TC packet: primary header (type 1, secondary header flag 1, the instrument's TC APID,
unsegmented, the instrument's TC sequence count), the opcode (one octet), the arguments
bit-packed big-endian in the profile's order, spare bits to the next octet, and a
CRC-16-CCITT (false) over every octet before it. Each command is a packet layout of its own,
compiled from the profile like a telemetry packet, so both directions share one codec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ilrs_ops import wire
from ilrs_ops.errors import CommandError
from ilrs_ops.profiles import (
    Argument,
    Command,
    FieldSpec,
    Integrity,
    Profile,
    RawConverter,
    TimeCode,
    calibrate,
    compile_layout,
)
from pipelines.decode import decode
from pipelines.encode import encode
from pipelines.integrity import checks

#: Octets of a TC packet before its arguments: primary header and opcode.
HEAD = 7
CRC = "crc16-ccitt-false"
#: A value an argument takes: a number in its units, or an enum label.
Value = float | str


@dataclass(frozen=True)
class Read:
    """A TC packet as a module reads it: the command and its engineering arguments, or why it
    is rejected (a ``wire.TC_*`` reason and what exactly was wrong)."""

    seq: int
    command: Command | None = None
    args: dict[str, Value] | None = None
    reason: str = wire.TC_NONE
    detail: str = ""


class Codec:
    """One command of one instrument: checks arguments, encodes and reads its packets."""

    def __init__(self, profile: Profile, command: Command) -> None:
        self.profile = profile
        self.command = command
        self.tc = tc_profile(profile, command)
        self.layout = compile_layout(self.tc)
        self.length = self.tc.packet_length
        self._raw = {a.name: RawConverter(a.as_field()) for a in command.arguments}

    # ------------------------------------------------------------------ arguments

    def arguments(self, given: Mapping[str, Any]) -> dict[str, Value]:
        """``given`` checked, with defaults filled in: numbers for numeric arguments (as the
        packet will carry them, after raw rounding), labels for enums. CommandError names the
        first argument at fault."""
        c = self.command
        known = {a.name: a for a in c.arguments}
        extra = sorted(set(given) - known.keys())
        if extra:
            raise CommandError(
                f"{c.name} has no argument '{extra[0]}'; it takes "
                f"{', '.join(known) or 'no arguments'}",
                argument=extra[0],
            )
        out: dict[str, Value] = {}
        for a in c.arguments:
            if a.name in given and given[a.name] is not None:
                out[a.name] = self._check(a, given[a.name])
            elif a.default is not None:
                out[a.name] = self._check(a, a.default)
            else:
                raise CommandError(
                    f"{c.name}: argument '{a.name}' is required ({describe(a)})",
                    argument=a.name,
                )
        return out

    def _check(self, a: Argument, value: Any) -> Value:
        where = f"{self.command.name}: argument '{a.name}'"
        if a.enum is not None:
            labels = sorted(set(a.enum.values()))
            if isinstance(value, str) and value in labels:
                return value
            raise CommandError(f"{where}: {value!r} is not one of {labels}", argument=a.name)
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise CommandError(
                f"{where}: {value!r} is not a number ({describe(a)})", argument=a.name
            )
        lo, hi = value_range(a)
        if not lo <= number <= hi:
            raise CommandError(
                f"{where}: {number:g} is outside [{lo:g}, {hi:g}]"
                + (f" {a.units}" if a.units else ""),
                argument=a.name,
            )
        if a.type[0] != "f" and a.calibration is None and not number.is_integer():
            raise CommandError(f"{where}: {number:g} is not a whole number", argument=a.name)
        raw = self._raw[a.name](np.array([number]))
        sent = float(calibrate(a.calibration, raw)[0]) if a.type[0] != "f" else float(raw[0])
        return int(sent) if a.type[0] != "f" and a.calibration is None else sent

    def raw(self, args: Mapping[str, Value]) -> dict[str, int | float]:
        """Raw counts of checked arguments (``arguments``' output)."""
        out: dict[str, int | float] = {}
        for a in self.command.arguments:
            v = args[a.name]
            if a.enum is not None:
                code = a.as_field().enumeration.code(str(v))  # type: ignore[union-attr]
                out[a.name] = int(code)  # type: ignore[arg-type]
            else:
                r = self._raw[a.name](np.array([float(v)]))[0]
                out[a.name] = float(r) if a.type[0] == "f" else int(r)
        return out

    # ------------------------------------------------------------------ packets

    def encode(self, args: Mapping[str, Value], seq: int) -> bytes:
        """The TC packet of checked arguments, with sequence count ``seq`` (mod 16384)."""
        cols: dict[str, np.ndarray] = {
            "_version": np.zeros(1, np.int64),
            "_type": np.ones(1, np.int64),
            "_sec_hdr": np.ones(1, np.int64),
            "_apid": np.full(1, self.tc.apid, np.int64),
            "_seq_flags": np.full(1, 3, np.int64),
            "_seq_count": np.full(1, seq % 16384, np.int64),
            "_length": np.full(1, self.length - 7, np.int64),
            "opcode": np.full(1, self.command.opcode, np.int64),
            "checksum": np.zeros(1, np.int64),
        }
        if "spare" in self.layout.names:
            cols["spare"] = np.zeros(1, np.int64)
        for name, raw in self.raw(args).items():
            cols[name] = np.array([raw])
        buf = encode(self.layout, cols, 1)
        crc = int(checks(buf, np.zeros(1, np.int64), 0, np.full(1, self.length - 2), CRC)[0])
        buf[-2:] = (crc >> 8, crc & 0xFF)
        return bytes(buf)

    def read(self, packet: bytes, seq: int) -> Read:
        """A packet of this command's opcode, as the module checks it (length, CRC, ranges)."""
        c = self.command
        if len(packet) != self.length:
            return Read(
                seq,
                reason=wire.TC_BAD_LENGTH,
                detail=f"{c.name} is {self.length} octets, the packet {len(packet)}",
            )
        buf = np.frombuffer(packet, np.uint8)
        crc = int(checks(buf, np.zeros(1, np.int64), 0, np.full(1, self.length - 2), CRC)[0])
        if crc != int.from_bytes(packet[-2:], "big"):
            return Read(
                seq,
                reason=wire.TC_BAD_CHECKSUM,
                detail=f"CRC {crc:#06x}, the packet says {packet[-2:].hex()}",
            )
        cols = decode(buf, np.zeros(1, np.int64), self.layout)
        args: dict[str, Value] = {}
        for a in c.arguments:
            raw = cols[a.name][0]
            if a.enum is not None:
                label = a.as_field().enumeration.get(int(raw))  # type: ignore[union-attr]
                if label is None:
                    return Read(
                        seq,
                        c,
                        reason=wire.TC_BAD_ARGUMENT,
                        detail=f"{a.name} = {int(raw)} is no state",
                    )
                args[a.name] = str(label)
                continue
            value = float(calibrate(a.calibration, np.array([raw]))[0])
            lo, hi = value_range(a)
            if not lo <= value <= hi:
                return Read(
                    seq,
                    c,
                    reason=wire.TC_BAD_ARGUMENT,
                    detail=f"{a.name} = {value:g} is outside [{lo:g}, {hi:g}]",
                )
            args[a.name] = value
        return Read(seq, c, args)


def tc_profile(p: Profile, c: Command) -> Profile:
    """The packet layout of command ``c`` as a profile of its own (no time, a CRC at the end)."""
    bits = 8 + sum(int(a.type[1:]) for a in c.arguments)
    pad = -bits % 8
    fields = [
        FieldSpec(name="opcode", type="u8"),
        *(a.as_field() for a in c.arguments),
        *([FieldSpec(name="spare", type=f"u{pad}", ignore=True)] if pad else []),
        FieldSpec(name="checksum", type="u16"),
    ]
    return Profile(
        instrument=p.instrument,
        partner=p.partner,
        name=f"{p.name}: {c.name}",
        kind=p.kind,
        apid=p.tc_apid,
        packet_length=6 + (bits + pad) // 8 + 2,
        expected_period_s=1.0,
        time=TimeCode(code="none"),
        fields=fields,
        integrity=Integrity(check=CRC, field="checksum"),
    )


class Telecommands:
    """The codecs of every command of one instrument, by name and by opcode."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.by_opcode = {c.opcode: Codec(profile, c) for c in profile.commands}
        self.by_name = {c.command.name: c for c in self.by_opcode.values()}

    def codec(self, name: str) -> Codec:
        """The codec of command ``name``; CommandError for an unknown command."""
        found = self.by_name.get(name)
        if found is None:
            known = ", ".join(self.by_name) or "none"
            raise CommandError(
                f"{self.profile.instrument} has no command '{name}'; its commands: {known}"
            )
        return found

    def read(self, packet: bytes) -> Read:
        """A TC packet as the module reads it: header, opcode, then its command's checks."""
        p = self.profile
        if len(packet) < HEAD + 2:
            return Read(-1, reason=wire.TC_BAD_LENGTH, detail=f"{len(packet)} octets")
        word = int.from_bytes(packet[:2], "big")
        seq = int.from_bytes(packet[2:4], "big") & 0x3FFF
        if word >> 13 != 0 or not word >> 12 & 1 or word & 0x7FF != p.tc_apid:
            return Read(
                seq,
                reason=wire.TC_BAD_APID,
                detail=f"header {packet[:2].hex()}: not a TC packet of APID {p.tc_apid:#05x}",
            )
        if int.from_bytes(packet[4:6], "big") + 7 != len(packet):
            return Read(seq, reason=wire.TC_BAD_LENGTH, detail="the length field disagrees")
        found = self.by_opcode.get(packet[6])
        if found is None:
            return Read(seq, reason=wire.TC_UNKNOWN_OPCODE, detail=f"opcode {packet[6]:#04x}")
        return found.read(packet, seq)


def value_range(a: Argument) -> tuple[float, float]:
    """The engineering values ``a`` accepts: its ``range``, within what its raw type holds."""
    f = a.as_field()
    if f.base == "f":
        big = float(np.finfo(np.float32 if f.width == 32 else np.float64).max)
        lo, hi = -big, big
    else:
        raw = np.array(
            [0, (1 << f.width) - 1]
            if f.base == "u"
            else [-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1],
            np.float64,
        )
        ends = calibrate(a.calibration, raw)
        lo, hi = float(np.nanmin(ends)), float(np.nanmax(ends))
    if a.range is not None:
        lo = lo if a.range[0] is None else max(lo, a.range[0])
        hi = hi if a.range[1] is None else min(hi, a.range[1])
    return lo, hi


def describe(a: Argument) -> str:
    """What an argument takes, for errors and forms: labels, or a range with units."""
    if a.enum is not None:
        return "one of " + ", ".join(sorted(set(a.enum.values())))
    lo, hi = value_range(a)
    return f"{a.type}, {lo:g}..{hi:g}" + (f" {a.units}" if a.units else "")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
