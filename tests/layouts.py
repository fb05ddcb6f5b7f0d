"""Hand-built Layouts for tests and benchmarks, laid out the way the profile compiler does.

Fields follow a 48-bit CCSDS primary header described as ordinary fields, consecutively, and
a spare field pads the packet to whole octets.
"""

from __future__ import annotations

import numpy as np

from pipelines.layout import FLOAT32, FLOAT64, SIGNED, UNSIGNED, Layout

#: The CCSDS primary header as (name, kind, width, count, little_endian).
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


def make_layout(fields: list[tuple[str, str | int, int, int | None, bool]]) -> Layout:
    """A Layout of the primary header, then ``fields`` in order, then spare bits to an octet.

    Each field is (name, kind, width, count, little_endian): kind "u", "i" or "f" (f32/f64 by
    width) or a ``pipelines.layout`` kind constant; count None for a scalar, an int for an array
    (decoded 2-D even when 1). Little-endian fields must land byte-aligned.
    """
    names: list[str] = []
    field_slot: list[int] = []
    field_count: list[int] = []
    offsets: list[int] = []
    widths: list[int] = []
    kinds: list[int] = []
    little: list[bool] = []
    arrays: set[str] = set()
    bit = 0

    def add(name: str, kind: int, width: int, count: int | None, le: bool) -> None:
        nonlocal bit
        if name in names:
            raise ValueError(f"duplicate field {name!r}")
        if le and bit % 8:
            raise ValueError(f"little-endian field {name!r} starts at bit {bit}, not on an octet")
        names.append(name)
        field_slot.append(len(offsets))
        field_count.append(1 if count is None else count)
        if count is not None:
            arrays.add(name)
        for _ in range(1 if count is None else count):
            offsets.append(bit)
            widths.append(width)
            kinds.append(kind)
            little.append(le)
            bit += width

    for name, kind, width, count, le in [*PRIMARY_HEADER, *fields]:
        if isinstance(kind, str):
            kind = (FLOAT32 if width == 32 else FLOAT64) if kind == "f" else _KINDS[kind]
        add(name, kind, width, count, le)
    if bit % 8:
        add("_spare", UNSIGNED, 8 - bit % 8, None, False)
    return Layout(
        packet_length=bit // 8,
        names=tuple(names),
        field_slot=np.array(field_slot, np.int64),
        field_count=np.array(field_count, np.int64),
        bit_offset=np.array(offsets, np.int64),
        bit_width=np.array(widths, np.int64),
        kind=np.array(kinds, np.int8),
        little_endian=np.array(little, np.bool_),
        array_fields=frozenset(arrays),
    )


_REFERENCE_KINDS = {UNSIGNED: "u", SIGNED: "i", FLOAT32: "f32", FLOAT64: "f64"}


def reference_fields(layout: Layout) -> list[tuple[str, int, int, str, bool, int | None]]:
    """The layout as (name, bit_offset, width, kind, little_endian, count) for tests/reference.py.

    kind is "u", "i", "f32" or "f64"; count is None for scalars. Slots of an array field are
    assumed consecutive and of one width.
    """
    out = []
    for f, name in enumerate(layout.names):
        s = int(layout.field_slot[f])
        count = int(layout.field_count[f]) if name in layout.array_fields else None
        out.append(
            (
                name,
                int(layout.bit_offset[s]),
                int(layout.bit_width[s]),
                _REFERENCE_KINDS[int(layout.kind[s])],
                bool(layout.little_endian[s]),
                count,
            )
        )
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
