"""The decode layout of one instrument's packets: plain numpy arrays, one row per slot.

A *field* is a named value in the packet (a scalar, or a fixed array of ``count`` elements);
a *slot* is one element of a field. The profile compiler (``ilrs_ops.profiles``) builds a
Layout; the kernels in this package read and write packets with it. The CCSDS primary header
and the secondary-header time code are ordinary fields here, with names that start with ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Slot kinds.
UNSIGNED, SIGNED, FLOAT32, FLOAT64 = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class Layout:
    """Bit positions of every field of a fixed-length packet.

    packet_length: total octets of one packet, primary header included.
    names: field names, in packet order.
    field_slot / field_count: the first slot of each field and its element count (1 = scalar).
    bit_offset / bit_width / kind / little_endian: per slot; bit offsets count from the first
    bit of the packet; ``little_endian`` only on byte-aligned fields of whole octets.
    array_fields: names of fields declared with ``count`` (decoded as 2-D even when count == 1).
    """

    packet_length: int
    names: tuple[str, ...]
    field_slot: np.ndarray  # int64[n_fields]
    field_count: np.ndarray  # int64[n_fields]
    bit_offset: np.ndarray  # int64[n_slots]
    bit_width: np.ndarray  # int64[n_slots], 1..64
    kind: np.ndarray  # int8[n_slots]
    little_endian: np.ndarray  # bool[n_slots]
    array_fields: frozenset[str] = frozenset()

    @property
    def n_slots(self) -> int:
        return int(self.bit_offset.shape[0])

    def field_index(self, name: str) -> int:
        return self.names.index(name)

    def field_dtype(self, name: str) -> np.dtype:
        """The numpy dtype a field decodes to: the smallest integer type that holds it, or float."""
        slot = int(self.field_slot[self.field_index(name)])
        return slot_dtype(int(self.kind[slot]), int(self.bit_width[slot]))


def slot_dtype(kind: int, width: int) -> np.dtype:
    if kind == FLOAT32:
        return np.dtype(np.float32)
    if kind == FLOAT64:
        return np.dtype(np.float64)
    size = 8 if width <= 8 else 16 if width <= 16 else 32 if width <= 32 else 64
    return np.dtype(f"{'u' if kind == UNSIGNED else 'i'}{size // 8}")
