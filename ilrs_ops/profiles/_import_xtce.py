"""Definition import, XTCE: the packets of an XTCE document, read with space-packet-parser, as
drafts of profiles (one per APID) and notes on what could not be mapped.

space-packet-parser reads the structure (containers, parameters, encodings, calibrators); it
does not model alarms or keep line numbers, so the same document is also parsed with lxml, for
the alarm ranges and to say where each thing is. Both are imported inside ``read_xtce``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilrs_ops.errors import DefinitionError
from ilrs_ops.profiles._draft import (
    HEADER_BITS,
    MAX_WIDTH,
    Draft,
    ImportNote,
    ImportOptions,
    Mapped,
    add_note,
    spares,
)
from ilrs_ops.profiles._schema import WIDE_BITS

HEADER_WIDTHS = (3, 1, 1, 11, 2, 14, 16)
#: XTCE string encodings that our ``string`` fields read; others (UTF-16...) stay spare bits.
TEXT_ENCODINGS = {"US-ASCII": "ascii", "UTF-8": "utf-8"}
LSB_FIRST = "leastSignificantByteFirst"
#: Entries that space-packet-parser skips without a word; each makes a layout we cannot fix.
ODD_ENTRIES = {
    "ArrayParameterRefEntry": "an array entry",
    "ParameterSegmentRefEntry": "a parameter segment entry",
    "ContainerSegmentRefEntry": "a container segment entry",
    "StreamSegmentEntry": "a stream segment entry",
    "IndirectParameterRefEntry": "an indirect parameter entry",
}
ODD_ENTRY_PARTS = {
    "LocationInContainerInBits": "an explicit location in the container",
    "RepeatEntry": "a repeated entry",
    "IncludeCondition": "an entry included only on a condition",
}


class _Unfixed(Exception):  # noqa: N818 - caught in this module: a container of no fixed size
    def __init__(self, construct: str, action: str = "skipped: its size is not fixed") -> None:
        self.construct = construct
        self.action = action


@dataclass
class XtceReading:
    """What the document gave: one draft per APID, notes on the rest, the library's version."""

    drafts: list[Draft]
    notes: list[ImportNote] = field(default_factory=list)
    tool: str = ""


def _local(el: Any) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c) == name]


def _child(el: Any, name: str) -> Any | None:
    return next(iter(_children(el, name)), None)


def _path(el: Any, *names: str) -> Any | None:
    for n in names:
        if el is None:
            return None
        el = _child(el, n)
    return el


@dataclass
class _Doc:
    """The lxml view of the document: the elements by kind and name, for lines and alarms."""

    file: str  # the file's name, for notes
    path: str  # the path as given, for errors
    containers: dict[str, Any]
    parameters: dict[str, Any]
    types: dict[str, Any]

    def line(self, el: Any | None) -> int | None:
        return None if el is None else el.sourceline

    def at(self, el: Any | None) -> str:
        line = self.line(el)
        return self.file if line is None else f"{self.file}:{line}"


def _read_tree(path: Path) -> tuple[Any, _Doc]:
    from lxml import etree

    name = str(path)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise DefinitionError(
            name, line, f"not XML: {exc.msg}", hint="give an XTCE document (XML), or --format csv"
        ) from None
    except OSError as exc:
        raise DefinitionError(name, None, f"cannot read: {exc}") from None
    root = tree.getroot()
    if _local(root) != "SpaceSystem":
        raise DefinitionError(
            name,
            root.sourceline,
            f"the document is <{_local(root)}>, not an XTCE <SpaceSystem>",
            element=f"<{_local(root)}>",
        )
    tm = _child(root, "TelemetryMetaData")
    if tm is None:
        raise DefinitionError(
            name,
            root.sourceline,
            "no <TelemetryMetaData>: the document describes no telemetry",
            element="<SpaceSystem>",
        )
    cs = _child(tm, "ContainerSet")
    seq = [] if cs is None else _children(cs, "SequenceContainer")
    if not seq:
        at = tm if cs is None else cs
        raise DefinitionError(
            name,
            at.sourceline,
            "no <SequenceContainer>: the document describes no packets",
            element=f"<{_local(at)}>",
            hint="export the packets' containers too",
        )
    for part in ("ParameterTypeSet", "ParameterSet"):
        if _child(tm, part) is None:
            raise DefinitionError(
                name, tm.sourceline, f"no <{part}>", element="<TelemetryMetaData>"
            )
    doc = _Doc(
        path.name,
        name,
        {c.get("name"): c for c in seq},
        {p.get("name"): p for p in _children(_child(tm, "ParameterSet"), "Parameter")},
        {t.get("name"): t for t in _child(tm, "ParameterTypeSet") if isinstance(t.tag, str)},
    )
    return tree, doc


