"""Packet integrity checks (CRCs and sums) over a range of octets of each packet, in one pass,
and packet fingerprints (a hash of all its octets) for recognising retransmissions.

Kinds, as missions fly them:

- ``crc16-ccitt-false``: CRC-16, polynomial 0x1021, initial 0xFFFF, no reflection (the CCSDS one)
- ``crc16-xmodem``: the same polynomial, initial 0
- ``crc32``: the zlib/Ethernet CRC-32 (reflected 0xEDB88320, initial and final 0xFFFFFFFF)
- ``sum8`` / ``sum16``: the sum of the octets modulo 256 / 65536
- ``xor8``: the octets XORed together
"""

from __future__ import annotations

import numpy as np
from numba import njit

KINDS = ("crc16-ccitt-false", "crc16-xmodem", "crc32", "sum8", "sum16", "xor8")
#: Bits of each kind's value (the width the packet's check field must have).
WIDTH = {
    "crc16-ccitt-false": 16,
    "crc16-xmodem": 16,
    "crc32": 32,
    "sum8": 8,
    "sum16": 16,
    "xor8": 8,
}


def _crc16_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table[b] = c & 0xFFFF
    return table


def _crc32_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[b] = c
    return table


CRC16 = _crc16_table()
CRC32 = _crc32_table()


@njit(cache=True, nogil=True)
def _checks_kernel(
    buf: np.ndarray,
    starts: np.ndarray,
    begin: int,
    stop: np.ndarray,
    kind: int,
    crc16: np.ndarray,
    crc32: np.ndarray,
    out: np.ndarray,
) -> None:
    for i in range(starts.shape[0]):
        lo = starts[i] + begin
        hi = starts[i] + stop[i]
        if kind <= 1:
            c = np.uint32(0xFFFF) if kind == 0 else np.uint32(0)
            for j in range(lo, hi):
                c = ((c << np.uint32(8)) & np.uint32(0xFFFF)) ^ crc16[
                    ((c >> np.uint32(8)) ^ np.uint32(buf[j])) & np.uint32(0xFF)
                ]
            out[i] = c
        elif kind == 2:
            c = np.uint32(0xFFFFFFFF)
            for j in range(lo, hi):
                c = (c >> np.uint32(8)) ^ crc32[(c ^ np.uint32(buf[j])) & np.uint32(0xFF)]
            out[i] = c ^ np.uint32(0xFFFFFFFF)
        elif kind == 5:
            x = np.uint32(0)
            for j in range(lo, hi):
                x ^= np.uint32(buf[j])
            out[i] = x
        else:
            s = np.uint64(0)
            for j in range(lo, hi):
                s += np.uint64(buf[j])
            out[i] = s % np.uint64(256 if kind == 3 else 65536)


def checks(
    buf: np.ndarray, starts: np.ndarray, begin: int, stop: int | np.ndarray, kind: str
) -> np.ndarray:
    """The ``kind`` check of octets [begin, stop) of every packet starting at ``starts`` in
    ``buf`` (offsets into the packet; ``stop`` one for all or one per packet), as uint64."""
    if kind not in KINDS:
        raise ValueError(f"integrity check {kind!r}: use one of {', '.join(KINDS)}")
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-D uint8 array")
    starts = np.ascontiguousarray(starts, np.int64)
    stops = _per_packet(stop, starts, "stop")
    if stops.size and not 0 <= begin <= stops.min():
        raise ValueError(f"octets [{begin}, {int(stops.min())}) are not a range")
    if starts.size and (starts.min() < 0 or (starts + stops).max() > buf.shape[0]):
        raise ValueError("a packet's checked octets run past the end of the buffer")
    out = np.empty(starts.shape[0], np.uint64)
    _checks_kernel(buf, starts, begin, stops, KINDS.index(kind), CRC16, CRC32, out)
    return out


def _per_packet(value: int | np.ndarray, starts: np.ndarray, name: str) -> np.ndarray:
    """One int64 per packet: ``value`` itself, or one for all broadcast."""
    a = np.asarray(value)
    if a.ndim and a.shape != starts.shape:
        raise ValueError(f"{name} must be one number, or one per packet ({starts.shape[0]})")
    return np.ascontiguousarray(np.broadcast_to(a.astype(np.int64), starts.shape))


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True)
def _fingerprint_kernel(
    buf: np.ndarray, starts: np.ndarray, length: np.ndarray, out: np.ndarray
) -> None:
    for i in range(starts.shape[0]):
        h = _FNV_OFFSET
        for j in range(starts[i], starts[i] + length[i]):
            h = (h ^ np.uint64(buf[j])) * _FNV_PRIME
        out[i] = h


def fingerprints(buf: np.ndarray, starts: np.ndarray, length: int | np.ndarray) -> np.ndarray:
    """A 64-bit FNV-1a hash of the ``length`` octets (one for all, or one per packet) of every
    packet starting at ``starts``: equal packets have equal fingerprints, so a retransmitted
    packet is recognised without trusting any of its fields."""
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-D uint8 array")
    starts = np.ascontiguousarray(starts, np.int64)
    lengths = _per_packet(length, starts, "length")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"packet length {int(lengths.min())} is negative")
    if starts.size and (starts.min() < 0 or (starts + lengths).max() > buf.shape[0]):
        raise ValueError("a packet runs past the end of the buffer")
    out = np.empty(starts.shape[0], np.uint64)
    _fingerprint_kernel(buf, starts, lengths, out)
    return out
