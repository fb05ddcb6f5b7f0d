"""The links and ingest view: per instrument packets/s, bytes/s, last packet age, gaps and
rejects; per ingest shard and lane queue depth, lag and store errors. Every number is what the
ingestors published (status and metrics documents); rates come from their counters
(``_rates``). Who may see which rows is decided by ``Access.links``, not here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ilrs_ops import wire
from ilrs_ops.console._state import StationState
from ilrs_ops.profiles import Instrument
from ilrs_ops.store import UNKNOWN

#: A shard whose metrics document is older than this is stale: its ingestor stopped
#: publishing (dead, or cut off from the broker), so its lanes' numbers are old.
SHARD_STALE_S = wire.STALE_PERIODS * wire.METRICS_INTERVAL_S

LaneState = Literal["ok", "stale", "disconnected", "store_failing"]
_SILENT: dict[str, Literal["stale", "offline"]] = {wire.STALE: "stale", wire.OFFLINE: "offline"}


class InstrumentLink(BaseModel):
    """One instrument's link: what ingest took in from it, and how recently."""

    instrument: str
    partner: str
    name: str
    apid: int = Field(description="TM APID (the page writes it in hex)")
    expected_period_s: float
    health: str = Field(description="as on the status tile: nominal ... offline")
    silent: Literal["stale", "offline"] | None = Field(
        description=f"no good packet for {wire.STALE_PERIODS} (stale) or "
        f"{wire.OFFLINE_PERIODS} (offline) expected periods, or never; null while packets flow"
    )
    last_recv: float | None = Field(description="receive time of the last good packet, s (UTC)")
    last_recv_time: str | None = Field(description="the same, ISO-8601 UTC")
    last_packet_age_s: float | None
    packets: int = Field(description="good packets since the ingestor started (a counter)")
    bytes: int = Field(description="their octets (a counter)")
    packets_per_s: float | None = Field(description="over the window; null: not known yet")
    bytes_per_s: float | None
    gaps: int = Field(description="sequence gaps seen (a counter)")
    missing: int = Field(description="packets those gaps left out (a counter)")
    rejects: dict[str, int] = Field(description="packets quarantined, by reason (counters)")
    rejects_total: int
    rejects_per_s: float | None
    shard: str | None = Field(description="the ingest shard whose lane carries it")


class LaneLink(BaseModel):
    """One ingest lane (one per instrument, and one for unknown topics), from its shard's
    latest metrics."""

    shard: str
    lane: str
    instrument: str | None = Field(description="null for the lane of unknown instruments")
    state: LaneState = Field(
        description="stale: its shard's metrics are old; disconnected: the shard has no "
        "broker; store_failing: the store refuses its writes (nothing is acknowledged)"
    )
    age_s: float | None = Field(description="age of its shard's metrics document")
    queue: int | None = Field(description="messages waiting in the lane")
    lag_s: float | None = Field(description="receive to durable, last batch")
    behind_s: float | None = Field(description="wall clock minus newest packet time, last batch")
    commit_s: float | None = Field(description="WAL append + fsync, last batch")
    messages: int | None = Field(description="MQTT messages made durable (a counter)")
    messages_per_s: float | None
    batches: int | None
    seals: int | None
    store_errors: int | None = Field(description="failed WAL appends and seals (a counter)")
    store_errors_per_s: float | None
    store_failing: bool


class ShardLink(BaseModel):
    """One ingest shard as a whole (operators only: its totals mix every partner's)."""

    shard: str
    of: str | None = Field(description="i/N as the ingestor was started")
    state: Literal["ok", "stale", "disconnected"]
    age_s: float | None
    connected: bool
    unacked: int | None = Field(description="received from the broker, not yet acknowledged")
    receive_maximum: int | None = Field(description="the broker's in-flight window (MQTT 5)")
    read_paused: bool
    read_pauses: int | None
    rejects: dict[str, int]
    lanes: int


class Links(BaseModel):
    """GET /api/links."""

    updated: float = Field(description="the console's clock, s (UTC)")
    window_s: float = Field(description="rates are per second over the last window_s")
    shard_stale_after_s: float
    broker_connected: bool = Field(description="the console follows the live topics")
    instruments: list[InstrumentLink]
    lanes: list[LaneLink]
    shards: list[ShardLink] | None = Field(description="operators only; null for partners")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in sorted(value.items()) if _int(v) is not None}


def shard_age(state: StationState, shard: str, now: float) -> float | None:
    """Seconds since the shard took its metrics (its own clock, else when the console got them)."""
    doc = state.metrics.get(shard) or {}
    taken = _num(doc.get("updated")) or state.metrics_seen.get(shard)
    return None if taken is None else max(0.0, now - taken)


