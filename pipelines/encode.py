"""Encode columns into packets of one layout: the inverse of ``decode``.

Used by the station simulator and by tests. The primary header and any spare bits are ordinary
fields of the layout, so the caller fills them like any other column. Slots are written in
layout order and each replaces the bits it covers, so a sub-field (a slot inside another
field's bits) overwrites those bits of its parent's value.
"""

from __future__ import annotations

import operator

import numpy as np
from numba import njit

from pipelines.decode import slot_plan
from pipelines.layout import FLOAT32, FLOAT64, SIGNED, Layout


@njit(cache=True, nogil=True)
def _encode_kernel(
    raw: np.ndarray,
    first: np.ndarray,
    nbytes: np.ndarray,
    drop: np.ndarray,
    mask: np.ndarray,
    reordered: np.ndarray,
    where: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    shift: np.ndarray,
    moved: np.ndarray,
    element: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write slot ``s`` of packet ``i`` (``raw[s, i]``, already masked to its width) into
    ``out``, replacing the bits it covers (slot after slot, so later slots win).

    ``out`` must be zeroed; packet ``i`` starts at ``out[starts[i]]``. A reordered slot writes
    octet k of its big-endian image to packet octet ``where[s, k]``. Variable-length layouts
    (see ``_decode_variable_kernel``): elements ``element[s] >= counts[i]`` are not written,
    and the ``moved`` slots after the array move ``shift[i]`` octets.
    """
    n_slots = first.shape[0]
    eight = np.uint64(8)
    low = np.uint64(0xFF)
    for i in range(raw.shape[1]):
        for s in range(n_slots):
            if element[s] >= 0 and element[s] >= counts[i]:
                continue
            base = starts[i] + (shift[i] if moved[s] else 0)
            v = raw[s, i]
            m = mask[s]
            p = base + first[s]
            nb = nbytes[s]
            last = nb - 1
            if nb <= 8:
                v <<= drop[s]
                m <<= drop[s]
            else:
                # 9 octets: the last one takes the low bits, the first eight the rest.
                keep = np.uint8(~((m << drop[s]) & low) & low)
                out[p + 8] = (out[p + 8] & keep) | np.uint8((v << drop[s]) & low)
                v >>= eight - drop[s]
                m >>= eight - drop[s]
                last = 7
            for k in range(last, -1, -1):
                o = base + np.int64(where[s, k]) if reordered[s] else p + k
                keep = np.uint8(~(m & low) & low)
                out[o] = (out[o] & keep) | np.uint8(v & low)
                v >>= eight
                m >>= eight


def encode(
    layout: Layout, columns: dict[str, np.ndarray], n: int, counts: np.ndarray | None = None
) -> np.ndarray:
    """Encode ``n`` packets back to back (uint8; ``n * layout.packet_length`` octets for a
    fixed layout).

    ``columns`` holds every field of the layout, header and spare fields included: shape (n,)
    for scalars, (n, count) for array fields (anything that broadcasts to it). A missing or extra
    column, or a value that does not fit its field, raises ValueError naming the field.
    A variable-length layout takes ``counts``, the elements of each packet's array (default: the
    most): packet ``i`` is then ``layout.lengths(counts)[i]`` octets, and the caller's length
    and count fields must say so (the encoder writes what it is given).
    """
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if counts is not None and not layout.variable:
        raise ValueError("counts are for a variable-length layout")
    if layout.variable:
        _, most, width = layout.var_slots
        counts = np.broadcast_to(np.asarray(most if counts is None else counts, np.int64), (n,))
        if n and not 0 <= counts.min() <= counts.max() <= most:
            raise ValueError(f"counts must be in 0..{most}")
        lengths = layout.lengths(counts)
        shift = (counts - most) * width // 8
    else:
        counts = shift = np.zeros(n, np.int64)
        lengths = np.full(n, layout.packet_length, np.int64)
    missing = [name for name in layout.names if name not in columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(map(repr, missing))}; give every field")
    extra = [name for name in columns if name not in layout.names]
    if extra:
        raise ValueError(f"unknown column(s) {', '.join(map(repr, extra))}: not in the layout")
    plan = slot_plan(layout)
    raw = np.empty((layout.n_slots, n), np.uint64)
    for f, name in enumerate(layout.names):
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        is_array = name in layout.array_fields or count != 1
        shape = (n, count) if is_array else (n,)
        values = columns[name]
        # Python ints beyond int64 would make numpy guess float64 for the whole list: keep
        # them exact as objects and let _to_bits check them.
        is_int = int(layout.kind[s0]) not in (FLOAT32, FLOAT64)
        values = np.asarray(values, dtype=object if is_int and not _is_array(values) else None)
        try:
            values = np.broadcast_to(values, shape)
        except ValueError:
            raise ValueError(
                f"column {name!r}: shape {values.shape} does not broadcast to {shape}"
            ) from None
        bits = _to_bits(name, values, int(layout.kind[s0]), int(layout.bit_width[s0]))
        raw[s0 : s0 + count] = bits.T if is_array else bits
    ends = np.cumsum(lengths)
    out = np.zeros(int(ends[-1]) if n else 0, np.uint8)
    _encode_kernel(
        raw,
        plan.first,
        plan.nbytes,
        plan.drop,
        plan.mask,
        plan.reordered,
        plan.where,
        ends - lengths,
        np.ascontiguousarray(counts),
        np.ascontiguousarray(shift),
        layout.moved_slots(),
        layout.element_index(),
        out,
    )
    return out


def _to_bits(name: str, values: np.ndarray, kind: int, width: int) -> np.ndarray:
    """The values' bit patterns as uint64, masked to ``width``; ValueError if they don't fit."""
    if kind in (FLOAT32, FLOAT64):
        if values.dtype.kind not in "fiub":
            raise ValueError(f"field {name!r}: needs real numbers, got dtype {values.dtype}")
        ftype, itype = (np.float32, np.uint32) if kind == FLOAT32 else (np.float64, np.uint64)
        # Same-dtype input is not converted, so NaN payloads keep their bits.
        with np.errstate(over="ignore", invalid="ignore"):
            converted = values.astype(ftype)
        overflow = np.isfinite(values) & ~np.isfinite(converted)
        if overflow.any():
            bad = values[overflow].flat[0]
            raise ValueError(f"field {name!r}: value {bad} does not fit f{width}")
        return converted.view(itype).astype(np.uint64)
    if values.dtype.kind == "O":
        flat = values.ravel().tolist()
        if not all(isinstance(v, int) for v in flat):
            raise ValueError(f"field {name!r}: needs integers")
        lo, hi = (min(flat), max(flat)) if flat else (0, 0)
    elif values.dtype.kind in "iub":
        lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    else:
        raise ValueError(f"field {name!r}: needs integers, got dtype {values.dtype}")
    if kind == SIGNED:
        low, high, label = -(1 << (width - 1)), (1 << (width - 1)) - 1, f"i{width}"
    else:
        low, high, label = 0, (1 << width) - 1, f"u{width}"
    if lo < low or hi > high:
        bad = lo if lo < low else hi
        raise ValueError(f"field {name!r}: value {bad} does not fit {label} ({low}..{high})")
    if kind == SIGNED:
        mask = np.uint64((1 << width) - 1)
        return values.astype(np.int64).view(np.uint64) & mask
    return values.astype(np.uint64)


def _is_array(values: object) -> bool:
    return isinstance(values, np.ndarray | np.generic)
