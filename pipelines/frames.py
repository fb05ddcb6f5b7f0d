"""Split frames (MQTT payloads of concatenated CCSDS Space Packets) into packets.

Every octet of every frame ends up in exactly one item: a good packet or one bad item with a
status saying why, so ingest can quarantine bad input with its raw bytes and keep going.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

#: Item status codes.
OK = 0
TRUNCATED = 1  # fewer than 6 octets (a primary header) left in the frame
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


@njit(cache=True)
def _split_kernel(
    buf: np.ndarray,
    frame_start: np.ndarray,
    frame_end: np.ndarray,
    out_start: np.ndarray,
    out_length: np.ndarray,
    out_frame: np.ndarray,
    out_apid: np.ndarray,
    out_status: np.ndarray,
) -> int:
    """Walk each frame's packets by their length fields; return the number of items written.

    A bad version outranks a length past the end (the header is not a packet header, so its
    length means nothing); either way the item never reaches past its own frame.
    """
    n = 0
    for f in range(frame_start.shape[0]):
        pos = frame_start[f]
        end = frame_end[f]
        while pos < end:
            rest = end - pos
            out_start[n] = pos
            out_frame[n] = f
            if rest < 6:
                out_length[n] = rest
                out_apid[n] = -1
                out_status[n] = TRUNCATED
                pos = end
            else:
                b0 = np.int64(buf[pos])
                total = ((np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])) + 7
                out_apid[n] = ((b0 & 7) << 8) | np.int64(buf[pos + 1])
                if (b0 >> 5) != 0:
                    status = BAD_VERSION
                elif total > rest:
                    status = LENGTH_PAST_END
                else:
                    status = OK
                if total > rest:
                    total = rest
                out_length[n] = total
                out_status[n] = status
                pos += total
            n += 1
    return n


def split_frames(buf: np.ndarray, frame_start: np.ndarray, frame_end: np.ndarray) -> Packets:
    """Split the frames ``buf[frame_start[i]:frame_end[i]]`` into packets and bad items.

    A bad item in one frame never affects another frame.
    """
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
    # Every item but the last of a frame spans at least 7 octets, the last at least 1.
    bound = int(((frame_end - frame_start) // 7 + 1).sum())
    start = np.empty(bound, np.int64)
    length = np.empty(bound, np.int64)
    frame = np.empty(bound, np.int64)
    apid = np.empty(bound, np.int32)
    status = np.empty(bound, np.int8)
    n = _split_kernel(
        np.ascontiguousarray(buf), frame_start, frame_end, start, length, frame, apid, status
    )
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
