"""Ingest: MQTT telemetry to the durable store, acknowledged only once it is safe on disk."""

from ilrs_ops.ingest._ingestor import Committed, IngestConfig, Ingestor, LaneMetrics, shard_of
from ilrs_ops.ingest._workers import WorkerError, supervise

__all__ = [
    "Committed",
    "IngestConfig",
    "Ingestor",
    "LaneMetrics",
    "WorkerError",
    "shard_of",
    "supervise",
]
