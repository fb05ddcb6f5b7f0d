"""The instrument profile schema: what a partner may write in one YAML file (pydantic models).

Structural rules live here; rules that relate several parts of a profile (bit totals, channel
references, limit order) live in ``_checks`` so that every mistake is reported in one pass.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ilrs_ops.ccsds import utc_ns_to_tai58_ns
from ilrs_ops.errors import InputError
from ilrs_ops.profiles._enum import Enumeration

NAME = r"^[a-z][a-z0-9_]{0,62}$"
NAME_HINT = "use lower-case letters, digits and '_', starting with a letter (e.g. batt_v)"
ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
ID_HINT = "use lower-case letters, digits and '-' (e.g. sup-rover-1)"
TYPE_RE = re.compile(
    r"^(?:([ui])([1-9]|[1-5][0-9]|6[0-4])|f(32|64)"
    r"|string|bytes|u[1-9][0-9]{1,3})$"  # strings, blobs, wide integers (WIDE_BITS)
)
TYPE_HINT = (
    "use u1..u64, i1..i64, f32 or f64, string or bytes (with length), or u72..u512 (whole octets)"
)
#: Unsigned integers wider than 64 bits: whole octets, stored as their exact big-endian octets.
WIDE_BITS = range(72, 513, 8)
WIDE_HINT = "use u1..u64, or whole octets for an integer wider than 64 bits: u72, u80, ... u512"
#: The types whose values are octets, not numbers: strings, blobs, integers wider than 64 bits.
OCTET_TYPES = ("string", "bytes")
#: A byte order other than big and little: the digits 1..n of an n-octet field, each once, in
#: the order the octets travel; digit 1 is the value's most significant octet (ccsdspy's form).
BYTE_ORDER_RE = re.compile(r"^[1-8]{1,8}$")
BYTE_ORDER_HINT = (
    "write big, little, or the digits 1..n of an n-octet field once each, in the order its "
    'octets travel, 1 the most significant (e.g. "3412": the 16-bit halves of a 32-bit value '
    "swapped)"
)

Name = Annotated[str, Field(pattern=NAME)]
Range = tuple[float | None, float | None]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose cached properties are computed afresh: pydantic copies the instance
        dict, cached values included, so a copy with other fields would keep the old ones."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _cached_names(type(self)):
            copy.__dict__.pop(name, None)
        return copy


@functools.cache
def _cached_names(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for klass in cls.__mro__
        for name, attr in vars(klass).items()
        if isinstance(attr, functools.cached_property)
    )


@functools.cache
def epoch_utc_ns(text: str) -> int:
    """An ISO 8601 UTC instant (``Z`` or an offset; naive is UTC) as ns since 1970."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"epoch '{text}' is not an ISO 8601 time; write e.g. 2000-01-01T11:58:55.816Z"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


#: The keys of ``time`` each code uses (``code`` and ``future_tolerance_s`` belong to all).
TIME_KEYS: dict[str, tuple[str, ...]] = {
    "cuc": ("coarse", "fine", "epoch"),
    "cds": ("days", "subms"),
    "counter": (
        "seconds",
        "fraction",
        "fraction_bits",
        "fraction_unit_s",
        "week",
        "unit_s",
        "epoch",
        "scale",
    ),
    "calendar": ("year", "doy", "hour", "minute", "second", "usec"),
    "none": (),
}


