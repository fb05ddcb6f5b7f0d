"""The direct sink: frames through one Lane per instrument straight into a store's Parquet,
with no MQTT and no WAL (the input can always be read again, so there is nothing to make durable
first)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ilrs_ops.errors import InputError
from ilrs_ops.processing import Lane, Processed, seal
from ilrs_ops.profiles import Catalog
from ilrs_ops.sources import Message
from ilrs_ops.store import SCHEMAS, UNKNOWN, Store

#: Processed tables held per store before a seal writes them out as one segment per lane.
SEGMENT_BYTES = 128 << 20


class Recorder:
    """Feeds messages of each instrument in order through its Lane and seals them into
    ``store``, which must be empty (a fresh recording): each seal writes segment 1, 2, ... of
    every lane with data.

    ``process`` / ``feed`` take input, ``close`` seals what is left; counters in ``packets``
    (accepted per instrument) and ``rejects`` (per lane, by reason).
    """

    def __init__(
        self, store: Store, catalog: Catalog, *, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        if (store.root / "state").exists():
            raise InputError(f"{store.root} already holds data; a Recorder writes a fresh store")
        self.store = store
        self.catalog = catalog
        self.segment_bytes = segment_bytes
        self.lanes: dict[str, Lane] = {}
        self.packets: Counter[str] = Counter()
        self.rejects: dict[str, Counter[str]] = {}
        self._segments: dict[str, int] = {}

    def process(
        self, instrument: str, frames: Sequence[bytes], recv_ns: np.ndarray, topic: str
    ) -> Processed:
        """Frames of one instrument (in arrival order) through its lane."""
        out = self._lane(instrument).feed(recv_ns, [topic] * len(frames), frames)
        self.packets[instrument] += out.raw.num_rows
        self._count(instrument, out)
        return out

    def quarantine(self, rows: pa.Table) -> None:
        """Quarantine rows (``schemas.QUARANTINE``) of input routed to no instrument."""
        if rows.num_rows:
            out = Processed(
                raw=SCHEMAS["raw"].empty_table(),
                telemetry=pa.table({}),
                events=SCHEMAS["events"].empty_table(),
                rollups=SCHEMAS["rollups"].empty_table(),
                quarantine=rows,
                latest={},
            )
            self._lane(UNKNOWN).keep(out)
            self._count(UNKNOWN, out)

    def feed(self, messages: Sequence[Message]) -> None:
        """Messages as an ingestor would take them: routed by the topic's last level (the
        instrument id); a topic of no instrument goes to the unknown lane, quarantined."""
        lanes: dict[str, list[Message]] = {}
        for m in messages:
            lane = m.topic.rpartition("/")[2]
            lanes.setdefault(lane if lane in self.catalog.instruments else UNKNOWN, []).append(m)
        for lane, msgs in lanes.items():
            recv = np.fromiter((m.recv_ns for m in msgs), np.int64, len(msgs))
            out = self._lane(lane).feed(recv, [m.topic for m in msgs], [m.payload for m in msgs])
            if lane != UNKNOWN:
                self.packets[lane] += out.raw.num_rows
            self._count(lane, out)

    def flush(self) -> None:
        """Seal what is pending: one new segment per lane with data."""
        for lane in self.lanes.values():
            if not lane.segment_bytes and not lane.segment_messages:
                continue
            tables, state = lane.take()
            segment = self._segments[lane.id] = self._segments.get(lane.id, 0) + 1
            seal(self.store, lane.id, lane.instrument, segment, tables, state)

    def close(self) -> None:
        self.flush()

    def _lane(self, lane_id: str) -> Lane:
        lane = self.lanes.get(lane_id)
        if lane is None:
            inst = self.catalog.instruments[lane_id] if lane_id != UNKNOWN else None
            lane = self.lanes[lane_id] = Lane(lane_id, inst)
        return lane

    def _count(self, lane: str, out: Processed) -> None:
        if out.quarantine.num_rows:
            reasons = self.rejects.setdefault(lane, Counter())
            reasons.update(out.quarantine.column("reason").to_pylist())
        if sum(lane.segment_bytes for lane in self.lanes.values()) >= self.segment_bytes:
            self.flush()