def _translate(doc: _Doc, tree: Any, exc: Exception) -> DefinitionError:
    """space-packet-parser's refusal as a DefinitionError at the element it is about: the first
    element whose name (or reference) the message quotes, or the first place the document
    breaks the XTCE schema."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):  # its lookups of names: a reference to nothing
        text = f"{text} is referred to but not defined"
    quoted = set(re.findall(r"'([^']+)'", text))
    found = None
    for el in tree.getroot().iter():
        if not isinstance(el.tag, str):
            continue
        refs = {el.get(k) for k in ("name", "parameterRef", "containerRef", "parameterTypeRef")}
        if refs & quoted or el.tag in text:
            found = el
            break
    element = (
        None if found is None else f"<{_local(found)} {found.get('name') or ''}>".replace(" >", ">")
    )
    line = doc.line(found)
    schema = _schema_error(tree)
    if schema is not None:  # the XTCE schema says where the document goes wrong
        line, element = schema[0], None
        text += f" (the XTCE schema: {schema[1]})"
    return DefinitionError(
        doc.path, line, f"space-packet-parser cannot read it: {text}", element=element
    )


def _schema_error(tree: Any) -> tuple[int | None, str] | None:
    """The first place the document breaks the XTCE 1.2 schema that space-packet-parser bundles
    (line, message); None when it keeps to it or cannot be checked (offline: no download)."""
    from space_packet_parser.xtce import validation

    xsd = Path(validation.__file__).parent / "schemas" / "SpaceSystem.xsd"
    log = logging.getLogger(validation.__name__)
    level, log.level = log.level, logging.CRITICAL  # it logs each error; we say the first
    try:
        result = validation.validate_xtce(
            tree,
            level="schema",
            print_results=False,
            raise_on_error=False,
            local_xsd=xsd,
            allow_schema_download=False,
        )
    except Exception:  # no verdict is no help, not a second error
        return None
    finally:
        log.setLevel(level)
    errors = [e for e in result.errors if e.error_code != "SCHEMA_LOAD_ERROR"]
    if not errors:
        return None
    return errors[0].line_number, re.sub(r"\{[^}]*\}", "", errors[0].message)


def read_xtce(path: Path, opts: ImportOptions) -> XtceReading:
    """The packets of the XTCE document ``path``; DefinitionError when it has none to offer."""
    import space_packet_parser as spp

    tree, doc = _read_tree(path)
    notes: list[ImportNote] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            definition = spp.load_xtce(path)
        except Exception as exc:  # any refusal of the library is the document's
            raise _translate(doc, tree, exc) from None
    for w in caught:
        notes.append(
            ImportNote(doc.file, "document", f"space-packet-parser: {w.message}", "read anyway")
        )
    for sub in tree.getroot().iter():
        if _local(sub) == "SpaceSystem" and sub is not tree.getroot():
            notes.append(
                ImportNote(
                    doc.at(sub),
                    f"SpaceSystem {sub.get('name')}",
                    "a nested space system",
                    "not read (only the top one is)",
                )
            )
    reader = _Reader(definition, doc, opts, notes)
    drafts = reader.drafts()
    return XtceReading(drafts, notes, f"space-packet-parser {_version()}")


class _Reader:
    def __init__(
        self, definition: Any, doc: _Doc, opts: ImportOptions, notes: list[ImportNote]
    ) -> None:
        self.d = definition
        self.doc = doc
        self.opts = opts
        self.notes = notes

    # ------------------------------------------------------------------------ containers

    def chain(self, name: str) -> list[Any]:
        """The container and its bases, the topmost first."""
        out, seen = [], set()
        while name is not None and name not in seen:
            seen.add(name)
            c = self.d.containers[name]
            out.append(c)
            name = c.base_container_name
        return out[::-1]

    def flat(self, container: Any, seen: tuple[str, ...] = ()) -> Iterator[Any]:
        """The parameters of ``container``'s own entry list, referenced containers expanded."""
        from space_packet_parser.xtce.containers import SequenceContainer

        self.check_entries(container.name)
        for e in container.entry_list:
            if isinstance(e, SequenceContainer):
                if e.name in seen:
                    raise _Unfixed(f"container {e.name} includes itself")
                yield from self.flat(e, (*seen, e.name))
            else:
                yield e

    def check_entries(self, name: str) -> None:
        el = self.doc.containers.get(name)
        entries = _child(el, "EntryList") if el is not None else None
        for e in [] if entries is None else entries:
            kind = _local(e)
            if kind in ODD_ENTRIES:
                raise _Unfixed(f"{ODD_ENTRIES[kind]} (<{kind}>, line {e.sourceline})")
            for part in e:
                if _local(part) in ODD_ENTRY_PARTS:
                    raise _Unfixed(
                        f"{ODD_ENTRY_PARTS[_local(part)]} (<{_local(part)}> of "
                        f"{e.get('parameterRef') or e.get('containerRef')}, line "
                        f"{part.sourceline})"
                    )

    def drafts(self) -> list[Draft]:
        d, opts = self.d, self.opts
        root = opts.root_container
        if root is not None and root not in d.containers:
            raise DefinitionError(
                self.doc.path,
                None,
                f"no container named {root!r}",
                element="--root-container",
                hint=f"use one of {sorted(d.containers)}",
            )
        found: list[tuple[Any, int | None, list[Any]]] = []
        parts = {
            e.get("containerRef")
            for el in self.doc.containers.values()
            for e in el.iter()
            if _local(e) == "ContainerRefEntry"
        }
        for name, c in d.containers.items():
            if c.abstract or (name in parts and not c.base_container_name):
                continue  # a base, or a part other packets include (a secondary header)
            chain = self.chain(name)
            if root is not None and root not in {x.name for x in chain}:
                continue
            if c.inheritors and not any(r for x in chain for r in x.restriction_criteria):
                continue  # a base of other packets, not a packet of its own
            try:
                apid, params = self.layout(c, chain)
            except _Unfixed as exc:
                self.skip(c, exc.construct, exc.action)
                continue
            found.append((c, apid, params))
        without = [f for f in found if f[1] is None]
        if without and opts.apid is not None and len(without) == 1 == len(found):
            c, _, params = without[0]
            found = [(c, opts.apid, params)]
            self.notes.append(
                ImportNote(
                    self.where(c),
                    f"container {c.name}",
                    "no restriction on the APID",
                    f"APID {opts.apid} from --apid",
                )
            )
        else:
            for c, _, _ in without:
                self.skip(
                    c,
                    "no restriction on the APID (PKT_APID == N) in it or its bases",
                    "skipped: we route packets by APID",
                )
        drafts: dict[int, Draft] = {}
        for c, apid, params in found:
            if apid is None:
                continue
            if opts.apid is not None and apid != opts.apid:
                continue
            if apid in drafts:
                self.skip(
                    c,
                    f"a second container for APID {apid} (a variant of {drafts[apid].source})",
                    "skipped: a profile has one layout per APID",
                )
                continue
            if not 0 <= apid <= 0x7FD:
                self.skip(c, f"APID {apid}", "skipped: not an APID a profile can have (0..0x7FD)")
                continue
            draft = self.draft(c, apid, params)
            if draft is not None:
                drafts[apid] = draft
        if not drafts:
            apids = sorted({a for _, a, _ in found if a is not None})
            if opts.apid is not None and opts.apid not in apids:
                reasons = f"the definition's APIDs are {apids}" if apids else ""
            else:
                reasons = "; ".join(str(n) for n in self.notes[-3:])
            what = f"for APID {opts.apid}" if opts.apid is not None else "with an APID"
            raise DefinitionError(
                self.doc.path,
                None,
                f"no packet container {what} could be mapped{': ' + reasons if reasons else ''}",
                element="<ContainerSet>",
            )
        return sorted(drafts.values(), key=lambda x: x.apid)

    def where(self, c: Any) -> str:
        return self.doc.at(self.doc.containers.get(c.name))

    def skip(self, c: Any, construct: str, action: str) -> None:
        self.notes.append(ImportNote(self.where(c), f"container {c.name}", construct, action))

    def layout(self, c: Any, chain: list[Any]) -> tuple[int | None, list[Any]]:
        """The container's APID (None: no restriction names one) and its parameters after the
        primary header; _Unfixed when the restrictions or entries make no fixed layout."""
        params = [p for x in chain for p in self.flat(x)]
        head = params[:7]
        widths = tuple(getattr(p.parameter_type.encoding, "size_in_bits", None) for p in head)
        if widths != HEADER_WIDTHS:
            raise _Unfixed(
                f"its first entries ({', '.join(p.name for p in head)}) are not the CCSDS primary "
                f"header (fields of {'/'.join(map(str, HEADER_WIDTHS))} bits)",
                "skipped: not a space packet",
            )
        names = [p.name for p in head]
        apid = None
        for x in chain:
            for rc in x.restriction_criteria:
                apid = self.restriction(c, x, rc, names, apid)
        return apid, params[7:]

    def restriction(
        self, c: Any, x: Any, rc: Any, header: list[str], apid: int | None
    ) -> int | None:
        from space_packet_parser.xtce.comparisons import Comparison

        subject = f"container {c.name}"
        if not isinstance(rc, Comparison):
            add_note(
                self.notes,
                ImportNote(
                    self.where(x),
                    subject,
                    f"a restriction of {x.name} that is not a comparison ({type(rc).__name__})",
                    "not checked: every packet of the APID is read this way",
                ),
            )
            return apid
        ref, op, value = rc.referenced_parameter, rc.operator, rc.required_value
        try:
            number = int(str(value), 0)
        except ValueError:
            number = None
        if ref == header[3]:
            if op not in ("==", "eq") or number is None:
                raise _Unfixed(f"a restriction {ref} {op} {value} (not one APID)")
            return number
        if ref == header[1] and op in ("==", "eq") and number == 1:
            raise _Unfixed("telecommand packets (TYPE == 1)", "skipped: a profile is telemetry")
        if ref in header[:3] and op in ("==", "eq"):
            return apid  # version 0, TM, secondary header flag: what our header is
        add_note(
            self.notes,
            ImportNote(
                self.where(x),
                subject,
                f"a restriction {ref} {op} {value} of {x.name}",
                "not checked: a profile chooses packets by APID alone",
            ),
        )
        return apid

    # ------------------------------------------------------------------------ parameters

    def draft(self, c: Any, apid: int, params: list[Any]) -> Draft | None:
        notes: list[ImportNote] = []
        fields: list[Mapped] = []
        bit = HEADER_BITS
        try:
            for p in params:
                mapped = self.parameter(c, p, bit, notes)
                fields += mapped
                bit += sum(f.bits for f in mapped)
        except _Unfixed as exc:
            self.skip(c, exc.construct, exc.action)
            return None
        title = c.short_description or None
        desc = " ".join((c.long_description or "").split()) or None
        return Draft(
            c.name, self.where(c), apid, fields, title=title, description=desc, notes=notes
        )

    def parameter(self, c: Any, p: Any, bit: int, notes: list[ImportNote]) -> list[Mapped]:
        from space_packet_parser.xtce import encodings as enc
        from space_packet_parser.xtce import parameter_types as pt

        t, e = p.parameter_type, p.parameter_type.encoding
        pel = self.doc.parameters.get(p.name)
        where = self.doc.at(pel) if pel is not None else self.where(c)
        subject = f"container {c.name}"
        desc = " ".join((p.short_description or p.long_description or "").split()) or None
        units = " ".join(t.unit) if isinstance(t.unit, tuple) else t.unit

        def note(construct: str, action: str) -> None:
            add_note(notes, ImportNote(where, subject, construct, action, (p.name,)))

        def spare(bits: int, construct: str) -> list[Mapped]:
            note(construct, f"kept as spare bits ({bits} bits, ignore: true)")
            return spares(p.name, bits, description=desc)

        if isinstance(e, enc.StringDataEncoding | enc.BinaryDataEncoding):
            what = "string" if isinstance(e, enc.StringDataEncoding) else "binary blob"
            size = e.fixed_length if what == "string" else e.fixed_size_in_bits
            if size is None:
                raise _Unfixed(f"{p.name}: a {what} of variable size ({t.name})")
            construct = f"a {what} ({type(t).__name__} {t.name}, {size} bits)"
            code = TEXT_ENCODINGS.get(str(getattr(e, "encoding", "")).upper())
            if size % 8 or (what == "string" and (code is None or e.leading_length_size)):
                return spare(size, construct)
            if what == "binary blob":
                note(construct, f"mapped to type: bytes, length: {size // 8}")
                return [Mapped(p.name, "bytes", length=size // 8, units=units, description=desc)]
            note(construct, f"mapped to type: string, length: {size // 8}, encoding: {code}")
            text = Mapped(p.name, "string", length=size // 8, units=units, description=desc)
            text.encoding = None if code == "ascii" else code
            return [text]
        if not isinstance(e, enc.NumericDataEncoding):
            raise _Unfixed(f"{p.name}: an encoding we do not know ({type(e).__name__})")
        n = e.size_in_bits
        little = e.byte_order == LSB_FIRST and n > 8
        if isinstance(e, enc.FloatDataEncoding):
            if e.encoding not in ("IEEE754", "IEEE754_1985") or n not in (32, 64):
                return spare(n, f"a {e.encoding} float of {n} bits")
            kind = f"f{n}"
        else:
            signed = e.encoding != "unsigned"
            if n > MAX_WIDTH and (signed or n not in WIDE_BITS or little or e.default_calibrator):
                return spare(n, f"an integer of {n} bits (wider than 64)")
            if n > MAX_WIDTH:  # whole octets: stored as its exact octets, not a number
                note(f"an integer of {n} bits", f"mapped to u{n}, stored as its octets")
                return [Mapped(p.name, f"u{n}", units=units, description=desc)]
            if signed and n < 2:
                return spare(n, "a signed integer of 1 bit")
            kind = f"{'i' if signed else 'u'}{n}"
        if little and (n not in (16, 32, 64) or bit % 8):
            return spare(
                n,
                f"least significant byte first, {n} bits at bit {bit} (our "
                "little-endian fields are 16, 32 or 64 bits on an octet boundary)",
            )
        f = Mapped(
            p.name, kind, endian="little" if little else "big", units=units, description=desc
        )
        if isinstance(t, pt.EnumeratedParameterType):
            f.enum = self.enumeration(t, f, note)
        elif isinstance(t, pt.BooleanParameterType):
            f.enum = {0: "FALSE", 1: "TRUE"}
            note(
                "a boolean",
                "mapped to enum {0: FALSE, 1: TRUE}"
                + (f"; other raw values of the {n} bits have no label" if n > 1 else ""),
            )
        elif isinstance(t, pt.TimeParameterType):
            note(
                f"a time ({type(t).__name__}, epoch {t.epoch})",
                "kept as its raw count: name it in `time:` (code counter) if it is the clock",
            )
        if e.context_calibrators:
            note(
                "context calibrators (a calibration chosen by another parameter)",
                "not mapped: the default calibration (or none) applies always",
            )
        if e.default_calibrator is not None and f.enum is None:
            if kind[0] == "f":
                note("a calibrator on a float", "not mapped: our float fields stay raw")
            else:
                f.calibration = self.calibration(e.default_calibrator, note)
        if f.enum is None:
            f.limits = self.alarms(t, note)
        elif (
            self.doc.types.get(t.name) is not None
            and _path(self.doc.types[t.name], "DefaultAlarm") is not None
        ):
            note(
                "an enumeration alarm",
                "not mapped: alarm on states with a derived channel, "
                "e.g. {expr: 'state == 3', limits: {red: [null, 0.5]}}",
            )
        return [f]

    def enumeration(self, t: Any, f: Mapped, note: Any) -> dict[int, str] | None:
        bits = int(f.type[1:])
        lo, hi = (
            (0, (1 << bits) - 1) if f.type[0] == "u" else (-(1 << bits - 1), (1 << bits - 1) - 1)
        )
        out: dict[int, str] = {}
        for key, item in t.enumeration.items():
            # space-packet-parser 6 keeps {raw value: label}; its docstring says label: value
            value, label = (key, item) if isinstance(key, int) else (item, key)
            text = " ".join(str(label).split()) or str(value)
            if text != label:
                note(f"the enumeration label {label!r}", f"written {text!r}")
            try:
                raw = int(value)
            except (TypeError, ValueError):
                note(f"an enumeration value {value!r} ({label})", "dropped: not an integer")
                continue
            if not lo <= raw <= hi:
                note(f"an enumeration value {raw} ({label}) outside {f.type}", "dropped")
                continue
            out.setdefault(raw, text)
        return out or None

    def calibration(self, cal: Any, note: Any) -> dict[str, Any] | None:
        from space_packet_parser.xtce import calibrators as cb

        if isinstance(cal, cb.PolynomialCalibrator):
            degree = max((int(c.exponent) for c in cal.coefficients), default=0)
            if degree > 7 or min((int(c.exponent) for c in cal.coefficients), default=0) < 0:
                note(f"a polynomial of degree {degree}", "not mapped (we take up to degree 7): raw")
                return None
            poly = [0.0] * (degree + 1)
            for c in cal.coefficients:
                poly[int(c.exponent)] += float(c.coefficient)
            return {"poly": poly}
        if isinstance(cal, cb.SplineCalibrator):
            pts = [(float(p.raw), float(p.calibrated)) for p in cal.points]
            raws = [x for x, _ in pts]
            if len(pts) < 2 or raws != sorted(set(raws)):
                note("a spline with fewer than 2 points or repeated raw values", "not mapped: raw")
                return None
            if cal.order == 0:
                if not cal.extrapolate:
                    note(
                        "a step spline without extrapolation",
                        "mapped to segments; beyond the points the end values hold",
                    )
                return {"segments": [{"start": x, "poly": [y]} for x, y in pts]}
            if cal.order == 1:
                if cal.extrapolate:
                    note(
                        "a linear spline that extrapolates",
                        "mapped to a table that holds the end values beyond the points",
                    )
                    return {"table": [list(p) for p in pts]}
                return {"table": [list(p) for p in pts], "outside": "nan"}
            note(f"a spline of order {cal.order}", "not mapped: raw")
            return None
        note(f"a {type(cal).__name__}", "not mapped: raw values")
        return None

    # ------------------------------------------------------------------------ alarms

    def alarms(self, t: Any, note: Any) -> dict[str, Any] | None:
        el = self.doc.types.get(t.name)
        if el is None:
            return None
        out: dict[str, Any] = {}
        default = _child(el, "DefaultAlarm")
        if default is not None:
            out = self.ranges(default, note)
        when = []
        contexts = _child(el, "ContextAlarmList")
        for ctx in [] if contexts is None else _children(contexts, "ContextAlarm"):
            match = _child(ctx, "ContextMatch")
            cmp = _child(match, "Comparison") if match is not None else None
            if cmp is None or len(match) != 1:
                note(
                    f"a context alarm (line {ctx.sourceline}) on a condition other than "
                    "one comparison",
                    "not mapped",
                )
                continue
            op = cmp.get("comparisonOperator", "==")
            if op not in ("==", "eq"):
                note(
                    f"a context alarm on {cmp.get('parameterRef')} {op} {cmp.get('value')}",
                    "not mapped: our contexts are 'channel equals value'",
                )
                continue
            sets = self.ranges(ctx, note)
            when.append({"channel": cmp.get("parameterRef"), "equals": cmp.get("value"), **sets})
        if when:
            out["when"] = when
        return out or None

    def ranges(self, alarm: Any, note: Any) -> dict[str, Any]:
        for part in alarm:
            kind = _local(part)
            if kind in ("ChangeAlarmRanges", "AlarmMultiRanges", "AlarmConditions", "CustomAlarm"):
                note(f"an alarm of kind {kind} (line {part.sourceline})", "not mapped")
        if alarm.get("minViolations", "1") != "1":
            note(f"minViolations {alarm.get('minViolations')}", "not mapped: one sample alarms")
        static = _child(alarm, "StaticAlarmRanges")
        if static is None:
            return {}
        if static.get("rangeForm", "outside") != "outside":
            note("alarm ranges of rangeForm inside", "not mapped: our limits alarm outside")
            return {}
        out: dict[str, Any] = {}
        for xtce, ours in (("WarningRange", "yellow"), ("CriticalRange", "red")):
            r = _child(static, xtce)
            if r is None:
                continue
            lo = r.get("minInclusive", r.get("minExclusive"))
            hi = r.get("maxInclusive", r.get("maxExclusive"))
            if "minExclusive" in r.attrib or "maxExclusive" in r.attrib:
                note(f"an exclusive bound of {xtce}", "taken as inclusive (a value on it is fine)")
            with contextlib.suppress(TypeError, ValueError):
                out[ours] = [None if lo is None else float(lo), None if hi is None else float(hi)]
        for xtce in ("WatchRange", "DistressRange", "SevereRange"):
            if _child(static, xtce) is not None:
                note(f"a {xtce}", "not mapped: we have yellow (warning) and red (critical)")
        y, r = out.get("yellow"), out.get("red")
        if (
            y
            and r
            and (
                (None not in (y[0], r[0]) and r[0] > y[0])
                or (None not in (y[1], r[1]) and r[1] < y[1])
            )
        ):
            note(f"a critical range {r} inside the warning range {y}", "kept the warning range")
            del out["red"]
        return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("space-packet-parser")
    except PackageNotFoundError:  # run from a checkout of it
        return "(version unknown)"
