"""Decode fixed-length packets of one layout into columns, one numpy array per field.

The kernel extracts every slot as a raw 64-bit value (sign-extended for signed slots); the
wrapper copies the raw values into each field's dtype through unsigned views, so float bits
are reinterpreted, never converted.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from pipelines.layout import FLOAT32, FLOAT64, MAX_OCTETS, SIGNED, UNSIGNED, Layout, per_layout


class SlotPlan(NamedTuple):
    """Per-slot octet positions, precomputed once per call so the kernels only shift and mask.

    first: first octet of the slot, from the start of the packet; nbytes: octets it touches
    (1..9; 9 only for a 64-bit field that is not byte-aligned); drop: bits after the slot in its
    last octet; mask: the low ``width`` bits; sign: the sign bit for signed slots, else 0;
    reordered: the slot's octets do not travel in big-endian order; where: for those, the
    packet octet of each octet of its big-endian image (``Layout.octet_map``; 0 past nbytes).
    """

    first: np.ndarray  # int64
    nbytes: np.ndarray  # int64
    drop: np.ndarray  # uint64
    mask: np.ndarray  # uint64
    sign: np.ndarray  # uint64
    reordered: np.ndarray  # bool
    where: np.ndarray  # uint64[n_slots, 8]


@per_layout
def slot_plan(layout: Layout) -> SlotPlan:
    """Check a layout's slots and compute their octet positions; raise ValueError if invalid.
    Computed once per layout; the arrays are shared, never to be written."""
    offset = np.asarray(layout.bit_offset, dtype=np.int64)
    width = np.asarray(layout.bit_width, dtype=np.int64)
    kind = np.asarray(layout.kind, dtype=np.int64)
    octets = np.asarray(layout.octet_map, dtype=np.int64)
    n = offset.shape[0]
    if not (width.shape == kind.shape == (n,)) or octets.shape != (n, MAX_OCTETS):
        raise ValueError("layout slot arrays (bit_offset, bit_width, kind, octet_map) differ")
    reordered = (octets >= 0).any(axis=1)
    first = offset // 8
    end = offset + width
    nbytes = (end + 7) // 8 - first
    slot_names = _slot_names(layout)
    for s in range(n):
        w, k = int(width[s]), int(kind[s])
        where = f"layout field {slot_names[s]!r}"
        if not 1 <= w <= 64:
            raise ValueError(f"{where}: bit width {w} is not in 1..64")
        if k not in (UNSIGNED, SIGNED, FLOAT32, FLOAT64):
            raise ValueError(f"{where}: kind {k} is not one of UNSIGNED, SIGNED, FLOAT32, FLOAT64")
        if (k == FLOAT32 and w != 32) or (k == FLOAT64 and w != 64):
            raise ValueError(f"{where}: a float field of {w} bits; use 32 (f32) or 64 (f64)")
        if offset[s] < 0 or offset[s] + w > layout.packet_length * 8:
            raise ValueError(
                f"{where}: bits [{offset[s]}, {offset[s] + w}) lie outside the "
                f"{layout.packet_length}-octet packet"
            )
        if reordered[s]:
            row, nb = octets[s], int(nbytes[s])
            if (
                nb > MAX_OCTETS
                or (row[:nb] < 0).any()
                or (row[nb:] != -1).any()
                or len(set(row[:nb].tolist())) != nb
                or row[:nb].max() >= layout.packet_length
            ):
                raise ValueError(
                    f"{where}: octet_map {row.tolist()} does not give the {nb} distinct packet "
                    f"octet(s) of its bits [{offset[s]}, {offset[s] + w}), then -1"
                )
    drop = (-end) % 8
    mask = np.where(
        width == 64,
        np.uint64(0xFFFF_FFFF_FFFF_FFFF),
        (np.uint64(1) << np.minimum(width, 63).astype(np.uint64)) - np.uint64(1),
    ).astype(np.uint64)
    sign = np.where(
        kind == SIGNED, np.uint64(1) << (width - 1).astype(np.uint64), np.uint64(0)
    ).astype(np.uint64)
    return SlotPlan(
        first=first,
        nbytes=nbytes,
        drop=drop.astype(np.uint64),
        mask=mask,
        sign=sign,
        reordered=reordered,
        where=np.maximum(octets, 0).astype(np.uint64),
    )


def _slot_names(layout: Layout) -> list[str]:
    names = [""] * layout.n_slots
    for f, name in enumerate(layout.names):
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        for j in range(count):
            names[s0 + j] = name if count == 1 else f"{name}[{j}]"
    return names


#: Packets per block in the decode kernel: a block's octets stay in cache while each slot's
#: values are written contiguously (about 1.5x faster than one packet at a time, measured).
_BLOCK = 1024


@njit(cache=True, nogil=True)
def _gather_reordered(
    buf: np.ndarray,
    starts: np.ndarray,
    b0: int,
    b1: int,
    at: np.ndarray,
    nb: int,
    d: np.uint64,
    m: np.uint64,
    sg: np.uint64,
    row: np.ndarray,
) -> None:
    """One reordered slot of packets [b0, b1): its image octets gathered from packet octets
    ``at``, most significant first, then shifted, masked and sign-extended like a big-endian
    slot. A function of its own, so that the kernel's big-endian loops compile as they did
    before byte orders (measured: as fast or faster, bench/bench_decode.py)."""
    eight = np.uint64(8)
    for i in range(b0, b1):
        p = np.uint64(starts[i])
        v = np.uint64(0)
        for k in range(nb):
            v = (v << eight) | np.uint64(buf[p + at[k]])
        row[i] = (((v >> d) & m) ^ sg) - sg


@njit(cache=True, nogil=True)
def _decode_kernel(
    buf: np.ndarray,
    starts: np.ndarray,
    first: np.ndarray,
    nbytes: np.ndarray,
    drop: np.ndarray,
    mask: np.ndarray,
    sign: np.ndarray,
    reordered: np.ndarray,
    where: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write slot ``s`` of packet ``i`` as a raw 64-bit value to ``out[s, i]``.

    Big-endian slots: read the covering octets MSB first, drop the bits after the slot, mask;
    a 9-octet slot (64 bits, not byte-aligned) takes the low bits of its 9th octet separately.
    Reordered slots read the same way, but each octet of the image from where it travels.
    Signed slots are sign-extended with ``(v ^ sign) - sign``. Offsets are unsigned so that
    indexing skips negative-index wraparound (the wrapper checks starts >= 0).
    """
    n = starts.shape[0]
    eight = np.uint64(8)
    for b0 in range(0, n, _BLOCK):
        b1 = min(n, b0 + _BLOCK)
        for s in range(first.shape[0]):
            f, nb, d, m, sg = np.uint64(first[s]), nbytes[s], drop[s], mask[s], sign[s]
            row = out[s]
            if reordered[s]:
                _gather_reordered(buf, starts, b0, b1, where[s], nb, d, m, sg, row)
            elif nb <= 8:
                for i in range(b0, b1):
                    p = np.uint64(starts[i]) + f
                    v = np.uint64(0)
                    for k in range(nb):
                        v = (v << eight) | np.uint64(buf[p + np.uint64(k)])
                    row[i] = (((v >> d) & m) ^ sg) - sg
            else:
                for i in range(b0, b1):
                    p = np.uint64(starts[i]) + f
                    v = np.uint64(0)
                    for k in range(8):
                        v = (v << eight) | np.uint64(buf[p + np.uint64(k)])
                    v = (v << (eight - d)) | (np.uint64(buf[p + eight]) >> d)
                    row[i] = ((v & m) ^ sg) - sg


