"""Sealing: processed tables of one WAL segment into Hive-partitioned Parquet, then the checkpoint.

``{root}/{table}/instrument={id}/date={YYYY-MM-DD}/{segment:012d}.parquet``; quarantine rows of
unknown instruments go under ``instrument=_unknown`` as ``{source}-{segment:012d}.parquet`` (the
lane that received them), so segment numbers of different lanes never collide there. Every file
is written atomically (temp name, fsync, rename, directory fsync); sealing a segment again writes
the same names, so a seal interrupted by a crash is simply done again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ilrs_ops import wire
from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW, ROLLUPS
from ilrs_ops.store._fs import fsync_dir, make_dirs, read_if_any, translate, write_atomic

#: The lane and partition of messages whose topic names no known instrument.
UNKNOWN = "_unknown"
TABLES = ("raw", "telemetry", "events", "rollups", "quarantine")
#: The schemas of every table but telemetry (whose schema is the instrument's).
SCHEMAS = {"raw": RAW, "events": EVENTS, "rollups": ROLLUPS, "quarantine": QUARANTINE}
#: The column whose UTC day decides a row's ``date`` partition.
TIME_COLUMN = {
    "raw": "time",
    "telemetry": "time",
    "events": "time",
    "rollups": "bucket",
    "quarantine": "recv",
    "commands": "time",  # the console's command stages (no WAL lane)
}
DAY_NS = 86_400 * 1_000_000_000
COMPRESSION = "zstd"
#: pq.write_table's keyword arguments for one table (its name and schema).
WriterOptions = Callable[[str, pa.Schema], dict[str, Any]]
CHECKPOINT_FORMAT = 1
_FILE_RE = re.compile(r"^(?:(?P<source>[a-z0-9_][a-z0-9_-]*)-)?(?P<segment>\d{12})\.parquet$")


def file_name(segment: int, source: str | None = None) -> str:
    return f"{source}-{segment:012d}.parquet" if source else f"{segment:012d}.parquet"


def parse_file_name(name: str) -> tuple[str | None, int] | None:
    """(source lane or None, segment) of a sealed file name; None for anything else."""
    m = _FILE_RE.match(name)
    return (m.group("source"), int(m.group("segment"))) if m else None


def date_of_day(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


def day_of_date(text: str) -> int:
    return (dt.date.fromisoformat(text) - dt.date(1970, 1, 1)).days


def split_by_day(table: pa.Table, column: str) -> dict[int, pa.Table]:
    """Rows grouped by the UTC day of ``column`` (null times go to day 0), in their order."""
    if table.num_rows == 0:
        return {}
    t = pc.fill_null(table.column(column).cast(pa.int64()), 0).to_numpy()
    days = np.floor_divide(t, DAY_NS)
    first = days[0]
    if (days == first).all():
        return {int(first): table}
    if np.all(days[1:] >= days[:-1]):  # in time order (the usual case): slices, not copies
        cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(days)]
        return {int(days[a]): table.slice(a, b - a) for a, b in itertools.pairwise(bounds)}
    return {int(d): table.take(np.flatnonzero(days == d)) for d in np.unique(days)}


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary: strings (channel names, event kinds, reasons: few
    values, many rows). Numbers are not: trying a dictionary on every telemetry column and
    falling back cost more than compressing them, and made the files bigger (bench/RESULTS.md,
    "Seal speed (issue 14)")."""
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def writer_options(name: str, schema: pa.Schema) -> dict[str, Any]:
    """The Parquet writer options of a sealed table: zstd at its default level (1), a
    dictionary for string columns only, statistics on every column (readers prune row groups
    by the time column; other tools by any)."""
    return {"compression": COMPRESSION, "use_dictionary": dictionary_columns(schema)}


def concat(tables: Sequence[pa.Table], schema: pa.Schema, what: str) -> pa.Table:
    """Tables of one kind as one table of the contract schema (StoreError if one does not fit)."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table()
    try:
        return pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    except (pa.ArrowException, KeyError) as exc:
        raise StoreError(f"processed {what} rows do not match the {what} schema: {exc}") from exc


def write_segment(
    root: Path,
    lane: str,
    segment: int,
    tables: dict[str, pa.Table],
    *,
    options: WriterOptions = writer_options,
) -> list[Path]:
    """Write every table of one segment, split by date; returns the files written.
    ``options``: the Parquet writer's, per table (a benchmark compares others)."""
    files: list[tuple[Path, str, pa.Table]] = []
    for name, table in tables.items():
        if table.num_rows == 0:
            continue
        parts = [(lane, None, table)]
        if name == "quarantine":
            unknown = pc.equal(table.column("reason"), wire.UNKNOWN_INSTRUMENT)
            if lane != UNKNOWN and pc.any(unknown).as_py():
                parts = [
                    (lane, None, table.filter(pc.invert(unknown))),
                    (UNKNOWN, lane, table.filter(unknown)),
                ]
        for partition, source, rows in parts:
            for day, part in split_by_day(rows, TIME_COLUMN[name]).items():
                folder = root / name / f"instrument={partition}" / f"date={date_of_day(day)}"
                files.append((folder / file_name(segment, source), name, part))
    folders = {f.parent for f, _, _ in files}
    for folder in sorted(folders):
        with translate("create directory", folder):
            make_dirs(folder)
    for path, name, part in files:
        kwargs = options(name, part.schema)
        with translate("write Parquet file", path):
            write_atomic(
                path, lambda f, t=part, kw=kwargs: pq.write_table(t, f, **kw), sync_dir=False
            )
    for folder in sorted(folders):
        with translate("sync directory", folder):
            fsync_dir(folder)
    return [f for f, _, _ in files]


def checkpoint_path(root: Path, lane: str) -> Path:
    return root / "state" / f"{lane}.json"


def write_checkpoint(root: Path, lane: str, segment: int, state: dict[str, Any] | None) -> None:
    """Atomically record that ``segment`` is sealed and the processing state after it (a JSON
    document the store keeps as it is)."""
    path = checkpoint_path(root, lane)
    doc = {
        "format": CHECKPOINT_FORMAT,
        "instrument": lane,
        "segment": segment,
        "state": state,
    }
    data = json.dumps(doc, separators=(",", ":")).encode()
    with translate("write checkpoint", path):
        make_dirs(path.parent)
        write_atomic(path, lambda f: f.write(data))


def read_checkpoint(root: Path, lane: str) -> tuple[int, dict[str, Any] | None]:
    """(last sealed segment, state after it); (0, None) before the first seal."""
    path = checkpoint_path(root, lane)
    text = read_if_any("read checkpoint", path)
    if text is None:
        return 0, None
    try:
        doc: dict[str, Any] = json.loads(text)
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"format {doc.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        segment = int(doc["segment"])
        state = doc["state"]
        if state is not None and not isinstance(state, dict):
            raise InputError(f"state is a {type(state).__name__}, not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"checkpoint {path} is corrupt ({exc}); restore it from a backup, or delete it to "
            "rebuild the state from the WAL left (sealed data is not reprocessed)",
            str(path),
        ) from exc
    return segment, state


def remove_file(path: Path) -> None:
    """Delete a file and make the deletion durable (no error if it is already gone)."""
    with translate("delete", path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_dir(path.parent)
