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
    DraftVariant,
    ImportNote,
    ImportOptions,
    Mapped,
    add_note,
    spares,
)
from ilrs_ops.profiles._schema import REST, WIDE_BITS

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


class _NoVariants(Exception):  # noqa: N818 - caught in this module: containers of one APID
    """The containers of one APID cannot be variants of one profile; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class _Found:
    """A concrete container with a fixed layout: its APID, parameters after the primary header,
    its bases (the topmost first) and its restrictions on anything but the header's APID,
    version, type and secondary header flag."""

    c: Any
    apid: int | None
    params: list[Any]
    chain: list[Any]
    others: list[tuple[Any, Any]]


#: XTCE comparison operators (space-packet-parser's spellings) by what they mean.
_OPS = {
    "==": "==", "eq": "==", "!=": "!=", "neq": "!=", "<": "<", "lt": "<", "&lt;": "<",
    "<=": "<=", "leq": "<=", "&lt;=": "<=", ">": ">", "gt": ">", "&gt;": ">",
    ">=": ">=", "geq": ">=", "&gt;=": ">=",
}  # fmt: skip

Ranges = list[tuple[int, int]]


def _op_ranges(op: str, n: int, top: int) -> Ranges:
    """The raw values 0..top for which ``value op n`` holds, as inclusive ranges."""
    out = {
        "==": [(n, n)],
        "!=": [(0, n - 1), (n + 1, top)],
        "<": [(0, n - 1)],
        "<=": [(0, n)],
        ">": [(n + 1, top)],
        ">=": [(n, top)],
    }[op]
    return [(max(lo, 0), min(hi, top)) for lo, hi in out if max(lo, 0) <= min(hi, top)]


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out = [(max(x, y), min(u, v)) for x, u in a for y, v in b if max(x, y) <= min(u, v)]
    return sorted(out)


def _subtract(a: Ranges, b: Ranges) -> Ranges:
    out = a
    for y, v in b:
        nxt = []
        for x, u in out:
            if v < x or y > u:
                nxt.append((x, u))
                continue
            if x < y:
                nxt.append((x, y - 1))
            if v < u:
                nxt.append((v + 1, u))
        out = nxt
    return out


def _ranges_text(r: Ranges) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in r) or "none"


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
        self.length_param = "PKT_LEN"  # the header's data length field, as the header names it
        #: Blobs sized by a parameter: name -> (reference, slope, intercept), checked once the
        #: whole layout is known (``check_blobs``).
        self.blobs: dict[str, tuple[str, float, float]] = {}

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
        found: list[_Found] = []
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
                apid, params, others = self.layout(c, chain)
            except _Unfixed as exc:
                self.skip(c, exc.construct, exc.action)
                continue
            found.append(_Found(c, apid, params, chain, others))
        without = [f for f in found if f.apid is None]
        if without and opts.apid is not None and len(without) == 1 == len(found):
            without[0].apid = opts.apid
            self.notes.append(
                ImportNote(
                    self.where(without[0].c),
                    f"container {without[0].c.name}",
                    "no restriction on the APID",
                    f"APID {opts.apid} from --apid",
                )
            )
        else:
            for f in without:
                self.note_restrictions(f)
                self.skip(
                    f.c,
                    "no restriction on the APID (PKT_APID == N) in it or its bases",
                    "skipped: we route packets by APID",
                )
        groups: dict[int, list[_Found]] = {}
        for f in found:
            if f.apid is None or (opts.apid is not None and f.apid != opts.apid):
                continue
            if not 0 <= f.apid <= 0x7FD:
                self.skip(
                    f.c, f"APID {f.apid}", "skipped: not an APID a profile can have (0..0x7FD)"
                )
                continue
            groups.setdefault(f.apid, []).append(f)
        drafts: dict[int, Draft] = {}
        for apid, group in groups.items():
            reason = "a profile has one layout per APID"
            if len(group) > 1:
                try:
                    made = self.variant_draft(apid, group)
                except _NoVariants as exc:
                    reason = f"{exc.reason}; write the other layouts as variants by hand (§4.7)"
                else:
                    if made is not None:
                        drafts[apid] = made
                    continue
            for f in group:
                self.note_restrictions(f)
                if apid in drafts:
                    self.skip(
                        f.c,
                        f"a second container for APID {apid} (a variant of {drafts[apid].source})",
                        f"skipped: {reason}",
                    )
                    continue
                draft = self.draft(f.c, apid, f.params)
                if draft is not None:
                    drafts[apid] = draft
        if not drafts:
            apids = sorted({f.apid for f in found if f.apid is not None})
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

    def layout(self, c: Any, chain: list[Any]) -> tuple[int | None, list[Any], list[Any]]:
        """The container's APID (None: no restriction names one), its parameters after the
        primary header and its other restrictions ((container, criterion) pairs); _Unfixed
        when the restrictions or entries make no fixed layout."""
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
        self.header = names
        self.length_param = names[6]
        apid = None
        others: list[tuple[Any, Any]] = []
        for x in chain:
            for rc in x.restriction_criteria:
                apid = self.restriction(x, rc, names, apid, others)
        return apid, params[7:], others

    def restriction(
        self, x: Any, rc: Any, header: list[str], apid: int | None, others: list[Any]
    ) -> int | None:
        """The APID ``rc`` (of container ``x``) names, else ``apid``; a restriction on anything
        but the header's APID, version, type and secondary header flag goes to ``others``."""
        from space_packet_parser.xtce.comparisons import Comparison

        if not isinstance(rc, Comparison):
            others.append((x, rc))
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
        others.append((x, rc))
        return apid

    def note_restrictions(self, f: _Found, pairs: list[Any] | None = None) -> None:
        """Say that ``f``'s other restrictions (or ``pairs`` of them) are not checked."""
        from space_packet_parser.xtce.comparisons import Comparison

        subject = f"container {f.c.name}"
        for x, rc in f.others if pairs is None else pairs:
            if isinstance(rc, Comparison):
                what = (
                    f"a restriction {rc.referenced_parameter} {rc.operator} "
                    f"{rc.required_value} of {x.name}"
                )
                action = "not checked: a profile chooses packets by APID alone"
            else:
                what = f"a restriction of {x.name} that is not a comparison ({type(rc).__name__})"
                action = "not checked: every packet of the APID is read this way"
            add_note(self.notes, ImportNote(self.where(x), subject, what, action))

    # ------------------------------------------------------------------------ variants

    def variant_draft(self, apid: int, group: list[_Found]) -> Draft | None:
        """The containers of one APID as one draft with variants: the parameters of their
        common bases are the common part, and restrictions of the containers below them, all
        on one unsigned parameter of that part, choose the variant. _NoVariants when they are
        not so; None when nothing of them maps (each skipped with its note)."""
        from space_packet_parser.xtce import encodings as enc
        from space_packet_parser.xtce.comparisons import Comparison

        k = 0
        while all(len(f.chain) > k for f in group) and len({f.chain[k].name for f in group}) == 1:
            k += 1
        prefix = group[0].chain[:k]
        if not prefix:
            raise _NoVariants("the containers have no base in common")
        shared = {x.name for x in prefix}
        # A concrete base is a packet too: XTCE reads as it the packets no inheritor matches.
        concrete = next((f for f in group if len(f.chain) == k), None)
        names = [[p.name for p in f.params] for f in group]
        n_common = 0  # the parameters every container starts with: the common part
        while all(len(x) > n_common for x in names) and len({x[n_common] for x in names}) == 1:
            n_common += 1
        common = group[0].params[:n_common]
        by_name = {p.name: p for p in common}
        selector: str | None = None
        chosen: list[tuple[_Found, list[Any]]] = []
        bare: list[str] = []  # containers with no restriction but on the header's APID
        for f in group:
            if f is concrete:
                continue
            own = [(x, rc) for x, rc in f.others if x.name not in shared]
            if not own:
                bare.append(f.c.name)
            for x, rc in own:
                if not isinstance(rc, Comparison):
                    raise _NoVariants(
                        f"a restriction of {x.name} that is not a comparison "
                        f"({type(rc).__name__}, {self.where(x)}): variants are chosen by "
                        "comparisons of one field with numbers"
                    )
                ref, op, value = rc.referenced_parameter, rc.operator, rc.required_value
                said = f"{x.name}'s restriction {ref} {op} {value} ({self.where(x)})"
                if ref in self.header:
                    raise _NoVariants(
                        f"{said} is on the primary header; variants are chosen by a field after it"
                    )
                if ref not in by_name:
                    raise _NoVariants(
                        f"{said} is on a parameter the containers of APID {apid} do not share"
                    )
                if selector not in (None, ref):
                    raise _NoVariants(
                        f"{said}: the containers are chosen by two parameters ({selector}, "
                        f"{ref}); variants have one selector"
                    )
                selector = ref
            if own:
                chosen.append((f, [rc for _, rc in own]))
        if bare:
            raise _NoVariants(
                f"{', '.join(bare)} has no restriction but on the header to tell its packets"
            )
        if selector is None or not common:
            raise _NoVariants("the containers share no parameter after the primary header")
        sel = by_name[selector]
        e = sel.parameter_type.encoding
        if (
            not isinstance(e, enc.IntegerDataEncoding)
            or e.encoding != "unsigned"
            or e.size_in_bits > MAX_WIDTH
        ):
            raise _NoVariants(f"the selector {selector} is not an unsigned integer of 1..64 bits")
        top = (1 << e.size_in_bits) - 1
        base = prefix[-1]
        if sum(len(list(self.flat(x))) for x in prefix) <= 7:  # the header alone: name by one
            base = group[0].c
        notes: list[ImportNote] = []
        values: list[Ranges] = []
        for _, rcs in chosen:
            r: Ranges = [(0, top)]
            for rc in rcs:
                r = _intersect(r, _op_ranges(_OPS[rc.operator], self.raw_of(sel, rc), top))
            values.append(r)
        cut = len(common)
        if concrete is not None:  # the common part ends at the selector; the base a variant
            cut = common.index(sel) + 1
            if cut == len(common):
                raise _NoVariants(
                    f"{concrete.c.name} is a packet itself and the base of the others, with no "
                    f"field after the selector {selector} to be a variant of its own"
                )
            rest: Ranges = [(0, top)]
            for r in values:
                rest = _subtract(rest, r)
            notes.append(
                ImportNote(
                    self.where(concrete.c),
                    f"container {concrete.c.name}",
                    "a packet itself and the base of the others: XTCE reads as it the packets "
                    "no other's restriction matches",
                    f"a variant for {selector} = {_ranges_text(rest)}; the common part ends at "
                    f"{selector}, its fields after it are in each variant",
                )
            )
            chosen.append((concrete, []))
            values.append(rest)
        for i, (f, _) in enumerate(chosen):  # XTCE reads a packet two restrictions match as none
            for j, (g, _) in enumerate(chosen):
                both = _intersect(values[i], values[j]) if i < j else []
                if both:
                    values[i], values[j] = _subtract(values[i], both), _subtract(values[j], both)
                    notes.append(
                        ImportNote(
                            self.where(g.c),
                            f"container {g.c.name}",
                            f"{selector} = {_ranges_text(both)} matches the restrictions of "
                            f"both {f.c.name} and {g.c.name} (space-packet-parser refuses such "
                            "packets)",
                            "chosen by neither: those packets will be unknown_variant",
                        )
                    )
        fields, bit = [], HEADER_BITS
        try:
            for p in common[:cut]:
                mapped = self.parameter(base, p, bit, notes)
                fields += mapped
                bit += sum(m.bits for m in mapped)
        except _Unfixed as exc:
            for f, _ in chosen:
                self.skip(f.c, exc.construct, exc.action)
            return None
        variants = []
        for (f, _), r in zip(chosen, values, strict=True):
            if not r:
                self.skip(
                    f.c,
                    f"its restrictions match no value of {selector} that another's does not",
                    "skipped: no packet would be read as it",
                )
                continue
            own, at = [], bit
            try:
                for p in f.params[cut:]:
                    mapped = self.parameter(f.c, p, at, notes)
                    own += mapped
                    at += sum(m.bits for m in mapped)
                self.check_blobs([*fields, *own])
            except _Unfixed as exc:
                self.skip(f.c, exc.construct, exc.action)
                continue
            if not own:
                self.skip(f.c, "no parameter of its own", "skipped: a variant needs a field")
                continue
            variants.append(DraftVariant(f.c.name, self.where(f.c), r, own))
        if not variants:
            return None
        self.note_restrictions(group[0], [(x, rc) for x, rc in group[0].others if x.name in shared])
        notes.insert(
            0,
            ImportNote(
                self.where(base),
                f"container {base.name}",
                f"{len(variants)} containers on APID {apid} chosen by {selector} ("
                + "; ".join(f"{v.source}: {_ranges_text(v.values)}" for v in variants)
                + ")",
                "mapped to the variants of one profile, chosen by the field of " + selector,
            ),
        )
        return Draft(
            base.name,
            self.where(base),
            apid,
            fields,
            title=base.short_description or None,
            description=" ".join((base.long_description or "").split()) or None,
            notes=notes,
            selector=selector,
            variants=variants,
        )

    def raw_of(self, sel: Any, rc: Any) -> int:
        """The raw value a restriction compares the selector with; _NoVariants when it is not
        one (a calibrated value, a label of no state)."""
        from space_packet_parser.xtce import parameter_types as pt

        value, t = str(rc.required_value), sel.parameter_type
        if rc.use_calibrated_value and isinstance(t, pt.EnumeratedParameterType):
            for key, item in t.enumeration.items():
                raw, label = (key, item) if isinstance(key, int) else (item, key)
                if str(label) == value:
                    return int(raw)
        try:
            number = int(value, 0)
        except ValueError:
            raise _NoVariants(
                f"the restriction {sel.name} {rc.operator} {value!r} is not on a raw number"
            ) from None
        if rc.use_calibrated_value and t.encoding.default_calibrator is not None:
            raise _NoVariants(
                f"the restriction {sel.name} {rc.operator} {value} compares the calibrated value "
                "(useCalibratedValue); a selector is compared raw"
            )
        return number

    def check_blobs(self, fields: list[Any]) -> None:
        """Each blob sized by the packet length must be the rest of the packet (the fields
        after it fixed): that is what ``count_from: rest`` reads; _Unfixed when it is not."""
        var = [f for f in fields if f.count_from is not None and f.origin in self.blobs]
        if len(var) > 1:
            raise _Unfixed(f"two blobs of variable size ({', '.join(f.origin for f in var)})")
        for f in var:
            ref, slope, intercept = self.blobs[f.origin]
            if ref != self.length_param:
                continue
            other = HEADER_BITS + sum(g.bits for g in fields if g is not f)
            if slope != 8 or intercept != 56 - other:
                raise _Unfixed(
                    f"{f.origin}: a binary blob of {slope:g} x {ref} + {intercept:g} bits, not "
                    f"the rest of the packet (8 x {ref} + {56 - other}: the other fields take "
                    f"{other} bits)"
                )

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
            self.check_blobs(fields)
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
            if size is None and what == "binary blob" and e.size_reference_parameter:
                return [self.blob(p, e, t, units, desc, note)]
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

    def blob(
        self, p: Any, e: Any, t: Any, units: str | None, desc: str | None, note: Any
    ) -> Mapped:
        """A binary blob sized by a parameter as a variable-length array of octets: by the
        packet length, the rest of the packet (checked by ``check_blobs``); by a field before
        it that counts its octets, ``count_from`` that field."""
        ref, adj = e.size_reference_parameter, e.linear_adjuster
        intercept = float(adj(0)) if adj else 0.0
        slope = float(adj(1)) - intercept if adj else 1.0
        if ref == self.length_param:
            self.blobs[p.name] = (ref, slope, intercept)
            note(
                f"a binary blob sized by {ref} ({t.name})",
                "mapped to type: u8, count_from: rest (its octets, as many as the rest of the "
                "packet holds)",
            )
            return Mapped(p.name, "u8", count_from=REST, units=units, description=desc)
        if (slope, intercept) != (8.0, 0.0):
            raise _Unfixed(
                f"{p.name}: a binary blob of {slope:g} x {ref} + {intercept:g} bits ({t.name})"
            )
        note(f"a binary blob of {ref} octets ({t.name})", f"mapped to type: u8, count_from: {ref}")
        return Mapped(p.name, "u8", count_from=ref, units=units, description=desc)

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
