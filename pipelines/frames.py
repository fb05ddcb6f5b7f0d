"""Split frames (MQTT payloads of concatenated CCSDS Space Packets) into packets.

Every octet of every frame ends up in exactly one item: a good packet or one bad item with a
status saying why, so ingest can quarantine bad input with its raw bytes and keep going.

Resync: given the APIDs the reader knows (and, per APID, the one packet length it expects), a
bad header does not take the packets behind it down with it. Unless its own length lands
exactly on the frame end or on a packet header (version 0, a length that fits), the bad item
ends where the next plausible packet starts (version 0, a known APID, a length that fits the
frame and, where one is expected, equals it): only the garbage octets are in it. With no
plausible packet after it, the item is what it would be without resync.

Prefix: some files put a fixed number of octets before every packet (a recorder's marker, e.g.
Europa Clipper SUDA's 4). With ``prefix`` octets, a good packet's prefix is skipped and belongs
to no item (it is not the packet's); a bad item starts at its prefix (garbage is never skipped
unseen) and ends where the next prefixed plausible packet's prefix starts. Octets too few for
a prefix and a header at the end of a frame are one ``TRUNCATED`` item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

#: Item status codes.
OK = 0
TRUNCATED = 1  # fewer than 6 octets (a primary header), after any prefix, left in the frame
LENGTH_PAST_END = 2  # the length field runs past the end of the frame: the rest is one bad item
BAD_VERSION = 3  # version != 0; its length still skips to the next packet

STATUS_NAMES: dict[int, str] = {
    OK: "ok",
    TRUNCATED: "truncated",
    LENGTH_PAST_END: "length_past_end",
    BAD_VERSION: "bad_version",
}

#: Octets of the CCSDS primary header; a packet's total length is its data length field + 7.
HEADER_OCTETS = 6
#: APIDs are 11 bits: the size of the ``known`` and ``lengths`` tables of ``split_frames``.
APIDS = 2048


@dataclass(frozen=True, eq=False)
class Packets:
    """Items found in a batch of frames, in frame order, all arrays the same length.

    start: offset of the item in the buffer; length: its octets (for a bad item, the octets it
    covers); frame: index of its frame; apid: -1 when the header is incomplete; status: see
    ``STATUS_NAMES``.
    """

    start: np.ndarray  # int64
    length: np.ndarray  # int64
    frame: np.ndarray  # int64
    apid: np.ndarray  # int32
    status: np.ndarray  # int8

    def __len__(self) -> int:
        return int(self.start.shape[0])


@njit(cache=True, nogil=True)
def _plausible(
    buf: np.ndarray, pos: np.int64, end: np.int64, known: np.ndarray, lengths: np.ndarray
) -> bool:
    """Whether a packet of a known APID, with a length that fits (and is the expected one),
    starts at ``pos``."""
    if end - pos < 6:
        return False
    b0 = np.int64(buf[pos])
    apid = ((b0 & 7) << 8) | np.int64(buf[pos + 1])
    total = ((np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])) + 7
    if (b0 >> 5) != 0 or not known[apid] or total > end - pos:
        return False
    return lengths[apid] == 0 or total == lengths[apid]


@njit(cache=True, nogil=True)
def _header_ok(buf: np.ndarray, pos: np.int64, end: np.int64) -> bool:
    """Whether a packet header of any APID (version 0, a length that fits) starts at ``pos``."""
    if end - pos < 6 or (np.int64(buf[pos]) >> 5) != 0:
        return False
    return ((np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])) + 7 <= end - pos


@njit(cache=True, nogil=True)
def _split_kernel(
    buf: np.ndarray,
    frame_start: np.ndarray,
    frame_end: np.ndarray,
    resync: bool,
    known: np.ndarray,
    lengths: np.ndarray,
    prefix: np.int64,
    out_start: np.ndarray,
    out_length: np.ndarray,
    out_frame: np.ndarray,
    out_apid: np.ndarray,
    out_status: np.ndarray,
) -> int:
    """Walk each frame's packets by their length fields; return the number of items written.

    A bad version outranks a length past the end (the header is not a packet header, so its
    length means nothing); either way the item never reaches past its own frame. With
    ``resync``, a bad item whose own length does not land on a plausible packet (or the frame
    end) ends at the next plausible packet instead (see the module docstring).
    """
    n = 0
    for f in range(frame_start.shape[0]):
        pos = frame_start[f]
        end = frame_end[f]
        while pos < end:
            rest = end - pos
            out_frame[n] = f
            if rest < prefix + 6:
                out_start[n] = pos  # with its prefix: these octets are all that is left
                out_length[n] = rest
                out_apid[n] = -1
                out_status[n] = TRUNCATED
                pos = end
            else:
                pos += prefix
                rest -= prefix
                out_start[n] = pos
                b0 = np.int64(buf[pos])
                total = ((np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])) + 7
                out_apid[n] = ((b0 & 7) << 8) | np.int64(buf[pos + 1])
                if (b0 >> 5) != 0:
                    status = BAD_VERSION
                elif total > rest:
                    status = LENGTH_PAST_END
                else:
                    status = OK
                # A bad header's own length is kept where it lands exactly on the frame end or
                # on a packet header (a flipped bit in a real packet); else resync.
                lands = total <= rest and (
                    pos + total == end or _header_ok(buf, pos + total + prefix, end)
                )
                if total > rest:
                    total = rest
                if resync and status != OK and not lands:
                    q = pos + 1
                    while q + prefix < end and not _plausible(buf, q + prefix, end, known, lengths):
                        q += 1
                    if q + prefix < end:  # else no packet follows: the item is as without resync
                        total = q - pos
                if status != OK:  # its prefix is as doubtful as its header: kept with it
                    out_start[n] = pos - prefix
                    total += prefix
                    pos -= prefix
                out_length[n] = total
                out_status[n] = status
                pos += total
            n += 1
    return n


def split_frames(
    buf: np.ndarray,
    frame_start: np.ndarray,
    frame_end: np.ndarray,
    known: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    *,
    prefix: int = 0,
) -> Packets:
    """Split the frames ``buf[frame_start[i]:frame_end[i]]`` into packets and bad items.

    A bad item in one frame never affects another frame. ``known`` (bool per APID, APIDS long)
    turns resync on; ``lengths`` (int per APID, 0 for any) is the packet length expected of
    each known APID; ``prefix`` octets before every packet are skipped (see the module
    docstring).
    """
    if isinstance(prefix, bool) or not isinstance(prefix, int | np.integer) or prefix < 0:
        raise ValueError(f"prefix must be an octet count >= 0, not {prefix!r}")
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-D uint8 array")
    frame_start = _index_array("frame_start", frame_start)
    frame_end = _index_array("frame_end", frame_end)
    if frame_start.shape != frame_end.shape:
        raise ValueError(
            f"frame_start and frame_end differ in length ({frame_start.shape[0]} and "
            f"{frame_end.shape[0]}); give one start and one end per frame"
        )
    if frame_start.size:
        if frame_start.min() < 0 or frame_end.max() > buf.shape[0]:
            raise ValueError(f"frame bounds must lie within the buffer [0, {buf.shape[0]}]")
        if np.any(frame_end < frame_start):
            bad = int(np.argmax(frame_end < frame_start))
            raise ValueError(f"frame {bad} ends before it starts")
    resync = known is not None
    known_t = _apid_table("known", known, np.bool_)
    lengths_t = _apid_table("lengths", lengths, np.int64)
    # Every item but the last of a frame spans at least 7 octets, the last at least 1; with
    # resync a bad item may span 1 octet, but a good packet of at least 7 follows it.
    per = (4 if resync else 7) + prefix
    bound = int(((frame_end - frame_start) // per + 1).sum())
    start = np.empty(bound, np.int64)
    length = np.empty(bound, np.int64)
    frame = np.empty(bound, np.int64)
    apid = np.empty(bound, np.int32)
    status = np.empty(bound, np.int8)
    n = _split_kernel(
        np.ascontiguousarray(buf), frame_start, frame_end, resync, known_t, lengths_t,
        np.int64(prefix), start, length, frame, apid, status,
    )  # fmt: skip
    return Packets(
        start=start[:n].copy(),
        length=length[:n].copy(),
        frame=frame[:n].copy(),
        apid=apid[:n].copy(),
        status=status[:n].copy(),
    )


def _index_array(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or not (a.dtype.kind in "iu" or a.size == 0):
        raise TypeError(f"{name} must be a 1-D integer array")
    return np.ascontiguousarray(a, dtype=np.int64)


def _apid_table(name: str, a: np.ndarray | None, dtype: type) -> np.ndarray:
    if a is None:
        return np.zeros(APIDS, dtype)
    a = np.asarray(a)
    if a.shape != (APIDS,):
        raise ValueError(f"{name} must have one entry per APID ({APIDS}), not shape {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)
