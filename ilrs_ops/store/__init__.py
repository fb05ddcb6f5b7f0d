"""The telemetry store: WAL of raw messages, Hive-partitioned Parquet, recovery and queries."""

from ilrs_ops.store._seal import TABLES, UNKNOWN
from ilrs_ops.store._store import Store
from ilrs_ops.store._wal import WAL_SCHEMA, WalSegment, WalWriter, read_segment

__all__ = ["TABLES", "UNKNOWN", "WAL_SCHEMA", "Store", "WalSegment", "WalWriter", "read_segment"]