def shard_state(
    state: StationState, shard: str, now: float
) -> Literal["ok", "stale", "disconnected"]:
    age = shard_age(state, shard, now)
    if age is None or age > SHARD_STALE_S:
        return "stale"
    return "ok" if state.metrics.get(shard, {}).get("connected") else "disconnected"


def lane_of(state: StationState, lane: str, now: float) -> str | None:
    """The shard whose metrics name ``lane``; the freshest when several do (a re-shard)."""
    shards = [s for s, d in state.metrics.items() if lane in (d.get("lanes") or {})]
    return min(shards, key=lambda s: shard_age(state, s, now) or 0.0, default=None)


def instrument_link(
    state: StationState, inst: Instrument, health: str, now: float, window_s: float
) -> InstrumentLink:
    p = inst.profile
    doc = state.status.get(inst.id) or {}
    last = _num(doc.get("last_recv"))
    rejects = _counts(doc.get("rejects"))
    rate = state.counters.rate

    def per_s(name: str) -> float | None:
        return rate(("instrument", inst.id, name), now, window_s) if doc else None

    return InstrumentLink(
        instrument=inst.id,
        partner=p.partner,
        name=p.name,
        apid=p.apid,
        expected_period_s=p.expected_period_s,
        health=health,
        silent=_SILENT.get(wire.silence_health(last, p.expected_period_s, now) or ""),
        last_recv=last,
        last_recv_time=None if last is None else _iso_s(last),
        last_packet_age_s=None if last is None else max(0.0, now - last),
        packets=_int(doc.get("packets")) or 0,
        bytes=_int(doc.get("bytes")) or 0,
        packets_per_s=per_s("packets"),
        bytes_per_s=per_s("bytes"),
        gaps=_int(doc.get("gaps")) or 0,
        missing=_int(doc.get("missing")) or 0,
        rejects=rejects,
        rejects_total=sum(rejects.values()),
        rejects_per_s=per_s("rejects"),
        shard=lane_of(state, inst.id, now),
    )


def lane_links(
    state: StationState, wanted: set[str] | None, now: float, window_s: float
) -> list[LaneLink]:
    """Every lane of every shard, or only those named in ``wanted``."""
    out = []
    for shard, doc in sorted(state.metrics.items()):
        shard_st = shard_state(state, shard, now)
        for lane, m in sorted((doc.get("lanes") or {}).items()):
            if not isinstance(m, dict) or (wanted is not None and lane not in wanted):
                continue
            failing = bool(m.get("store_failing"))
            lane_st: LaneState = shard_st
            if shard_st == "ok" and failing:
                lane_st = "store_failing"

            def per_s(name: str, lane: str = lane, shard: str = shard) -> float | None:
                return state.counters.rate(("lane", shard, lane, name), now, window_s)

            out.append(
                LaneLink(
                    shard=shard,
                    lane=lane,
                    instrument=None if lane == UNKNOWN else lane,
                    state=lane_st,
                    age_s=shard_age(state, shard, now),
                    queue=_int(m.get("queue")),
                    lag_s=_num(m.get("lag_s")),
                    behind_s=_num(m.get("behind_s")),
                    commit_s=_num(m.get("commit_s")),
                    messages=_int(m.get("messages")),
                    messages_per_s=per_s("messages"),
                    batches=_int(m.get("batches")),
                    seals=_int(m.get("seals")),
                    store_errors=_int(m.get("store_errors")),
                    store_errors_per_s=per_s("store_errors"),
                    store_failing=failing,
                )
            )
    return out


def shard_links(state: StationState, now: float) -> list[ShardLink]:
    out = []
    for shard, doc in sorted(state.metrics.items()):
        lanes: Any = doc.get("lanes")
        out.append(
            ShardLink(
                shard=shard,
                of=doc.get("shard") if isinstance(doc.get("shard"), str) else None,
                state=shard_state(state, shard, now),
                age_s=shard_age(state, shard, now),
                connected=bool(doc.get("connected")),
                unacked=_int(doc.get("unacked")),
                receive_maximum=_int(doc.get("receive_maximum")),
                read_paused=bool(doc.get("read_paused")),
                read_pauses=_int(doc.get("read_pauses")),
                rejects=_counts(doc.get("rejects")),
                lanes=len(lanes) if isinstance(lanes, dict) else 0,
            )
        )
    return out


def _iso_s(seconds: float) -> str:
    """2026-12-03T10:00:00.123Z"""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