class TimeCode(_Model):
    """Where a packet's time comes from: a secondary-header code right after the primary header
    (CUC: TAI seconds since 1958 or a mission epoch; CDS: UTC days + ms of day), fields of the
    packet (``counter``: a count of seconds from an epoch, e.g. Unix or GPS week + seconds;
    ``calendar``: year, day of year, hour, minute, second, microsecond), or ``none`` (the
    receive time)."""

    code: Literal["cuc", "cds", "counter", "calendar", "none"]
    coarse: int = Field(4, ge=1, le=4, description="CUC: octets of whole seconds")
    fine: int = Field(2, ge=0, le=3, description="CUC: octets of binary fraction")
    days: Literal[2, 3] = Field(2, description="CDS: octets of day count")
    subms: Literal[0, 2, 4] = Field(0, description="CDS: octets below the millisecond")
    epoch: str | None = Field(
        None,
        description="CUC: the UTC instant of count 0 (ISO 8601, e.g. 2000-01-01T11:58:55.816Z "
        "for J2000); the count runs in TAI seconds from it. Default: 1958-01-01 TAI (CCSDS)",
    )
    seconds: Name | None = Field(None, description="counter: the field of whole units")
    fraction: Name | None = Field(None, description="counter: the field of the binary fraction")
    fraction_bits: int | None = Field(None, ge=1, le=64, description="counter: bits of fraction")
    fraction_unit_s: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="counter: seconds per count of a decimal fraction (1e-6 for microseconds), "
        "instead of fraction_bits",
    )
    week: Name | None = Field(None, description="counter: a field of weeks (GPS week number)")
    unit_s: float = Field(1.0, gt=0, description="counter: seconds per unit of ``seconds``")
    scale: Literal["utc", "tai"] = Field(
        "utc",
        description="counter: utc (a count that skips leap seconds, like Unix time; epoch "
        "1970-01-01 by default) or tai (SI seconds, like GPS or a spacecraft clock; epoch "
        "1958-01-01 by default)",
    )
    year: Name | None = Field(None, description="calendar: the field of the year")
    doy: Name | None = Field(None, description="calendar: the field of the day of year (1..366)")
    hour: Name | None = None
    minute: Name | None = None
    second: Name | None = None
    usec: Name | None = Field(None, description="calendar: the field of microseconds")
    future_tolerance_s: float | None = Field(
        300.0,
        gt=0,
        description="a packet time more than this after its receive time is bad_time (a clock "
        "or time-code fault), so one such packet cannot put the ones after it out of order; "
        "null: no check",
    )

    @field_validator("epoch")
    @classmethod
    def _epoch_is_a_time(cls, v: str | None) -> str | None:
        if v is not None:
            epoch_utc_ns(v)
        return v

    @property
    def octets(self) -> int:
        """Octets of the secondary-header code (0 when the time comes from fields)."""
        if self.code == "cuc":
            return self.coarse + self.fine
        return self.days + 4 + self.subms if self.code == "cds" else 0

    def origin_ns(self) -> int:
        """Count 0 of the clock: TAI ns since 1958 for a TAI count (CUC; a counter with
        ``scale: tai``), UTC ns since 1970 for a UTC count; 0 without an ``epoch``."""
        if self.epoch is None:
            return 0
        utc = epoch_utc_ns(self.epoch)
        tai = self.code == "cuc" or self.scale == "tai"
        return int(utc_ns_to_tai58_ns(utc)) if tai else utc

    @property
    def field_names(self) -> list[str]:
        """The fields the time is read from (counter and calendar codes)."""
        refs = {"counter": ("seconds", "fraction", "week"), "calendar": TIME_KEYS["calendar"]}
        return [n for k in refs.get(self.code, ()) if (n := getattr(self, k)) is not None]


class Segment(_Model):
    """One piece of a segmented calibration: ``poly`` applies from ``start`` to the next start."""

    start: float
    poly: list[float] = Field(min_length=1, max_length=8)


class Calibration(_Model):
    """Raw -> engineering units. Exactly one of ``poly``, ``segments`` or ``table``."""

    poly: list[float] | None = Field(None, min_length=1, max_length=8)
    segments: list[Segment] | None = Field(None, min_length=1)
    table: list[tuple[float, float]] | None = Field(None, min_length=2)
    outside: Literal["clamp", "nan"] = Field(
        "clamp", description="table: what raw values beyond the first/last point give"
    )


class LimitSet(_Model):
    """Yellow (warning) and red (critical) ranges; ``null`` leaves a side open."""

    yellow: Range | None = None
    red: Range | None = None


class ContextLimits(LimitSet):
    """A limit set in force while ``channel`` equals ``equals`` (a number or an enum label)."""

    channel: Name
    equals: float | str


class Limits(LimitSet):
    when: list[ContextLimits] = []


