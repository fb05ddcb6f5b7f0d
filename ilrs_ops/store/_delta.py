"""Sealed tables as Delta Lake tables (``deltalake``), on a local path or an S3-compatible store.

Under the archive's URI::

    raw/  events/  rollups/  quarantine/  commands/   one station table each, by instrument, date
    telemetry/{instrument}/                          one table per instrument (its columns), by date

Every row carries ``_lane`` and ``_segment``: the WAL lane and segment whose seal wrote it (the
console's own rows: ``console`` and -1). A seal commits each table with the app transaction
(lane, segment) in the same commit, so a seal run again after a crash finds it there and writes
nothing: exactly once from the WAL to the table, with no checkpoint file of ours in the archive.
A reader on the host of a lane's WAL sees rows up to that lane's local checkpoint only (the
WAL above it is read live), as with the Parquet tables; a reader elsewhere sees every commit.

Delta Lake has no unsigned integers and no nanosecond timestamps: times are stored as int64 ns
since 1970, unsigned integers in the next wider signed type (u64 as decimal(20, 0)), fixed-size
lists and binaries as lists and binaries (``delta_type``). Readers cast back to the contract
schema, so every value comes back exactly. docs/ARCHIVE.md says how other engines read it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ilrs_ops import wire
from ilrs_ops.errors import StoreError
from ilrs_ops.store import _seal
from ilrs_ops.store._seal import DAY_NS, TIME_COLUMN, UNKNOWN

#: The station tables (one table, partitioned by instrument and date); telemetry is per
#: instrument, partitioned by date.
STATION = ("raw", "events", "rollups", "quarantine", "commands")
LANE, SEGMENT = "_lane", "_segment"
#: ``_lane`` and ``_segment`` of rows that come from no WAL (the console's acks, commands).
CONSOLE_LANE, CONSOLE_SEGMENT = "console", -1
#: Commit attempts of ours around delta-rs's own retries (a table created by two hosts at
#: once, a conflict that outlasted its retries).
ATTEMPTS = 8
#: Settings of an S3 archive read from the environment, as the AWS tools name them.
S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
)

_WIDER = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
}


def delta_type(t: pa.DataType) -> pa.DataType:
    """The type a column of type ``t`` has in the archive: one that holds every value exactly."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t):
        return pa.list_(delta_type(t.value_type))
    if pa.types.is_fixed_size_binary(t):
        return pa.binary()
    return _WIDER.get(t, t)


def writer_properties(schema: pa.Schema) -> Any:
    """delta-rs's Parquet writer options for a table's rows: those of the Parquet seal
    (``_seal.writer_options``: zstd level 1, dictionaries for string columns only)."""
    from deltalake import ColumnProperties, WriterProperties

    return WriterProperties(
        compression="ZSTD",
        default_column_properties=ColumnProperties(dictionary_enabled=False),
        column_properties={
            c: ColumnProperties(dictionary_enabled=True) for c in _seal.dictionary_columns(schema)
        },
    )


def storage_options(uri: str) -> dict[str, str] | None:
    """What delta-rs needs to reach ``uri``: for ``s3://``, the ``AWS_*`` settings of the
    environment and conditional put (concurrent writers without a lock service)."""
    if not uri.startswith("s3://"):
        return None
    options = {k: os.environ[k] for k in S3_ENV if os.environ.get(k)}
    options.setdefault("conditional_put", os.environ.get("AWS_CONDITIONAL_PUT", "etag"))
    return options


