"""Rules that relate several parts of one profile; each broken rule is one (loc, what, hint)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from ilrs_ops.errors import ExpressionError, InputError
from ilrs_ops.profiles._enum import Enumeration, parse_key
from ilrs_ops.profiles._expr import FUNCTIONS, parse
from ilrs_ops.profiles._schema import (
    REST,
    TIME_KEYS,
    Calibration,
    FieldSpec,
    Limits,
    LimitSet,
    Profile,
    SimSpec,
)
from pipelines.integrity import WIDTH

Finding = tuple[tuple[str | int, ...], str, str | None]

HEADER_BITS = 48
SIM_NEEDS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "diurnal": ("day", "night"),
    "battery": ("min", "max"),
    "random_walk": ("value", "step", "min", "max"),
    "counter": (),
    "seismic": ("amplitude",),
    "radiation": ("value",),
    "cycle": ("values", "period_s"),
    "random": (),
}


def check_profile(p: Profile) -> list[Finding]:
    from ilrs_ops.profiles._command_checks import check_commands  # it builds on these helpers

    """Every cross-part mistake in ``p``; empty when the profile is usable."""
    if p.variants is not None:
        return [*check_variants(p), *check_commands(p)]
    if p.packet_length is None:
        return [(("packet_length",), "'packet_length' is required", "add 'packet_length: ...'")]
    return [
        *_check_time(p),
        *_check_bits(p),
        *_check_names(p),
        *_check_subfields(p),
        *_check_variable(p),
        *_check_fields(p),
        *_check_derived(p),
        *_check_detectors(p),
        *_check_integrity(p),
        *check_commands(p),
    ]


def check_variants(p: Profile) -> list[Finding]:
    """A profile with ``variants``: the rules of the variants section, then every rule of each
    variant's flat profile (common fields then its own), located in the variant's part of the
    file. A finding in the common part is given once, or with the variants it holds for."""
    assert p.variants is not None
    own: list[Finding] = []
    cases = p.variants.cases
    at = ("variants", "cases")
    if p.packet_length is not None:
        own.append(
            (
                ("packet_length",),
                "a profile with variants has no packet_length of its own",
                "give each variant its packet_length, and remove this one",
            )
        )
    common = {f.name: f for f in p.fields}
    common_channels = {n for f in p.fields for n in f.axis_names} | {d.name for d in p.derived}
    sel = p.variants.selector
    f = common.get(sel)
    if f is None:
        where = next((v.name for v in cases if any(g.name == sel for g in v.fields)), None)
        own.append(
            (
                ("variants", "selector"),
                f"the selector '{sel}' is a field of variant '{where}', not of the common part"
                if where
                else f"the selector '{sel}' is not a field of this profile",
                "the selector must be one of the common fields (listed under the top-level "
                "fields:), which every variant shares, so it can be read before the layout "
                "is known",
            )
        )
    elif f.base not in "ui" or f.count is not None or f.is_octets:
        own.append(
            (
                ("variants", "selector"),
                f"the selector '{sel}' is {f.type}{f'[{f.count}]' if f.count else ''}, "
                "not a scalar integer",
                "choose a scalar u or i field of the common part",
            )
        )
    for name in p.time.field_names:
        if name not in common:
            own.append(
                (
                    ("time",),
                    f"time field '{name}' is not a common field",
                    "the clock must be in the part every variant shares: list it under the "
                    "top-level fields:",
                )
            )
    lo_ok, hi_ok = None, None
    if f is not None and f.base in "ui" and f.width <= 64:
        lo_ok, hi_ok = (0, (1 << f.width) - 1) if f.base == "u" else (
            -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1)  # fmt: skip
    taken: list[tuple[int, int, str]] = []
    names: dict[str, int] = {}
    shared: dict[str, tuple[str, object]] = {}  # field or derived name -> (variant, spec)
    clash: set[tuple] = set()
    for k, v in enumerate(cases):
        if v.name in names:
            own.append(
                (
                    (*at, k, "name"),
                    f"the variant name '{v.name}' is used twice",
                    "give each variant its own name",
                )
            )
        names[v.name] = k
        try:
            ranges = v.ranges
        except InputError as exc:
            msg, _, hint = str(exc).replace("enum key", "value").partition("; ")
            own.append(((*at, k, "value"), msg, hint or None))
            ranges = []
        for lo, hi in ranges:
            if lo_ok is not None and (lo < lo_ok or hi > hi_ok):
                own.append(
                    (
                        (*at, k, "value"),
                        f"value {lo if lo == hi else f'{lo}..{hi}'} does not fit the selector "
                        f"'{sel}' ({f.type if f else '?'}: {lo_ok}..{hi_ok})",
                        "give raw values of the selector field",
                    )
                )
            for a, b, other in taken:
                if lo <= b and a <= hi:
                    both = f"{max(lo, a)}" + (f"..{min(hi, b)}" if min(hi, b) > max(lo, a) else "")
                    own.append(
                        (
                            (*at, k, "value"),
                            f"selector value {both} is also variant '{other}''s",
                            "each selector value chooses one variant: give each value once",
                        )
                    )
            taken.append((lo, hi, v.name))
        items = [("fields", i, g.name, g, g.axis_names) for i, g in enumerate(v.fields)]
        items += [("derived", j, d.name, d, [d.name]) for j, d in enumerate(v.derived)]
        for section, i, name, spec, channels in items:
            loc = (*at, k, section, i, "name")
            if name in common or any(c in common_channels for c in channels):
                own.append(
                    (
                        loc,
                        f"variant '{v.name}': '{name}' is already a common field or channel",
                        "a variant's fields follow the common ones, which every variant has: "
                        f"give it another name (e.g. {v.name}_{name})",
                    )
                )
                clash.add(loc)
            elif name in shared and shared[name][0] != v.name and shared[name][1] != spec:
                own.append(
                    (
                        loc,
                        f"variant '{v.name}': '{name}' is declared differently in variant "
                        f"'{shared[name][0]}'",
                        "one channel has one declaration: give it another name, or declare it "
                        "the same way in both",
                    )
                )
                clash.add(loc)
            shared.setdefault(name, (v.name, spec))
    for j, d in enumerate(p.detectors):
        if not any(d.channel in {x.name for x in vp.channel_fields} | {x.name for x in vp.derived}
                   for vp in p.variant_profiles):  # fmt: skip
            own.append(
                (
                    ("detectors", j, "channel"),
                    f"'{d.channel}' is not a channel of any variant",
                    "name a field or derived channel",
                )
            )
    # Each variant's flat profile, with its findings moved to where the variant is written.
    nf, nd = len(p.fields), len(p.derived)
    per_common: dict[tuple, list[str]] = {}
    located: list[Finding] = []
    for k, (v, flat) in enumerate(zip(cases, p.variant_profiles, strict=True)):
        for loc, msg, hint in check_profile(flat):
            head = loc[0] if loc else None
            if head == "fields" and len(loc) > 1 and isinstance(loc[1], int) and loc[1] >= nf:
                new = (*at, k, "fields", loc[1] - nf, *loc[2:])
            elif head == "derived" and len(loc) > 1 and isinstance(loc[1], int) and loc[1] >= nd:
                new = (*at, k, "derived", loc[1] - nd, *loc[2:])
            elif head == "packet_length":
                new = (*at, k, "packet_length")
            elif head == "detectors" and len(loc) > 1 and isinstance(loc[1], int):
                new = ("detectors", p.detectors.index(flat.detectors[loc[1]]), *loc[2:])
            else:
                per_common.setdefault((loc, msg, hint), []).append(v.name)
                continue
            if new[:6] in clash or (*new[:5], "name") in clash:
                continue  # said above, better
            located.append((new, f"variant '{v.name}': {msg}", hint))
    for (loc, msg, hint), which in per_common.items():
        if len(which) < len(cases):
            msg = f"variant{'s' if len(which) > 1 else ''} {', '.join(which)}: {msg}"
        located.append((loc, msg, hint))
    return [*own, *located]


def field_bits(p: Profile) -> dict[str, tuple[int, int]]:
    """(bit offset in the packet, total bits) of every field of ``p``.

    A sub-field does not move the cursor: its offset is its parent's plus its ``bit``, which
    counts in the parent's value from its most significant bit (so it is the packet bit itself
    when the parent is big-endian). A sub-field whose parent is unknown is left out.
    """
    out: dict[str, tuple[int, int]] = {}
    bit = HEADER_BITS + 8 * p.time.octets
    for f in p.fields:
        size = f.bits
        if f.is_subfield:
            if f.of in out:
                out[f.name] = (out[f.of][0] + (f.bit or 0), size)
            continue
        out[f.name] = (bit, size)
        bit += size
    return out


def _check_integrity(p: Profile) -> Iterator[Finding]:
    i = p.integrity
    if i is None:
        return
    fields = {f.name: f for f in p.fields}
    f = fields.get(i.field)
    if f is None:
        yield (
            ("integrity", "field"),
            f"'{i.field}' is not a field of this profile",
            f"name the field that holds the {i.check} value",
        )
        return
    if f.is_subfield:
        yield (
            ("integrity", "field"),
            f"'{i.field}' is a sub-field of '{f.of}', but a check value is a field of its own",
            f"declare {{name: {i.field}, type: u{WIDTH[i.check]}}} after the checked data",
        )
        return
    bit, _ = field_bits(p)[i.field]
    want = WIDTH[i.check]
    if f.type != f"u{want}" or f.count is not None or f.byte_order is not None or bit % 8:
        yield (
            ("integrity", "field"),
            f"{i.check} needs an octet-aligned big-endian u{want} field; '{i.field}' is "
            f"{f.type}{f'[{f.count}]' if f.count else ''} at bit {bit}",
            f"declare it as {{name: {i.field}, type: u{want}}} on an octet boundary",
        )
    if i.start >= bit // 8:
        yield (
            ("integrity", "start"),
            f"start {i.start} is not before the check field (octet {bit // 8})",
            "start at 0 (the primary header) or at the data field",
        )


def _check_time(p: Profile) -> Iterator[Finding]:
    t = p.time
    mine = set(TIME_KEYS[t.code]) | {"code", "future_tolerance_s"}
    for key in sorted(t.model_fields_set - mine):
        codes = [c for c, keys in TIME_KEYS.items() if key in keys]
        yield (
            ("time", key),
            f"'{key}' does not apply to the {t.code.upper()} time code",
            f"remove it, or use code: {' or '.join(codes)}",
        )
    need = {"counter": ("seconds",), "calendar": ("year", "doy", "hour", "minute", "second")}
    for key in need.get(t.code, ()):
        if getattr(t, key) is None:
            yield (("time",), f"the {t.code} time code needs '{key}'", f"name the {key} field")
    scales = (t.fraction_bits is not None) + (t.fraction_unit_s is not None)
    if t.code == "counter" and (t.fraction is not None, scales) not in ((False, 0), (True, 1)):
        yield (
            ("time",),
            "fraction goes with one of fraction_bits (a binary fraction) or fraction_unit_s "
            "(a decimal one)",
            "give fraction and one of them, or none of the three",
        )
    fields = {f.name: f for f in p.fields}
    refs = {"counter": ("seconds", "fraction", "week"), "calendar": TIME_KEYS["calendar"]}
    for key in refs.get(t.code, ()):
        name = getattr(t, key)
        f = fields.get(name) if name is not None else None
        if name is not None and f is None:
            yield (("time", key), f"'{name}' is not a field of this profile", "name a field")
        elif f is not None and (f.base not in "ui" or f.count is not None or f.is_octets):
            yield (
                ("time", key),
                f"'{name}' is {f.type}{'[]' if f.count else ''}, not an integer",
                "time fields are scalar integers (u1..u64, i1..i64)",
            )
    for i, f in enumerate(p.fields):
        if f.sample_rate_hz and f.count:
            span = f.count / f.sample_rate_hz
            if abs(span - p.expected_period_s) > 1e-6 * p.expected_period_s:
                yield (
                    ("fields", i, "sample_rate_hz"),
                    f"{f.count} samples at {f.sample_rate_hz:g} Hz span {span:g} s, but "
                    f"expected_period_s is {p.expected_period_s:g}",
                    "samples of successive packets must join up: count = rate x period",
                )


def _check_bits(p: Profile) -> Iterator[Finding]:
    bits = HEADER_BITS + 8 * p.time.octets
    for i, f in enumerate(p.fields):
        if f.is_subfield:
            continue  # bits of its parent, already counted
        yield from _check_byte_order(f, bits, ("fields", i, "endian"))
        bits += f.bits
    declared = p.packet_length * 8
    if bits != declared:
        octets, rest = divmod(bits, 8)
        got = f"{octets} octets" + (f" and {rest} bits" if rest else "")
        need = declared - bits
        fixes = []
        if 0 < need <= 64:
            fixes.append(
                f"add a spare field of {need} bits ({{name: spare, type: u{need}, ignore: true}})"
            )
        if rest:
            fixes.append(f"pad to whole octets and set packet_length: {octets + 1}")
        else:
            fixes.append(f"set packet_length: {octets}")
        yield (
            ("packet_length",),
            f"the header, time code and fields add up to {got}, "
            f"but packet_length is {p.packet_length} octets",
            ", or ".join(fixes),
        )


#: Telemetry columns beside the channels; ``__`` starts the suffixes of the stored columns
#: (``{channel}__state``, ``{field}__raw``, the bucket columns ``__min``...).
RESERVED_NAMES = ("time", "seq")


def _check_names(p: Profile) -> Iterator[Finding]:
    entries = [("fields", i, f.name) for i, f in enumerate(p.fields)]
    entries += [("derived", j, d.name) for j, d in enumerate(p.derived)]
    for section, k, name in entries:
        if name in RESERVED_NAMES or "__" in name:
            yield (
                (section, k, "name"),
                f"the name '{name}' is taken by the stored columns (time, seq, and every name "
                "with '__', which marks their suffixes)",
                f"choose another name, e.g. {name.replace('__', '_')}_value",
            )


def _check_byte_order(f: FieldSpec, bits: int, loc: tuple) -> Iterator[Finding]:
    """A byte order other than big needs whole octets on an octet boundary (every element)."""
    if f.endian == "little" and (bits % 8 or f.width % 8 or f.width < 16):
        yield (
            loc,
            "little endian needs a byte-aligned field of 16, 32 "
            f"or 64 bits; this one is {f.width} bits at bit {bits}",
            "use endian: big, or align it with a spare field",
        )
    elif f.endian not in ("big", "little"):
        n = len(f.endian)
        if f.width != 8 * n:
            yield (
                loc,
                f"byte order '{f.endian}' orders {n} octet(s), but {f.type} has {f.width} bits",
                f"give {f.width // 8} digits for a {f.type}"
                if f.width % 8 == 0
                else f"byte orders move whole octets: use a {f.base}{8 * n} or endian: big",
            )
        elif bits % 8:
            yield (
                loc,
                f"byte order '{f.endian}' needs a byte-aligned field; this one starts at bit "
                f"{bits}, {bits % 8} bit(s) into an octet",
                "align it with a spare field, or use endian: big",
            )


def _check_variable(p: Profile) -> Iterator[Finding]:
    """A variable-length array: one per packet, its count from an unsigned scalar before it
    (or ``rest``), and octet-aligned elements when fields follow it (they move per packet)."""
    seen: str | None = None
    before: dict[str, FieldSpec] = {}
    for i, f in enumerate(p.fields):
        if f.is_variable and seen is not None:
            yield (
                ("fields", i, "count_from"),
                f"'{seen}' is already the variable-length array of this packet",
                "one array per packet may vary in length; give this one a fixed count",
            )
        elif f.is_variable:
            yield from _check_one_variable(p, f, i, before)
            seen = f.name
        before[f.name] = f


def _check_one_variable(
    p: Profile, f: FieldSpec, i: int, before: dict[str, FieldSpec]
) -> Iterator[Finding]:
    loc = ("fields", i)
    if f.is_octets or f.axes:
        what = "a 2-D array (axes)" if f.axes else f"a {f.type} field"
        yield (
            (*loc, "count_from"),
            f"{what} cannot vary in length",
            f"declare the octets as {{name: {f.name}, type: u8, count: N, count_from: ...}}"
            if f.is_octets
            else "give it a fixed count, or one axis per field",
        )
        return
    if f.count is None:
        yield (
            (*loc, "count_from"),
            "a variable-length array needs count: N, the most elements a packet carries",
            "add count: N (packet_length is then the length of the longest packet)",
        )
    if f.is_subfield:
        yield ((*loc, "count_from"), "a sub-field has a fixed size", "remove count_from")
    if f.sample_rate_hz is not None:
        yield (
            (*loc, "sample_rate_hz"),
            "samples of successive packets join up only at a fixed count",
            "remove sample_rate_hz, or give the array a fixed count",
        )
    if f.count_from != REST:
        src = before.get(f.count_from or "")
        if src is None or src.count is not None or src.base != "u" or src.is_variable:
            scalars = sorted(n for n, g in before.items() if g.count is None and g.base == "u")
            what = (
                "not a field listed before it"
                if src is None
                else f"{src.type}{'[]' if src.count else ''}, not an unsigned scalar"
            )
            yield (
                (*loc, "count_from"),
                f"'{f.count_from}' is {what}",
                f"name the unsigned field that holds the count: {scalars}, or 'rest'"
                if scalars
                else "name an unsigned field listed before it that holds the count, or 'rest'",
            )
    after = [g.name for g in p.fields[i + 1 :] if not g.is_subfield]
    if after and f.width % 8:
        yield (
            (*loc, "type"),
            f"fields after a variable-length array move with its length, and must stay on "
            f"octet boundaries, but {f.type} elements are not whole octets ({after[0]!r} follows)",
            "use elements of whole octets (u8, i16, f32...), or list the array last",
        )


def _check_subfields(p: Profile) -> Iterator[Finding]:
    """A sub-field reads bits of a scalar integer field listed before it, inside its width."""
    before: dict[str, FieldSpec] = {}
    names = {f.name for f in p.fields}
    for i, f in enumerate(p.fields):
        loc = ("fields", i)
        if (f.of is None) != (f.bit is None):
            yield (
                (*loc, "of" if f.of is not None else "bit"),
                "a sub-field needs both 'of' (the field it reads) and 'bit' (where it starts)",
                "add bit: N (0 = the parent's most significant bit)"
                if f.of is not None
                else "add of: <the field it reads>",
            )
        elif f.of is not None:
            yield from _check_subfield(f, loc, before.get(f.of), f.of in names, before)
        before[f.name] = f


def _check_subfield(
    f: FieldSpec, loc: tuple, parent: FieldSpec | None, known: bool, before: dict
) -> Iterator[Finding]:
    if parent is None:
        if known:
            yield (
                (*loc, "of"),
                f"'{f.of}' is listed after its sub-field '{f.name}'",
                "list the parent field before its sub-fields",
            )
        else:
            scalars = sorted(
                n
                for n, g in before.items()
                if g.count is None and g.base in "ui" and not g.is_octets
            )
            yield (
                (*loc, "of"),
                f"'{f.of}' is not a field of this profile",
                f"name a field listed above: {scalars}" if scalars else "name a field above",
            )
        return
    if parent.is_subfield:
        yield (
            (*loc, "of"),
            f"'{parent.name}' is itself a sub-field of '{parent.of}'",
            f"count from the top field: of: {parent.of}, bit: {(parent.bit or 0) + (f.bit or 0)}",
        )
        return
    if parent.count is not None or parent.axes or parent.base == "f" or parent.is_octets:
        what = (
            "an array"
            if parent.count is not None or parent.axes
            else f"a {parent.type} field"
            if parent.is_octets
            else f"a float ({parent.type})"
        )
        yield (
            (*loc, "of"),
            f"'{parent.name}' is {what}, but a sub-field reads a scalar integer field",
            "name a scalar integer field (u1..u64, i1..i64)",
        )
        return
    if f.base == "f" or f.is_octets:
        yield ((*loc, "type"), "a sub-field is an integer", "use u1..u64 or i1..i64")
    if "endian" in f.model_fields_set:
        yield (
            (*loc, "endian"),
            "a sub-field has the byte order of its parent",
            "remove endian: 'bit' counts in the parent's value, whatever its byte order",
        )
    size = f.width * (f.count or 1)
    start = f.bit or 0
    if start + size > parent.width:
        yield (
            (*loc, "bit"),
            f"bits {start}..{start + size - 1} lie outside the {parent.width} bits of "
            f"'{parent.name}' ({parent.type})",
            f"use bit 0..{parent.width - size} (0 = the most significant bit)"
            if size <= parent.width
            else f"{size} bits do not fit in {parent.type}: use a narrower type",
        )


def _check_fields(p: Profile) -> Iterator[Finding]:
    fields = {f.name: f for f in p.channel_fields}
    declared = {f.name for f in p.fields} | {d.name for d in p.derived}
    seen: set[str] = set()
    for i, f in enumerate(p.fields):
        if f.name in seen:
            yield (
                ("fields", i, "name"),
                f"the name '{f.name}' is used twice",
                "give each field its own name",
            )
        seen.add(f.name)
        for axis in dict.fromkeys(f.axis_names) if f.axes else ():  # an axis twice: below
            if axis in declared or axis in FUNCTIONS or len(axis) > 63:
                what = (
                    "longer than 63 characters"
                    if len(axis) > 63
                    else "an expression function"
                    if axis in FUNCTIONS
                    else "already the name of a field or derived channel"
                )
                yield (
                    ("fields", i, "axes"),
                    f"the channel '{axis}' of this 2-D array is {what}",
                    "rename the field or the axis: each axis is a channel <name>_<axis>",
                )
            elif axis in seen:
                yield (
                    ("fields", i, "axes"),
                    f"the channel '{axis}' of this 2-D array is a channel of another one",
                    "rename the field or the axis: each axis is a channel <name>_<axis>",
                )
            seen.add(axis)
        yield from check_field(f, ("fields", i), fields)
    for j, d in enumerate(p.derived):
        if d.name in seen and not any(d.name in f.axis_names for f in p.fields if f.axes):
            yield (
                ("derived", j, "name"),
                f"the name '{d.name}' is already a channel",
                "give the derived channel its own name",
            )
        seen.add(d.name)


def check_field(f: FieldSpec, loc: tuple, fields: dict[str, FieldSpec] | None) -> Iterator[Finding]:
    """Mistakes within one field; ``fields`` (None when unknown) resolves limit contexts."""
    if f.name in FUNCTIONS:
        yield (
            (*loc, "name"),
            f"'{f.name}' is the name of an expression function",
            f"choose another name, e.g. {f.name}_value",
        )
    if f.ignore and f.sim is not None:
        yield ((*loc, "sim"), "an ignored field is not simulated", "remove the sim block")
    if f.ignore and (f.calibration or f.limits or f.enum):
        yield (
            loc,
            "an ignored field cannot have calibration, limits or enum",
            "remove 'ignore: true' or the other keys",
        )
    if f.base == "f" and (f.enum or f.calibration):
        yield (
            loc,
            f"a {f.type} field cannot have enum or calibration",
            "use an integer type, or drop the key",
        )
    if f.base == "f" and f.width not in (32, 64):
        yield ((*loc, "type"), f"type '{f.type}' is not a type", "use f32 or f64")
    if f.enum is not None and not f.is_octets:
        yield from _check_enum(f, (*loc, "enum"))
        if f.calibration or f.limits:
            yield (
                loc,
                "an enum field cannot also have calibration or limits",
                "alarm on enum states with a derived channel",
            )
    if f.sample_rate_hz is not None and f.count is None:
        yield (
            (*loc, "sample_rate_hz"),
            "sample_rate_hz needs an array field",
            "add count: N, the samples per packet",
        )
    yield from _check_octets(f, loc)
    yield from _check_axes(f, loc)
    if f.calibration is not None and not f.is_octets:
        yield from _check_calibration(f.calibration, (*loc, "calibration"))
    if f.limits is not None and not f.is_octets:
        yield from _check_limits(f.limits, (*loc, "limits"), fields)
    if f.sim is not None and not f.is_octets:
        yield from _check_sim(f.sim, (*loc, "sim"), f)
        yield from _check_loads(f.sim, (*loc, "sim", "loads"), f, fields)


def _check_loads(
    s: SimSpec, loc: tuple, f: FieldSpec, fields: dict[str, FieldSpec] | None
) -> Iterator[Finding]:
    for name in s.loads or {}:
        other = (fields or {}).get(name)
        if other is None or other.is_octets or other.count is not None or name == f.name:
            what = "this channel itself" if name == f.name else "not a scalar numeric channel"
            yield (
                (*loc, name),
                f"'{name}' is {what} of this profile",
                "name the switch channels (0 off, 1 on) whose loads this channel carries",
            )


#: The sim models of string, bytes and wide integer fields.
OCTET_SIM = ("constant", "random")


def _check_octets(f: FieldSpec, loc: tuple) -> Iterator[Finding]:
    """Strings, blobs and wide integers: a length where it belongs, no numeric keys."""
    sized = f.type in ("string", "bytes")
    given = f.model_fields_set
    if sized and f.length is None:
        yield (
            (*loc, "type"),
            f"a {f.type} field needs length: its octets in the packet",
            f"add length: N, e.g. {{name: {f.name}, type: {f.type}, length: 16}}",
        )
    if not sized and "length" in given:
        yield (
            (*loc, "length"),
            f"length applies to string and bytes fields, not to {f.type}",
            "remove it: the type gives the bits (count: N makes an array)",
        )
    if f.type != "string" and "encoding" in given:
        yield ((*loc, "encoding"), "encoding applies to string fields", "remove it")
    if not f.is_octets:
        return
    what = "text" if f.type == "string" else "octets, not a number"
    if f.count is not None:
        yield (
            (*loc, "count"),
            f"a {f.type} field is one value of {f.width // 8} octets; arrays of them are not "
            "supported",
            "declare one field per element, or use bytes with the whole length",
        )
    for key in ("calibration", "limits", "enum", "sample_rate_hz"):
        if key in given and getattr(f, key) is not None:
            yield (
                (*loc, key),
                f"a {f.type} field cannot have {key}: its value is {what}",
                "remove it; calibration, limits and rollups need a number of at most 64 bits",
            )
    if "endian" in given:
        yield (
            (*loc, "endian"),
            f"a {f.type} field is stored as its octets in the order they travel",
            "remove endian",
        )
    s = f.sim
    if s is not None and s.model not in OCTET_SIM:
        yield (
            (*loc, "sim", "model"),
            f"a {f.type} field is simulated by constant or random, not {s.model}",
            "use {model: constant, text: ...} (strings) or {model: random} (random octets)",
        )
    if s is not None and s.text is not None and f.type != "string":
        yield ((*loc, "sim", "text"), "text is the value of a string field", "remove it")
    if s is not None and s.text is not None and f.type == "string":
        try:
            size = len(s.text.encode(f.encoding))
        except UnicodeEncodeError:
            size = -1
        if not 0 <= size <= f.width // 8:
            yield (
                (*loc, "sim", "text"),
                f"'{s.text}' is not {f.encoding} text of at most {f.width // 8} octets",
                f"shorten it, or use encoding: utf-8 for text beyond {f.encoding}",
            )


def _check_axes(f: FieldSpec, loc: tuple) -> Iterator[Finding]:
    """A 2-D array: count samples of each axis, axes each named once, of a number type."""
    if "planar" in f.model_fields_set and not f.axes:
        yield (
            (*loc, "planar"),
            "planar applies to a 2-D array (axes)",
            "add axes: [x, y, z], or remove planar",
        )
    if not f.axes:
        return
    if f.is_subfield or f.is_octets:
        yield (
            (*loc, "axes"),
            f"a {'sub-field' if f.is_subfield else f.type + ' field'} cannot have axes",
            "give axes to an integer or float field of its own bits",
        )
        return
    if f.count is None:
        yield (
            (*loc, "axes"),
            "a 2-D array needs count: the samples of each axis",
            f"add count: N (N samples x {len(f.axes)} axes)",
        )
    twice = sorted({a for a in f.axes if f.axes.count(a) > 1})
    if twice:
        yield ((*loc, "axes"), f"axes {twice} are listed twice", "name each axis once")


def check_parts(data: dict) -> list[Finding]:
    """When the whole profile does not validate, still check each field and expression that does,
    so that one structural slip does not hide the other mistakes of the file."""
    found: list[Finding] = []
    for i, item in enumerate(data.get("fields") or [] if isinstance(data, dict) else []):
        try:
            f = FieldSpec.model_validate(item)
        except ValidationError:
            continue  # already reported by the whole-profile validation
        found.extend(check_field(f, ("fields", i), None))
    for j, item in enumerate(data.get("derived") or [] if isinstance(data, dict) else []):
        if isinstance(item, dict) and isinstance(item.get("expr"), str):
            try:
                parse(item["expr"])
            except ExpressionError as exc:
                found.append(_expr_finding(("derived", j, "expr"), exc))
    return found


def _expr_finding(loc: tuple, exc: ExpressionError) -> Finding:
    at = f" (column {exc.column} of the expression)" if exc.column else ""
    return (loc, f"{exc}{at}", exc.hint)


def _check_enum(f: FieldSpec, loc: tuple) -> Iterator[Finding]:
    """Every key a raw value or a range, inside the type, no raw value with two labels."""
    parsed: list[tuple[int, int, int | str, str]] = []
    for key, label in (f.enum or {}).items():
        try:
            parsed.append((*parse_key(key), key, label))
        except InputError as exc:
            what, _, hint = str(exc).partition("; ")
            yield ((*loc, str(key)), what, hint or None)
    lo, hi = _raw_range(f)
    bad = [k for a, b, k, _ in parsed if a < lo or b > hi]
    if bad:
        yield (loc, f"enum values {bad} do not fit in {f.type}", f"use values from {lo} to {hi}")
    for j, (a, b, key, _) in enumerate(parsed):
        for a2, b2, key2, label2 in parsed[:j]:
            if a <= b2 and a2 <= b:
                yield (
                    (*loc, str(key)),
                    f"enum {key} overlaps {key2} ({label2}): "
                    f"raw value {max(a, a2)} would have two entries",
                    "make the values and ranges disjoint; one label may have several entries",
                )
                break


def _enumeration(f: FieldSpec) -> Enumeration | None:
    """The states of an enum field, built from the keys that parse (the others are reported
    by _check_enum), so that one bad key does not stop the checks that use the labels."""
    if not f.enum:
        return None
    good = {}
    for key, label in f.enum.items():
        try:
            parse_key(key)
        except InputError:
            continue
        good[key] = label
    return Enumeration(good)


def _covers(states: Enumeration, value: float) -> bool:
    # Linear, not states.get: this runs before overlaps are ruled out.
    return any(s.lo <= value <= s.hi for s in states.states)


def _raw_range(f: FieldSpec) -> tuple[int, int]:
    if f.base == "u":
        return 0, (1 << f.width) - 1
    return -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1


def _check_calibration(c: Calibration, loc: tuple) -> Iterator[Finding]:
    given = [k for k in ("poly", "segments", "table") if getattr(c, k) is not None]
    if "outside" in c.model_fields_set and c.table is None:
        yield ((*loc, "outside"), "'outside' applies to table calibrations only", "remove it")
    if len(given) != 1:
        yield (
            loc,
            f"a calibration needs exactly one of poly, segments, table; got {given or 'none'}",
            "e.g. calibration: {poly: [0.0, 0.01]}",
        )
    if c.segments is not None:
        starts = [s.start for s in c.segments]
        if starts != sorted(set(starts)):
            yield (
                (*loc, "segments"),
                f"segment starts {starts} are not strictly increasing",
                "list segments in order of their start",
            )
    if c.table is not None:
        xs = [x for x, _ in c.table]
        if xs != sorted(set(xs)):
            yield (
                (*loc, "table"),
                "table raw values are not strictly increasing",
                "sort the table by raw value, one row per raw value",
            )


def _check_limits(
    lim: Limits, loc: tuple, fields: dict[str, FieldSpec] | None
) -> Iterator[Finding]:
    yield from _check_limit_set(lim, loc)
    for k, ctx in enumerate(lim.when):
        cloc = (*loc, "when", k)
        yield from _check_limit_set(ctx, cloc)
        if fields is None:
            continue
        src = fields.get(ctx.channel)
        if src is None or src.count is not None or src.ignore or src.is_octets:
            scalars = sorted(
                n for n, f in fields.items() if f.count is None and not f.ignore and not f.is_octets
            )
            yield (
                (*cloc, "channel"),
                f"'{ctx.channel}' is not a scalar field of this profile",
                f"use one of {scalars}",
            )
            continue
        states = _enumeration(src)
        if isinstance(ctx.equals, str) and (states is None or not states.ranges(ctx.equals)):
            yield (
                (*cloc, "equals"),
                f"'{ctx.equals}' is not a state of '{ctx.channel}'",
                f"use one of {states.labels if states else 'its numeric values'}",
            )
        elif (
            not isinstance(ctx.equals, str)
            and states is not None
            and not _covers(states, ctx.equals)
        ):
            yield (
                (*cloc, "equals"),
                f"{ctx.equals:g} is not a state of '{ctx.channel}'",
                f"use one of {states.labels} or {list(src.enum or {})} (a value in a range)",
            )


def _check_limit_set(s: LimitSet, loc: tuple) -> Iterator[Finding]:
    for colour in ("yellow", "red"):
        r = getattr(s, colour)
        if r is not None and None not in r and r[0] > r[1]:
            yield (
                (*loc, colour),
                f"{colour} low {r[0]} is above {colour} high {r[1]}",
                f"write {colour}: [{r[1]}, {r[0]}]",
            )
    if s.yellow and s.red:
        (ylo, yhi), (rlo, rhi) = s.yellow, s.red
        if ylo is not None and rlo is not None and rlo > ylo:
            yield (
                (*loc, "red"),
                f"red low {rlo} is inside the yellow range (yellow low {ylo})",
                "red must be outside yellow: red low <= yellow low",
            )
        if yhi is not None and rhi is not None and rhi < yhi:
            yield (
                (*loc, "red"),
                f"red high {rhi} is inside the yellow range (yellow high {yhi})",
                "red must be outside yellow: red high >= yellow high",
            )


def _check_sim(s: SimSpec, loc: tuple, f: FieldSpec) -> Iterator[Finding]:
    if s.model == "random" or s.text is not None:
        yield (
            (*loc, "model" if s.model == "random" else "text"),
            f"{'model random' if s.model == 'random' else 'text'} is for string, bytes and "
            "wide integer fields",
            "use a model of engineering values (constant, random_walk, ...)",
        )
    missing = [k for k in SIM_NEEDS[s.model] if getattr(s, k) is None]
    if missing:
        yield (
            loc,
            f"sim model '{s.model}' needs {', '.join(missing)}",
            f"add {', '.join(f'{k}: ...' for k in missing)}",
        )
    states = _enumeration(f)
    labels = states.labels if states is not None else []
    bad = [v for v in s.values or [] if isinstance(v, str) and v not in labels]
    if bad:
        yield (
            (*loc, "values"),
            f"{bad} are not states of '{f.name}'",
            f"use {sorted(labels)} or numbers" if labels else "use numbers",
        )
    if s.model == "seismic" and f.count is None:
        yield (loc, "sim model 'seismic' makes sample arrays", "add count and sample_rate_hz")


def _check_derived(p: Profile) -> Iterator[Finding]:
    known = {f.name: f for f in p.channel_fields if not f.ignore and not f.is_octets}
    octets = {f.name: f.type for f in p.fields if f.is_octets and not f.ignore}
    fields = {f.name: f for f in p.channel_fields}
    for j, d in enumerate(p.derived):
        loc = ("derived", j, "expr")
        try:
            expr = parse(d.expr)
        except ExpressionError as exc:
            yield _expr_finding(loc, exc)
        else:
            unknown = sorted(expr.names - known.keys() - {x.name for x in p.derived[:j]})
            texts = [n for n in unknown if n in octets]
            if texts:
                yield (
                    loc,
                    f"{texts} in '{d.expr}' are {', '.join(octets[n] for n in texts)} fields, "
                    "not numbers",
                    "expressions compute with numeric fields only",
                )
                unknown = [n for n in unknown if n not in octets]
            if unknown:
                yield (
                    loc,
                    f"unknown channel(s) {unknown} in '{d.expr}'",
                    "use field names defined above, or earlier derived channels",
                )
            for name, k in sorted(expr.indexed):
                count = known[name].count if name in known else None
                if name in known and (count is None or not -count <= k < count):
                    what = "not an array" if count is None else f"an array of {count}"
                    yield (
                        loc,
                        f"'{name}[{k}]': '{name}' is {what}",
                        "index arrays from 0 to count - 1, and scalars not at all",
                    )
        if d.limits is not None:
            yield from _check_limits(d.limits, ("derived", j, "limits"), fields)


def _check_detectors(p: Profile) -> Iterator[Finding]:
    channels = {f.name for f in p.channel_fields if not f.ignore and not f.is_octets}
    channels |= {d.name for d in p.derived}
    for k, det in enumerate(p.detectors):
        loc = ("detectors", k)
        if det.channel not in channels:
            yield (
                (*loc, "channel"),
                f"'{det.channel}' is not a channel of this profile",
                f"use one of {sorted(channels)}",
            )
        if det.sta_s >= det.lta_s:
            yield (
                (*loc, "sta_s"),
                f"sta_s {det.sta_s} must be shorter than lta_s {det.lta_s}",
                "typical seismic values: sta_s: 1, lta_s: 30",
            )
        if det.off >= det.on:
            yield (
                (*loc, "off"),
                f"off {det.off} must be below on {det.on}",
                "typical values: on: 4, off: 1.5",
            )
