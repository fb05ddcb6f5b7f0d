"""Sealed tables as Hive-partitioned Parquet files under the store's own folder (the default).

``{root}/{table}/instrument={id}/date={YYYY-MM-DD}/{segment:012d}.parquet``, written by
``_seal.write_segment``; a lane's checkpoint gates its files (a file of a segment above it may be
from a seal in progress). The console's own events and command stages are
``console-{ns}.parquet`` files beside them, never gated.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ilrs_ops.errors import StoreError
from ilrs_ops.schemas import TIME
from ilrs_ops.store import _seal
from ilrs_ops.store._fs import describe, make_dirs, translate, write_atomic
from ilrs_ops.store._seal import DAY_NS, TABLES

#: Events the console writes itself (acks, shelves, profile uploads), outside any WAL lane:
#: ``events/instrument={id}/date={D}/console-{ns}.parquet``, final once renamed in place.
CONSOLE_PREFIX = "console-"
#: The tables that hold such files: events, and the command history (only such files).
CONSOLE_TABLES = ("events", "commands")


class ParquetTables:
    """The sealed tables of a store as Parquet files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    # ------------------------------------------------------------------ writes

    def commit(self, lane: str, segment: int, tables: dict[str, pa.Table]) -> list[str]:
        """Write one segment's tables; the checkpoint written after makes them visible.
        Writing a segment again writes the same names (a re-run seal)."""
        return [str(p) for p in _seal.write_segment(self.root, lane, segment, tables)]

    def append(self, name: str, instrument: str, table: pa.Table, ns: int) -> list[str]:
        """Rows of no lane (the console's), one atomic file per day, visible at once."""
        files = []
        for day, part in _seal.split_by_day(table, "time").items():
            folder = (
                self.root / name / f"instrument={instrument}" / f"date={_seal.date_of_day(day)}"
            )
            path = folder / f"{CONSOLE_PREFIX}{ns:020d}.parquet"
            with translate("write Parquet file", path):
                make_dirs(folder)
                kwargs = _seal.writer_options(name, part.schema)
                write_atomic(path, lambda f, t=part, kw=kwargs: pq.write_table(t, f, **kw))
            files.append(str(path))
        return files

    def local_folders(self) -> list[Path]:
        """The folders where this writes files atomically (temp name, then rename): a crash
        leaves its temp files there, for the store's recovery to delete."""
        return [self.root / t for t in TABLES]

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
        """Sealed rows of ``partition`` with ``column`` in [start, stop), in file order."""
        files, where = self._pruned(table, partition, column, start, stop, checkpoint)
        if flt is not None:
            where = where & flt
        if not files:
            out = schema.empty_table()
            return out.select(columns) if columns is not None else out
        with translate("read", self.root / table / f"instrument={partition}"):
            dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
            return dataset.to_table(columns=columns, filter=where)

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
        """Record batches of the files and row groups that may hold rows of [start, stop)."""
        files, where = self._pruned(table, partition, column, start, stop, checkpoint)
        if not files:
            return
        with translate("read", self.root / table / f"instrument={partition}"):
            dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
            fragments = [f.subset(where) for f in dataset.get_fragments()]
            pruned = ds.FileSystemDataset(
                [f for f in fragments if f.num_row_groups], schema, dataset.format,
                dataset.filesystem,
            )  # fmt: skip
            yield from pruned.to_batches(columns=columns)

    def days(self, table: str, partition: str) -> list[int]:
        """The UTC days (days since 1970) that have a folder of sealed files, oldest first."""
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

    def last_row(self, table: str, schema: pa.Schema, partition: str, checkpoint: int) -> pa.Table:
        """The last sealed row of ``partition`` (one row, or none)."""
        sealed = {partition: checkpoint}
        for day in reversed(self.days(table, partition)):
            files = self.files(table, partition, day, day, sealed)
            if files:
                with translate("read", files[-1]):
                    rows = ds.dataset([str(files[-1])], schema=schema, format="parquet").to_table()
                if rows.num_rows:
                    return rows.slice(rows.num_rows - 1)
        return schema.empty_table()

    # ------------------------------------------------------------------ internals

    def _pruned(
        self, table: str, partition: str, column: str, start: int, stop: int, checkpoint: int
    ) -> tuple[list[Path], ds.Expression]:
        """The sealed files of the days [start, stop) touches, and the filter of the window."""
        files = self.files(
            table, partition, start // DAY_NS, (stop - 1) // DAY_NS, {partition: checkpoint}
        )
        where = (ds.field(column) >= pa.scalar(start, TIME)) & (
            ds.field(column) < pa.scalar(stop, TIME)
        )
        return files, where

    def files(
        self, table: str, partition: str, first_day: int, last_day: int, sealed: dict[str, int]
    ) -> list[Path]:
        """Partition pruning by folder: the sealed files of days [first_day, last_day] whose
        segment is at or below its lane's checkpoint, in (day, segment) order."""
        base = self.root / table / f"instrument={partition}"
        found: list[tuple[int, int, Path]] = []
        for day in self.days(table, partition):
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
                if table in CONSOLE_TABLES and _is_console_file(name):
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


def _is_console_file(name: str) -> bool:
    stem = name.removeprefix(CONSOLE_PREFIX).removesuffix(".parquet")
    return name.startswith(CONSOLE_PREFIX) and name.endswith(".parquet") and stem.isdigit()