class DeltaTables:
    """The sealed tables of a store as Delta Lake tables under ``uri``.

    ``root`` is the store's local folder: where the lanes' WALs and checkpoints are, which
    decide what a reader on this host sees (see the module's docstring).
    """

    def __init__(self, uri: str, root: Path, as_of: datetime.datetime | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.root = root
        #: Time travel: every table as its last commit before this instant left it (read only).
        self.as_of = as_of
        self.options = storage_options(self.uri)
        self._tables: dict[str, Any] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __str__(self) -> str:
        return self.uri

    def local_folders(self) -> list[Path]:
        """No local folder: delta-rs writes each file under a new name before its commit."""
        return []

    def table_uri(self, table: str, instrument: str) -> str:
        if table == "telemetry":
            return f"{self.uri}/telemetry/{instrument}"
        return f"{self.uri}/{table}"

    # ------------------------------------------------------------------ writes

    def commit(self, lane: str, segment: int, tables: dict[str, pa.Table]) -> list[str]:
        """Commit one segment's tables, each with the app transaction (lane, segment); a table
        that holds it already (a seal run again after a crash) is left as it is. Returns the
        table URIs committed to."""
        written = []
        for name, table in tables.items():
            if table.num_rows == 0:
                continue
            instrument = self._partition(name, lane, table)
            if self.write(name, table, lane, segment, instrument, (lane, segment)):
                written.append(self.table_uri(name, lane))
        return written

    def append(self, name: str, instrument: str, table: pa.Table, ns: int) -> list[str]:
        """Rows of no lane (the console's events and command stages): a blind append, visible
        at once. ``ns`` (the Parquet tables' file name) is not needed here."""
        del ns
        self.write(name, table, CONSOLE_LANE, CONSOLE_SEGMENT, instrument, None)
        return [self.table_uri(name, instrument)]

    def write(
        self,
        name: str,
        table: pa.Table,
        lane: str | pa.ChunkedArray,
        segment: int | np.ndarray,
        instrument: str | pa.ChunkedArray,
        txn: tuple[str, int] | None,
    ) -> bool:
        """Append ``table`` (rows of ``name``, with their lane, segment and instrument: one
        for all rows or one each) in one commit that records the app transaction ``txn``
        (app id, version); nothing when the table has that version of the app already.
        False when it had it."""
        from deltalake import CommitProperties, Transaction

        rows = self._rows(name, table, lane, segment, instrument)
        props = None if txn is None else CommitProperties(app_transactions=[Transaction(*txn)])
        uri = self.table_uri(name, instrument if isinstance(instrument, str) else "")
        return self._write(uri, name, rows, props, lambda dt: _has(dt, txn))

    def _partition(self, name: str, lane: str, table: pa.Table) -> str | pa.ChunkedArray:
        """The ``instrument`` of each row: the lane's, but ``_unknown`` for quarantined
        messages on topics of no instrument (as the Parquet tables keep them)."""
        if name != "quarantine" or lane == UNKNOWN:
            return lane
        unknown = pc.equal(table.column("reason"), wire.UNKNOWN_INSTRUMENT)
        return pc.if_else(unknown, UNKNOWN, lane)

    def _rows(
        self,
        name: str,
        table: pa.Table,
        lane: str | pa.ChunkedArray,
        segment: int | np.ndarray,
        instrument: str | pa.ChunkedArray,
    ) -> pa.Table:
        """``table`` in the archive's types, with its partition and provenance columns (one
        lane, segment and instrument for every row, or one each)."""
        fields = [pa.field(f.name, delta_type(f.type), f.nullable) for f in table.schema]
        try:
            out = table.cast(pa.schema(fields))
        except (pa.ArrowException, ValueError) as exc:
            raise StoreError(f"cannot convert {name} of {lane} for the archive: {exc}") from exc
        n = out.num_rows
        t = pc.fill_null(table.column(TIME_COLUMN[name]).cast(pa.int64()), 0).to_numpy()
        days, which = np.unique(np.floor_divide(t, DAY_NS), return_inverse=True)
        out = out.append_column("date", _labels(which, [_seal.date_of_day(d) for d in days]))
        if name in STATION:
            out = out.append_column("instrument", _column(instrument, n))
        out = out.append_column(LANE, _column(lane, n))
        out = out.append_column(SEGMENT, pa.array(np.broadcast_to(segment, n), pa.int64()))
        return out.combine_chunks()  # delta-rs may write the chunks of a table in any order

    def _write(
        self,
        uri: str,
        name: str,
        rows: pa.Table,
        props: Any,
        done: Callable[[Any], bool],
    ) -> bool:
        """Append ``rows`` to the table at ``uri`` (created by the first write) unless
        ``done(table)``; False when it was done already. Conflicts are retried, never lost."""
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError

        partition_by = ["instrument", "date"] if name in STATION else ["date"]
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            with self._lock(uri):
                dt = self._open(uri)
                if dt is not None and done(dt):
                    return False
                try:
                    with _translate("commit to", uri):
                        write_deltalake(
                            dt if dt is not None else uri,
                            rows,
                            mode="append",
                            partition_by=partition_by,
                            schema_mode="merge",
                            storage_options=self.options,
                            commit_properties=props,
                            writer_properties=writer_properties(rows.schema),
                        )
                    return True
                except StoreError as exc:
                    cause = exc.__cause__
                    retried = isinstance(cause, CommitFailedError | DeltaError)
                    if not retried or isinstance(cause, SchemaMismatchError):
                        raise
                    last = exc
                    self._tables.pop(uri, None)  # created or moved on meanwhile: read it again
            time.sleep(0.05 * 2**attempt)
        assert last is not None
        raise last

    # ------------------------------------------------------------------ reads

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
        """Sealed rows of ``partition`` with ``column`` in [start, stop), in commit order."""
        dataset = self._dataset(table, partition, column, start, stop, checkpoint)
        names = columns if columns is not None else schema.names
        if dataset is None:
            return schema.empty_table().select(names)
        where = (ds.field(column) >= start) & (ds.field(column) < stop)
        if flt is not None:
            where = where & flt
        wanted = [c for c in names if c in dataset.schema.names] + _provenance(partition)
        with _translate("read", self.table_uri(table, partition)):
            rows = dataset.to_table(columns=wanted, filter=where)
        return self._contract(self._gated(rows, partition, checkpoint), schema, names)

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
        """Record batches of the files that may hold rows of [start, stop), in commit order."""
        dataset = self._dataset(table, partition, column, start, stop, checkpoint)
        if dataset is None:
            return
        wanted = [c for c in {column, *columns} if c in dataset.schema.names]
        wanted += _provenance(partition)
        with _translate("read", self.table_uri(table, partition)):
            for fragment in dataset.get_fragments():  # one by one: in commit order
                rows = fragment.to_table(schema=dataset.schema, columns=wanted)
                rows = _in_order(self._gated(rows, partition, checkpoint), column)
                if rows.num_rows:
                    yield from self._contract(rows, schema, columns).to_batches()

    def days(self, table: str, partition: str) -> list[int]:
        """The UTC days (days since 1970) that hold sealed rows of ``partition``, oldest first."""
        actions = self._actions(table, partition)
        if actions is None:
            return []
        dates = set(actions.column("partition.date").to_pylist())
        return sorted(_seal.day_of_date(d) for d in dates)

    def last_row(self, table: str, schema: pa.Schema, partition: str, checkpoint: int) -> pa.Table:
        """The last sealed row of ``partition`` (one row, or none)."""
        column = TIME_COLUMN[table]
        for day in reversed(self.days(table, partition)):
            rows = self.sealed(
                table, schema, partition, column, day * DAY_NS, (day + 1) * DAY_NS, checkpoint
            )
            if rows.num_rows:
                t = rows.column(column).cast(pa.int64()).to_numpy()
                return rows.slice(int(np.flatnonzero(t == t.max())[-1]), 1)
        return schema.empty_table()

    # ------------------------------------------------------------------ internals

    def _lock(self, uri: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uri, threading.Lock())

    def _open(self, uri: str) -> Any:
        """The table at ``uri`` brought up to date, or None before its first commit."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        table = self._tables.get(uri)
        with _translate("open", uri):
            if table is not None:
                if self.as_of is None:
                    table.update_incremental()
                return table
            try:
                table = DeltaTable(uri, storage_options=self.options)
            except TableNotFoundError:
                return None
            if self.as_of is not None:
                table.load_as_version(self.as_of)  # version 0 if it was made after
        self._tables[uri] = table
        return table

    def _actions(self, table: str, partition: str) -> pa.Table | None:
        """The table's files holding rows of ``partition`` (their add actions: path, size,
        partition values, column statistics), or None before the table exists."""
        snap = self._snapshot(self.table_uri(table, partition))
        if snap is None:
            return None
        actions = snap.actions
        if table in STATION:
            actions = actions.filter(pc.equal(actions.column("partition.instrument"), partition))
        if self.as_of is not None:  # a table made after it has version 0, of later files
            written = actions.column("modification_time").cast(pa.int64())
            limit = int(self.as_of.timestamp() * 1000)
            actions = actions.filter(pc.less_equal(written, limit))
        return actions

    def _dataset(
        self, table: str, partition: str, column: str, start: int, stop: int, checkpoint: int
    ) -> ds.FileSystemDataset | None:
        """The files that may hold rows of [start, stop) of ``partition`` at or below its
        lane's limit, by the statistics in the log (no file is opened), in commit order."""
        actions = self._actions(table, partition)
        if actions is None or actions.num_rows == 0:
            return None
        uri = self.table_uri(table, partition)
        keep = np.ones(actions.num_rows, bool)
        if f"min.{column}" in actions.column_names:
            lo = actions.column(f"min.{column}").to_numpy(zero_copy_only=False)
            hi = actions.column(f"max.{column}").to_numpy(zero_copy_only=False)
            keep &= ~((hi < start) | (lo >= stop))  # NaN (no statistics) keeps the file
        limit = self._limit(partition, checkpoint)
        if limit is not None and partition != UNKNOWN and f"min.{SEGMENT}" in actions.column_names:
            keep &= ~(actions.column(f"min.{SEGMENT}").to_numpy(zero_copy_only=False) > limit)
        chosen = actions.filter(pa.array(keep))
        if chosen.num_rows == 0:
            return None
        order = np.lexsort([_stat(chosen, f"min.{c}") for c in (column, SEGMENT)])
        paths = [chosen.column("path")[int(i)].as_py() for i in order]
        snap = self._snapshot(uri)
        assert snap is not None  # it had files a moment ago; a table is never deleted
        with _translate("read", uri):
            return ds.FileSystemDataset.from_paths(
                paths, snap.schema, ds.ParquetFileFormat(), snap.filesystem
            )

    def _snapshot(self, uri: str) -> _Snapshot | None:
        """The table's current version: its files (add actions), the schema of its files and
        the file system to read them, recomputed only when a commit came (a console asks
        many times between two seals); None before the table exists."""
        with self._lock(uri):
            table = self._open(uri)
            if table is None:
                return None
            version = table.version()
            snap = self._snapshots.get(uri)
            if snap is not None and snap.version == version:
                return snap
            with _translate("read the log of", uri):
                actions = pa.table(table.get_add_actions(flatten=True))
                schema = pa.schema(table.schema().to_arrow())
                fs = snap.filesystem if snap is not None else table.to_pyarrow_dataset().filesystem
            schema = pa.schema([f for f in schema if f.name not in ("instrument", "date")])
            snap = self._snapshots[uri] = _Snapshot(version, actions, schema, fs)
            return snap

    def _limit(self, lane: str, given: int | None = None) -> int | None:
        """The last segment of ``lane`` a reader here sees: its checkpoint where its WAL is on
        this host (``given``, as the caller read it, else read now), else every commit."""
        if self.as_of is not None or not (self.root / "wal" / lane).is_dir():
            return None
        return given if given is not None else _seal.read_checkpoint(self.root, lane)[0]

    def _gated(self, rows: pa.Table, partition: str, checkpoint: int) -> pa.Table:
        """``rows`` without those of a segment above its lane's limit (a seal in progress on
        this host, whose WAL segment the reader reads live). A partition's rows are its own
        lane's or the console's (segment -1), but for ``_unknown``'s, which come from every
        lane that received such messages."""
        if rows.num_rows == 0:
            return rows
        segments = rows.column(SEGMENT).to_numpy()
        if partition != UNKNOWN:
            limit = self._limit(partition, checkpoint)
            if limit is None or segments.max() <= limit:
                return rows
            keep = (segments < 0) | (segments <= limit)
            return rows.filter(pa.array(keep))
        lanes = rows.column(LANE)
        keep = segments < 0
        for lane in pc.unique(lanes).to_pylist():
            limit = self._limit(lane)
            mine = pc.equal(lanes, lane).to_numpy(zero_copy_only=False)
            keep |= mine & (True if limit is None else segments <= limit)
        return rows if keep.all() else rows.filter(pa.array(keep))

    def _contract(self, rows: pa.Table, schema: pa.Schema, names: list[str]) -> pa.Table:
        """``rows`` as the contract schema's ``names`` (columns a file lacks are nulls)."""
        arrays, fields = [], []
        for name in names:
            field = schema.field(name)
            if name in rows.column_names:
                with _translate("convert", name):
                    arrays.append(rows.column(name).cast(field.type))
            else:
                arrays.append(pa.nulls(rows.num_rows, field.type))
            fields.append(field)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@dataclass(frozen=True, eq=False)