class SimSpec(_Model):
    """How the station simulator makes this channel, in engineering units (see ilrs_ops.sim)."""

    model: Literal[
        "constant",
        "diurnal",
        "battery",
        "random_walk",
        "counter",
        "seismic",
        "radiation",
        "cycle",
        "random",
    ]
    text: str | None = Field(None, description="string fields, model constant: the text sent")
    value: float | None = None
    noise: float = Field(0.0, ge=0)
    day: float | None = None
    night: float | None = None
    lag_h: float = Field(0.0, ge=0, description="thermal lag behind the sun, hours")
    min: float | None = None
    max: float | None = None
    step: float | None = None
    rate_per_h: float | None = Field(None, ge=0, description="events per hour (quakes, SPEs)")
    amplitude: float | None = None
    duration_s: float | None = Field(None, gt=0)
    values: list[float | str] | None = None
    period_s: float | None = Field(None, gt=0)
    loads: dict[str, float] | None = Field(
        None,
        description="a supply's current: what each of these channels (a switched outlet, 0 "
        "off and 1 on) adds to the model's value while it is on; the model makes the rest",
    )


#: ``count_from: rest``: the array takes as many elements as the rest of the packet holds.
REST = "rest"


class FieldSpec(_Model):
    """One value in the packet's user data field, in packet order, bit-packed; or, with ``of``
    and ``bit``, a sub-field: bits of an earlier field, read again as a channel of their own."""

    name: Name
    type: str
    count: int | None = Field(
        None, ge=1, le=4096, description="array length (the most, with count_from)"
    )
    count_from: Name | None = Field(
        None,
        description="a variable-length array: the earlier unsigned field that holds its element "
        "count, or 'rest' (as many elements as the rest of the packet holds)",
    )
    endian: str = Field(
        "big",
        description="big, little, or a byte order such as 3412 (the digits 1..n of the field's "
        "n octets in the order they travel, 1 the most significant)",
    )
    units: str | None = None
    description: str | None = None
    ignore: bool = Field(False, description="spare bits: decoded, never stored or shown")
    enum: dict[int | str, str] | None = Field(
        None, description="{raw value: LABEL}; a key lo..hi labels an inclusive range of values"
    )
    of: Name | None = Field(
        None, description="sub-field: the field, listed before it, whose bits it reads"
    )
    bit: int | None = Field(
        None, ge=0, le=63, description="sub-field: its first bit, 0 = the parent's most significant"
    )
    calibration: Calibration | None = None
    limits: Limits | None = None
    sample_rate_hz: float | None = Field(None, gt=0, description="array of successive samples")
    sim: SimSpec | None = None
    length: int | None = Field(
        None, ge=1, le=4096, description="string, bytes: octets of the value in the packet"
    )
    encoding: Literal["ascii", "utf-8"] = Field(
        "ascii", description="string: how its octets are text; trailing NUL and spaces stripped"
    )
    axes: list[Name] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="a 2-D array: count samples of one value per axis, one channel per axis "
        "(<name>_<axis>)",
    )
    planar: bool = Field(
        False,
        description="axes: all samples of the first axis, then the next (default: interleaved, "
        "x0 y0 z0 x1 y1 z1 ...)",
    )

    @field_validator("type")
    @classmethod
    def _type_known(cls, v: str) -> str:
        if not TYPE_RE.match(v):
            raise InputError(f"type '{v}' is not a type; {TYPE_HINT}")  # pydantic needs ValueError
        if v[0] == "u" and v[1:].isdigit() and int(v[1:]) > 64 and int(v[1:]) not in WIDE_BITS:
            raise InputError(f"type '{v}' is not a type; {WIDE_HINT}")
        return v

    @field_validator("endian", mode="before")
    @classmethod
    def _endian_known(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # endian: 3412 unquoted is a YAML number; its digits are the order
        digits = [str(k) for k in range(1, len(v) + 1)] if isinstance(v, str) else []
        if (
            isinstance(v, str)
            and v not in ("big", "little")
            and not (BYTE_ORDER_RE.match(v) and sorted(v) == digits)
        ):
            raise InputError(f"endian '{v}' is not a byte order; {BYTE_ORDER_HINT}")
        return v

    @property
    def width(self) -> int:
        """Bits of one element: a string's or blob's ``length`` octets (0 without one)."""
        if self.type in OCTET_TYPES:
            return 8 * (self.length or 0)
        return int(self.type[1:])

    @property
    def bits(self) -> int:
        """Bits the field takes in the packet: every element of every axis."""
        return self.width * (self.count or 1) * (len(self.axes) if self.axes else 1)

    @property
    def is_octets(self) -> bool:
        """A value of octets, not a number: a string, a blob, an integer wider than 64 bits.
        Compiled to one u8 slot per octet; stored as text, binary or its exact octets."""
        return self.type in OCTET_TYPES or self.width > 64

    @property
    def axis_names(self) -> list[str]:
        """The channels of a 2-D array (``<name>_<axis>``); the field itself otherwise."""
        return [f"{self.name}_{a}" for a in self.axes] if self.axes else [self.name]

    @property
    def is_subfield(self) -> bool:
        """Bits of another field (``of``), not bits of its own: it does not move the cursor."""
        return self.of is not None

    @property
    def is_variable(self) -> bool:
        """An array whose element count each packet gives (``count`` is then the most)."""
        return self.count_from is not None

    @property
    def byte_order(self) -> tuple[int, ...] | None:
        """Where the value's octets travel: for octet k of the field (of each element) in packet
        order, the significance of the value's octet it carries (0 = most significant). None
        when that is big-endian order, the bit-packed default: ``big``, ``1234``..., and
        ``little`` on a one-octet field."""
        if self.endian == "big":
            return None
        if self.endian == "little":
            ranks = tuple(range(self.width // 8 - 1, -1, -1))
        else:
            ranks = tuple(int(c) - 1 for c in self.endian)
        return None if ranks == tuple(range(len(ranks))) else ranks

    @functools.cached_property
    def enumeration(self) -> Enumeration | None:
        """The ``enum`` states, by raw value (ranges included); None without an enum."""
        return Enumeration(self.enum) if self.enum else None

    @property
    def base(self) -> str:
        """'u', 'i' or 'f'; 's' for string, 'b' for bytes."""
        return self.type[0]


class Derived(_Model):
    """A channel computed from others with the safe expression language (never eval)."""

    name: Name
    expr: str = Field(min_length=1)
    units: str | None = None
    description: str | None = None
    limits: Limits | None = None


class Detector(_Model):
    """An event detector run on a channel; ``sta_lta`` is the classic seismic trigger."""

    kind: Literal["sta_lta"]
    channel: Name
    sta_s: float = Field(gt=0, description="short-term average window, seconds")
    lta_s: float = Field(gt=0, description="long-term average window, seconds")
    on: float = Field(gt=0, description="trigger when STA/LTA rises above this")
    off: float = Field(gt=0, description="release when STA/LTA falls below this")


class Integrity(_Model):
    """A check (CRC or sum) the packet carries in one of its fields, over octets [start, the
    field): a packet whose check does not match is quarantined as ``bad_crc``."""

    check: Literal["crc16-ccitt-false", "crc16-xmodem", "crc32", "sum8", "sum16", "xor8"]
    field: Name = Field(
        description="the field holding the check value (octet-aligned, after the data)"
    )
    start: int = Field(0, ge=0, description="first octet checked (0: the primary header on)")


#: The numeric types a command argument may have (no strings, blobs or arrays in commands).
ARG_TYPE_RE = re.compile(r"^(?:[ui]([1-9]|[1-5][0-9]|6[0-4])|f(32|64))$")
#: Names the telecommand layout uses itself; an argument may not take them.
TC_RESERVED = ("opcode", "spare", "checksum")


class Condition(_Model):
    """A test of one telemetry channel's latest value: ``equals`` (a number or an enum label),
    ``above`` or ``below`` (engineering units, exclusive). A value ``$name`` is the command's
    argument ``name``, so ``{channel: mode, equals: $mode}`` waits for the mode just commanded."""

    channel: Name
    equals: float | str | None = None
    above: float | str | None = None
    below: float | str | None = None

    @property
    def tests(self) -> list[tuple[str, float | str]]:
        """The (test, value) pairs written: equals, above, below."""
        pairs = (("equals", self.equals), ("above", self.above), ("below", self.below))
        return [(k, v) for k, v in pairs if v is not None]

    def __str__(self) -> str:
        words = {"equals": "==", "above": ">", "below": "<"}
        return " and ".join(f"{self.channel} {words[k]} {v}" for k, v in self.tests)


class Argument(_Model):
    """One argument of a command, in packet order after the opcode, bit-packed big-endian. The
    operator gives engineering units; ``calibration`` (raw -> engineering, as for telemetry) is
    inverted to the raw counts the packet carries."""

    name: Name
    type: str
    units: str | None = None
    description: str | None = None
    enum: dict[int | str, str] | None = Field(None, description="{raw value: LABEL}")
    calibration: Calibration | None = None
    range: Range | None = Field(
        None, description="[lo, hi] in engineering units, inclusive; default: what the type holds"
    )
    default: float | str | None = None
    sensitive: bool = Field(False, description="never shown to viewers (keys, passwords)")

    @field_validator("type")
    @classmethod
    def _numeric(cls, v: str) -> str:
        if not ARG_TYPE_RE.match(v):
            raise InputError(
                f"type '{v}' is not an argument type; use u1..u64, i1..i64, f32 or f64"
            )
        return v

    def as_field(self) -> FieldSpec:
        """The argument as a packet field, for the codec."""
        return FieldSpec(
            name=self.name,
            type=self.type,
            units=self.units,
            enum=self.enum,
            calibration=self.calibration,
        )


class Verification(_Model):
    """When a sent command counts as received (the module's accept counter or reject counter
    moved, and its last sequence count is this command's) and as executed (every condition
    holds in telemetry); a stage that does not happen within its time fails as timed out.
    The acknowledgement travels in telemetry, so ``received_s`` must cover a packet period:
    by default two periods plus a second, at least 5 s (``Profile.received_s``)."""

    received_s: float | None = Field(None, gt=0, le=3600)
    executed: list[Condition] = []
    executed_s: float = Field(10.0, gt=0, le=86_400)


class CommandSim(_Model):
    """What the simulated module does when it executes the command: ``set`` holds channels at
    values (engineering units or enum labels; ``$arg`` for an argument) until another command
    sets them; ``power: off`` stops its telemetry after the acknowledging packet, ``on`` resumes.
    With ``target`` (an instrument id), ``power`` switches that instrument's supply instead, as a
    power distribution unit does: it falls silent at once, and hears no commands while off."""

    set: dict[Name, float | str] = {}
    power: Literal["on", "off"] | None = None
    target: str | None = Field(None, pattern=ID, description="the instrument ``power`` switches")


class Command(_Model):
    """One telecommand of the instrument: opcode, arguments, authority and verification."""

    name: Name
    description: str | None = None
    opcode: int = Field(ge=0, le=255, description="the function code, first octet after the header")
    arguments: list[Argument] = []
    hazardous: bool = Field(False, description="needs a second operator's approval")
    pre: list[Condition] = Field([], description="telemetry that must hold before it is sent")
    verify: Verification = Verification()
    sim: CommandSim | None = None


class Commanding(_Model):
    """How the instrument takes commands: its TC APID, and the telemetry fields in which it
    acknowledges them (counters of accepted and rejected commands, the sequence count of the
    last one handled, and an enum of why the last one was rejected)."""

    apid: int | None = Field(None, ge=0, le=0x7FD, description="TC APID; default: the TM APID")
    accepted: Name = "cmd_accepted"
    rejected: Name = "cmd_rejected"
    last_seq: Name = "cmd_last_seq"
    error: Name | None = "cmd_error"


class Variant(_Model):
    """One layout of a packet whose APID carries several: chosen by the selector's raw value,
    its own fields after the common ones, its own length and derived channels."""

    name: Name
    value: int | str | list[int | str] = Field(
        description="the selector's raw value(s) of this layout: 3, '2..255', or a list of those"
    )
    description: str | None = None
    packet_length: int = Field(
        ge=7, le=65542, description="octets of this layout's packets (the longest, when variable)"
    )
    fields: list[FieldSpec] = Field(min_length=1)
    derived: list[Derived] = []

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The selector values of this layout as inclusive (lo, hi) ranges."""
        from ilrs_ops.profiles._enum import parse_key

        values = self.value if isinstance(self.value, list) else [self.value]
        return [parse_key(v) for v in values]


class Variants(_Model):
    """Several layouts behind one APID (XTCE: containers inheriting a common one with a
    restriction on a field): the common ``fields`` come first, then the chosen layout's."""

    selector: Name = Field(description="the common field whose raw value chooses the layout")
    cases: list[Variant] = Field(min_length=1)


class Profile(_Model):
    """One partner instrument: identity, packet layout, calibration, limits, derived channels."""

    instrument: str = Field(pattern=ID)
    partner: str = Field(pattern=ID)
    name: str = Field(min_length=1)
    kind: str = Field(pattern=ID)
    description: str | None = None
    apid: int = Field(
        ge=0, le=0x7FD, description="0x7FE is the simulator's stray APID, 0x7FF the idle APID"
    )
    packet_length: int | None = Field(
        None,
        ge=7,
        le=65542,
        description="octets, primary header included; with a variable-length array, the "
        "longest packet (the array at its count). Required, unless each variant gives its own",
    )
    expected_period_s: float = Field(gt=0)
    time: TimeCode
    fields: list[FieldSpec] = Field(min_length=1)
    derived: list[Derived] = []
    detectors: list[Detector] = []
    integrity: Integrity | None = None
    variants: Variants | None = None
    commanding: Commanding | None = None
    commands: list[Command] = []
    order: Literal["time", "arrival"] | None = Field(
        None,
        description="what decides duplicates and order: time (the packet clock: a repeat of "
        "(sequence count, time) is a duplicate, an earlier time is out_of_order) or arrival (the "
        "clock is not trusted: a repeat of the same octets with the same sequence count is a "
        "duplicate, nothing is out of order). Default: arrival when time.code is none, else time",
    )

    @functools.cached_property
    def channel_fields(self) -> tuple[FieldSpec, ...]:
        """The fields as channels: a 2-D array (``axes``) becomes one array field per axis,
        ``<name>_<axis>`` with the field's count, calibration, limits and sim; the rest as
        listed. Everything after the packet layout (plans, tables, the simulator) reads these."""
        if self.variants is not None:  # every layout's channels, each name once
            seen: dict[str, FieldSpec] = {}
            for v in self.variant_profiles:
                for f in v.channel_fields:
                    seen.setdefault(f.name, f)
            return tuple(seen.values())
        out: list[FieldSpec] = []
        for f in self.fields:
            if not f.axes:
                out.append(f)
                continue
            for axis in f.axis_names:
                out.append(f.model_copy(update={"name": axis, "axes": None, "planar": False}))
        return tuple(out)

    @property
    def ordering(self) -> Literal["time", "arrival"]:
        """The order in force: ``order``, or its default for the time code."""
        if self.order is not None:
            return self.order
        return "arrival" if self.time.code == "none" else "time"

    @property
    def link(self) -> Commanding:
        """How the instrument takes commands: ``commanding``, or its defaults."""
        return self.commanding or Commanding()

    @property
    def tc_apid(self) -> int:
        """The APID of the instrument's telecommands."""
        c = self.commanding
        return self.apid if c is None or c.apid is None else c.apid

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)

    def received_s(self, c: Command) -> float:
        """Seconds ``c``'s acknowledgement may take: as written, or two packet periods plus a
        second (at least 5 s), since it comes in the next packets."""
        given = c.verify.received_s
        return given if given is not None else max(5.0, 2 * self.expected_period_s + 1.0)

    @property
    def variable(self) -> FieldSpec | None:
        """The variable-length array (``count_from``), if the packet has one."""
        return next((f for f in self.fields if f.is_variable), None)

    @functools.cached_property
    def variant_profiles(self) -> tuple[Profile, ...]:
        """One flat profile per variant: the common fields then the variant's, its length, the
        common derived channels then its own, the detectors on its channels. Empty without
        ``variants``. The checks, the layouts and the decode work on these."""
        if self.variants is None:
            return ()
        out = []
        for v in self.variants.cases:
            fields = [*self.fields, *v.fields]
            names = {n for f in fields for n in f.axis_names} | {d.name for d in v.derived}
            out.append(
                self.model_copy(
                    update={
                        "fields": fields,
                        "derived": [*self.derived, *v.derived],
                        "packet_length": v.packet_length,
                        "detectors": [d for d in self.detectors if d.channel in names],
                        "variants": None,
                        "commands": [],
                        "commanding": None,
                    }
                )
            )
        return tuple(out)

    @functools.cached_property
    def derived_channels(self) -> tuple[Derived, ...]:
        """The derived channels: ``derived``, then each variant's, each name once."""
        if self.variants is None:
            return tuple(self.derived)
        seen: dict[str, Derived] = {d.name: d for d in self.derived}
        for v in self.variants.cases:
            for d in v.derived:
                seen.setdefault(d.name, d)
        return tuple(seen.values())
