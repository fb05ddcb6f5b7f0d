"""Hand-built Layouts for tests and benchmarks, laid out the way the profile compiler does.

Fields follow a 48-bit CCSDS primary header described as ordinary fields, consecutively, and
a spare field pads the packet to whole octets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.layout import FLOAT32, FLOAT64, SIGNED, UNSIGNED, Layout, octet_row

#: The CCSDS primary header as (name, kind, width, count, byte_order).
PRIMARY_HEADER = [
    ("_version", "u", 3, None, False),
    ("_type", "u", 1, None, False),
    ("_sec_hdr", "u", 1, None, False),
    ("_apid", "u", 11, None, False),
    ("_seq_flags", "u", 2, None, False),
    ("_seq_count", "u", 14, None, False),
    ("_length", "u", 16, None, False),
]

_KINDS = {"u": UNSIGNED, "i": SIGNED}
_REFERENCE_KINDS = {UNSIGNED: "u", SIGNED: "i", FLOAT32: "f32", FLOAT64: "f64"}
_BIG = np.full(8, -1, np.int64)


@dataclass(frozen=True, eq=False)
class SpecLayout(Layout):
    """A Layout made by ``make_layout``, with its fields as tests/reference.py reads them,
    written from the field list (not from the layout's arrays)."""

    reference: tuple = ()


def ranks(order: object, width: int) -> tuple[int, ...] | None:
    """A byte order as the significance of each octet in packet order; None for big endian.

    ``order`` is False/"big", True/"little" or ccsdspy's digits ("3412")."""
    if order in (False, None, "big"):
        return None
    if order in (True, "little"):
        out = tuple(range(width // 8 - 1, -1, -1))
    else:
        assert isinstance(order, str) and len(order) * 8 == width, (order, width)
        out = tuple(int(d) - 1 for d in order)
    return None if out == tuple(range(len(out))) else out


def make_layout(fields: list[tuple]) -> SpecLayout:
    """A Layout of the primary header, then ``fields`` in order, then spare bits to an octet.

    Each field is (name, kind, width, count, byte_order) or, for a sub-field,
    (name, kind, width, count, None, (parent, bit)): kind "u", "i" or "f" (f32/f64 by width)
    or a ``pipelines.layout`` kind constant; count None for a scalar, an int for an array
    (decoded 2-D even when 1); byte_order False/"big", True/"little" or digits such as "3412"
    (fields with a byte order must land byte-aligned). A sub-field lies at ``bit`` of its
    parent's value (0 = its most significant bit, in the parent's byte order) and does not move
    the cursor.
    """
    names: list[str] = []
    field_slot: list[int] = []
    field_count: list[int] = []
    offsets: list[int] = []
    widths: list[int] = []
    kinds: list[int] = []
    octets: list[np.ndarray] = []
    arrays: set[str] = set()
    reference: list[tuple] = []
    placed: dict[str, tuple[int, int, object]] = {}  # name -> (bit, width, byte_order)
    bit = 0

    def add(name: str, kind: int, width: int, count: int | None, order: object, sub) -> None:
        nonlocal bit
        if name in names:
            raise ValueError(f"duplicate field {name!r}")
        names.append(name)
        field_slot.append(len(offsets))
        field_count.append(1 if count is None else count)
        if count is not None:
            arrays.add(name)
        widths.extend([width] * (1 if count is None else count))
        kinds.extend([kind] * (1 if count is None else count))
        ref_kind = _REFERENCE_KINDS[kind]
        if sub is None:
            perm = ranks(order, width)
            if perm is not None and bit % 8:
                raise ValueError(
                    f"field {name!r} in byte order {order} starts at bit {bit}, not on an octet"
                )
            for j in range(1 if count is None else count):
                at = bit + j * width
                offsets.append(at)
                big = perm is None
                octets.append(_BIG if big else octet_row(at // 8, perm, 0, width))
            reference.append((name, bit, width, ref_kind, order or "big", count))
            placed[name] = (bit, width * (count or 1), order)
            bit += width * (count or 1)
            return
        parent, at_bit = sub
        p_bit, p_width, p_order = placed[parent]
        perm = ranks(p_order, p_width)
        for j in range(1 if count is None else count):
            at = at_bit + j * width
            offsets.append(p_bit + at)
            big = perm is None
            octets.append(_BIG if big else octet_row(p_bit // 8, perm, at, width))
        reference.append((name, at_bit, width, ref_kind, p_order or "big", count, (p_bit, p_width)))

    for name, kind, width, count, order, *sub in [*PRIMARY_HEADER, *fields]:
        if isinstance(kind, str):
            kind = (FLOAT32 if width == 32 else FLOAT64) if kind == "f" else _KINDS[kind]
        add(name, kind, width, count, order, sub[0] if sub else None)
    if bit % 8:
        add("_spare", UNSIGNED, 8 - bit % 8, None, False, None)
    return SpecLayout(
        packet_length=bit // 8,
        names=tuple(names),
        field_slot=np.array(field_slot, np.int64),
        field_count=np.array(field_count, np.int64),
        bit_offset=np.array(offsets, np.int64),
        bit_width=np.array(widths, np.int64),
        kind=np.array(kinds, np.int8),
        array_fields=frozenset(arrays),
        octet_map=np.array(octets, np.int64).reshape(len(offsets), 8),
        reference=tuple(reference),
    )


def reference_fields(layout: Layout) -> list[tuple]:
    """The layout's fields for tests/reference.py: as written to ``make_layout``, or, for a
    compiled layout, read back from its arrays (slots of an array field are assumed consecutive
    and of one width; a reordered field's octets must be its own, not a sub-field's)."""
    if isinstance(layout, SpecLayout):
        return list(layout.reference)
    out = []
    for f, name in enumerate(layout.names):
        s = int(layout.field_slot[f])
        count = int(layout.field_count[f]) if name in layout.array_fields else None
        offset, width = int(layout.bit_offset[s]), int(layout.bit_width[s])
        row = layout.octet_map[s]
        order: str = "big"
        if (row >= 0).any():
            n = width // 8
            first = offset // 8
            assert offset % 8 == 0 and sorted(row[:n].tolist()) == list(range(first, first + n))
            digits = [0] * n
            for significance, octet in enumerate(row[:n].tolist()):
                digits[octet - first] = significance + 1
            order = "".join(map(str, digits))
        out.append((name, offset, width, _REFERENCE_KINDS[int(layout.kind[s])], order, count))
    return out


def header_columns(layout: Layout, n: int, apid: int = 0x2A1, seq0: int = 0) -> dict:
    """Primary-header and spare columns for ``n`` good packets of ``layout``."""
    cols = {
        "_version": np.zeros(n, np.uint8),
        "_type": np.zeros(n, np.uint8),
        "_sec_hdr": np.zeros(n, np.uint8),
        "_apid": np.full(n, apid, np.uint16),
        "_seq_flags": np.full(n, 3, np.uint8),
        "_seq_count": ((seq0 + np.arange(n)) % 16384).astype(np.uint16),
        "_length": np.full(n, layout.packet_length - 7, np.uint16),
    }
    if "_spare" in layout.names:
        cols["_spare"] = np.zeros(n, np.uint8)
    return cols
