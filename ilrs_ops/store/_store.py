"""The store: WAL writers, sealing, recovery, and queries over sealed Parquet plus the live WAL.

Layout under ``root``::

    wal/{lane}/{n:012d}.arrows                                   raw messages, not yet sealed
    state/{lane}.json                                            last sealed segment + state
    {table}/instrument={id}/date={YYYY-MM-DD}/{n:012d}.parquet   sealed tables

A lane is an instrument id, or ``_unknown`` for messages on topics that name no instrument.
The checkpoint is the commit point of a seal: Parquet files of segments above it are ignored by
readers (they may be from a seal in progress), and WAL segments at or below it are already sealed.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import operator
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ilrs_ops.errors import StoreError
from ilrs_ops.process import Processed, Processor, ProcessState
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW, ROLLUPS, STATE_SUFFIX, TIME, rollup_widths
from ilrs_ops.store import _seal
from ilrs_ops.store._fs import describe, make_dirs, translate, write_atomic
from ilrs_ops.store._query import (
    Buckets,
    bucket_edges,
    bucket_index,
    from_rollups,
    from_samples,
    positions,
)
from ilrs_ops.store._recover import remove_temp_files, replay
from ilrs_ops.store._seal import DAY_NS, TABLES, UNKNOWN
from ilrs_ops.store._wal import (
    WalSegment,
    WalWriter,
    list_segments,
    read_segment,
    segment_name,
)

log = logging.getLogger(__name__)

NS = 1_000_000_000
#: With bucket edges off the rollup boundaries, rollups serve buckets at least this many rollup
#: widths wide (each inner edge then misplaces at most half a rollup width of samples).
ROLLUPS_PER_BUCKET = 10
EVENT_KINDS = ("limit", "gap", "reject", "detector", "ack", "shelve", "unshelve", "profile")
#: Events the console writes itself (acks, shelves, profile uploads), outside any WAL lane:
#: ``events/instrument={id}/date={D}/console-{ns}.parquet``, final once renamed in place.
CONSOLE_PREFIX = "console-"
Source = Literal["auto", "rollups", "telemetry"]


@dataclass(eq=False)
class _Live:
    """The unsealed WAL of one lane, replayed from its checkpoint; extended as the WAL grows."""

    checkpoint: int
    processor: Processor | None
    segments: list[tuple[int, int]] = field(default_factory=list)  # (segment, batches replayed)
    processed: list[Processed] = field(default_factory=list)
    unknown: list[pa.Table] = field(default_factory=list)  # quarantine rows of the unknown lane
    discarded_bytes: int = 0
    _tables: dict[str, pa.Table] = field(default_factory=dict)

    def continues(self, checkpoint: int, read: list[tuple[int, WalSegment]]) -> bool:
        """Whether ``read`` is what this view saw plus batches appended after it."""
        if checkpoint != self.checkpoint or len(read) < len(self.segments):
            return False
        for k, (number, batches) in enumerate(self.segments):
            n, seg = read[k]
            last = k == len(self.segments) - 1
            if (
                n != number
                or len(seg.batches) < batches
                or (not last and len(seg.batches) != batches)
            ):
                return False
        return True

    def table(self, name: str, schema: pa.Schema) -> pa.Table:
        if name not in self._tables:
            parts = (
                self.unknown
                if name == "quarantine" and self.processor is None
                else [getattr(p, name) for p in self.processed]
            )
            self._tables[name] = _seal.concat(parts, schema, name)
        return self._tables[name]


class Store:
    """Telemetry store under ``root`` for the instruments of ``catalog``; a context manager.

    Any number of processes may query a store; one ingest process per lane writes its WAL (an
    exclusive lock on ``wal/{lane}/LOCK`` is taken by ``wal`` and ``recover``). Methods raise
    StoreError for disk problems and ValueError for bad arguments; pyarrow errors never leak.
    """

    def __init__(self, root: Path | str, catalog: Catalog) -> None:
        self.root = Path(root)
        self.catalog = catalog
        self._writers: dict[str, WalWriter] = {}
        self._locks: dict[str, int] = {}
        self._lives: dict[str, _Live] = {}
        self._lane_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._console_ns = 0  # last console events file name, strictly increasing

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the WAL writers (their segments stay for the next seal or recovery) and
        release the lanes."""
        with self._guard:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()
            for fd in self._locks.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._locks.clear()
            self._lives.clear()

    @property
    def lanes(self) -> list[str]:
        return [*self.catalog.instruments, UNKNOWN]

    # ------------------------------------------------------------------ writing

    def wal(self, instrument_id: str) -> WalWriter:
        """The WAL writer of a lane (an instrument id or ``_unknown``), the same one on every
        call. Raises StoreError when unsealed segments of an earlier run are left: call
        ``recover`` first and continue from the states it returns."""
        lane = self._lane(instrument_id)
        writer = self._writers.get(lane)
        if writer is not None:
            return writer
        with self._lane_lock(lane):
            if (writer := self._writers.get(lane)) is not None:
                return writer
            self._hold(lane)
            sealed, _ = _seal.read_checkpoint(self.root, lane)
            segments = list_segments(self._wal_dir(lane))
            unsealed = [n for n, _ in segments if n > sealed]
            if unsealed:
                raise StoreError(
                    f"{len(unsealed)} unsealed WAL segment(s) of {lane} in {self._wal_dir(lane)} "
                    "from an earlier run: call Store.recover() first and continue from the "
                    "states it returns",
                    str(self._wal_dir(lane)),
                )
            for _, path in segments:
                _seal.remove_file(path)  # sealed, left by a crash before their deletion
            last = max([sealed, *(n for n, _ in segments)])
            writer = self._writers[lane] = WalWriter(self._wal_dir(lane), last + 1)
            return writer

    def seal_segment(
        self,
        instrument_id: str,
        segment: int,
        processed: Sequence[Processed] | None = None,
        state: ProcessState | None = None,
    ) -> None:
        """Write one closed WAL segment's processed tables as Parquet, then the checkpoint
        (``state`` is the processing state after the segment), then delete the segment.

        ``processed`` None: replay the segment from the checkpoint instead (``state`` is then
        ignored). Older unsealed segments of the lane are sealed first, by replay, so the
        checkpoint never passes a segment that was not sealed. Sealing the segment of the
        checkpoint again rewrites the same files (idempotent); older ones are refused.
        The ``_unknown`` lane is sealed from its WAL segment; only where there is none (a
        writer without a WAL, such as an import) are the quarantine rows of ``processed`` used.
        """
        lane = self._lane(instrument_id)
        with self._lane_lock(lane):
            self._hold(lane)
            self._seal(lane, int(segment), processed, state)

    def seal_current(
        self,
        instrument_id: str,
        processed: Sequence[Processed] | None = None,
        state: ProcessState | None = None,
    ) -> int | None:
        """Rotate the lane's WAL and seal the segment just closed (see ``seal_segment``);
        returns its number, or None when nothing was appended since the last rotation."""
        lane = self._lane(instrument_id)
        writer = self._writers.get(lane)
        if writer is None:
            return None
        closed = writer.rotate()
        if closed is not None:
            self.seal_segment(lane, closed, processed, state)
        return closed

    def recover(self) -> dict[str, ProcessState]:
        """Seal what a previous run left in the WAL (torn tails dropped), remove leftover temp
        files, and return the processing state of every instrument to continue from."""
        remove_temp_files([self.root / t for t in TABLES] + [self.root / "state"])
        states: dict[str, ProcessState] = {}
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(set(os.listdir(self.root / "wal")) - set(self.lanes)):
                log.warning(
                    "WAL of %r left unsealed in %s: no profile of that instrument is loaded",
                    name,
                    self.root / "wal" / name,
                )
        for lane in self.lanes:
            with self._lane_lock(lane):
                if lane in self._writers:
                    raise StoreError(
                        f"recover() after wal({lane!r}) in the same Store: recover first",
                        str(self._wal_dir(lane)),
                    )
                segments = list_segments(self._wal_dir(lane))
                if segments:
                    self._hold(lane)
                    sealed, _ = _seal.read_checkpoint(self.root, lane)
                    for n, path in segments:
                        if n <= sealed:
                            _seal.remove_file(path)
                        else:
                            self._seal(lane, n, None, None)
                if lane != UNKNOWN:
                    _, state = _seal.read_checkpoint(self.root, lane)
                    states[lane] = state if state is not None else ProcessState()
        return states

    def append_events(self, instrument: str, table: pa.Table) -> list[Path]:
        """Write events that come from no WAL (the console's acks, shelves, profile uploads) as
        ``events/instrument={id}/date={D}/console-{ns}.parquet``, one atomic file per day;
        readers include them at once (no checkpoint gates them). Returns the files written."""
        inst = self._instrument(instrument)
        if table.num_rows == 0:
            return []
        with translate("convert events of", inst.id):
            table = table.select(EVENTS.names).cast(EVENTS)
        with self._guard:
            ns = self._console_ns = max(time.time_ns(), self._console_ns + 1)
        files = []
        for day, part in _seal.split_by_day(table, "time").items():
            folder = (
                self.root / "events" / f"instrument={inst.id}" / f"date={_seal.date_of_day(day)}"
            )
            path = folder / f"{CONSOLE_PREFIX}{ns:020d}.parquet"
            with translate("write Parquet file", path):
                make_dirs(folder)
                write_atomic(path, lambda f, t=part: pq.write_table(t, f, compression="zstd"))
            files.append(path)
        return files

    # ------------------------------------------------------------------ queries

    def query(
        self,
        instrument: str,
        channels: list[str] | None,
        start_ns: int,
        stop_ns: int,
        buckets: int | None = None,
        *,
        source: Source = "auto",
    ) -> pa.Table:
        """Telemetry of ``instrument`` over [start_ns, stop_ns): start inclusive, stop exclusive
        (UTC ns since 1970), sealed Parquet and the live WAL together.

        Without ``buckets``: the rows, in time order, with columns ``time``, ``seq``, the
        channels (all when None, else in the order given) and their ``{channel}__state``.

        With ``buckets=N``: N equal buckets over [start, stop) (edges ``start + i*span//N``), one
        row each: ``time`` (bucket start), then per channel ``{ch}__count``, ``__min``,
        ``__max``, ``__mean`` (null where a bucket has no valid sample); array channels count
        as one value per packet, their mean. The schema metadata ``source`` says what served it.

        ``source="auto"`` serves buckets from the widest rollup (60 s, 1 s) not wider than a
        bucket, when the bucket edges fall on that rollup's boundaries or a bucket spans at
        least ROLLUPS_PER_BUCKET rollup widths; otherwise, and for enum channels (which have
        no rollups), from telemetry. From rollups, a rollup row across an inner bucket edge
        counts in the bucket holding the middle of its samples' span (at most half a rollup
        width misplaced per edge); the outer edges stay exact, the partial rollup buckets
        there being computed from telemetry. ``"telemetry"`` is exact everywhere; ``"rollups"``
        uses the widest rollup not wider than a bucket whatever the edges.
        """
        inst = self._instrument(instrument)
        start, stop = _window(start_ns, stop_ns)
        names = self._channels(inst, channels)
        if buckets is not None:
            n = _count(buckets)
            return self._downsample(inst, names, start, stop, n, source)
        if source not in ("auto", "rollups", "telemetry"):
            raise ValueError(f"source {source!r}: use 'auto', 'rollups' or 'telemetry'")
        schema = _seal.schema_of("telemetry", inst)
        columns = ["time", "seq", *names]
        columns += [c + STATE_SUFFIX for c in names if c + STATE_SUFFIX in schema.names]
        return self._telemetry(inst, columns, start, stop)

    def latest(self, instrument: str) -> pa.Table:
        """The newest telemetry row of ``instrument`` (one row, or none before any data)."""
        inst = self._instrument(instrument)
        schema = _seal.schema_of("telemetry", inst)
        live = self._live(inst.id)
        tm = live.table("telemetry", schema)
        if tm.num_rows:
            return tm.slice(tm.num_rows - 1)
        sealed = {inst.id: live.checkpoint}
        for day in reversed(self._days("telemetry", inst.id)):
            files = self._files("telemetry", inst.id, day, day, sealed)
            if files:
                with translate("read", files[-1]):
                    table = ds.dataset([str(files[-1])], schema=schema, format="parquet").to_table()
                if table.num_rows:
                    return table.slice(table.num_rows - 1)
        return schema.empty_table()

    def events(
        self, instrument: str, start_ns: int, stop_ns: int, kinds: Iterable[str] | None = None
    ) -> pa.Table:
        """Events of ``instrument`` with time in [start_ns, stop_ns), in time order, optionally
        only of ``kinds`` (limit, gap, reject, detector, ack, shelve, profile)."""
        inst = self._instrument(instrument)
        start, stop = _window(start_ns, stop_ns)
        flt = None
        if kinds is not None:
            if isinstance(kinds, str):
                raise ValueError(f"kinds is a list of kinds, not one string ({kinds!r})")
            kinds = list(kinds)
            bad = [k for k in kinds if k not in EVENT_KINDS]
            if bad:
                raise ValueError(f"unknown event kinds {bad}; use some of {list(EVENT_KINDS)}")
            flt = ds.field("kind").isin(pa.array(kinds, pa.string()))  # [] too
        return self._rows("events", EVENTS, inst.id, "time", start, stop, flt)

    def quarantine(
        self,
        instrument: str,
        start_ns: int,
        stop_ns: int,
        reasons: Iterable[str] | None = None,
    ) -> pa.Table:
        """Quarantined packets of ``instrument`` (or ``_unknown``: messages on topics of no
        instrument) received in [start_ns, stop_ns), in order, optionally only of ``reasons``."""
        lane = self._lane(instrument)
        start, stop = _window(start_ns, stop_ns)
        flt = None
        if reasons is not None:
            if isinstance(reasons, str):
                raise ValueError("reasons is a list of reasons, not one string")
            flt = ds.field("reason").isin(pa.array(list(reasons), pa.string()))
        return self._rows("quarantine", QUARANTINE, lane, "recv", start, stop, flt)

    def raw_batches(self, instrument: str, start_ns: int, stop_ns: int) -> Iterator[pa.RecordBatch]:
        """The sealed raw packets of ``instrument`` with time in [start_ns, stop_ns) (start
        inclusive, stop exclusive), batch by batch in stored order, which is time order; the
        live WAL is not included (a replay reads what is sealed)."""
        inst = self._instrument(instrument)
        start, stop = _window(start_ns, stop_ns)
        checkpoint = _seal.read_checkpoint(self.root, inst.id)[0]
        batches = self._scan("raw", RAW, inst.id, "time", start, stop, checkpoint, RAW.names)
        for batch in batches:
            with translate("filter raw of", inst.id):
                t = batch.column(0).cast(pa.int64()).to_numpy()
                keep = (t >= start) & (t < stop)
                if not keep.all():
                    batch = batch.filter(pa.array(keep))
            if batch.num_rows:
                yield batch

    def counters(self, instrument: str) -> dict[str, object]:
        """Totals of ``instrument`` since the store began: frames, octets, packets accepted,
        rejects by reason (the processing state after the live WAL), the last sealed segment,
        and the live (unsealed) segments and batches."""
        inst = self._instrument(instrument)
        live = self._live(inst.id)
        assert live.processor is not None
        counters = dict(live.processor.state.to_json()["counters"])
        counters["sealed_segment"] = live.checkpoint
        counters["live_segments"] = len(live.segments)
        counters["live_batches"] = sum(b for _, b in live.segments)
        return counters

    # ------------------------------------------------------------------ internals: lanes

    def _instrument(self, instrument_id: str) -> Instrument:
        inst = self.catalog.instruments.get(instrument_id)
        if inst is None:
            known = ", ".join(sorted(self.catalog.instruments)) or "none"
            raise ValueError(f"unknown instrument {instrument_id!r}; known: {known}")
        return inst

    def _lane(self, lane: str) -> str:
        if lane != UNKNOWN:
            self._instrument(lane)
        return lane

    def _channels(self, inst: Instrument, channels: list[str] | None) -> list[str]:
        if channels is None:
            return list(inst.channels)
        if isinstance(channels, str):
            raise ValueError(f"channels is a list of names, not one string ({channels!r})")
        names = list(channels)
        unknown = [c for c in names if c not in inst.channels]
        if unknown:
            raise ValueError(
                f"unknown channel(s) {unknown} of {inst.id}; its channels: {inst.channels}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"channels {names} name a channel twice")
        return names

    def _wal_dir(self, lane: str) -> Path:
        return self.root / "wal" / lane

    def _lane_lock(self, lane: str) -> threading.Lock:
        with self._guard:
            return self._lane_locks.setdefault(lane, threading.Lock())

    def _hold(self, lane: str) -> None:
        """Take the lane's inter-process lock (once per Store)."""
        if lane in self._locks:
            return
        folder = self._wal_dir(lane)
        path = folder / "LOCK"
        with translate("lock", path):
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StoreError(
                f"the WAL of {lane} ({folder}) is locked by another process, an ingestor "
                "probably; stop it, or give this one another shard",
                str(path),
            ) from exc
        self._locks[lane] = fd

    # ------------------------------------------------------------------ internals: sealing

    def _seal(
        self,
        lane: str,
        segment: int,
        processed: Sequence[Processed] | None,
        state: ProcessState | None,
    ) -> None:
        if processed is not None and state is None and lane != UNKNOWN:
            raise ValueError(f"sealing {lane} segment {segment}: give the state after it too")
        path = self._wal_dir(lane) / segment_name(segment)
        writer = self._writers.get(lane)
        if writer is not None and writer.segment == segment and writer.batches:
            raise StoreError(
                f"WAL segment {segment} of {lane} is still open for writing; rotate it first",
                str(writer.path),
            )
        sealed, _ = _seal.read_checkpoint(self.root, lane)
        if segment < sealed:
            raise StoreError(
                f"segment {segment} of {lane} is older than the last sealed one ({sealed}); "
                "sealing it again would move the checkpoint back",
                str(_seal.checkpoint_path(self.root, lane)),
            )
        if segment == sealed and processed is None:
            _seal.remove_file(path)  # sealed; a crash came before the segment's deletion
            return
        for n, _ in list_segments(self._wal_dir(lane)):
            if sealed < n < segment:
                self._seal(lane, n, None, None)
        inst = self.catalog.instruments.get(lane)
        if lane == UNKNOWN and processed is not None and not path.exists():
            # No WAL segment: rows a writer without a WAL made itself (a recording's import).
            quarantine = [p.quarantine for p in processed]
            tables = {"quarantine": _seal.concat(quarantine, QUARANTINE, "quarantine")}
            state = None
        elif lane == UNKNOWN:
            wal = read_segment(path) if path.exists() else None
            tables = {
                "quarantine": _seal.unknown_quarantine(wal.table)
                if wal is not None
                else QUARANTINE.empty_table()
            }
            state = None
        else:
            assert inst is not None
            if processed is None:
                processed, state = self._replay_segment(inst, path)
            tables = _seal.gather(lane, inst, processed)
        _seal.write_segment(self.root, lane, segment, tables)
        _seal.write_checkpoint(self.root, lane, segment, state)
        _seal.remove_file(path)

    def _replay_segment(self, inst: Instrument, path: Path) -> tuple[list[Processed], ProcessState]:
        _, state = _seal.read_checkpoint(self.root, inst.id)
        processor = Processor(inst, state)
        if not path.exists():
            return [], processor.state
        seg = read_segment(path)
        if seg.discarded_bytes:
            log.warning(
                "%s: %d bytes of a torn last batch discarded (never acknowledged)",
                path,
                seg.discarded_bytes,
            )
        return replay(processor, seg.batches), processor.state

    # ------------------------------------------------------------------ internals: reading

    def _live(self, lane: str) -> _Live:
        """A consistent view of the lane: its checkpoint and the WAL segments after it, read
        with the checkpoint unchanged before and after (else a seal ran meanwhile: again)."""
        with self._lane_lock(lane):
            for _ in range(20):
                sealed, state = _seal.read_checkpoint(self.root, lane)
                try:
                    read = [
                        (n, read_segment(p))
                        for n, p in list_segments(self._wal_dir(lane))
                        if n > sealed
                    ]
                except StoreError as exc:
                    if isinstance(exc.__cause__, FileNotFoundError):
                        continue  # sealed and deleted under our feet
                    raise
                if _seal.read_checkpoint(self.root, lane)[0] == sealed:
                    break
            else:
                raise StoreError(
                    f"the WAL of {lane} changed on every one of 20 reads; retry the query",
                    str(self._wal_dir(lane)),
                )
            live = self._lives.get(lane)
            if live is None or not live.continues(sealed, read):
                inst = self.catalog.instruments.get(lane)
                live = _Live(sealed, Processor(inst, state) if inst is not None else None)
                self._lives[lane] = live
            done = dict(live.segments)
            try:
                for n, seg in read:
                    fresh = seg.batches[done.get(n, 0) :]
                    if fresh:
                        live._tables.clear()
                        if live.processor is not None:
                            with translate("replay WAL segment", seg.path):
                                live.processed.extend(replay(live.processor, fresh))
                        else:
                            live.unknown.append(
                                _seal.unknown_quarantine(pa.Table.from_batches(fresh))
                            )
                    if n not in done:
                        live.segments.append((n, len(seg.batches)))
                    else:
                        live.segments[-1] = (n, len(seg.batches))
            except BaseException:
                del self._lives[lane]  # half extended: start over next time
                raise
            live.discarded_bytes = sum(seg.discarded_bytes for _, seg in read)
            return live

    def _days(self, table: str, partition: str) -> list[int]:
        base = self.root / table / f"instrument={partition}"
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {base}: {describe(exc)}", str(base)) from exc
        days = []
        for name in names:
            if name.startswith("date="):
                with contextlib.suppress(ValueError):
                    days.append(_seal.day_of_date(name[5:]))
        return sorted(days)

    def _files(
        self, table: str, partition: str, first_day: int, last_day: int, sealed: dict[str, int]
    ) -> list[Path]:
        """Partition pruning by folder: the sealed files of days [first_day, last_day] whose
        segment is at or below its lane's checkpoint, in (day, segment) order."""
        base = self.root / table / f"instrument={partition}"
        found: list[tuple[int, int, Path]] = []
        for day in self._days(table, partition):
            if not first_day <= day <= last_day:
                continue
            folder = base / f"date={_seal.date_of_day(day)}"
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot list {folder}: {describe(exc)}", str(folder)) from exc
            for name in names:
                if table == "events" and _is_console_file(name):
                    found.append((day, -1, folder / name))  # no lane: never gated
                    continue
                parsed = _seal.parse_file_name(name)
                if parsed is None:
                    continue
                source, segment = parsed
                lane = source or partition
                if lane not in sealed:
                    sealed[lane] = _seal.read_checkpoint(self.root, lane)[0]
                if segment <= sealed[lane]:
                    found.append((day, segment, folder / name))
        return [p for _, _, p in sorted(found)]

    def _sealed(
        self,
        table: str,
        schema: pa.Schema,
        partition: str,
        column: str,
        start: int,
        stop: int,
        checkpoint: int,
        columns: list[str] | None = None,
        flt: ds.Expression | None = None,
    ) -> pa.Table:
        """Sealed rows of [start, stop) by ``column`` (pyarrow.dataset over the pruned files,
        with the time filter pushed down to the row groups)."""
        files = self._files(
            table, partition, start // DAY_NS, (stop - 1) // DAY_NS, {partition: checkpoint}
        )
        where = (ds.field(column) >= pa.scalar(start, TIME)) & (
            ds.field(column) < pa.scalar(stop, TIME)
        )
        if flt is not None:
            where = where & flt
        if not files:
            out = schema.empty_table()
            return out.select(columns) if columns is not None else out
        with translate("read", self.root / table / f"instrument={partition}"):
            dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
            return dataset.to_table(columns=columns, filter=where)

    def _scan(
        self,
        table: str,
        schema: pa.Schema,
        partition: str,
        column: str,
        start: int,
        stop: int,
        checkpoint: int,
        columns: list[str],
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of the sealed files that may hold rows of [start, stop): files by
        folder, row groups by their statistics; rows are not filtered."""
        files = self._files(
            table, partition, start // DAY_NS, (stop - 1) // DAY_NS, {partition: checkpoint}
        )
        if not files:
            return
        where = (ds.field(column) >= pa.scalar(start, TIME)) & (
            ds.field(column) < pa.scalar(stop, TIME)
        )
        with translate("read", self.root / table / f"instrument={partition}"):
            dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
            fragments = [f.subset(where) for f in dataset.get_fragments()]
            pruned = ds.FileSystemDataset(
                [f for f in fragments if f.num_row_groups], schema, dataset.format,
                dataset.filesystem,
            )  # fmt: skip
            yield from pruned.to_batches(columns=columns)

    def _rows(
        self,
        table: str,
        schema: pa.Schema,
        lane: str,
        column: str,
        start: int,
        stop: int,
        flt: ds.Expression | None,
    ) -> pa.Table:
        live = self._live(lane)
        sealed = self._sealed(table, schema, lane, column, start, stop, live.checkpoint, None, flt)
        recent = _filter(live.table(table, schema), column, start, stop, flt)
        return _in_order(pa.concat_tables([sealed, recent]), column)

    def _telemetry(self, inst: Instrument, columns: list[str], start: int, stop: int) -> pa.Table:
        schema = _seal.schema_of("telemetry", inst)
        live = self._live(inst.id)
        sealed = self._sealed(
            "telemetry", schema, inst.id, "time", start, stop, live.checkpoint, columns
        )
        recent = _filter(live.table("telemetry", schema), "time", start, stop).select(columns)
        return _in_order(pa.concat_tables([sealed, recent]), "time")

    def _downsample(
        self, inst: Instrument, names: list[str], start: int, stop: int, n: int, source: Source
    ) -> pa.Table:
        width = (stop - start) / n
        edges = bucket_edges(start, stop, n)
        kept = rollup_widths(inst)
        fits = [w for w in sorted(kept, reverse=True) if w * NS <= width]
        if source == "auto":
            # A rollup bucket across an inner edge can only be put on one side: use rollups
            # when no edge cuts one (edges on rollup boundaries) or the error is small.
            rollup_s = next(
                (
                    w
                    for w in fits
                    if w * NS * ROLLUPS_PER_BUCKET <= width or not np.any(edges % (w * NS))
                ),
                None,
            )
        elif source == "rollups":
            if not fits:
                narrowest = f"the narrowest rollup ({min(kept)} s)" if kept else "any rollup kept"
                raise ValueError(
                    f"buckets of {width / NS:g} s are narrower than {narrowest} for "
                    f"{inst.id}: use fewer buckets or source='telemetry'"
                )
            rollup_s = fits[0]
        elif source == "telemetry":
            rollup_s = None
        else:
            raise ValueError(f"source {source!r}: use 'auto', 'rollups' or 'telemetry'")
        enums = {f.name for f in inst.profile.fields if f.enum}
        rolled = [c for c in names if c not in enums] if rollup_s else []
        direct = [c for c in names if c not in rolled]
        result: dict[str, Buckets] = {}
        if direct:
            result |= self._buckets_from_samples(inst, direct, start, stop, edges)
        if rolled:
            assert rollup_s is not None
            result |= self._buckets_from_rollups(inst, rolled, start, stop, edges, rollup_s * NS)
        arrays: list[pa.Array] = [pa.array(edges[:-1], TIME)]
        fields: list[pa.Field] = [pa.field("time", TIME)]
        for name in names:
            b = result[name]
            empty = b.count == 0
            arrays += [
                pa.array(b.count),
                pa.array(b.min, mask=empty),
                pa.array(b.max, mask=empty),
                pa.array(b.mean, mask=empty),
            ]
            fields += [
                pa.field(f"{name}__count", pa.int64()),
                pa.field(f"{name}__min", pa.float64()),
                pa.field(f"{name}__max", pa.float64()),
                pa.field(f"{name}__mean", pa.float64()),
            ]
        served = f"rollups_{rollup_s}s" if rolled else "telemetry"
        schema = pa.schema(fields, metadata={"source": served})
        return pa.Table.from_arrays(arrays, schema=schema)

    def _buckets_from_samples(
        self, inst: Instrument, names: list[str], start: int, stop: int, edges: np.ndarray
    ) -> dict[str, Buckets]:
        """Buckets of the telemetry in [start, stop), batch by batch as the files are read
        (samples outside the edges do not count, so no row filter is needed)."""
        schema = _seal.schema_of("telemetry", inst)
        live = self._live(inst.id)
        columns = ["time", *names]
        batches = itertools.chain(
            self._scan("telemetry", schema, inst.id, "time", start, stop, live.checkpoint, columns),
            live.table("telemetry", schema).select(columns).to_batches(),
        )
        out = {name: Buckets.empty(edges.shape[0] - 1) for name in names}
        with translate("read telemetry of", inst.id):
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                t = _times_of(batch.column(0))
                order = None if np.all(t[1:] >= t[:-1]) else np.argsort(t, kind="stable")
                if order is not None:
                    t = t[order]
                pos = positions(t, edges, start, stop)
                if pos[-1] == pos[0]:
                    continue
                for k, name in enumerate(names, 1):
                    v = _values(batch.column(k))
                    part = from_samples(v if order is None else v[order], pos)
                    out[name] = out[name].add(part)
        return out

    def _buckets_from_rollups(
        self,
        inst: Instrument,
        names: list[str],
        start: int,
        stop: int,
        edges: np.ndarray,
        width_ns: int,
    ) -> dict[str, Buckets]:
        n = edges.shape[0] - 1
        # Whole rollup buckets inside [start, stop): [inner_start, inner_stop).
        inner_start = -(-start // width_ns) * width_ns
        inner_stop = max(stop // width_ns * width_ns, inner_start)
        out = {name: Buckets.empty(n) for name in names}
        if inner_start < inner_stop:
            live = self._live(inst.id)
            flt = (ds.field("width_s") == width_ns // NS) & ds.field("channel").isin(names)
            columns = ["channel", "count", "min", "max", "sum", "first", "last"]
            sealed = self._sealed(
                "rollups", ROLLUPS, inst.id, "bucket", inner_start, inner_stop,
                live.checkpoint, columns, flt,
            )  # fmt: skip
            recent = _filter(
                live.table("rollups", ROLLUPS), "bucket", inner_start, inner_stop, flt
            ).select(columns)
            rows = pa.concat_tables([sealed, recent])
            with translate("combine rollups of", inst.id):
                which = pc.index_in(rows.column("channel"), value_set=pa.array(names)).to_numpy(
                    zero_copy_only=False
                )
                first = rows.column("first").cast(pa.int64()).to_numpy()
                last = rows.column("last").cast(pa.int64()).to_numpy()
                idx = bucket_index(first + (last - first) // 2, edges)
                cols = {c: rows.column(c).to_numpy() for c in ("count", "sum", "min", "max")}
            for k, name in enumerate(names):
                sel = which == k
                out[name] = from_rollups(
                    idx[sel],
                    cols["count"][sel],
                    cols["sum"][sel],
                    cols["min"][sel],
                    cols["max"][sel],
                    n,
                )
        # Partial rollup buckets at the outer edges, from telemetry.
        for lo, hi in ((start, min(inner_start, stop)), (max(inner_stop, inner_start), stop)):
            if lo < hi:
                part = self._buckets_from_samples(inst, names, lo, hi, edges)
                out = {name: out[name].add(part[name]) for name in names}
        return out


# ---------------------------------------------------------------------- helpers


def _window(start_ns: int, stop_ns: int) -> tuple[int, int]:
    try:
        start, stop = operator.index(start_ns), operator.index(stop_ns)
    except TypeError as exc:
        raise ValueError(
            f"start_ns and stop_ns must be integers (UTC ns since 1970), not "
            f"{type(start_ns).__name__} and {type(stop_ns).__name__}"
        ) from exc
    if isinstance(start_ns, bool) or isinstance(stop_ns, bool):
        raise ValueError("start_ns and stop_ns must be integers, not booleans")
    if start >= stop:
        raise ValueError(f"start_ns {start} must be before stop_ns {stop} (window [start, stop))")
    return start, stop


def _is_console_file(name: str) -> bool:
    stem = name.removeprefix(CONSOLE_PREFIX).removesuffix(".parquet")
    return name.startswith(CONSOLE_PREFIX) and name.endswith(".parquet") and stem.isdigit()


def _count(buckets: int) -> int:
    try:
        n = operator.index(buckets)
    except TypeError as exc:
        raise ValueError(f"buckets must be an integer >= 1, not {buckets!r}") from exc
    if isinstance(buckets, bool) or n < 1:
        raise ValueError(f"buckets must be an integer >= 1, not {buckets!r}")
    return n


def _filter(
    table: pa.Table, column: str, start: int, stop: int, flt: ds.Expression | None = None
) -> pa.Table:
    if table.num_rows == 0:
        return table
    where = (pc.field(column) >= pa.scalar(start, TIME)) & (
        pc.field(column) < pa.scalar(stop, TIME)
    )
    if flt is not None:
        where = where & flt
    with translate("filter", column):
        return table.filter(where)


def _in_order(table: pa.Table, column: str) -> pa.Table:
    """Sorted by ``column`` (stable), without a sort when it already is."""
    if table.num_rows < 2:
        return table.combine_chunks()
    t = table.column(column).cast(pa.int64()).to_numpy()
    if np.all(t[1:] >= t[:-1]):
        return table.combine_chunks()
    return table.take(np.argsort(t, kind="stable"))


def _values(arr: pa.Array) -> np.ndarray:
    """One float64 per row (NaN for null); an array channel's rows are the means of their
    arrays, as the rollups have them. Zero-copy for float64 columns without nulls."""
    if pa.types.is_fixed_size_list(arr.type):
        size = arr.type.list_size
        flat = _values(arr.values.slice(arr.offset * size, len(arr) * size))
        v = flat.reshape(len(arr), size).mean(axis=1) if size else np.full(len(arr), np.nan)
        if arr.null_count:
            v[~arr.is_valid().to_numpy(zero_copy_only=False)] = np.nan
        return v
    if arr.null_count:
        arr = pc.fill_null(arr.cast(pa.float64()), np.nan)
    v = arr.to_numpy(zero_copy_only=False)
    return v if v.dtype == np.float64 else v.astype(np.float64)


def _times_of(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False).view(np.int64)
