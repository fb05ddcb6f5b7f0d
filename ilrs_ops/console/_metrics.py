"""Prometheus text exposition of the live state: per instrument from the ingestors' status,
per lane from their metrics, and the console's own (clients, drops, broker link)."""

from __future__ import annotations

from typing import Any

from ilrs_ops.console._state import StationState
from ilrs_ops.profiles import Catalog

HEALTH_CODES = {"nominal": 0, "warning": 1, "critical": 2, "stale": 3, "offline": 4}


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: Any, **labels: object) -> None:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float):
            return
        self.lines.append(f"{name}{_labels(**labels) if labels else ''} {value}")


def render(state: StationState, catalog: Catalog, health: dict[str, str]) -> str:
    """The /metrics page; ``health`` is each instrument's health as the status route has it."""
    t = _Text()
    status = state.status
    partners = {i.id: i.profile.partner for i in catalog}
    for name, key, help_ in (
        ("ilrs_instrument_packets_total", "packets", "good packets ingested"),
        ("ilrs_instrument_bytes_total", "bytes", "octets of good packets ingested"),
        ("ilrs_instrument_gaps_total", "gaps", "sequence gaps seen"),
        ("ilrs_instrument_missing_packets_total", "missing", "packets the gaps left out"),
    ):
        t.family(name, "counter", help_)
        for inst, doc in sorted(status.items()):
            t.sample(name, doc.get(key), instrument=inst, partner=partners.get(inst, "?"))
    t.family("ilrs_instrument_rejects_total", "counter", "packets quarantined, by reason")
    for inst, doc in sorted(status.items()):
        for reason, n in sorted((doc.get("rejects") or {}).items()):
            t.sample("ilrs_instrument_rejects_total", n, instrument=inst, reason=reason)
    t.family(
        "ilrs_instrument_health",
        "gauge",
        "0 nominal, 1 warning, 2 critical, 3 stale, 4 offline",
    )
    for inst, h in sorted(health.items()):
        t.sample("ilrs_instrument_health", HEALTH_CODES.get(h, 4), instrument=inst)

    lanes: list[tuple[str, str, dict[str, Any]]] = []
    for shard, doc in sorted(state.metrics.items()):
        for lane, m in sorted((doc.get("lanes") or {}).items()):
            if isinstance(m, dict):
                lanes.append((shard, lane, m))
    for name, key, kind, help_ in (
        ("ilrs_ingest_queue_depth", "queue", "gauge", "messages waiting in the lane queue"),
        ("ilrs_ingest_lag_seconds", "lag_s", "gauge", "receive-to-durable time, last batch"),
        (
            "ilrs_ingest_behind_seconds",
            "behind_s",
            "gauge",
            "wall clock minus packet time of the newest packet stored, last batch",
        ),
        ("ilrs_ingest_store_failing", "store_failing", "gauge", "1 while the store refuses"),
        ("ilrs_ingest_commit_seconds", "commit_s", "gauge", "WAL append+fsync, last batch"),
        ("ilrs_ingest_messages_total", "messages", "counter", "MQTT messages made durable"),
        ("ilrs_ingest_batches_total", "batches", "counter", "group commits"),
        ("ilrs_ingest_seals_total", "seals", "counter", "WAL segments sealed to Parquet"),
        ("ilrs_ingest_store_errors_total", "store_errors", "counter", "store write errors"),
    ):
        t.family(name, kind, help_)
        for shard, lane, m in lanes:
            t.sample(name, m.get(key), shard=shard, lane=lane)
    # A family's samples stay together, as the text format wants.
    for name, key, help_ in (
        ("ilrs_ingest_connected", "connected", "1 when the ingest shard is connected"),
        ("ilrs_ingest_unacked", "unacked", "messages received, not yet acknowledged"),
        ("ilrs_ingest_receive_maximum", "receive_maximum", "the broker's in-flight window"),
    ):
        t.family(name, "gauge", help_)
        for shard, doc in sorted(state.metrics.items()):
            t.sample(name, doc.get(key), shard=shard)
    t.family("ilrs_ingest_rejects_total", "counter", "packets quarantined per shard, by reason")
    for shard, doc in sorted(state.metrics.items()):
        for reason, n in sorted((doc.get("rejects") or {}).items()):
            t.sample("ilrs_ingest_rejects_total", n, shard=shard, reason=reason)

    for name, value, kind, help_ in (
        ("ilrs_console_broker_connected", state.connected, "gauge", "1 when following MQTT"),
        ("ilrs_console_mqtt_messages_total", state.messages, "counter", "messages taken in"),
        ("ilrs_console_mqtt_bad_messages_total", state.bad_messages, "counter", "ignored"),
        ("ilrs_console_ws_clients", state.subscribers, "gauge", "live WebSocket clients"),
        (
            "ilrs_console_ws_dropped_total",
            state.clients_dropped,
            "counter",
            "WebSocket clients dropped for falling behind",
        ),
    ):
        t.family(name, kind, help_)
        t.sample(name, value)
    return "\n".join(t.lines) + "\n"
