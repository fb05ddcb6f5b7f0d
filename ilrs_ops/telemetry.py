"""Frames in, telemetry out: the one place where raw bytes become timed, calibrated channels.

Every packet ends decoded or rejected with exactly one reason; the pipelines do the work on whole
batches, this module only routes packets to their instrument's layout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ilrs_ops.ccsds import cds_to_utc_ns, cuc_to_utc_ns
from ilrs_ops.profiles import Catalog, Instrument, calibrate
from pipelines.decode import decode
from pipelines.frames import HEADER_OCTETS, OK, STATUS_NAMES, Packets, split_frames

#: Reasons a packet is rejected, beyond the frame-level ones of ``pipelines.frames``.
UNKNOWN_APID = "unknown_apid"
BAD_LENGTH = "bad_length"


@dataclass(frozen=True, eq=False)
class Decoded:
    """The good packets of one instrument in a batch, in arrival order."""

    instrument: Instrument
    time_ns: np.ndarray  # int64 UTC ns since 1970
    seq_count: np.ndarray  # int64
    raw: dict[str, np.ndarray]  # every field, header included, as decoded

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def engineering(self) -> dict[str, np.ndarray]:
        """Calibrated values of the operator-visible fields (enums stay as their raw codes)."""
        out = {}
        for f in self.instrument.profile.fields:
            if not f.ignore:
                out[f.name] = (
                    self.raw[f.name] if f.enum else calibrate(f.calibration, self.raw[f.name])
                )
        return out


@dataclass
class Rejected:
    """Packets that could not be decoded: reason per item, with the raw bytes kept."""

    reasons: list[str] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(self.reasons)


def split_batch(frames: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, Packets]:
    """Join a batch of frames (MQTT payloads) into one buffer and split it into items.

    Returns the buffer (uint8), where each frame starts in it, and the items
    (``pipelines.frames.split_frames``).
    """
    sizes = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    ends = np.cumsum(sizes)
    buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
    return buf, ends - sizes, split_frames(buf, ends - sizes, ends)


def decode_frames(catalog: Catalog, frames: Sequence[bytes]) -> tuple[list[Decoded], Rejected]:
    """Split, route by APID and decode a batch of frames (MQTT payloads)."""
    buf, _, items = split_batch(frames)
    rejected = Rejected()

    def reject(idx: np.ndarray, reason: str) -> None:
        for i in idx:
            s, n = int(items.start[i]), int(items.length[i])
            rejected.reasons.append(reason)
            rejected.data.append(buf[s : s + n].tobytes())
            rejected.frames.append(int(items.frame[i]))

    for status in np.unique(items.status[items.status != OK]):
        reject(np.flatnonzero(items.status == status), STATUS_NAMES[int(status)])
    good = np.flatnonzero(items.status == OK)
    known = np.isin(items.apid[good], list(catalog.by_apid))
    reject(good[~known], UNKNOWN_APID)
    good = good[known]
    decoded = []
    for apid in np.unique(items.apid[good]):
        inst = catalog.by_apid[int(apid)]
        mine = good[items.apid[good] == apid]
        fits = items.length[mine] == inst.layout.packet_length
        reject(mine[~fits], BAD_LENGTH)
        mine = mine[fits]
        raw = decode(buf, items.start[mine], inst.layout)
        decoded.append(
            Decoded(inst, packet_time_ns(inst, raw), raw["_seq_count"].astype(np.int64), raw)
        )
    return decoded, rejected


def packet_time_ns(inst: Instrument, raw: dict[str, np.ndarray]) -> np.ndarray:
    """UTC ns of each packet from its secondary-header time code."""
    t = inst.profile.time
    n = raw["_seq_count"].shape[0]
    zeros = np.zeros(n, dtype=np.uint64)
    if t.code == "cuc":
        return cuc_to_utc_ns(raw["_time_coarse"], raw.get("_time_fine", zeros), t.fine)
    return cds_to_utc_ns(raw["_time_days"], raw["_time_ms"], raw.get("_time_subms", zeros), t.subms)


def reject_detail(reason: str, item: bytes, where: str) -> str | None:
    """Why a frame-level item (``pipelines.frames`` status) was rejected, read from its bytes;
    ``where`` says where it sat. None for reasons decided after the split."""
    if reason == "truncated":
        return f"{len(item)} octets {where}, fewer than a {HEADER_OCTETS}-octet header"
    apid = (item[0] & 7) << 8 | item[1]
    if reason == "length_past_end":
        total = (item[4] << 8 | item[5]) + 7
        return f"length field says {total} octets, only {len(item)} left ({where})"
    if reason == "bad_version":
        return f"version {item[0] >> 5}, not 0 ({where}; APID field {apid:#05x})"
    return None
