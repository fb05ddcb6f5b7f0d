"""The telemetry store: passive persistence of the WAL, sealed Parquet tables and checkpoints."""

from ilrs_ops.store._archive import Migrated, migrate, optimize, vacuum
from ilrs_ops.store._fs import translate
from ilrs_ops.store._seal import SCHEMAS, TABLES, UNKNOWN
from ilrs_ops.store._store import Store, Unsealed, window
from ilrs_ops.store._wal import WAL_SCHEMA, WalSegment, WalWriter, list_segments, read_segment

__all__ = [
    "SCHEMAS",
    "TABLES",
    "UNKNOWN",
    "WAL_SCHEMA",
    "Migrated",
    "Store",
    "Unsealed",
    "WalSegment",
    "WalWriter",
    "list_segments",
    "migrate",
    "optimize",
    "read_segment",
    "translate",
    "vacuum",
    "window",
]