@njit(cache=True, nogil=True)
def _decode_variable_kernel(
    buf: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    shift: np.ndarray,
    moved: np.ndarray,
    element: np.ndarray,
    first: np.ndarray,
    nbytes: np.ndarray,
    drop: np.ndarray,
    mask: np.ndarray,
    sign: np.ndarray,
    reordered: np.ndarray,
    where: np.ndarray,
    out: np.ndarray,
) -> None:
    """``_decode_kernel`` for a variable-length layout: element ``element[s]`` of the array is
    0 in a packet of fewer elements (its octets are not the packet's), and a slot after the
    array (``moved``) reads ``shift[i]`` octets from where the layout puts it (<= 0)."""
    n = starts.shape[0]
    eight = np.uint64(8)
    for b0 in range(0, n, _BLOCK):
        b1 = min(n, b0 + _BLOCK)
        for s in range(first.shape[0]):
            nb, d, m, sg, e = nbytes[s], drop[s], mask[s], sign[s], element[s]
            row = out[s]
            for i in range(b0, b1):
                if e >= 0 and e >= counts[i]:
                    row[i] = 0
                    continue
                p = starts[i] + (shift[i] if moved[s] else 0)
                v = np.uint64(0)
                if reordered[s]:
                    for k in range(nb):
                        v = (v << eight) | np.uint64(buf[p + np.int64(where[s, k])])
                    row[i] = (((v >> d) & m) ^ sg) - sg
                elif nb <= 8:
                    q = p + first[s]
                    for k in range(nb):
                        v = (v << eight) | np.uint64(buf[q + k])
                    row[i] = (((v >> d) & m) ^ sg) - sg
                else:
                    q = p + first[s]
                    for k in range(8):
                        v = (v << eight) | np.uint64(buf[q + k])
                    v = (v << (eight - d)) | (np.uint64(buf[q + 8]) >> d)
                    row[i] = ((v & m) ^ sg) - sg


