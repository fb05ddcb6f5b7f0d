"""Compile a checked profile into the arrays the pipelines work with (a ``pipelines.Layout``)."""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles._schema import Profile, TimeCode
from pipelines.layout import FLOAT32, FLOAT64, SIGNED, UNSIGNED, Layout

#: The CCSDS primary header as ordinary fields: (name, bits).
HEADER_FIELDS: tuple[tuple[str, int], ...] = (
    ("_version", 3),
    ("_type", 1),
    ("_sec_hdr", 1),
    ("_apid", 11),
    ("_seq_flags", 2),
    ("_seq_count", 14),
    ("_length", 16),
)


def time_fields(t: TimeCode) -> list[tuple[str, int]]:
    """The secondary-header time code as unsigned fields: (name, bits)."""
    if t.code == "cuc":
        parts = [("_time_coarse", 8 * t.coarse), ("_time_fine", 8 * t.fine)]
    elif t.code != "cds":
        return []  # the time comes from fields of the packet, or from its receive time
    else:
        parts = [("_time_days", 8 * t.days), ("_time_ms", 32), ("_time_subms", 8 * t.subms)]
    return [(n, w) for n, w in parts if w]


def compile_layout(p: Profile) -> Layout:
    """Bit positions of the header, the time code and every field of ``p``."""
    names: list[str] = []
    field_slot: list[int] = []
    field_count: list[int] = []
    offset: list[int] = []
    width: list[int] = []
    kind: list[int] = []
    little: list[bool] = []
    bit = 0

    def add(name: str, k: int, w: int, count: int, le: bool) -> None:
        nonlocal bit
        names.append(name)
        field_slot.append(len(offset))
        field_count.append(count)
        for _ in range(count):
            offset.append(bit)
            width.append(w)
            kind.append(k)
            little.append(le)
            bit += w

    for name, w in (*HEADER_FIELDS, *time_fields(p.time)):
        add(name, UNSIGNED, w, 1, False)
    for f in p.fields:
        k = {"u": UNSIGNED, "i": SIGNED, "f": FLOAT32 if f.width == 32 else FLOAT64}[f.base]
        add(f.name, k, f.width, f.count or 1, f.endian == "little")
    return Layout(
        packet_length=p.packet_length,
        names=tuple(names),
        field_slot=np.array(field_slot, dtype=np.int64),
        field_count=np.array(field_count, dtype=np.int64),
        bit_offset=np.array(offset, dtype=np.int64),
        bit_width=np.array(width, dtype=np.int64),
        kind=np.array(kind, dtype=np.int8),
        little_endian=np.array(little, dtype=np.bool_),
        array_fields=frozenset(f.name for f in p.fields if f.count is not None),
    )
