"""The direct sink: frames through ``Processor`` per instrument straight into a store's Parquet,
with no MQTT and no WAL (the input can always be read again, so there is nothing to make durable
first)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ilrs_ops.process import Processed, Processor, ProcessState
from ilrs_ops.profiles import Catalog
from ilrs_ops.replay._source import Message
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW, ROLLUPS
from ilrs_ops.store import UNKNOWN, Store

#: Processed tables held per store before a seal writes them out as one segment per lane.
SEGMENT_BYTES = 128 << 20
UNKNOWN_INSTRUMENT = "unknown_instrument"


class Recorder:
    """Processes frames of each instrument in order and seals them into ``store``, which must
    be empty (a fresh recording): each seal writes segment 1, 2, ... of every lane with data.

    ``process`` / ``feed`` take input, ``close`` seals what is left; counters in ``packets``
    (accepted per instrument) and ``rejects`` (per lane, by reason).
    """

    def __init__(
        self, store: Store, catalog: Catalog, *, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        if (store.root / "state").exists():
            raise ValueError(f"{store.root} already holds data; a Recorder writes a fresh store")
        self.store = store
        self.catalog = catalog
        self.segment_bytes = segment_bytes
        self.processors: dict[str, Processor] = {}
        self.packets: Counter[str] = Counter()
        self.rejects: dict[str, Counter[str]] = {}
        self._pending: dict[str, list[Processed]] = {}
        self._pending_bytes = 0
        self._segments: dict[str, int] = {}

    def process(
        self, instrument: str, frames: Sequence[bytes], recv_ns: np.ndarray, topic: str
    ) -> Processed:
        """Frames of one instrument (in arrival order) through its processor."""
        proc = self.processors.get(instrument)
        if proc is None:
            inst = self.catalog.instruments[instrument]
            proc = self.processors[instrument] = Processor(inst, ProcessState())
        out = proc.process(frames, recv_ns, topic)
        self.packets[instrument] += out.raw.num_rows
        self._keep(instrument, out)
        return out

    def quarantine(self, rows: pa.Table) -> None:
        """Quarantine rows (``schemas.QUARANTINE``) of input that names no instrument."""
        if rows.num_rows:
            out = Processed(
                raw=RAW.empty_table(),
                telemetry=pa.table({}),
                events=EVENTS.empty_table(),
                rollups=ROLLUPS.empty_table(),
                quarantine=rows,
                latest={},
            )
            self._keep(UNKNOWN, out)

    def feed(self, messages: Sequence[Message]) -> None:
        """Messages as an ingestor would take them: routed by the topic's last level (the
        instrument id); a topic of no instrument is quarantined whole."""
        lanes: dict[str, list[Message]] = {}
        for m in messages:
            lane = m.topic.rpartition("/")[2]
            lanes.setdefault(lane if lane in self.catalog.instruments else UNKNOWN, []).append(m)
        for lane, msgs in lanes.items():
            recv = np.fromiter((m.recv_ns for m in msgs), np.int64, len(msgs))
            if lane != UNKNOWN:
                self.process(lane, [m.payload for m in msgs], recv, msgs[0].topic)
                continue
            self.quarantine(
                pa.Table.from_arrays(
                    [
                        pa.array(recv, QUARANTINE.field("recv").type),
                        pa.array([m.topic for m in msgs], pa.string()),
                        pa.array([UNKNOWN_INSTRUMENT] * len(msgs), pa.string()),
                        pa.array([f"no instrument profile for topic {m.topic}" for m in msgs]),
                        pa.array([m.payload for m in msgs], pa.binary()),
                    ],
                    schema=QUARANTINE,
                )
            )

    def flush(self) -> None:
        """Seal what is pending: one new segment per lane with data."""
        pending, self._pending, self._pending_bytes = self._pending, {}, 0
        for lane, processed in pending.items():
            segment = self._segments[lane] = self._segments.get(lane, 0) + 1
            proc = self.processors.get(lane)
            state = ProcessState.from_json(proc.state.to_json()) if proc is not None else None
            self.store.seal_segment(lane, segment, processed, state)

    def close(self) -> None:
        self.flush()

    def _keep(self, lane: str, out: Processed) -> None:
        if out.quarantine.num_rows:
            reasons = self.rejects.setdefault(lane, Counter())
            reasons.update(out.quarantine.column("reason").to_pylist())
        self._pending.setdefault(lane, []).append(out)
        self._pending_bytes += sum(
            t.nbytes for t in (out.raw, out.telemetry, out.events, out.rollups, out.quarantine)
        )
        if self._pending_bytes >= self.segment_bytes:
            self.flush()
