"""Rules of a profile's ``commanding`` and ``commands``: acknowledgement fields that exist and
fit, one opcode per command, arguments whose ranges, enums and defaults agree, conditions and
simulated effects that name real channels and values. Each broken rule is one Finding."""

from __future__ import annotations

from collections.abc import Iterator

from ilrs_ops.profiles._checks import Finding, _check_calibration, _check_enum, _raw_range
from ilrs_ops.profiles._schema import TC_RESERVED, Argument, Command, Condition, Profile

#: The largest TC packet: 6 header octets + a 16-bit length field's worth of data.
MAX_TC_OCTETS = 65542


def check_commands(p: Profile) -> Iterator[Finding]:
    """Every mistake in ``p``'s commanding; nothing when it has no commands."""
    if not p.commands and p.commanding is None:
        return
    yield from _check_acks(p)
    names: set[str] = set()
    opcodes: dict[int, str] = {}
    for i, c in enumerate(p.commands):
        loc = ("commands", i)
        if c.name in names:
            yield ((*loc, "name"), f"the command '{c.name}' is defined twice", "rename one")
        names.add(c.name)
        if c.opcode in opcodes:
            yield (
                (*loc, "opcode"),
                f"opcode {c.opcode:#04x} is already the opcode of '{opcodes[c.opcode]}'",
                "give each command its own opcode (0..255)",
            )
        opcodes.setdefault(c.opcode, c.name)
        yield from _check_command(p, c, loc)
        yield from _check_windows(p, c, loc)


def _check_windows(p: Profile, c: Command, loc: tuple) -> Iterator[Finding]:
    """Verification windows that a packet period can fill: the module says it took the command,
    and what it did, only in its next packets."""
    period = p.expected_period_s
    for key in ("received_s", "executed_s"):
        window = getattr(c.verify, key)
        if window is not None and window < period:
            yield (
                (*loc, "verify", key),
                f"{key} {window:g} is shorter than the packet period ({period:g} s): the "
                "telemetry that shows it cannot come in time, every command would time out",
                f"make it at least {2 * period + 1:g}"
                + (" or leave it out (default: 2 periods + 1 s, at least 5 s)"
                   if key == "received_s" else ""),
            )  # fmt: skip


def _check_acks(p: Profile) -> Iterator[Finding]:
    link = p.link
    fields = {f.name: f for f in p.fields}
    for key in ("accepted", "rejected", "last_seq", "error"):
        name = getattr(link, key)
        if name is None:
            continue
        loc = ("commanding", key) if p.commanding is not None else ("commands",)
        f = fields.get(name)
        if f is None:
            yield (
                loc,
                f"the module acknowledges commands in telemetry, but '{name}' is not a field",
                f"add a field {{name: {name}, type: {'u8' if key == 'error' else 'u16'}}}, or "
                f"name yours in commanding: {{{key}: <field>}}",
            )
        elif f.base != "u" or f.count is not None or f.is_octets or f.ignore:
            yield (
                loc,
                f"'{name}' must be an unsigned scalar field that is kept, not "
                f"{f.type}{f'[{f.count}]' if f.count else ''}{' (ignored)' if f.ignore else ''}",
                "use e.g. u16 for counters and the sequence count, u8 with an enum for the error",
            )
        elif key == "error" and not f.enum:
            yield (
                loc,
                f"'{name}' holds why the last command was rejected: give it an enum",
                "e.g. enum: {0: NONE, 1: BAD_CHECKSUM, 2: UNKNOWN_OPCODE, 3: BAD_ARGUMENT, ...}",
            )


def _check_command(p: Profile, c: Command, loc: tuple) -> Iterator[Finding]:
    args = {a.name: a for a in c.arguments}
    seen: set[str] = set()
    bits = 8
    for j, a in enumerate(c.arguments):
        aloc = (*loc, "arguments", j)
        if a.name in seen:
            yield ((*aloc, "name"), f"the argument '{a.name}' is listed twice", "rename one")
        if a.name in TC_RESERVED:
            yield (
                (*aloc, "name"),
                f"'{a.name}' is a part of every telecommand packet",
                f"choose another name; {', '.join(TC_RESERVED)} are taken",
            )
        seen.add(a.name)
        bits += int(a.type[1:])
        yield from _check_argument(a, aloc)
    octets = 6 + (bits + 7) // 8 + 2
    if octets > MAX_TC_OCTETS:
        yield ((*loc, "arguments"), f"the packet would be {octets} octets long", "send less")
    for k, cond in enumerate(c.pre):
        yield from _check_condition(p, cond, args, (*loc, "pre", k))
    for k, cond in enumerate(c.verify.executed):
        yield from _check_condition(p, cond, args, (*loc, "verify", "executed", k))
    if c.sim is not None:
        yield from _check_sim(p, c, args, (*loc, "sim"))