#: Octets of raw values decoded per kernel call: the raw block stays in cache until it is
#: copied into the columns, instead of one (n_slots, N) block that must go out to memory.
_CHUNK_OCTETS = 4 << 20


def decode(
    buf: np.ndarray, starts: np.ndarray, layout: Layout, counts: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Decode the packets at ``buf[starts[i]:starts[i] + layout.packet_length]`` into columns.

    The caller has already checked each packet's APID and length. Returns one array per field:
    1-D for scalars, 2-D (N, count) for array fields, dtype ``layout.field_dtype(name)``.
    A variable-length layout needs ``counts`` (``element_counts``): packet ``i`` is then
    ``layout.lengths(counts)[i]`` octets, and its array's elements past ``counts[i]`` are 0.
    """
    buf = _check_buf(buf)
    starts = _check_starts(starts)
    if layout.variable:
        if counts is None:
            raise ValueError("a variable-length layout needs counts (see element_counts)")
        counts = np.ascontiguousarray(counts, np.int64)
        most = layout.var_slots[1]
        if counts.shape != starts.shape or (counts.size and not 0 <= counts.min() <= most):
            raise ValueError(f"counts must be one count in 0..{most} per packet")
        lengths = layout.lengths(counts)
    else:
        lengths = np.full(starts.shape, layout.packet_length, np.int64)
    if starts.size and (starts.min() < 0 or (starts + lengths).max() > buf.shape[0]):
        size = "its length" if layout.variable else layout.packet_length
        raise ValueError(
            f"every packet [start, start + {size}) must lie within the {buf.shape[0]}-octet buffer"
        )
    plan = slot_plan(layout)
    n = starts.shape[0]
    columns, targets = _empty_columns(layout, n)
    chunk = max(_BLOCK, _CHUNK_OCTETS // (8 * max(layout.n_slots, 1)) // _BLOCK * _BLOCK)
    raw = np.empty((layout.n_slots, min(chunk, n)), np.uint64)
    if layout.variable:
        _, most, width = layout.var_slots
        moved, element = layout.moved_slots(), layout.element_index()
        shift = (counts - most) * width // 8  # octets the slots after the array move up
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        if c1 - c0 != raw.shape[1]:
            raw = np.empty((layout.n_slots, c1 - c0), np.uint64)
        if layout.variable:
            _decode_variable_kernel(
                buf, starts[c0:c1], counts[c0:c1], shift[c0:c1], moved, element, *plan, raw
            )
        else:
            _decode_kernel(buf, starts[c0:c1], *plan, raw)
        _fill(targets, raw, c0)
    return columns


def element_counts(
    buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """The element count of the variable-length array of each packet (int64), and whether the
    packet's length fits it (bool): its count field's value (at most ``count``) with exactly
    the octets that count takes, or, for an array to the rest of the packet, the most elements
    the octets after the fixed part hold (fewer than 8 bits left over). Counts of packets that
    do not fit are 0."""
    buf = _check_buf(buf)
    starts = _check_starts(starts)
    lengths = np.ascontiguousarray(lengths, np.int64)
    if not layout.variable:
        raise ValueError("element_counts needs a variable-length layout")
    _, most, width = layout.var_slots
    fixed = layout.fixed_bits
    fits = (lengths * 8 >= fixed) & (lengths <= layout.packet_length)
    counts = np.zeros(starts.shape, np.int64)
    at = np.flatnonzero(fits)
    if layout.count_field < 0:
        rest = lengths[at] * 8 - fixed
        counts[at] = rest // width
        fits[at] = rest - counts[at] * width < 8
    elif at.size:
        slot = int(layout.field_slot[layout.count_field])
        plan = slot_plan(layout)
        one = SlotPlan(*(a[slot : slot + 1] for a in plan))
        value = np.empty((1, at.size), np.uint64)
        _decode_kernel(buf, starts[at], *one, value)
        c = np.minimum(value[0], np.uint64(most + 1)).astype(np.int64)
        fits[at] = (c <= most) & (layout.lengths(np.minimum(c, most)) == lengths[at])
        counts[at] = np.minimum(c, most)
    counts[~fits] = 0
    return counts, fits


def field_values(buf: np.ndarray, starts: np.ndarray, layout: Layout, name: str) -> np.ndarray:
    """The raw value (int64; sign-extended for a signed field) of one scalar field of the
    packets at ``starts``; only the octets of that field need lie in ``buf``. For routing
    packets by a field before their layout is known (packet variants)."""
    buf = _check_buf(buf)
    starts = _check_starts(starts)
    f = layout.field_index(name)
    slot = int(layout.field_slot[f])
    plan = slot_plan(layout)
    one = SlotPlan(*(a[slot : slot + 1] for a in plan))
    end = int(one.first[0] + one.nbytes[0])
    if one.reordered[0]:
        end = int(one.where[0][: one.nbytes[0]].max()) + 1
    if starts.size and (starts.min() < 0 or starts.max() + end > buf.shape[0]):
        raise ValueError(f"every packet's field {name!r} must lie within the buffer")
    value = np.empty((1, starts.shape[0]), np.uint64)
    _decode_kernel(buf, starts, *one, value)
    return value[0].view(np.int64)


def columns_from_raw(raw: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Turn raw slot values (n_slots, N) uint64, as the kernel writes them, into columns."""
    columns, targets = _empty_columns(layout, raw.shape[1])
    _fill(targets, raw, 0)
    return columns


_Target = tuple[int, int, bool, np.ndarray]


@per_layout
def _field_specs(layout: Layout) -> list[tuple[str, int, int, bool, np.dtype]]:
    """Per field: name, first slot, count, whether an array, dtype."""
    specs = []
    for f, name in enumerate(layout.names):
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        is_array = name in layout.array_fields or count != 1
        specs.append((name, s0, count, is_array, layout.field_dtype(name)))
    return specs


def _empty_columns(layout: Layout, n: int) -> tuple[dict[str, np.ndarray], list[_Target]]:
    """Allocate the columns; each target is (first slot, count, is_array, unsigned view)."""
    columns: dict[str, np.ndarray] = {}
    targets: list[_Target] = []
    for name, s0, count, is_array, dtype in _field_specs(layout):
        column = np.empty((n, count) if is_array else (n,), dtype)
        columns[name] = column
        # Unsigned views: copying a raw value truncates it to the field's octets, which keeps
        # a sign-extended value's two's complement and a float's bits.
        targets.append((s0, count, is_array, column.view(f"u{dtype.itemsize}")))
    return columns, targets


def _fill(targets: list[_Target], raw: np.ndarray, c0: int) -> None:
    c1 = c0 + raw.shape[1]
    for s0, count, is_array, view in targets:
        if is_array:
            np.copyto(view[c0:c1].T, raw[s0 : s0 + count], casting="unsafe")
        else:
            np.copyto(view[c0:c1], raw[s0], casting="unsafe")


def packet_fields(buf: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """APID (int32), sequence count (int32) and total octets (int64) of the packets at ``starts``.

    Vectorised NumPy over the primary headers, for callers that route packets by APID and check
    their length before ``decode``.
    """
    buf = _check_buf(buf)
    starts = _check_starts(starts)
    if starts.size and (starts.min() < 0 or starts.max() + 6 > buf.shape[0]):
        raise ValueError(f"every primary header must lie within the {buf.shape[0]}-octet buffer")
    h = buf[starts[:, None] + np.arange(6)].astype(np.int32)
    apid = ((h[:, 0] & 7) << 8) | h[:, 1]
    seq_count = ((h[:, 2] & 0x3F) << 8) | h[:, 3]
    length = ((h[:, 4] << 8) | h[:, 5]).astype(np.int64) + 7
    return apid, seq_count, length


def _check_buf(buf: np.ndarray) -> np.ndarray:
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-D uint8 array")
    return np.ascontiguousarray(buf)


def _check_starts(starts: np.ndarray) -> np.ndarray:
    starts = np.asarray(starts)
    if starts.ndim != 1 or not (starts.dtype.kind in "iu" or starts.size == 0):
        raise TypeError("starts must be a 1-D integer array")
    return np.ascontiguousarray(starts, dtype=np.int64)
