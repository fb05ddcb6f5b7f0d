"""Live station state from the ingestors' MQTT topics, and its fan-out to WebSocket clients.

Latest status per instrument (retained ``{root}/status/{partner}/{instrument}``), a ring of
recent events (``{root}/events/...``), ingest metrics per shard (``{root}/metrics/ingest/{i}``),
and samples of the counters in both documents, for rates (``counters``).
Each subscriber has a bounded queue: a client that falls behind is dropped (and counted), never
waited for, so one slow browser cannot hold back the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ilrs_ops import wire
from ilrs_ops.console._rates import Counters

log = logging.getLogger(__name__)

#: The counters of a status document and of a lane in a metrics document that get rates
#: (a status document's ``rejects``, by reason, is sampled as its total).
STATUS_COUNTERS = ("packets", "bytes", "gaps", "missing")
LANE_COUNTERS = ("messages", "batches", "store_errors")


@dataclass(frozen=True)
class Update:
    """One change to fan out: the new status of an instrument, or one of its events, or a
    command's new stage (``data`` its record); the progress of a replay (``instrument`` and
    ``partner`` empty, operators only); or a new catalog (``catalog``: instruments added,
    changed or removed; every client, data empty)."""

    kind: Literal["status", "event", "command", "replay", "catalog"]
    instrument: str
    partner: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client: its bounded queue and which updates it wants and may see."""

    accepts: Callable[[Update], bool]
    queue: asyncio.Queue[Update]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class StationState:
    """What the ingestors said last. Fed by ``apply`` (one MQTT message at a time)."""

    root: str
    ws_queue: int = 256
    events_kept: int = 1000
    status: dict[str, dict[str, Any]] = field(default_factory=dict)  # instrument -> status doc
    status_seen: dict[str, float] = field(default_factory=dict)  # instrument -> when it came
    events: deque[dict[str, Any]] = field(init=False)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # shard -> metrics doc
    metrics_seen: dict[str, float] = field(default_factory=dict)  # shard -> when it came
    counters: Counters = field(default_factory=Counters)
    connected: bool = False
    messages: int = 0
    bad_messages: int = 0
    clients_dropped: int = 0
    #: Called with every status and event update before it is fanned out (the alarm fold,
    #: command verification); may add keys.
    listeners: list[Callable[[Update], None]] = field(default_factory=list)
    _subscribers: set[Subscriber] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.events_kept)

    @property
    def topics(self) -> list[str]:
        return [wire.all_of(self.root, kind) for kind in (wire.STATUS, wire.EVENTS, wire.METRICS)]

    # ------------------------------------------------------------------ input

    def apply(self, topic: str, payload: bytes) -> Update | None:
        """Take one message of the subscribed topics; returns the update fanned out, if any."""
        self.messages += 1
        prefix = self.root + "/"
        parts = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
        if len(parts) < 2:
            return self._bad(topic, "not under the topic root")
        kind = parts[0]
        if kind == wire.METRICS:
            shard = parts[-1]
            if not payload:
                self.metrics.pop(shard, None)
                self.metrics_seen.pop(shard, None)
                self.counters.forget(lambda k: k[:2] == ("lane", shard))
                return None
            doc = self._json(topic, payload)
            if doc is not None:
                self.metrics[shard] = doc
                self.metrics_seen[shard] = now = time.time()
                for lane, m in (doc.get("lanes") or {}).items():
                    if isinstance(m, dict):
                        for name in LANE_COUNTERS:
                            self.counters.observe(("lane", shard, lane, name), now, m.get(name))
            return None
        if len(parts) != 3 or kind not in (wire.STATUS, wire.EVENTS):
            return self._bad(topic, "expected {root}/{status|events}/{partner}/{instrument}")
        _, partner, instrument = parts
        if kind == wire.STATUS and not payload:  # a retained status cleared
            self.status.pop(instrument, None)
            self.status_seen.pop(instrument, None)
            self.counters.forget(lambda k: k[:2] == ("instrument", instrument))
            return None
        doc = self._json(topic, payload)
        if doc is None:
            return None
        if kind == wire.STATUS:
            self.status[instrument] = doc
            self.status_seen[instrument] = now = time.time()
            for name in STATUS_COUNTERS:
                self.counters.observe(("instrument", instrument, name), now, doc.get(name))
            rejects = doc.get("rejects")
            if isinstance(rejects, dict):
                total = sum(v for v in rejects.values() if isinstance(v, int))
                self.counters.observe(("instrument", instrument, "rejects"), now, total)
            update = Update("status", instrument, partner, doc)
        else:
            doc = {**doc, "instrument": instrument, "partner": partner}
            self.events.append(doc)
            update = Update("event", instrument, partner, doc)
        for listen in self.listeners:
            try:
                listen(update)
            except Exception:
                log.exception("listener failed on %s", topic)
        self.publish(update)
        return update

    def _json(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self._bad(topic, "payload is not a JSON object")
            return None
        return doc

    def _bad(self, topic: str, why: str) -> None:
        self.bad_messages += 1
        log.debug("ignored MQTT message on %s: %s", topic, why)
        return None

    # ------------------------------------------------------------------ fan-out

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, accepts: Callable[[Update], bool]) -> Subscriber:
        sub = Subscriber(accepts, asyncio.Queue(self.ws_queue))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def publish(self, update: Update) -> None:
        """Queue ``update`` for every subscriber that wants it; a full queue drops its client."""
        for sub in list(self._subscribers):
            if sub.dropped.is_set() or not sub.accepts(update):
                continue
            try:
                sub.queue.put_nowait(update)
            except asyncio.QueueFull:
                sub.dropped.set()
                self._subscribers.discard(sub)
                self.clients_dropped += 1
                log.warning("WebSocket client dropped: %d updates behind", sub.queue.qsize())
