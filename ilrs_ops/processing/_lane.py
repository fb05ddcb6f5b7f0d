"""The lane: one instrument's messages through its Processor, in arrival order, with the processed
tables of the open segment kept until they are taken to be sealed.

Every way in drives a Lane: live MQTT ingest, file import, direct replay, WAL recovery, the
monitor, and the live WAL tail a query sees. The unknown lane (``UNKNOWN``: messages on topics
that name no instrument) has no processor; its messages become quarantine rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ilrs_ops import wire
from ilrs_ops.processing._processor import Processed, Processor, ProcessState
from ilrs_ops.profiles import Instrument
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW, ROLLUPS, TIME
from ilrs_ops.store import SCHEMAS, TABLES

#: A lane merges each run of this many processed batches of its open segment into one. Each
#: batch's tables carry some 50 KB of Python and Arrow objects whatever their rows (measured:
#: 2000 batches of 10 cnsa-eps packets held 95 MB of RSS for 5 MB of table data; merged, 12 MB),
#: and under overload with many lanes batches are small and many until a seal takes them.
MERGE_BATCHES = 64


class Lane:
    """The processing of one lane (an instrument id, or ``UNKNOWN``) and its open segment.

    ``feed`` processes messages and keeps their tables; ``tables`` shows the open segment;
    ``take`` closes it, returning its tables and the processing state after it (what a seal
    writes). Not thread-safe: one caller at a time (a thread may run ``feed``).
    """

    def __init__(
        self, lane_id: str, instrument: Instrument | None, state: ProcessState | None = None
    ) -> None:
        self.id = lane_id
        self.instrument = instrument
        self.processor = Processor(instrument, state) if instrument is not None else None
        self.messages = 0  # fed since the lane began
        self.segment_messages = 0  # fed into the open segment
        self.segment_bytes = 0  # memory the open segment's tables hold
        self._parts: list[Processed] = []
        self._merged = 0  # leading parts that are merges of MERGE_BATCHES batches
        self._tables: dict[str, pa.Table] | None = None

    @property
    def state(self) -> ProcessState | None:
        return self.processor.state if self.processor is not None else None

    def snapshot(self) -> ProcessState | None:
        """A copy of the processing state as it is now."""
        st = self.state
        return ProcessState.from_json(st.to_json()) if st is not None else None

    def reprofile(self, instrument: Instrument) -> None:
        """Go on under a new profile of the same instrument, keeping the state; the open
        segment must have been taken first (its tables have the old profile's schema)."""
        assert not self._parts, f"lane {self.id}: take the open segment before a new profile"
        self.instrument = instrument
        self.processor = Processor(instrument, self.state)

    # ------------------------------------------------------------------ input

    def feed(
        self, recv_ns: np.ndarray, topics: Sequence[str], payloads: Sequence[bytes]
    ) -> Processed:
        """Process messages in arrival order: ``recv_ns`` (int64 UTC ns), one topic and one
        payload each. Each run of one topic is one processor batch (a quarantine row names its
        topic), exactly as recovery re-runs them from the WAL; returns what came out."""
        recv = np.asarray(recv_ns, np.int64)
        n = len(payloads)
        if self.processor is None:
            out = _unknown(recv, topics, payloads)
        else:
            parts = []
            start = 0
            for end in [*_topic_runs(topics), n]:
                if end > start:
                    parts.append(
                        self.processor.process(payloads[start:end], recv[start:end], topics[start])
                    )
                start = end
            out = parts[0] if len(parts) == 1 else merge(parts)
        self.messages += n
        self.segment_messages += n
        self.keep(out)
        return out

    def feed_wal(self, batches: Iterable[pa.RecordBatch]) -> None:
        """Process WAL batches (``store.WAL_SCHEMA``) as the ingestor fed them, batch by batch."""
        for batch in batches:
            if batch.num_rows:
                self.feed(
                    batch.column("recv").cast(pa.int64()).to_numpy(),
                    batch.column("topic").to_pylist(),
                    batch.column("payload").to_pylist(),
                )

    def keep(self, out: Processed) -> None:
        """Add processed tables to the open segment (``feed`` does; an import adds the
        quarantine rows of packets it routed nowhere)."""
        self._parts.append(out)
        self._tables = None
        # the buffers held, shared or sliced ones whole: Table.nbytes would weigh each buffer
        # once (a set over every buffer, 0.1-0.4 ms a batch, a tenth of a small batch's work)
        self.segment_bytes += sum(getattr(out, name).get_total_buffer_size() for name in TABLES)
        if len(self._parts) - self._merged >= MERGE_BATCHES:
            self._parts[self._merged :] = [merge(self._parts[self._merged :])]
            self._merged += 1

    # ------------------------------------------------------------------ output

    def tables(self) -> dict[str, pa.Table]:
        """The open segment's tables (chunked, not copied; telemetry absent for UNKNOWN)."""
        if self._tables is None:
            self._tables = {
                name: pa.concat_tables(
                    [getattr(p, name) for p in self._parts if getattr(p, name).num_rows]
                    or [self._empty(name)]
                )
                for name in TABLES
                if name != "telemetry" or self.processor is not None
            }
        return self._tables

    def take(self) -> tuple[dict[str, pa.Table], ProcessState | None]:
        """Close the open segment: its tables and a copy of the state after it."""
        tables = self.tables()
        self._parts, self._merged, self._tables = [], 0, None
        self.segment_messages = self.segment_bytes = 0
        return tables, self.snapshot()

    def _empty(self, name: str) -> pa.Table:
        if name == "telemetry":
            assert self.processor is not None
            return self.processor.schema.empty_table()
        return SCHEMAS[name].empty_table()


def merge(parts: Sequence[Processed]) -> Processed:
    """Consecutive outputs of one lane as one, each table in one chunk; ``latest`` is the last
    non-empty one."""
    latest = next((p.latest for p in reversed(parts) if p.latest), {})
    tables = [
        pa.concat_tables([getattr(p, name) for p in parts]).combine_chunks() for name in TABLES
    ]
    return Processed(*tables, latest=latest)


def _topic_runs(topics: Sequence[str]) -> list[int]:
    """Where a new topic starts (indices > 0)."""
    if len(topics) < 2:
        return []
    t = np.array(topics, dtype=object)
    return (np.flatnonzero(t[1:] != t[:-1]) + 1).tolist()


def _unknown(recv: np.ndarray, topics: Sequence[str], payloads: Sequence[bytes]) -> Processed:
    """Messages on topics of no instrument, as quarantine rows: nothing is dropped."""
    topic = pa.array(list(topics), pa.string())
    detail = pc.binary_join_element_wise("no instrument profile for topic ", topic, "")
    rows = pa.Table.from_arrays(
        [
            pa.array(recv, TIME),
            topic,
            pa.repeat(pa.scalar(wire.UNKNOWN_INSTRUMENT), len(payloads)),
            detail,
            pa.array(list(payloads), pa.binary()),
        ],
        schema=QUARANTINE,
    )
    return Processed(
        raw=RAW.empty_table(),
        telemetry=pa.table({}),
        events=EVENTS.empty_table(),
        rollups=ROLLUPS.empty_table(),
        quarantine=rows,
        latest={},
    )