def _check_argument(a: Argument, loc: tuple) -> Iterator[Finding]:
    f = a.as_field()
    if a.enum is not None:
        yield from _check_enum(f, loc)
        if a.calibration is not None or a.range is not None:
            yield (
                loc,
                "an enum argument takes a label, not a calibrated or ranged value",
                "remove calibration and range, or the enum",
            )
    if a.calibration is not None:
        if f.base == "f":
            yield ((*loc, "calibration"), "a float argument is sent as it is typed", "remove it")
        yield from _check_calibration(a.calibration, (*loc, "calibration"))
    if a.range is not None:
        lo, hi = a.range
        if lo is not None and hi is not None and lo > hi:
            yield (
                (*loc, "range"),
                f"range [{lo}, {hi}] runs from high to low",
                f"write [{hi}, {lo}]",
            )
    if a.default is not None:
        if a.enum is not None:
            labels = sorted(set(a.enum.values()))
            if a.default not in labels:
                yield (
                    (*loc, "default"),
                    f"default {a.default!r} is not one of {labels}",
                    "use one of the enum's labels",
                )
        elif isinstance(a.default, str):
            yield (
                (*loc, "default"),
                f"default {a.default!r} is not a number",
                "write a number in the argument's units",
            )
        elif a.range is not None and not _within(a.default, a.range):
            yield (
                (*loc, "default"),
                f"default {a.default} is outside range {list(a.range)}",
                "choose a default within the range",
            )
        elif f.base != "f" and a.calibration is None:
            lo, hi = _raw_range(f)
            if not (lo <= a.default <= hi and float(a.default).is_integer()):
                yield (
                    (*loc, "default"),
                    f"default {a.default} does not fit {a.type}",
                    f"use a whole number in {lo}..{hi}",
                )


def _within(v: float, r: tuple[float | None, float | None]) -> bool:
    return (r[0] is None or v >= r[0]) and (r[1] is None or v <= r[1])


def _check_condition(
    p: Profile, cond: Condition, args: dict[str, Argument], loc: tuple
) -> Iterator[Finding]:
    fields = {f.name: f for f in p.channel_fields if not f.ignore}
    channels = set(fields) | {d.name for d in p.derived}
    if cond.channel not in channels:
        yield (
            (*loc, "channel"),
            f"'{cond.channel}' is not a channel of {p.instrument}",
            f"use one of {', '.join(sorted(channels)[:12])}",
        )
        return
    if not cond.tests:
        yield (
            loc,
            f"the condition on '{cond.channel}' tests nothing",
            "give equals, above or below",
        )
    f = fields.get(cond.channel)
    labels = sorted(set(f.enum.values())) if f is not None and f.enum else []
    for key, value in cond.tests:
        if isinstance(value, str) and value.startswith("$"):
            if value[1:] not in args:
                yield (
                    (*loc, key),
                    f"'{value}' names no argument of this command",
                    f"use one of {['$' + a for a in args] or 'no argument: this has none'}",
                )
            continue
        if isinstance(value, str) and (key != "equals" or value not in labels):
            hint = f"use one of {labels}" if labels and key == "equals" else "write a number"
            yield ((*loc, key), f"{value!r} is not a value of '{cond.channel}'", hint)


def _check_sim(p: Profile, c: Command, args: dict[str, Argument], loc: tuple) -> Iterator[Finding]:
    assert c.sim is not None
    fields = {f.name: f for f in p.channel_fields}
    for name, value in c.sim.set.items():
        f = fields.get(name)
        if f is None or f.is_octets:
            yield (
                (*loc, "set", name),
                f"'{name}' is not a numeric field of {p.instrument}",
                "set fields the module sends",
            )
            continue
        if isinstance(value, str) and value.startswith("$"):
            if value[1:] not in args:
                yield (
                    (*loc, "set", name),
                    f"'{value}' names no argument of this command",
                    f"use one of {['$' + a for a in args]}",
                )
        elif isinstance(value, str) and (not f.enum or value not in f.enum.values()):
            labels = sorted(set(f.enum.values())) if f.enum else []
            yield (
                (*loc, "set", name),
                f"{value!r} is not a value of '{name}'",
                f"use one of {labels}" if labels else "write a number",
            )
    if c.sim.target is not None and c.sim.power is None:
        yield (
            (*loc, "target"),
            f"'{c.name}' names a target, '{c.sim.target}', but switches nothing",
            "add power: on or power: off, or remove target",
        )
    elif c.sim.target == p.instrument:
        yield (
            (*loc, "target"),
            f"'{c.name}' switches its own instrument's supply",
            "remove target: power without a target switches the module itself",
        )
