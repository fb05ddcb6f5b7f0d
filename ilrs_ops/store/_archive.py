"""Archive maintenance (`ilrs-ops archive`): compaction, vacuum, and the migration of a store's
Parquet tables into a Delta Lake archive. All of it is safe while ingest runs: compaction and
vacuum are Delta's own (a vacuum keeps what is younger than its retention), and a migration
is idempotent, so one cut short is run again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.store import _seal
from ilrs_ops.store._delta import STATION, DeltaTables, _translate
from ilrs_ops.store._fs import translate
from ilrs_ops.store._parquet import CONSOLE_PREFIX, ParquetTables
from ilrs_ops.store._store import ARCHIVE_FILE, Store, archive_uri, record_archive

#: Where a migration moves the Parquet tables it converted (kept until the operator deletes
#: them: nothing is lost if the archive turns out wrong).
BACKUP = "parquet-before-archive"
#: The tables a migration converts: the seals' and the console's command history.
MIGRATED = (*_seal.TABLES, "commands")


@dataclass
class Migrated:
    """What a migration converted: rows per table, and where the old files went."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    backup: Path | None = None


def delta_of(store: Store) -> DeltaTables:
    """The store's Delta archive; InputError for a store of Parquet tables."""
    if not isinstance(store.archive, DeltaTables):
        raise InputError(
            f"the store {store.root} keeps Parquet tables, not a Delta archive: convert it "
            "first (ilrs-ops archive migrate --archive PATH-OR-S3-URI)"
        )
    return store.archive


def table_uris(delta: DeltaTables) -> list[str]:
    """Every table of the archive that exists: the station tables, one telemetry per
    instrument."""
    from deltalake import DeltaTable

    uris = [delta.table_uri(t, "") for t in STATION]
    found = [u for u in uris if DeltaTable.is_deltatable(u, storage_options=delta.options)]
    return found + _telemetry_uris(delta)


def optimize(store: Store) -> dict[str, int]:
    """Compact each table's small seal files (per partition); files added, per table."""
    from deltalake import DeltaTable

    delta = delta_of(store)
    out = {}
    for uri in table_uris(delta):
        with _translate("compact", uri):
            metrics = DeltaTable(uri, storage_options=delta.options).optimize.compact()
        out[uri] = int(metrics.get("numFilesAdded", 0))
    return out


def vacuum(store: Store, retention_hours: float) -> dict[str, int]:
    """Delete files that no version younger than ``retention_hours`` reads; files deleted,
    per table. Readers holding an older version than that may then fail: keep it long."""
    from deltalake import DeltaTable

    if retention_hours < 0:
        raise InputError(f"retention {retention_hours} h must be >= 0")
    delta = delta_of(store)
    out = {}
    for uri in table_uris(delta):
        with _translate("vacuum", uri):
            gone = DeltaTable(uri, storage_options=delta.options).vacuum(
                retention_hours=int(retention_hours),
                dry_run=False,
                enforce_retention_duration=False,
            )
        out[uri] = len(gone)
    return out


def migrate(root: Path, archive: str, progress: Callable[[str], None] | None = None) -> Migrated:
    """Convert the Parquet tables of the store at ``root`` into a Delta archive at
    ``archive``, then move them to ``root/parquet-before-archive`` and record the archive.

    Each (table, partition, day) is one commit with the app transaction
    (``migrate:{partition}``, day + 1): run again after a crash, it skips what is in. Rows
    keep their lane and segment (from the file names); a lane's files above its checkpoint
    (a seal cut short) stay out: recovery seals that segment again from the WAL, into the
    archive. The row counts of every table are checked before the files move.
    """
    if (root / ARCHIVE_FILE).exists():
        raise InputError(f"the store {root} has an archive already ({root / ARCHIVE_FILE})")
    parquet = ParquetTables(root)
    tables = [t for t in MIGRATED if (root / t).is_dir()]
    if not tables:
        raise InputError(f"{root} holds no Parquet tables to convert (no {', '.join(MIGRATED)})")
    with Store(root) as store:
        for lane in store.wal_lanes():
            store.hold(lane)  # no ingestor may seal into the Parquet tables meanwhile
        return _migrate(root, parquet, tables, archive, progress)


