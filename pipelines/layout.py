"""The decode layout of one instrument's packets: plain numpy arrays, one row per slot.

A *field* is a named value in the packet (a scalar, or a fixed array of ``count`` elements);
a *slot* is one element of a field. The profile compiler (``ilrs_ops.profiles``) builds a
Layout; the kernels in this package read and write packets with it. The CCSDS primary header
and the secondary-header time code are ordinary fields here, with names that start with ``_``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

#: Slot kinds.
UNSIGNED, SIGNED, FLOAT32, FLOAT64 = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class Layout:
    """Bit positions of every field of a fixed-length packet.

    packet_length: total octets of one packet, primary header included.
    names: field names, in packet order.
    field_slot / field_count: the first slot of each field and its element count (1 = scalar).
    bit_offset / bit_width / kind: per slot; bit offsets count from the first bit of the packet.
    Slots may overlap (a sub-field reads bits of another field); the encoder writes slots in
    order, so a later slot's bits replace an earlier one's.
    array_fields: names of fields declared with ``count`` (decoded as 2-D even when count == 1).
    octet_map: per slot, for the slots whose octets do not travel in big-endian order
    (little-endian, word-swapped ``3412`` and the like, and sub-fields of such fields): the
    packet octet holding each octet of the slot's big-endian image, most significant first, -1
    after the last; all -1 (the default) for a plain bit-packed big-endian slot. The image is
    the field's octets put back in big-endian order, and ``bit_offset`` of such a slot counts in
    it as if it lay in the packet there: the field's first octet times 8, plus the bit within
    the value (``octet_row`` builds a row).
    var_field / count_field: a variable-length array (field index, -1 for none), and the field
    that holds its element count (-1: as many elements as the rest of the packet holds). Its
    slots are laid out at its most elements, so ``packet_length`` is the longest packet; a
    shorter packet ends its array early, and the slots after the array (always whole octets
    after it) move up with it.
    """

    packet_length: int
    names: tuple[str, ...]
    field_slot: np.ndarray  # int64[n_fields]
    field_count: np.ndarray  # int64[n_fields]
    bit_offset: np.ndarray  # int64[n_slots]
    bit_width: np.ndarray  # int64[n_slots], 1..64
    kind: np.ndarray  # int8[n_slots]
    array_fields: frozenset[str] = frozenset()
    octet_map: np.ndarray | None = None  # int64[n_slots, 8]; None: every slot big-endian
    var_field: int = -1
    count_field: int = -1

    def __post_init__(self) -> None:
        n = int(self.bit_offset.shape[0])
        if self.octet_map is None:
            object.__setattr__(self, "octet_map", np.full((n, MAX_OCTETS), -1, np.int64))
        else:
            m = np.asarray(self.octet_map, np.int64)
            if m.shape != (n, MAX_OCTETS):
                raise ValueError(f"octet_map must be ({n}, {MAX_OCTETS}), not {m.shape}")
            object.__setattr__(self, "octet_map", m)

    @property
    def n_slots(self) -> int:
        return int(self.bit_offset.shape[0])

    @property
    def variable(self) -> bool:
        """Whether packets vary in length (one array's element count varies)."""
        return self.var_field >= 0

    @property
    def var_slots(self) -> tuple[int, int, int]:
        """The variable-length array's first slot, most elements and element bits."""
        s0 = int(self.field_slot[self.var_field])
        return s0, int(self.field_count[self.var_field]), int(self.bit_width[s0])

    @property
    def fixed_bits(self) -> int:
        """Bits of a packet whose variable-length array is empty (the packet length at most
        elements, less the array)."""
        if not self.variable:
            return 8 * self.packet_length
        _, most, width = self.var_slots
        return 8 * self.packet_length - most * width

    def lengths(self, counts: np.ndarray | int) -> np.ndarray:
        """Octets of packets whose variable-length array has ``counts`` elements."""
        if not self.variable:
            return np.full(np.shape(counts), self.packet_length, np.int64)
        width = self.var_slots[2]
        return (self.fixed_bits + np.asarray(counts, np.int64) * width + 7) // 8

    def moved_slots(self) -> np.ndarray:
        """Per slot, whether it lies after the variable-length array and moves with its
        length (bool; all False for a fixed layout)."""
        if not self.variable:
            return np.zeros(self.n_slots, np.bool_)
        s0, most, width = self.var_slots
        return np.asarray(self.bit_offset) >= int(self.bit_offset[s0]) + most * width

    def moves(self, name: str) -> bool:
        """Whether field ``name`` lies after the variable-length array (and moves with it)."""
        return bool(self.moved_slots()[int(self.field_slot[self.field_index(name)])])

    def element_index(self) -> np.ndarray:
        """Per slot, its element in the variable-length array, or -1 (int64)."""
        out = np.full(self.n_slots, -1, np.int64)
        if self.variable:
            s0, most, _ = self.var_slots
            out[s0 : s0 + most] = np.arange(most)
        return out

    def field_index(self, name: str) -> int:
        return self.names.index(name)

    def field_dtype(self, name: str) -> np.dtype:
        """The numpy dtype a field decodes to: the smallest integer type that holds it, or float."""
        slot = int(self.field_slot[self.field_index(name)])
        return slot_dtype(int(self.kind[slot]), int(self.bit_width[slot]))


def per_layout(compute: Callable[[Layout], T]) -> Callable[[Layout], T]:
    """``compute(layout)`` once per layout, kept while the layout lives. A layout never changes
    (frozen, compared by identity), so what is derived from it alone (slot plans, column specs)
    need not be derived again for every batch: that glue cost more than the kernels on the
    small batches of live ingest."""
    cache: weakref.WeakKeyDictionary[Layout, T] = weakref.WeakKeyDictionary()

    @functools.wraps(compute)
    def cached(layout: Layout) -> T:
        try:
            return cache[layout]
        except KeyError:
            cache[layout] = value = compute(layout)
            return value

    return cached


#: Octets a reordered value may have (u64, f64).
MAX_OCTETS = 8


def octet_row(first_octet: int, ranks: Sequence[int], bit: int, width: int) -> np.ndarray:
    """The ``octet_map`` row of a slot at bits [bit, bit + width) of a value whose octets lie at
    packet octets ``first_octet ...`` in the order ``ranks`` (``ranks[k]``: the significance of
    the value's octet that travels k-th, 0 = most significant; ``bit`` counts from the value's
    most significant bit)."""
    n = len(ranks)
    if sorted(ranks) != list(range(n)) or not 1 <= n <= MAX_OCTETS:
        raise ValueError(f"byte order {list(ranks)} is not an order of 1..{MAX_OCTETS} octets")
    if bit < 0 or width < 1 or bit + width > 8 * n:
        raise ValueError(f"bits [{bit}, {bit + width}) lie outside a {n}-octet value")
    at = {r: first_octet + k for k, r in enumerate(ranks)}  # significance -> packet octet
    row = np.full(MAX_OCTETS, -1, np.int64)
    covering = range(bit // 8, (bit + width - 1) // 8 + 1)
    row[: len(covering)] = [at[j] for j in covering]
    return row


def slot_dtype(kind: int, width: int) -> np.dtype:
    if kind == FLOAT32:
        return np.dtype(np.float32)
    if kind == FLOAT64:
        return np.dtype(np.float64)
    size = 8 if width <= 8 else 16 if width <= 16 else 32 if width <= 32 else 64
    return np.dtype(f"{'u' if kind == UNSIGNED else 'i'}{size // 8}")
