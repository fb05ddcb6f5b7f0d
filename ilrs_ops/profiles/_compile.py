"""Compile a checked profile into the arrays the pipelines work with (a ``pipelines.Layout``)."""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles._schema import REST, FieldSpec, Profile, TimeCode
from pipelines.layout import FLOAT32, FLOAT64, MAX_OCTETS, SIGNED, UNSIGNED, Layout, octet_row

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


_NO_REORDER = np.full(MAX_OCTETS, -1, np.int64)


def compile_layout(p: Profile) -> Layout:
    """Bit positions of the header, the time code and every field of ``p``.

    A sub-field's slots lie inside its parent's bits and do not move the cursor. In a parent
    whose octets are not in big-endian order, ``bit`` counts in the parent's value, and the
    sub-field's slots read the parent's octets in that order (``Layout.octet_map``).

    A string, a blob or an integer wider than 64 bits is an array field of one u8 slot per
    octet, so the kernels read it unchanged; the tables turn the octets into text or binary.
    A 2-D array (``axes``) is one array field per axis (``<name>_<axis>``) whose slots stride
    over the others' (interleaved) or follow each other (``planar``).
    """
    names: list[str] = []
    field_slot: list[int] = []
    field_count: list[int] = []
    offset: list[int] = []
    width: list[int] = []
    kind: list[int] = []
    octets: list[np.ndarray] = []
    placed: dict[str, tuple[int, FieldSpec]] = {}  # top-level field -> (first bit, spec)
    bit = 0

    def add(
        name: str,
        k: int,
        w: int,
        count: int,
        at: int,
        order: tuple[int, ...] | None = None,
        value_bit: int | None = None,
        stride: int | None = None,
    ) -> None:
        """The slots of one field from bit ``at``, ``stride`` bits apart (default ``w``). With a
        byte ``order``, each element is a value of its own, or (``value_bit``: where the
        parent's value starts) bits of one."""
        names.append(name)
        field_slot.append(len(offset))
        field_count.append(count)
        for j in range(count):
            slot_bit = at + j * (w if stride is None else stride)
            offset.append(slot_bit)
            width.append(w)
            kind.append(k)
            if order is None:
                octets.append(_NO_REORDER)
            elif value_bit is None:
                octets.append(octet_row(slot_bit // 8, order, 0, w))
            else:
                octets.append(octet_row(value_bit // 8, order, slot_bit - value_bit, w))

    for name, w in (*HEADER_FIELDS, *time_fields(p.time)):
        add(name, UNSIGNED, w, 1, bit)
        bit += w
    for f in p.fields:
        if f.is_octets:
            add(f.name, UNSIGNED, 8, f.width // 8, bit)
            bit += f.width
            continue
        k = {"u": UNSIGNED, "i": SIGNED, "f": FLOAT32 if f.width == 32 else FLOAT64}[f.base]
        if f.axes:
            n, count = len(f.axes), f.count or 1
            for a, axis in enumerate(f.axis_names):
                if f.planar:  # x0 x1 ... then y0 y1 ...
                    add(axis, k, f.width, count, bit + a * count * f.width, f.byte_order)
                else:  # x0 y0 z0 x1 y1 z1 ...
                    at, stride = bit + a * f.width, n * f.width
                    add(axis, k, f.width, count, at, f.byte_order, stride=stride)
            bit += f.bits
            continue
        if f.is_subfield:
            first, parent = placed[f.of or ""]
            add(f.name, k, f.width, f.count or 1, first + (f.bit or 0), parent.byte_order, first)
            continue
        add(f.name, k, f.width, f.count or 1, bit, f.byte_order)
        placed[f.name] = (bit, f)
        bit += f.width * (f.count or 1)
    var = p.variable
    return Layout(
        var_field=names.index(var.name) if var else -1,
        count_field=names.index(var.count_from) if var and var.count_from != REST else -1,
        packet_length=p.packet_length,
        names=tuple(names),
        field_slot=np.array(field_slot, dtype=np.int64),
        field_count=np.array(field_count, dtype=np.int64),
        bit_offset=np.array(offset, dtype=np.int64),
        bit_width=np.array(width, dtype=np.int64),
        kind=np.array(kind, dtype=np.int8),
        array_fields=frozenset(
            name for f in p.fields if f.count is not None or f.is_octets for name in f.axis_names
        ),
        octet_map=np.array(octets, dtype=np.int64).reshape(len(offset), MAX_OCTETS),
    )
