"""Definition import, ccsdspy CSV: one packet's fields (``name, data_type, bit_length`` and an
optional ``bit_offset``) as the draft of a profile, and notes on what could not be mapped.

As in ccsdspy, the fields follow the 6-octet primary header, which the file does not list, and
a ``bit_offset`` counts from the packet's first bit, header included. ccsdspy's CSV reader has no
byte order; an optional ``byte_order`` column (``big``, ``little``, or digits like ``2143`` as
ccsdspy's PacketField takes) is read here too.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from ilrs_ops.errors import DefinitionError
from ilrs_ops.profiles._draft import (
    HEADER_BITS,
    MAX_COUNT,
    MAX_WIDTH,
    Draft,
    ImportNote,
    Mapped,
    add_note,
    spares,
)
from ilrs_ops.profiles._schema import REST, WIDE_BITS

REQUIRED = ("name", "data_type", "bit_length")
OPTIONAL = ("bit_offset", "byte_order")
TYPES = ("uint", "int", "float", "fill", "str")
TYPE_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")
MAX_CSV_BYTES = 4 << 20


def read_csv(path: Path, apid: int | None) -> Draft:
    """The packet ``path`` describes, as APID ``apid``; DefinitionError on a file that is not a
    ccsdspy packet definition, naming the line and the column."""
    name = str(path)  # errors say the path as given; notes the file's name
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DefinitionError(name, None, "larger than 4 MiB: not a packet definition")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(name, None, f"cannot read: {exc}") from None
    rows = csv.reader(text.splitlines(), skipinitialspace=True)  # one row a line, as ccsdspy's
    numbered = [
        (n, [c.strip() for c in row])
        for n, row in enumerate(rows, start=1)
        if any(c.strip() for c in row)
    ]
    if not numbered:
        raise DefinitionError(
            name,
            None,
            "the file is empty",
            hint=f"start with the header row: {', '.join(REQUIRED)}",
        )
    head_line, head = numbered[0]
    missing = [c for c in REQUIRED if c not in head]
    if missing:
        raise DefinitionError(
            name,
            head_line,
            f"the header row {head} lacks {missing}",
            element="header",
            hint=f"a ccsdspy CSV starts with {', '.join(REQUIRED)}[, bit_offset]",
        )
    if apid is None:
        raise DefinitionError(
            name,
            None,
            "a ccsdspy CSV does not say which APID it describes",
            element="--apid",
            hint="give --apid N",
        )
    notes: list[ImportNote] = []
    where_file = f"{path.name}:{head_line}"
    for extra in [c for c in head if c not in REQUIRED + OPTIONAL]:
        notes.append(ImportNote(where_file, "CSV", f"a column {extra!r}", "not read"))
    col = {c: head.index(c) for c in REQUIRED + OPTIONAL if c in head}
    fields: list[Mapped] = []
    bit = HEADER_BITS
    for line, row in numbered[1:]:
        if len(row) < len(head):
            row = row + [""] * (len(head) - len(row))
        if any(f.count_from for f in fields) and "bit_offset" in col and row[col["bit_offset"]]:
            notes.append(
                ImportNote(
                    f"{path.name}:{line}",
                    "CSV",
                    f"a bit_offset of {row[col['name']]} after a variable-length array",
                    "not read: the fields after the array move with its length",
                )
            )
            row = [*row[: col["bit_offset"]], "", *row[col["bit_offset"] + 1 :]]
        mapped, bit, stop = _row(name, path.name, line, row, col, bit, fields, notes)
        fields += mapped
        if stop:
            rest = [r[col["name"]] for n, r in numbered[1:] if n > line]
            if rest:
                notes.append(
                    ImportNote(
                        f"{path.name}:{line}",
                        "CSV",
                        f"{len(rest)} field(s) after a "
                        f"field of variable size ({', '.join(rest[:8])})",
                        "not mapped: where they start is not fixed",
                    )
                )
            break
    if not fields:
        raise DefinitionError(
            name,
            numbered[0][0],
            "no field could be mapped",
            hint="; ".join(str(n) for n in notes[-3:]) or None,
        )
    return Draft(path.stem, f"{path.name}:{head_line}", apid, fields, notes=notes, what="CSV")


def _row(
    file: str,
    short: str,
    line: int,
    row: list[str],
    col: dict[str, int],
    bit: int,
    fields: list[Mapped],
    notes: list[ImportNote],
) -> tuple[list[Mapped], int, bool]:
    """One row's fields, the bit after them, and whether the rows after it cannot be placed."""
    where = f"{short}:{line}"
    origin = row[col["name"]]
    if not origin:
        raise DefinitionError(file, line, "no name", element="name", hint="name every field")
    m = TYPE_RE.match(row[col["data_type"]])
    kind = m.group(1) if m else row[col["data_type"]]
    if m is None or kind not in TYPES:
        raise DefinitionError(
            file,
            line,
            f"data_type {row[col['data_type']]!r} of {origin} is not a ccsdspy type",
            element="data_type",
            hint=f"use one of {', '.join(TYPES)}, or e.g. uint(4) for an array",
        )
    width = _int(file, line, row[col["bit_length"]], "bit_length", origin, low=1)
    shape = m.group(2)

    def note(construct: str, action: str) -> None:
        add_note(notes, ImportNote(where, "CSV", construct, action, (origin,)))

    count = None
    var_from: str | None = None  # a variable-length array: the count's field, or rest
    if shape is not None:
        dims = [d.strip() for d in shape.split(",")]
        if all(d.isdigit() for d in dims) and dims:
            count = math.prod(int(d) for d in dims)
            if len(dims) > 1:
                note(f"an array of shape ({shape})", f"flattened to count {count} (row-major)")
        elif (
            any(f.count_from for f in fields)
            or len(dims) > 1
            or kind in ("str", "fill")
            or width > MAX_WIDTH
            or (kind == "float" and width not in (32, 64))
            or ("byte_order" in col and row[col["byte_order"]].lower() not in ("", "big"))
        ):
            why = "grows to fill the packet" if shape == "expand" else f"sized by field {shape}"
            note(
                f"an array that {why}",
                "not mapped: one array per packet may vary in length, of numbers",
            )
            return [], bit, True
        else:
            var_from = REST if shape == "expand" else shape
    gap: list[Mapped] = []
    if "bit_offset" in col and row[col["bit_offset"]]:
        at = _int(file, line, row[col["bit_offset"]], "bit_offset", origin, low=0)
        if at < HEADER_BITS and not fields and bit == HEADER_BITS:
            raise DefinitionError(
                file,
                line,
                f"bit_offset {at} of {origin} lies in the primary header (bits 0-47)",
                element="bit_offset",
                hint="ccsdspy counts bit offsets from the packet's first bit, "
                "header included: add 48 to every offset",
            )
        if at < bit:
            note(
                f"bit_offset {at} overlaps the field(s) before (they end at bit {bit})",
                "not mappable: our fields do not overlap; dropped",
            )
            return [], bit, False
        if at > bit:
            gap = spares(f"gap_{bit}", at - bit)
            add_note(
                notes,
                ImportNote(
                    where,
                    "CSV",
                    f"bits {bit}..{at - 1} before {origin} are in no field",
                    f"kept as spare bits ({at - bit} bits, ignore: true)",
                ),
            )
            bit = at
    order = row[col["byte_order"]].lower() if "byte_order" in col else ""
    total = width * (count or 1)
    end = bit + total
    if kind == "fill":  # what fill means: bits that hold nothing
        return [*gap, *spares(origin, total)], end, False
    if kind == "str" and (width % 8 or count is not None):
        note("a string", f"kept as spare bits ({total} bits, ignore: true)")
        return [*gap, *spares(origin, total)], end, False
    if kind == "str":
        note("a string", f"mapped to type: string, length: {width // 8} (ascii)")
        return [*gap, Mapped(origin, "string", length=width // 8)], end, False
    digits = order not in ("", "big", "little")
    if digits and (
        sorted(order) != [str(k) for k in range(1, len(order) + 1)]
        or width != 8 * len(order)
        or bit % 8
    ):
        note(
            f"byte order {order!r} on {width} bits at bit {bit} (a byte order moves the whole "
            "octets of a byte-aligned field)",
            f"not mapped: kept as spare bits ({total} bits, ignore: true)",
        )
        return [*gap, *spares(origin, total)], end, False
    little = order == "little" and width > 8
    if kind == "float" and width not in (32, 64):
        note(f"a float of {width} bits", f"kept as spare bits ({total} bits, ignore: true)")
        return [*gap, *spares(origin, total)], end, False
    if kind == "uint" and width in WIDE_BITS and count is None and order in ("", "big"):
        note(f"a uint of {width} bits", f"mapped to u{width}, stored as its octets")
        return [*gap, Mapped(origin, f"u{width}")], end, False
    if width > MAX_WIDTH:
        note(f"an {kind} of {width} bits", f"kept as spare bits ({total} bits, ignore: true)")
        return [*gap, *spares(origin, total)], end, False
    if little and (width not in (16, 32, 64) or bit % 8):
        note(
            f"little endian, {width} bits at bit {bit} (our little-endian fields are 16, 32 or "
            "64 bits on an octet boundary)",
            f"kept as spare bits ({total} bits, ignore: true)",
        )
        return [*gap, *spares(origin, total)], end, False
    t = {"uint": "u", "int": "i", "float": "f"}[kind] + str(width)
    endian = order if digits else "little" if little else "big"
    if var_from is not None:
        return [*gap, Mapped(origin, t, endian=endian, count_from=var_from)], end, False
    out = []
    left, k = count, 0
    while True:
        n = None if left is None else min(left, MAX_COUNT)
        out.append(Mapped(origin if k == 0 else f"{origin}_{k}", t, count=n, endian=endian))
        if left is None or left <= MAX_COUNT:
            break
        left -= MAX_COUNT
        k += 1
    if k:
        note(f"an array of {count} elements", f"split into {k + 1} arrays of at most {MAX_COUNT}")
    return [*gap, *out], end, False


def _int(file: str, line: int, text: str, column: str, origin: str, *, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise DefinitionError(
            file, line, f"{column} {text!r} of {origin} is not an integer >= {low}", element=column
        )
    return value
