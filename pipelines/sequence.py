"""Sequence check of one instrument's packets in arrival order: duplicates, time order, gaps.

Each packet gets exactly one flag, decided in this order:

1. DUPLICATE: the same (sequence count, time) as a packet seen before it. The window is this
   batch (every earlier packet, whatever its flag) plus the packet carried from the previous
   batch (``last``); older duplicates are the store's to drop, by (instrument, apid, sequence
   count, packet time).
2. OUT_OF_ORDER: its time is earlier than the latest accepted time (equal times are in order).
3. OK (accepted): it becomes the latest accepted packet.

Gaps are measured between consecutive accepted packets with serial-number arithmetic on the
14-bit count (RFC 1982): the forward distance ``d = (seq - last_seq) mod 16384``.
``2 <= d <= 8192`` is a gap of ``d - 1`` missing packets, reported at the packet after the gap.
``d == 1`` is the next packet; ``d == 0`` (same count, new time) and ``d > 8192`` (a step back
of less than half the modulus: reordering, or a counter reset) report no gap, and the count
restarts from the new packet. A loss of 16384 packets or more cannot be seen in the count; the
caller can compare times with the expected period.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

#: Packet flags.
OK, DUPLICATE, OUT_OF_ORDER = 0, 1, 2
FLAG_NAMES = {OK: "ok", DUPLICATE: "duplicate", OUT_OF_ORDER: "out_of_order"}
MODULUS = 1 << 14
HALF = MODULUS // 2


class SequenceResult(NamedTuple):
    """Flags per packet, gap events, and the latest accepted (seq, time) to carry on."""

    flag: np.ndarray  # int8[N]
    gap_index: np.ndarray  # int64[G]: the first packet after the gap
    gap_missing: np.ndarray  # int64[G]: packets missing before it
    last: tuple[int, int] | None


@njit(cache=True, nogil=True)
def _needs_lookup(time_ns: np.ndarray, has_last: bool, last_time: int) -> bool:
    """Whether some packet's time is not above every earlier time: only then can it repeat one."""
    if time_ns.shape[0] == 0:
        return False
    top = time_ns[0]
    if has_last and top <= last_time:
        return True
    for i in range(1, time_ns.shape[0]):
        t = time_ns[i]
        if t <= top:
            return True
        top = t
    return False


@njit(cache=True, nogil=True)
def _seen_before(tab_time: np.ndarray, tab_seq: np.ndarray, shift: int, seq: int, t: int) -> bool:
    """Look (seq, t) up in the open-addressing table (linear probing); insert it if absent."""
    mask = tab_seq.shape[0] - 1
    h = (np.uint64(t) ^ (np.uint64(seq) << np.uint64(50))) * np.uint64(0x9E3779B97F4A7C15)
    k = np.int64(h >> np.uint64(shift))
    while tab_seq[k] >= 0:
        if tab_seq[k] == seq and tab_time[k] == t:
            return True
        k = (k + 1) & mask
    tab_seq[k] = seq
    tab_time[k] = t
    return False


@njit(cache=True, nogil=True)
def _sequence_kernel(
    seq: np.ndarray,
    time_ns: np.ndarray,
    has_last: bool,
    last_seq: int,
    last_time: int,
    tab_time: np.ndarray,
    tab_seq: np.ndarray,
    shift: int,
    flag: np.ndarray,
    gap_index: np.ndarray,
    gap_missing: np.ndarray,
) -> tuple[int, bool, int, int]:
    """Flags and gaps as the module says; returns (gaps, has_last, last_seq, last_time).

    An empty table means the wrapper found every time above all earlier ones: no duplicates.
    """
    lookup = tab_seq.shape[0] > 0
    if lookup and has_last:
        _seen_before(tab_time, tab_seq, shift, last_seq, last_time)
    n_gaps = 0
    for i in range(seq.shape[0]):
        s, t = seq[i], time_ns[i]
        if lookup and _seen_before(tab_time, tab_seq, shift, s, t):
            flag[i] = 1
            continue
        if has_last:
            if t < last_time:
                flag[i] = 2
                continue
            d = (s - last_seq) & (MODULUS - 1)
            if 2 <= d <= HALF:
                gap_index[n_gaps] = i
                gap_missing[n_gaps] = d - 1
                n_gaps += 1
        flag[i] = 0
        has_last, last_seq, last_time = True, s, t
    return n_gaps, has_last, last_seq, last_time


def check_sequence(
    seq_count: np.ndarray, time_ns: np.ndarray, last: tuple[int, int] | None = None
) -> SequenceResult:
    """Check one instrument's packets (arrival order) after ``last``, the (seq, time_ns) carried
    from the previous batch's result (None for the first batch)."""
    seq = np.asarray(seq_count)
    t = np.asarray(time_ns)
    n = seq.shape[0] if seq.ndim == 1 else -1
    if seq.ndim != 1 or t.shape != (n,):
        raise ValueError("seq_count and time_ns must be 1-D arrays of the same length")
    if n and (seq.dtype.kind not in "iu" or t.dtype.kind not in "iu"):
        raise TypeError("seq_count and time_ns must be integer arrays")
    seq = np.ascontiguousarray(seq, np.int64)
    t = np.ascontiguousarray(t, np.int64)
    if n and (seq.min() < 0 or seq.max() >= MODULUS):
        raise ValueError(f"sequence counts must lie in 0..{MODULUS - 1}")
    has_last, last_seq, last_time = False, 0, 0
    if last is not None:
        last_seq, last_time = int(last[0]), int(last[1])
        if not 0 <= last_seq < MODULUS:
            raise ValueError(f"last sequence count {last_seq} is not in 0..{MODULUS - 1}")
        if not -(2**63) <= last_time < 2**63:
            raise ValueError(f"last time {last_time} is not an int64 ns time")
        has_last = True
    if _needs_lookup(t, has_last, last_time):
        bits = max(4, int(2 * (n + 1)).bit_length())  # load factor <= 1/2
        tab_time = np.empty(1 << bits, np.int64)
        tab_seq = np.full(1 << bits, -1, np.int16)
        shift = 64 - bits
    else:
        tab_time, tab_seq, shift = np.empty(0, np.int64), np.empty(0, np.int16), 64
    flag = np.empty(n, np.int8)
    # Untouched pages of np.empty cost nothing, so the worst case (a gap at every packet) is
    # allocated and the result copied out.
    gap_index = np.empty(n, np.int64)
    gap_missing = np.empty(n, np.int64)
    n_gaps, has_last, last_seq, last_time = _sequence_kernel(
        seq,
        t,
        has_last,
        last_seq,
        last_time,
        tab_time,
        tab_seq,
        shift,
        flag,
        gap_index,
        gap_missing,
    )
    return SequenceResult(
        flag,
        gap_index[:n_gaps].copy(),
        gap_missing[:n_gaps].copy(),
        (int(last_seq), int(last_time)) if has_last else None,
    )
