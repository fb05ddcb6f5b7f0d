"""Definition import, the shared part: the fields an importer mapped (one ``Draft`` per packet)
finished into a profile (names, time code, padding, the sample's lengths) and written as YAML.

The XTCE and CSV readers only map their format's constructs to ``Mapped`` fields and notes
(``ImportNote``); everything a profile needs beyond that is decided here, once, for both.
"""

from __future__ import annotations

import datetime as dt
import json
import keyword
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ilrs_ops.errors import InputError
from ilrs_ops.profiles._expr import FUNCTIONS
from ilrs_ops.profiles._schema import ID, NAME, REST, TimeCode

HEADER_BITS = 48
MAX_WIDTH = 64
MAX_COUNT = 4096
#: Names a field cannot take: the telemetry table's own columns, the expression functions and
#: Python's words (an expression could not name the channel).
RESERVED = {"time", "seq", *FUNCTIONS, *keyword.kwlist, *keyword.softkwlist}
#: Parameters that say by their name that they hold nothing (CTIM's SPARE_8, REUSABLE_SPARE_1).
SPARE_NAME = re.compile(r"^(reusable_)?spare(_?\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class CheckOption:
    """``--integrity``: the check the packets carry, which a definition does not say (XTCE
    names the parameter, not how it is computed); ``field`` is the definition's name of it."""

    check: str
    field: str
    start: int = 0


@dataclass(frozen=True)
class ImportOptions:
    """What the person importing says that the definition does not: who the instruments belong
    to, which packets to take, their clock and rate."""

    partner: str
    apid: int | None = None
    instrument: str | None = None
    name: str | None = None
    kind: str = "unknown"
    period_s: float = 1.0
    root_container: str | None = None
    time: TimeCode = field(default_factory=lambda: TimeCode(code="none"))
    integrity: CheckOption | None = None

    def __post_init__(self) -> None:
        for key in ("partner", "kind", "instrument"):
            value = getattr(self, key)
            if value is not None and not re.match(ID, value):
                raise InputError(
                    f"{key} {value!r}: use lower-case letters, digits and '-' (e.g. lasp)"
                )
        if not self.period_s > 0:
            raise InputError(f"the period must be > 0 s, not {self.period_s}")
        if self.apid is not None and not 0 <= self.apid <= 0x7FD:
            raise InputError(f"APID {self.apid}: use 0..0x7FD (0x7FE, 0x7FF are reserved)")


@dataclass(frozen=True)
class ImportNote:
    """One thing the import could not map as it stands, and what it did instead."""

    where: str  # file:line
    subject: str  # "container X", "parameter Y of container X", "CSV"
    construct: str  # what the definition says there
    action: str  # what the profile does instead
    names: tuple[str, ...] = ()  # the parameters concerned, when several share the note

    def __str__(self) -> str:
        who = self.subject
        if self.names:
            shown = ", ".join(self.names[:12]) + (", ..." if len(self.names) > 12 else "")
            who += f" ({len(self.names)}: {shown})" if len(self.names) > 1 else f" ({shown})"
        return f"{self.where}: {who}: {self.construct}; {self.action}"


def add_note(notes: list[ImportNote], note: ImportNote) -> None:
    """Append ``note``, folded into the one before when only the parameter differs, so that 48
    strings in a row are one line that names them all, not 48 lines."""
    if notes and note.names:
        last = notes[-1]
        if (last.subject, last.construct, last.action) == (
            note.subject,
            note.construct,
            note.action,
        ):
            notes[-1] = replace(last, names=last.names + note.names)
            return
    notes.append(note)


@dataclass
class Mapped:
    """One field as mapped from the definition, before its final name is chosen."""

    origin: str  # the definition's name
    type: str  # u1..u64, i2..i64, f32, f64; string, bytes (with length), u72..u512
    count: int | None = None
    length: int | None = None  # string, bytes: octets
    encoding: str | None = None  # string: ascii or utf-8 (None: the default, ascii)
    endian: str = "big"
    units: str | None = None
    description: str | None = None
    ignore: bool = False
    enum: dict[int, str] | None = None
    calibration: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None  # ``when`` entries name the context by origin
    name: str = ""
    #: A variable-length array: the origin of its count field, or ``rest``; ``count`` (the
    #: most elements) is decided when the draft is finished.
    count_from: str | None = None

    @property
    def bits(self) -> int:
        if self.type in ("string", "bytes"):
            return 8 * (self.length or 0)
        return int(self.type[1:]) * (self.count or 1)


def spares(origin: str, bits: int, description: str | None = None) -> list[Mapped]:
    """``bits`` of something we cannot decode yet as ignored u-fields of at most 64 bits each."""
    out = []
    for k in range(math.ceil(bits / MAX_WIDTH)):
        width = min(MAX_WIDTH, bits - k * MAX_WIDTH)
        part = origin if bits <= MAX_WIDTH else f"{origin}_{k}"
        out.append(Mapped(part, f"u{width}", ignore=True, description=description))
    return out


@dataclass
class DraftVariant:
    """One layout of an APID that carries several (an XTCE container inheriting the common one
    with a restriction on a field): the selector's raw values that choose it, as inclusive
    ranges, and its fields after the common ones."""

    source: str  # container name
    where: str  # file:line of it
    values: list[tuple[int, int]]
    fields: list[Mapped]


@dataclass
class Draft:
    """One packet of the definition (an XTCE container, a CSV file) as mapped fields: the user
    data field right after the 48-bit primary header, in order. With ``variants``, ``fields``
    are the common part and ``selector`` the origin of the common field that chooses."""

    source: str  # container name, or the CSV's file name
    where: str  # file:line of it
    apid: int
    fields: list[Mapped]
    title: str | None = None  # a short human name, when the definition has one
    description: str | None = None
    notes: list[ImportNote] = field(default_factory=list)
    what: str = "container"  # what ``source`` is: an XTCE "container", a "CSV" file
    selector: str | None = None
    variants: list[DraftVariant] = field(default_factory=list)


def normal_name(origin: str) -> str:
    """``origin`` under our field-name rule ``^[a-z][a-z0-9_]{0,62}$``."""
    name = re.sub(r"[^a-z0-9_]", "_", origin.strip().lower())
    name = re.sub(r"_{2,}", "_", name)  # '__' marks the stored columns' suffixes (x__raw)
    if not re.match(r"[a-z]", name):
        name = "p_" + name
    name = name[:63]
    if name in RESERVED or name.endswith("__state"):
        name = name[:57] + "_value"
    return name


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    k = 2
    while (candidate := f"{name[: 62 - len(str(k))]}_{k}") in taken:
        k += 1
    return candidate


@dataclass
class FinishedVariant:
    """A variant of a finished profile: its name, selector value(s), length and own fields."""

    name: str
    value: int | str | list[int | str]
    packet_length: int
    fields: list[Mapped]


@dataclass
class Finished:
    """A draft turned into a profile: the data for its YAML, and what a person should review."""

    draft: Draft
    instrument: str
    name: str
    data: dict[str, Any]
    fields: list[Mapped]
    notes: list[ImportNote]
    renamed: dict[str, str]  # origin -> name, for the fields whose name changed beyond case
    selector: str | None = None
    variants: list[FinishedVariant] = field(default_factory=list)

    def variants_data(self) -> dict[str, Any] | None:
        """The ``variants`` block as the profile has it (None without variants)."""
        if not self.variants:
            return None
        cases = [
            {
                "name": v.name,
                "value": v.value,
                "packet_length": v.packet_length,
                "fields": [field_data(f) for f in v.fields],
            }
            for v in self.variants
        ]
        return {"selector": self.selector, "cases": cases}

    @property
    def channels(self) -> int:
        """The stored channels: every field not ignored, a name shared by variants once."""
        names = {f.name for f in self.fields if not f.ignore}
        names |= {f.name for v in self.variants for f in v.fields if not f.ignore}
        return len(names)


def finish(
    draft: Draft,
    opts: ImportOptions,
    *,
    instrument: str,
    name: str,
    lengths: Counter[int] | None,
) -> Finished | ImportNote:
    """The profile of ``draft``; an ImportNote instead when nothing of it can be a profile.
    ``lengths`` counts the sample's packets of this APID by length (None: no sample given)."""
    where, subject = draft.where, f"{draft.what} {draft.source}"
    fields = [replace(f) for f in draft.fields]
    notes: list[ImportNote] = []
    _consume_time(fields, opts.time, notes, where, subject)
    lead = len(notes)
    notes += draft.notes
    renamed = _name_fields(fields, notes, where, subject, lead)
    _resolve_contexts(fields, notes, where, subject)
    if draft.variants:
        return _finish_variants(draft, opts, fields, notes, renamed, instrument, name, lengths)
    variable = _size_variable(fields, 8 * opts.time.octets, lengths, notes, where, subject)
    bits = HEADER_BITS + 8 * opts.time.octets + sum(f.bits for f in fields)
    taken = {f.name for f in fields}
    octets = math.ceil(bits / 8)
    check = opts.integrity.field if opts.integrity is not None else None
    if lengths and not variable:
        octets = _against_sample(draft, bits, octets, lengths, fields, taken, notes, check)
    end = HEADER_BITS + 8 * opts.time.octets + sum(f.bits for f in fields)
    if end % 8:
        pad = 8 - end % 8
        fields.append(Mapped("", f"u{pad}", ignore=True, name=_unique("spare_pad", taken)))
        taken.add(fields[-1].name)
        notes.append(
            ImportNote(
                where,
                subject,
                f"the fields end {end % 8} bits into an octet ({end} bits)",
                f"padded with a spare field of {pad} bits ({fields[-1].name}) to whole octets",
            )
        )
    if not fields:
        return ImportNote(
            where,
            subject,
            "no field after the primary header and the time code",
            "skipped: a profile needs at least one field",
        )
    if octets > 65542:
        return ImportNote(
            where, subject, f"{octets} octets, more than a space packet holds", "skipped"
        )
    data: dict[str, Any] = {
        "instrument": instrument,
        "partner": opts.partner,
        "name": name,
        "kind": opts.kind,
    }
    if draft.description:
        data["description"] = draft.description
    data |= {
        "apid": draft.apid,
        "packet_length": octets,
        "expected_period_s": opts.period_s,
        "time": _time_data(opts.time),
    }
    integrity = _integrity(opts, [fields], notes, where, subject)
    if integrity is not None:
        data["integrity"] = integrity
    return Finished(draft, instrument, name, data, fields, notes, renamed)


def _integrity(
    opts: ImportOptions,
    layouts: list[list[Mapped]],
    notes: list[ImportNote],
    where: str,
    subject: str,
) -> dict[str, Any] | None:
    """``integrity:`` for ``--integrity`` when every layout (one, or each variant's common and
    own fields) has its field as the check needs it; else None and a note saying why."""
    from pipelines.integrity import WIDTH

    c = opts.integrity
    if c is None:
        return None
    want = WIDTH[c.check]
    name = None
    for fields in layouts:
        bit = HEADER_BITS + 8 * opts.time.octets
        found = None
        for f in fields:
            if f.origin == c.field:
                found = f
                break
            bit += f.bits
        if found is None:
            notes.append(
                ImportNote(
                    where, subject, f"no parameter {c.field} (--integrity)", "no check declared"
                )
            )
            return None
        if found.type != f"u{want}" or found.count is not None or found.endian != "big" or bit % 8:
            notes.append(
                ImportNote(
                    where,
                    subject,
                    f"{c.field} is {found.type} at bit {bit}; {c.check} needs a big-endian "
                    f"u{want} on an octet boundary",
                    "no check declared",
                    (found.name,),
                )
            )
            return None
        if c.start >= bit // 8:
            notes.append(
                ImportNote(
                    where,
                    subject,
                    f"--integrity start {c.start} is not before {c.field} (octet {bit // 8})",
                    "no check declared",
                )
            )
            return None
        name = found.name
    return {"check": c.check, "field": name} | ({"start": c.start} if c.start else {})


def _finish_variants(
    draft: Draft,
    opts: ImportOptions,
    fields: list[Mapped],
    notes: list[ImportNote],
    renamed: dict[str, str],
    instrument: str,
    name: str,
    lengths: Counter[int] | None,
) -> Finished | ImportNote:
    """The profile of a draft with variants: ``fields`` (named) are the common part; each
    variant's fields are named, sized and padded after them, and a name two variants share
    is one channel only when both declare it alike (else the later one is renamed)."""
    where, subject = draft.where, f"{draft.what} {draft.source}"
    selector = next((f for f in fields if f.origin == draft.selector), None)
    if selector is None:
        return ImportNote(
            where,
            subject,
            f"the variants' selector {draft.selector} lies in the time code",
            "skipped: the selector must be a field; give another --time",
        )
    time_bits = 8 * opts.time.octets
    common = {f.name for f in fields}
    seen: dict[str, dict[str, Any]] = {}  # a variant field's name -> its declaration
    made: list[FinishedVariant] = []
    case_names: set[str] = set()
    unfit: Counter[int] = Counter(lengths or {})
    for v in draft.variants:
        vsubject = f"container {v.source}"
        own = [replace(f) for f in v.fields]
        renamed |= _name_fields(own, notes, v.where, vsubject, len(notes), taken=common)
        _resolve_contexts(own, notes, v.where, vsubject, scope=fields)
        flat = [*fields, *own]
        _size_variable(flat, time_bits, lengths, notes, v.where, vsubject)
        end = HEADER_BITS + time_bits + sum(f.bits for f in flat)
        taken = common | {f.name for f in own}
        if end % 8:
            pad = 8 - end % 8
            own.append(Mapped("", f"u{pad}", ignore=True, name=_unique("spare_pad", taken)))
            notes.append(
                ImportNote(
                    v.where,
                    vsubject,
                    f"the fields end {end % 8} bits into an octet ({end} bits)",
                    f"padded with a spare field of {pad} bits ({own[-1].name}) to whole octets",
                )
            )
            end += pad
        for f in own:
            decl = _declaration(f)
            if f.name in seen and seen[f.name] != decl:
                old = f.name
                f.name = _unique(old, common | set(seen) | {g.name for g in own})
                for g in own:
                    if g.count_from == old:
                        g.count_from = f.name
                notes.append(
                    ImportNote(
                        v.where,
                        vsubject,
                        "a name another variant gives a field declared otherwise",
                        "renamed: variants share a channel only when declared alike",
                        (f"{old} -> {f.name}",),
                    )
                )
        for f in own:
            seen.setdefault(f.name, _declaration(f))
        octets = end // 8
        for length in list(unfit):
            if _fits(length, octets, flat, time_bits):
                del unfit[length]
        case = _unique(normal_name(v.source), case_names)
        case_names.add(case)
        made.append(FinishedVariant(case, _value_data(v.values), octets, own))
    if unfit:
        seen_text = ", ".join(f"{n} of {length} octets" for length, n in sorted(unfit.items()))
        notes.append(
            ImportNote(
                where,
                f"{subject} (APID {draft.apid})",
                f"the sample has packets of lengths no variant has ({seen_text})",
                f"{sum(unfit.values())} packet(s) will be quarantined as bad_length",
            )
        )
    longest = max(v.packet_length for v in made)
    if longest > 65542:
        return ImportNote(
            where, subject, f"{longest} octets, more than a space packet holds", "skipped"
        )
    data: dict[str, Any] = {
        "instrument": instrument,
        "partner": opts.partner,
        "name": name,
        "kind": opts.kind,
    }
    if draft.description:
        data["description"] = draft.description
    data |= {"apid": draft.apid, "expected_period_s": opts.period_s, "time": _time_data(opts.time)}
    layouts = [[*fields, *v.fields] for v in made]
    integrity = _integrity(opts, layouts, notes, where, subject)
    if integrity is not None:
        data["integrity"] = integrity
    return Finished(draft, instrument, name, data, fields, notes, renamed, selector.name, made)


def _declaration(f: Mapped) -> dict[str, Any]:
    """What a field's YAML says but its name: two variants' fields alike in it are one channel."""
    return {k: v for k, v in field_data(f).items() if k != "name"} | {"ignore": _ignored(f)}


def _ignored(f: Mapped) -> bool:
    """Whether the field ends up ignored: marked so, or named as a spare (``_name_fields``)."""
    return f.ignore or bool(
        SPARE_NAME.match(f.origin) and not (f.enum or f.calibration or f.limits)
    )


def _fits(length: int, octets: int, fields: list[Mapped], time_bits: int) -> bool:
    """Whether a packet of ``length`` octets is one of this layout (``octets`` long, or shorter
    by whole elements of its variable-length array)."""
    if length == octets:
        return True
    var = next((f for f in fields if f.count_from is not None), None)
    if var is None or length > octets:
        return False
    room = 8 * length - HEADER_BITS - time_bits - sum(f.bits for f in fields if f is not var)
    return room >= 0 and room % int(var.type[1:]) == 0


def _value_data(values: list[tuple[int, int]]) -> int | str | list[int | str]:
    """Selector ranges as a variant's ``value``: 1, '2..255', or a list of those."""
    items: list[int | str] = [lo if lo == hi else f"{lo}..{hi}" for lo, hi in values]
    return items[0] if len(items) == 1 else items


def _name_fields(
    fields: list[Mapped],
    notes: list[ImportNote],
    where: str,
    subject: str,
    lead: int,
    *,
    taken: set[str] | None = None,
) -> dict[str, str]:
    """Our names for the fields (notes on each rename, one on all lower-casing, inserted at
    ``lead``); spares by name marked ignored. ``taken``: names already used (the common part of
    variants). Returns origin -> name where more than case changed."""
    taken = set(taken or ())
    renamed: dict[str, str] = {}
    cased = False
    for f in fields:
        base = normal_name(f.origin)
        f.name = _unique(base, taken)
        taken.add(f.name)
        if f.name == f.origin.lower():
            cased = cased or f.name != f.origin
            continue
        renamed.setdefault(f.origin, f.name)
        why = (
            "used twice in the packet"
            if f.name != base
            else "reserved (a column, an expression function or a Python word)"
            if base.removesuffix("_value") in RESERVED
            else "with '__', which marks the stored columns' suffixes (x__raw, x__state)"
            if "__" in f.origin
            else f"outside our name rule {NAME}"
        )
        add_note(
            notes,
            ImportNote(where, subject, f"a name {why}", "renamed", (f"{f.origin} -> {f.name}",)),
        )
    for f in fields:
        if (
            SPARE_NAME.match(f.origin)
            and not f.ignore
            and not (f.enum or f.calibration or f.limits)
        ):
            f.ignore = True
            add_note(
                notes,
                ImportNote(
                    where,
                    subject,
                    "a parameter named as a spare",
                    "kept as spare bits (ignore: true); remove ignore to store it",
                    (f.name,),
                ),
            )
    if cased:
        notes.insert(
            lead,
            ImportNote(
                where, subject, "names with capitals", "lower-cased: our field names are lower case"
            ),
        )
    return renamed


def _consume_time(
    fields: list[Mapped], t: TimeCode, notes: list[ImportNote], where: str, subject: str
) -> None:
    """A CUC or CDS code is read from the octets right after the primary header, so the fields
    the definition has there are not fields of the profile too."""
    need = 8 * t.octets
    if not need:
        if t.code == "none":
            notes.append(
                ImportNote(
                    where,
                    subject,
                    "the definition does not say which clock the packets carry",
                    "time: {code: none} (the receive time); point time at the packet's clock, e.g. "
                    "--time cds:days=2,subms=2 or --time cuc:coarse=4,fine=2 when the octets after "
                    "the primary header are a CCSDS time code",
                )
            )
        return
    used, k = 0, 0
    while k < len(fields) and used < need:
        used += fields[k].bits
        k += 1
    if used != need:
        raise InputError(
            f"{where}: {subject}: the {t.code.upper()} time code takes the {t.octets} octets "
            f"after the primary header, but they end inside field "
            f"{fields[k - 1].origin if k else '(none)'} (the fields there give {used} bits); "
            "choose a time code that ends on a field boundary"
        )
    dropped = [f.origin or f.name for f in fields[:k]]
    del fields[:k]
    notes.append(
        ImportNote(
            where,
            subject,
            f"{', '.join(dropped)} ({need} bits after the primary header)",
            f"read as the {t.code.upper()} time code ({_time_words(t)}), not kept as fields",
        )
    )


def _time_words(t: TimeCode) -> str:
    if t.code == "cuc":
        return f"coarse {t.coarse}, fine {t.fine} octets"
    return f"days {t.days}, ms 4, subms {t.subms} octets"


def _time_data(t: TimeCode) -> dict[str, Any]:
    return {"code": t.code} | {k: getattr(t, k) for k in sorted(t.model_fields_set - {"code"})}


def _resolve_contexts(
    fields: list[Mapped],
    notes: list[ImportNote],
    where: str,
    subject: str,
    *,
    scope: list[Mapped] | None = None,
) -> None:
    """Context limits name their channel by the definition's name; give them ours, or drop the
    ones whose channel is not a stored scalar field of the same packet (of ``scope``, when
    given: a variant's limits take their context from the common part)."""
    by_origin: dict[str, Mapped] = {}
    for f in fields if scope is None else scope:
        by_origin.setdefault(f.origin, f)
    for f in fields:
        if not f.limits or "when" not in f.limits:
            continue
        kept = []
        for ctx in f.limits["when"]:
            src = by_origin.get(ctx["channel"])
            if src is None or src.ignore or src.count is not None:
                add_note(
                    notes,
                    ImportNote(
                        where,
                        subject,
                        f"a context alarm on {f.origin} when {ctx['channel']} == {ctx['equals']}",
                        "dropped: that parameter is not a stored scalar field of this packet",
                        (f.name,),
                    ),
                )
                continue
            equals = ctx["equals"]
            if isinstance(equals, str) and equals not in (src.enum or {}).values():
                try:
                    equals = float(equals)
                except ValueError:
                    add_note(
                        notes,
                        ImportNote(
                            where,
                            subject,
                            f"a context alarm on {f.origin} when {ctx['channel']} == {equals!r}",
                            f"dropped: {equals!r} is not a state of {src.name}",
                            (f.name,),
                        ),
                    )
                    continue
            if isinstance(equals, float) and equals.is_integer():
                equals = int(equals)
            if any(k["channel"] == src.name and k["equals"] == equals for k in kept):
                add_note(
                    notes,
                    ImportNote(
                        where,
                        subject,
                        f"two context alarms on {f.origin} for {src.name} == {equals}",
                        "kept the first",
                        (f.name,),
                    ),
                )
                continue
            kept.append({**ctx, "channel": src.name, "equals": equals})
        f.limits = {k: v for k, v in f.limits.items() if k != "when"} | (
            {"when": kept} if kept else {}
        )
        if not f.limits:
            f.limits = None


def _size_variable(
    fields: list[Mapped],
    time_bits: int,
    lengths: Counter[int] | None,
    notes: list[ImportNote],
    where: str,
    subject: str,
) -> bool:
    """Give the variable-length array (if any) our name of its count field and its most
    elements: enough for the sample's longest packet, or the most a space packet holds."""
    var = next((f for f in fields if f.count_from is not None), None)
    if var is None:
        return False
    if var.count_from != REST:
        at = fields.index(var)
        src = next((f for f in fields[:at] if f.origin == var.count_from), None)
        if src is None or src.count is not None or src.type[0] != "u":
            add_note(
                notes,
                ImportNote(
                    where,
                    subject,
                    f"an array sized by {var.count_from}, not an unsigned field before it",
                    "sized by the rest of the packet instead (count_from: rest)",
                    (var.name,),
                ),
            )
            var.count_from = REST
        else:
            var.count_from = src.name
    width = int(var.type[1:])
    fixed = HEADER_BITS + time_bits + sum(f.bits for f in fields if f is not var)
    if lengths:
        longest = max(lengths)
        most = max(1, (8 * longest - fixed) // width)
        why = f"enough for the sample's longest packet ({longest} octets)"
    else:
        most = (8 * 65542 - fixed) // width
        why = "the most a space packet holds; no sample to say how many the instrument sends"
    most = max(1, min(most, MAX_COUNT))
    last = fields[-1] is var
    while last and width % 8 and (fixed + most * width) % 8 and most > 1:
        most -= 1  # the longest packet in whole octets: elements narrower than octets
    var.count = most
    add_note(
        notes,
        ImportNote(
            where,
            subject,
            f"an array of variable length (count_from: {var.count_from})",
            f"count: {most} at most, {why}; lower it to the instrument's most",
            (var.name,),
        ),
    )
    return True


def _against_sample(
    draft: Draft,
    bits: int,
    octets: int,
    lengths: Counter[int],
    fields: list[Mapped],
    taken: set[str],
    notes: list[ImportNote],
    check: str | None = None,
) -> int:
    """The packet length the sample's packets need; notes where it differs from the definition.
    Bits the definition lacks go before its last field when that is the ``--integrity`` field
    (``check``): a packet's check value is in its last octets."""
    where, subject = draft.where, f"{draft.what} {draft.source} (APID {draft.apid})"
    common = lengths.most_common(1)[0][0]
    total = sum(lengths.values())
    seen = ", ".join(f"{n} of {length} octets" for length, n in sorted(lengths.items()))
    if common > octets:  # not just the padding to whole octets: bits the definition lacks
        short = common * 8 - bits
        pad_fields = spares("spare_tail", short)
        for f in pad_fields:
            f.name = _unique(f.origin, taken)
            taken.add(f.name)
        last = fields[-1] if fields and check is not None and fields[-1].origin == check else None
        names = ", ".join(f.name for f in pad_fields)
        if last is not None:
            fields[-1:] = [*pad_fields, last]
            place = (
                f"a spare of {short} bits ({names}) before {last.name}, the --integrity check "
                "value, which is in the packets' last octets"
            )
        else:
            fields.extend(pad_fields)
            place = f"a trailing spare of {short} bits ({names})"
        notes.append(
            ImportNote(
                where,
                subject,
                f"the sample's packets are {common} octets ({common * 8} bits; {seen}), the "
                f"definition gives {bits} bits: {short} bits short",
                f"padded with {place}, so they decode; ask the partner which field is missing",
            )
        )
        octets = common
    elif common < octets:
        notes.append(
            ImportNote(
                where,
                subject,
                f"the sample's packets are {common} octets ({seen}), shorter than the definition's "
                f"{octets}",
                "kept the definition's length: those packets will be quarantined as bad_length",
            )
        )
    others = total - lengths[octets]
    if len(lengths) > 1:
        notes.append(
            ImportNote(
                where,
                subject,
                f"the sample has packets of {len(lengths)} lengths on this APID ({seen})",
                f"a profile has one length: {others} packet(s) not of {octets} octets will be "
                "quarantined as bad_length (the definition has one layout for them, and "
                "variants are chosen by a field, not by the length)",
            )
        )
    return octets


# ---------------------------------------------------------------------------- the YAML text


def field_data(f: Mapped) -> dict[str, Any]:
    """The field as the profile's YAML has it (the keys a person would write, in that order)."""
    item: dict[str, Any] = {"name": f.name, "type": f.type}
    for key in (
        "length",
        "encoding",
        "count",
        "count_from",
        "units",
        "enum",
        "calibration",
        "limits",
        "description",
    ):
        if getattr(f, key) is not None:
            item[key] = getattr(f, key)
    if f.endian != "big":
        item["endian"] = f.endian
    if f.ignore:
        item["ignore"] = True
    return item


def profile_text(done: Finished, header: list[str]) -> str:
    """The profile as YAML a person can read and edit: ``header`` as the comment block, the
    top-level keys one per line, each field one flow mapping on its own line."""
    lines = []
    for h in header:
        indent = "    " if h.startswith("- ") else "  "
        wrapped = textwrap.wrap(
            h, 96, initial_indent="", subsequent_indent=indent, break_on_hyphens=False
        )
        lines += [f"# {w}".rstrip() for w in wrapped or [""]]
    for key, value in done.data.items():
        if key == "apid":
            lines.append(f"apid: {value:#05x}  # {value}")
        else:
            lines.append(f"{key}: {_flow(value)}")
    lines.append("fields:")
    lines += _field_lines(done.fields, "  ")
    if done.variants:
        lines += ["variants:", f"  selector: {done.selector}", "  cases:"]
        for v in done.variants:
            lines += [
                f"    - name: {v.name}",
                f"      value: {_flow(v.value)}",
                f"      packet_length: {v.packet_length}",
                "      fields:",
                *_field_lines(v.fields, "        "),
            ]
    return "\n".join(lines) + "\n"


def _field_lines(fields: list[Mapped], indent: str) -> list[str]:
    """Each field one flow mapping on its own line, the definition's name as a comment when
    ours differs beyond case."""
    out = []
    for f in fields:
        was = f"  # {f.origin}" if f.origin and f.origin.lower() != f.name else ""
        out.append(f"{indent}- {_flow(field_data(f))}{was}")
    return out


_PLAIN = re.compile(r"[A-Za-z][\w./+-]*( [\w./+-]+)*")
_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf"}


def _flow(value: Any) -> str:
    """``value`` in YAML flow style (JSON's double-quoted strings are YAML's too)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def header_lines(
    done: Finished,
    *,
    kind: str,
    source: Path,
    digest: str,
    tool: str,
    when: dt.datetime,
    sample: str | None = None,
) -> list[str]:
    """The comment block at the top of an imported profile: where it came from, when, and what
    a person should review before it goes into operations (``sample``: what the sample held)."""
    d = done.draft
    out = [
        f"{done.instrument}: {done.name}",
        f"  Imported from {kind} {source.name} (sha256 {digest[:16]}...), {d.what} {d.source} at "
        f"{d.where}, by `ilrs-ops profiles import` ({tool}) at {when:%Y-%m-%dT%H:%M:%SZ}."
        + (f" {sample}." if sample else ""),
        "Review before use:",
        "- name, kind and expected_period_s: the import's defaults unless given; check them",
    ]
    every = [*done.fields, *(f for v in done.variants for f in v.fields)]
    if any(f.calibration or f.limits for f in every):
        out.append("- calibrations and limits: the definition's, in its engineering units")
    for note in done.notes:
        names = ", ".join(note.names[:6]) + (", ..." if len(note.names) > 6 else "")
        out.append(f"- {note.construct}: {note.action}" + (f" [{names}]" if names else ""))
    return out
