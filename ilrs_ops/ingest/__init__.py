"""Ingest: MQTT telemetry to the durable store, acknowledged only once it is safe on disk."""

from ilrs_ops.ingest._ingestor import IngestConfig, Ingestor, LaneMetrics, shard_of
from ilrs_ops.ingest._mqtt import Protocol
from ilrs_ops.ingest._status import InstrumentStatus

__all__ = ["IngestConfig", "Ingestor", "InstrumentStatus", "LaneMetrics", "Protocol", "shard_of"]
