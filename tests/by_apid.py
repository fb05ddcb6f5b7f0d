"""Simulator output decoded by APID, for the simulator's own tests: no duplicate or ordering
checks (the faults those would quarantine are what the tests count). Ingest never uses this;
it decodes through ``ilrs_ops.processing``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ilrs_ops import wire
from ilrs_ops.processing import packet_time_ns, split_batch
from ilrs_ops.profiles import Catalog, Instrument, calibrate
from pipelines.decode import decode
from pipelines.frames import OK, STATUS_NAMES


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

    def counts(self) -> Counter[str]:
        return Counter(self.reasons)


def decode_frames(catalog: Catalog, frames: Sequence[bytes]) -> tuple[list[Decoded], Rejected]:
    """Split, route by APID and decode a batch of frames (MQTT payloads)."""
    buf, _, items = split_batch(frames)
    rejected = Rejected()

    def reject(idx: np.ndarray, reason: str) -> None:
        for i in idx:
            s, n = int(items.start[i]), int(items.length[i])
            rejected.reasons.append(reason)
            rejected.data.append(buf[s : s + n].tobytes())

    for status in np.unique(items.status[items.status != OK]):
        reject(np.flatnonzero(items.status == status), STATUS_NAMES[int(status)])
    good = np.flatnonzero(items.status == OK)
    known = np.isin(items.apid[good], list(catalog.by_apid))
    reject(good[~known], wire.UNKNOWN_APID)
    good = good[known]
    decoded = []
    for apid in np.unique(items.apid[good]):
        inst = catalog.by_apid[int(apid)]
        mine = good[items.apid[good] == apid]
        fits = items.length[mine] == inst.layout.packet_length
        reject(mine[~fits], wire.BAD_LENGTH)
        mine = mine[fits]
        raw = decode(buf, items.start[mine], inst.layout)
        decoded.append(
            Decoded(inst, packet_time_ns(inst, raw), raw["_seq_count"].astype(np.int64), raw)
        )
    return decoded, rejected