def _migrate(
    root: Path,
    parquet: ParquetTables,
    tables: list[str],
    archive: str,
    progress: Callable[[str], None] | None,
) -> Migrated:
    uri = archive_uri(archive)
    delta = DeltaTables(uri, root)
    done = Migrated()
    for table in tables:
        for partition in _partitions(root / table):
            for day in parquet.days(table, partition):
                rows, count = _day_rows(parquet, table, partition, day)
                done.files += count
                if rows is None:
                    continue
                done.rows[table] = done.rows.get(table, 0) + rows.num_rows
                _commit_day(delta, table, partition, day, rows)
                if progress is not None:
                    progress(f"{table} {partition} {_seal.date_of_day(day)}: {rows.num_rows} rows")
    _check_counts(delta, done)
    record_archive(root, uri)
    done.backup = root / BACKUP
    for table in tables:
        with translate("move", root / table):
            (root / BACKUP).mkdir(exist_ok=True)
            shutil.move(root / table, root / BACKUP / table)
    return done


# ---------------------------------------------------------------------- internals


def _telemetry_uris(delta: DeltaTables) -> list[str]:
    """The per-instrument telemetry tables: of the instruments that have raw packets (a seal
    that writes telemetry writes their raw packets too)."""
    from deltalake import DeltaTable

    raw = delta.table_uri("raw", "")
    if not DeltaTable.is_deltatable(raw, storage_options=delta.options):
        return []
    with _translate("read the partitions of", raw):
        parts = DeltaTable(raw, storage_options=delta.options).partitions()
    uris = [delta.table_uri("telemetry", i) for i in sorted({p["instrument"] for p in parts})]
    return [u for u in uris if DeltaTable.is_deltatable(u, storage_options=delta.options)]


def _partitions(folder: Path) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise StoreError(f"cannot list {folder}: {exc}", str(folder)) from exc
    return sorted(n.removeprefix("instrument=") for n in names if n.startswith("instrument="))


def _day_rows(
    parquet: ParquetTables, table: str, partition: str, day: int
) -> tuple[pa.Table | None, int]:
    """The sealed rows of one day of a partition with their lane and segment (None when
    there are none), and the number of files read."""
    files = parquet.files(table, partition, day, day, {})
    parts, lanes, segments = [], [], []
    for path in files:
        with translate("read", path):
            rows = pq.read_table(path)
        if path.name.startswith(CONSOLE_PREFIX):
            lane, segment = "console", -1
        else:
            parsed = _seal.parse_file_name(path.name)
            assert parsed is not None  # _files lists only seal and console files
            source, segment = parsed
            lane = source or partition
        parts.append(rows)
        lanes += [lane] * rows.num_rows
        segments.append(np.full(rows.num_rows, segment, np.int64))
    if not parts or not sum(p.num_rows for p in parts):
        return None, len(files)
    with translate("combine", f"{table}/instrument={partition}"):
        rows = pa.concat_tables(parts, promote_options="permissive")
    rows = rows.append_column("_lane", pa.array(lanes, pa.string()))
    return rows.append_column("_segment", pa.array(np.concatenate(segments))), len(files)


def _commit_day(delta: DeltaTables, table: str, partition: str, day: int, rows: pa.Table) -> None:
    lanes, segments = rows.column("_lane"), rows.column("_segment").to_numpy()
    rows = rows.drop_columns(["_lane", "_segment"])
    delta.write(table, rows, lanes, segments, partition, (f"migrate:{partition}", day + 1))


def _check_counts(delta: DeltaTables, done: Migrated) -> None:
    """Every row read from the Parquet tables is in the archive (StoreError if not)."""
    from deltalake import DeltaTable

    have: dict[str, int] = {}
    for uri in table_uris(delta):
        table = "telemetry" if "/telemetry/" in uri else uri.rsplit("/", 1)[-1]
        n = DeltaTable(uri, storage_options=delta.options).to_pyarrow_dataset().count_rows()
        have[table] = have.get(table, 0) + n
    wrong = {t: (n, have.get(t, 0)) for t, n in done.rows.items() if have.get(t, 0) != n}
    if wrong:
        raise StoreError(
            f"the archive {delta} does not hold what the Parquet tables hold (rows read, rows "
            f"in the archive): {wrong}; is it another store's? The Parquet tables stay as they are"
        )