class _Snapshot:
    version: int
    actions: pa.Table
    schema: pa.Schema
    filesystem: Any


def _labels(codes: np.ndarray, names: list[str]) -> pa.Array:
    """A string column of ``names[codes[i]]``, without a Python loop over the rows."""
    indices = pa.array(codes.astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())).cast(pa.string())


def _column(value: str | pa.ChunkedArray, n: int) -> pa.Array | pa.ChunkedArray:
    """``value`` for each of ``n`` rows, or the column given."""
    if isinstance(value, str):
        return _labels(np.zeros(n, np.int32), [value])
    return value.cast(pa.string())


def _in_order(rows: pa.Table, column: str) -> pa.Table:
    """``rows`` in ``column`` order: a file's rows as sealed (delta-rs may write a table's
    record batches in another order)."""
    if column not in rows.column_names or rows.num_rows < 2:
        return rows
    t = rows.column(column).to_numpy()
    return rows if np.all(t[1:] >= t[:-1]) else rows.take(np.argsort(t, kind="stable"))


def _provenance(partition: str) -> list[str]:
    """The columns a read needs besides the asked ones, to gate its rows (``_gated``)."""
    return [LANE, SEGMENT] if partition == UNKNOWN else [SEGMENT]


def _stat(actions: pa.Table, name: str) -> np.ndarray:
    """A statistics column of the add actions (zeros where the log has none)."""
    if name not in actions.column_names:
        return np.zeros(actions.num_rows)
    return pc.fill_null(actions.column(name), 0).to_numpy(zero_copy_only=False)


def _has(dt: Any, txn: tuple[str, int] | None) -> bool:
    """Whether the table holds the app transaction ``txn`` (or a later version of its app)."""
    return txn is not None and (dt.transaction_version(txn[0]) or 0) >= txn[1]


@contextlib.contextmanager
def _translate(action: str, where: str) -> Iterator[None]:
    """Errors of delta-rs, the object store and Arrow as StoreError naming the table."""
    from deltalake.exceptions import DeltaError

    try:
        yield
    except StoreError:
        raise
    except DeltaError as exc:
        raise StoreError(
            f"cannot {action} the archive table {where}: {exc}; check the archive's location "
            "and credentials (AWS_* for s3://)",
            where,
        ) from exc
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot {action} the archive table {where}: {exc}", where) from exc
