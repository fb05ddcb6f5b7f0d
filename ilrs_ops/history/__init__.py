"""History: what the store has sealed joined with the live WAL tail, for every reader (the
console, exports, scripts)."""

from ilrs_ops.history._history import ROLLUPS_PER_BUCKET, History, QuerySource

__all__ = ["ROLLUPS_PER_BUCKET", "History", "QuerySource"]
