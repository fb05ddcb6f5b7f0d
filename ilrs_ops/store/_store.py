"""The store: passive persistence. WAL writers and their locks, seals of processed tables with a
checkpoint, and reads of what is sealed. It never runs the pipelines: ``ilrs_ops.processing``
hands it tables, and joins its sealed reads with the live WAL.

Layout under ``root``::

    wal/{lane}/{n:012d}.arrows                                   raw messages, not yet sealed
    state/{lane}.json                                            last sealed segment + state
    {table}/instrument={id}/date={YYYY-MM-DD}/{n:012d}.parquet   sealed tables

A lane is an instrument id, or ``_unknown`` for messages on topics that name no instrument.
The checkpoint is the commit point of a seal: Parquet files of segments above it are ignored by
readers (they may be from a seal in progress), and WAL segments at or below it are already sealed.
Time windows are [start, stop): start inclusive, stop exclusive, UTC ns since 1970.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import operator
import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.schemas import COMMANDS, EVENTS, RAW
from ilrs_ops.store import _seal
from ilrs_ops.store._delta import DeltaTables
from ilrs_ops.store._fs import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    describe,
    is_temp,
    read_if_any,
    translate,
    write_atomic,
)
from ilrs_ops.store._parquet import ParquetTables
from ilrs_ops.store._wal import WalSegment, WalWriter, list_segments, read_segment, segment_name

log = logging.getLogger(__name__)

#: The file under a store's root that names its archive, when its sealed tables are not the
#: Parquet files under the root itself: ``{"format": 1, "archive": "s3://bucket/prefix"}``.
ARCHIVE_FILE = "archive.json"


def _sealed_by(temp: Path, lanes: Collection[str]) -> bool:
    """Whether a temp file is a seal's or checkpoint's of one of ``lanes``."""
    final = temp.name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)]
    if temp.parent.name == "state":
        return final.removesuffix(".json") in lanes
    parsed = _seal.parse_file_name(final)
    if parsed is None:
        return False  # not a seal's file: the console's events and commands
    source, _ = parsed
    partition = next((p.name for p in temp.parents if p.name.startswith("instrument=")), "")
    return (source or partition.removeprefix("instrument=")) in lanes


@dataclass(frozen=True, eq=False)
class Unsealed:
    """A consistent view of one lane: its checkpoint (last sealed segment and the state after
    it, as stored) and the WAL segments after it, oldest first."""

    lane: str
    checkpoint: int
    state: dict[str, Any] | None
    segments: tuple[tuple[int, Path], ...]


class Store:
    """Telemetry store under ``root``; a context manager.

    Any number of processes may read a store; one process per lane writes its WAL (an
    exclusive lock on ``wal/{lane}/LOCK`` is taken by ``wal`` and ``seal``). Methods raise
    StoreError for disk problems and InputError for bad arguments; pyarrow errors never leak.
    """

    def __init__(
        self,
        root: Path | str,
        archive: str | None = None,
        *,
        as_of: datetime.datetime | None = None,
    ) -> None:
        self.root = Path(root)
        #: Where the sealed tables are: Parquet files under ``root`` (the default), or Delta
        #: Lake tables at the URI that ``archive`` gives or ``root/archive.json`` recorded.
        #: What the archive held at this instant, read only, without the live WAL (a Delta
        #: archive's time travel): "what did we have when the report was made".
        self.as_of = as_of
        if as_of is not None and as_of.tzinfo is None:
            raise InputError(f"as_of {as_of} has no time zone; give UTC (e.g. +00:00)")
        self.archive: ParquetTables | DeltaTables = open_archive(self.root, archive, as_of)
        self._writers: dict[str, WalWriter] = {}
        self._locks: dict[str, int] = {}
        self._lane_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._console_ns = 0  # last console events file name, strictly increasing

    def __str__(self) -> str:
        """The store's folder, and its archive when that is elsewhere: for messages."""
        if isinstance(self.archive, DeltaTables):
            return f"{self.root} (sealed tables: Delta Lake at {self.archive})"
        return str(self.root)

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

    def wal_lanes(self) -> list[str]:
        """The lanes that have a WAL folder, sorted."""
        try:
            return sorted(
                n for n in os.listdir(self.root / "wal") if (self.root / "wal" / n).is_dir()
            )
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.root / 'wal'}: {describe(exc)}") from exc

    def remove_temp_files(self, lanes: Collection[str] | None = None) -> list[Path]:
        """Delete what a crash in the middle of an atomic write left (``.name.tmp``) in the
        tables and checkpoints; returns the files removed. With ``lanes``, only what the seals
        of those lanes write: another process (an ingest shard sharing the store, the console)
        may be writing its own temp files at this moment."""
        removed: list[Path] = []
        for folder in [*self.archive.local_folders(), self.root / "state"]:
            for dirpath, _, files in os.walk(folder):
                for name in files:
                    path = Path(dirpath) / name
                    if is_temp(path) and (lanes is None or _sealed_by(path, lanes)):
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                        removed.append(path)
        return removed

    # ------------------------------------------------------------------ WAL

    def wal(self, lane: str) -> WalWriter:
        """The WAL writer of a lane, the same one on every call. Raises StoreError when
        unsealed segments of an earlier run are left: recover them first
        (``ilrs_ops.processing.recover``)."""
        self._writable()
        writer = self._writers.get(lane)
        if writer is not None:
            return writer
        with self._lane_lock(lane):
            if (writer := self._writers.get(lane)) is not None:
                return writer
            self.hold(lane)
            sealed, _ = _seal.read_checkpoint(self.root, lane)
            segments = list_segments(self._wal_dir(lane))
            unsealed = [n for n, _ in segments if n > sealed]
            if unsealed:
                raise StoreError(
                    f"{len(unsealed)} unsealed WAL segment(s) of {lane} in {self._wal_dir(lane)} "
                    "from an earlier run: recover them first (ilrs_ops.processing.recover) "
                    "and continue from the states it returns",
                    str(self._wal_dir(lane)),
                )
            for _, path in segments:
                _seal.remove_file(path)  # sealed, left by a crash before their deletion
            last = max([sealed, *(n for n, _ in segments)])
            writer = self._writers[lane] = WalWriter(self._wal_dir(lane), last + 1)
            return writer

    def close_wal(self, lane: str) -> None:
        """Close the lane's WAL writer: what it wrote stays as unsealed segments, to be sealed
        by recovery (a shutdown seals them so)."""
        with self._lane_lock(lane):
            writer = self._writers.pop(lane, None)
            if writer is not None:
                writer.close()

    def unsealed(self, lane: str) -> Unsealed:
        """The lane's checkpoint and WAL segments after it, read with the checkpoint unchanged
        before and after (else a seal ran meanwhile: again). Segments at or below the
        checkpoint are not listed. As of a past instant: no segments (the archive alone)."""
        if self.as_of is not None:
            return Unsealed(lane, 0, None, ())
        for _ in range(20):
            sealed, state = _seal.read_checkpoint(self.root, lane)
            segments = tuple((n, p) for n, p in list_segments(self._wal_dir(lane)) if n > sealed)
            if _seal.read_checkpoint(self.root, lane)[0] == sealed:
                return Unsealed(lane, sealed, state, segments)
        raise StoreError(
            f"the WAL of {lane} changed on every one of 20 reads; retry", str(self._wal_dir(lane))
        )

    def read_wal(self, lane: str, segment: int, offset: int = 0) -> WalSegment | None:
        """The complete batches of one WAL segment from ``offset`` (a ``WalSegment.end`` of an
        earlier read; 0: from the start); None when the segment is gone (sealed meanwhile)."""
        path = self._wal_dir(lane) / segment_name(segment)
        try:
            return read_segment(path, offset)
        except StoreError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise

    # ------------------------------------------------------------------ sealing

    def checkpoint(self, lane: str) -> tuple[int, dict[str, Any] | None]:
        """(last sealed segment, the processing state stored with it); (0, None) before any."""
        return _seal.read_checkpoint(self.root, lane)

    def seal(
        self,
        lane: str,
        segment: int,
        tables: Mapping[str, pa.Table],
        state: dict[str, Any] | None,
    ) -> list[str]:
        """Write one segment's tables as Parquet, then the checkpoint (``state``: the
        processing state after the segment, kept as given), then delete the WAL segment of
        that number if there is one. Returns the files written.

        Sealing the segment of the checkpoint again rewrites the same files (idempotent); an
        older segment is refused, and so is one with older unsealed WAL segments before it
        (seal those first) or a segment still open for writing.
        """
        self._writable()
        with self._lane_lock(lane):
            self.hold(lane)
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
            older = [n for n, _ in list_segments(self._wal_dir(lane)) if sealed < n < segment]
            if older:
                raise StoreError(
                    f"WAL segment(s) {older} of {lane} are older than {segment} and not sealed: "
                    "seal them first",
                    str(self._wal_dir(lane)),
                )
            files = self.archive.commit(lane, segment, dict(tables))
            _seal.write_checkpoint(self.root, lane, segment, state)
            _seal.remove_file(self._wal_dir(lane) / segment_name(segment))
            return files

    def discard_sealed(self, lane: str) -> None:
        """Delete WAL segments at or below the checkpoint (a crash came before their
        deletion): the first step of a recovery, refused while this Store writes the lane."""
        self._writable()
        with self._lane_lock(lane):
            if lane in self._writers:
                raise StoreError(
                    f"recovering {lane} while this Store writes its WAL: recover first",
                    str(self._wal_dir(lane)),
                )
            sealed, _ = _seal.read_checkpoint(self.root, lane)
            for n, path in list_segments(self._wal_dir(lane)):
                if n <= sealed:
                    self.hold(lane)
                    _seal.remove_file(path)

    def append_events(self, instrument: str, table: pa.Table) -> list[str]:
        """Write events that come from no WAL (the console's acks, shelves, profile uploads) as
        ``events/instrument={id}/date={D}/console-{ns}.parquet``, one atomic file per day;
        readers include them at once (no checkpoint gates them). Returns the files written."""
        return self._append_console("events", EVENTS, instrument, table)

    def append_commands(self, instrument: str, table: pa.Table) -> list[str]:
        """Write command stages (``schemas.COMMANDS``) as ``append_events`` writes events:
        ``commands/instrument={id}/date={D}/console-{ns}.parquet``, durable when it returns."""
        return self._append_console("commands", COMMANDS, instrument, table)

    def commands(self, instrument: str, start_ns: int, stop_ns: int) -> pa.Table:
        """The command stages of ``instrument`` in [start_ns, stop_ns), in time order."""
        start, stop = window(start_ns, stop_ns)
        rows = self.sealed("commands", COMMANDS, instrument, "time", start, stop, -1)
        return rows.sort_by([("time", "ascending")])

    def _append_console(
        self, name: str, schema: pa.Schema, instrument: str, table: pa.Table
    ) -> list[str]:
        self._writable()
        if table.num_rows == 0:
            return []
        with translate(f"convert {name} of", instrument):
            table = table.select(schema.names).cast(schema)
        with self._guard:
            ns = self._console_ns = max(time.time_ns(), self._console_ns + 1)
        return self.archive.append(name, instrument, table, ns)

    # ------------------------------------------------------------------ sealed reads

    def sealed(
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
        """Sealed rows of ``partition`` with ``column`` in [start, stop), gated by the lane's
        ``checkpoint`` (files pruned by partition and statistics, the time filter pushed down).
        Rows come in seal order, which is time order per lane."""
        return self.archive.sealed(
            table, schema, partition, column, start, stop, checkpoint, columns, flt
        )

    def scan(
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
        """Record batches of the sealed files that may hold rows of [start, stop), in seal
        order; rows outside the window may come too."""
        return self.archive.scan(table, schema, partition, column, start, stop, checkpoint, columns)

    def days(self, table: str, partition: str) -> list[int]:
        """The UTC days (days since 1970) that hold sealed rows, oldest first."""
        return self.archive.days(table, partition)

    def last_row(self, table: str, schema: pa.Schema, partition: str, checkpoint: int) -> pa.Table:
        """The last sealed row of ``partition`` (one row, or none)."""
        return self.archive.last_row(table, schema, partition, checkpoint)

    def raw_batches(self, instrument: str, start_ns: int, stop_ns: int) -> Iterator[pa.RecordBatch]:
        """The sealed raw packets of ``instrument`` with time in [start_ns, stop_ns), batch by
        batch in stored order, which is time order; the live WAL is not included (a replay
        reads what is sealed)."""
        start, stop = window(start_ns, stop_ns)
        checkpoint = _seal.read_checkpoint(self.root, instrument)[0]
        batches = self.scan("raw", RAW, instrument, "time", start, stop, checkpoint, RAW.names)
        for batch in batches:
            with translate("filter raw of", instrument):
                t = batch.column(0).cast(pa.int64()).to_numpy()
                keep = (t >= start) & (t < stop)
                if not keep.all():
                    batch = batch.filter(pa.array(keep))
            if batch.num_rows:
                yield batch

    # ------------------------------------------------------------------ internals

    def _wal_dir(self, lane: str) -> Path:
        return self.root / "wal" / lane

    def _writable(self) -> None:
        if self.as_of is not None:
            raise InputError(f"the store {self.root} is open as of {self.as_of}: read only")

    def _lane_lock(self, lane: str) -> threading.Lock:
        with self._guard:
            return self._lane_locks.setdefault(lane, threading.Lock())

    def hold(self, lane: str) -> None:
        """Take the lane's inter-process lock (once per Store): StoreError when another
        process (an ingestor) has it."""
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


# ---------------------------------------------------------------------- helpers


def archive_uri(text: str) -> str:
    """An archive as a store records it: a URI as given, a local path made absolute."""
    return text if "://" in text else str(Path(text).absolute())


def record_archive(root: Path, uri: str) -> None:
    """Write ``root/archive.json``: from now on the store's sealed tables are at ``uri``."""
    path = root / ARCHIVE_FILE
    data = json.dumps({"format": 1, "archive": uri}).encode()
    with translate("write", path):
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: f.write(data))


def open_archive(
    root: Path, given: str | None, as_of: datetime.datetime | None = None
) -> ParquetTables | DeltaTables:
    """The sealed tables of the store at ``root`` (``as_of``: as a Delta archive held them
    then). A store keeps the archive it was first given (recorded in ``root/archive.json``):
    its WAL and checkpoints belong to that one."""
    path = root / ARCHIVE_FILE
    recorded: str | None = None
    text = read_if_any("read", path)
    try:
        if text is not None:
            recorded = str(json.loads(text)["archive"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path} is corrupt ({exc}); it must name the store's archive: "
            '{"format": 1, "archive": "s3://bucket/prefix"}',
            str(path),
        ) from exc
    if given is not None:
        given = archive_uri(given)
        if recorded is not None and recorded != given:
            raise InputError(
                f"the store {root} keeps its sealed tables in {recorded}, not {given}: give "
                f"--archive {recorded}, or another --data for another archive"
            )
        if recorded is None:
            sealed = [t for t in _seal.TABLES if (root / t).is_dir()]
            if sealed:
                raise InputError(
                    f"the store {root} holds Parquet tables ({', '.join(sealed)}): convert them "
                    "first (ilrs-ops archive migrate), or give another --data"
                )
            record_archive(root, given)
            recorded = given
    if recorded is None:
        if as_of is not None:
            raise InputError(
                f"the store {root} keeps Parquet tables: reading it as of {as_of} needs a "
                "Delta archive (ilrs-ops archive migrate)"
            )
        return ParquetTables(root)
    return DeltaTables(recorded, root, as_of)


def window(start_ns: int, stop_ns: int) -> tuple[int, int]:
    """[start_ns, stop_ns) checked: integers (UTC ns since 1970), start before stop."""
    try:
        start, stop = operator.index(start_ns), operator.index(stop_ns)
    except TypeError as exc:
        raise InputError(
            f"start_ns and stop_ns must be integers (UTC ns since 1970), not "
            f"{type(start_ns).__name__} and {type(stop_ns).__name__}"
        ) from exc
    if isinstance(start_ns, bool) or isinstance(stop_ns, bool):
        raise InputError("start_ns and stop_ns must be integers, not booleans")
    if start >= stop:
        raise InputError(f"start_ns {start} must be before stop_ns {stop} (window [start, stop))")
    return start, stop
