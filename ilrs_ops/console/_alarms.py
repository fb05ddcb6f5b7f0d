"""Alarms, event-sourced: the state of each (instrument, channel) is a fold over its events.

Inputs, in time order: ``limit`` transitions (ingest: from the store at start, then live from
MQTT) and the operators' ``ack``, ``shelve`` (detail ``until_ns``) and ``unshelve`` events,
which the console writes into the store before applying them, so a restart folds the same
events into the same state.

States (``state_at(now)``):

- ``active``        out of limits, not acknowledged
- ``acknowledged``  out of limits, acknowledged
- ``latched``       back in limits but never acknowledged: stays until acknowledged
- ``shelved``       any of the above while a shelf runs (``now < until``); shown again, in its
                    underlying state, when the shelf expires or is removed
- cleared           in limits and acknowledged: the alarm is gone (not listed)

``severity`` is the worst limit state seen since the last ack (red > invalid > yellow). An ack
resets it to the present state. ``trip_value`` is the value that raised the alarm or made it
worse (what tripped it); ``value`` the value at the channel's last transition. An acknowledged
alarm that gets worse (yellow -> red) is unacknowledged again: it is a new, worse condition.
A shelf belongs to the channel, not to one excursion: it lasts until its time even across
clears (shelving is for nuisance channels).
Live limit events at or before the last one folded for their channel are duplicates of what the
store already gave (the WAL is read too) and are skipped. An action that does not fit the state
(ack of nothing, unshelve of no shelf) raises ``ConflictError``, a 409.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from ilrs_ops.console._data import NS, iso
from ilrs_ops.console._errors import AccessError
from ilrs_ops.console._state import Update
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog

NOMINAL = 0
STATE_NAMES = {-1: "invalid", 0: "nominal", 1: "yellow", 2: "red"}
RANK = {0: 0, 1: 1, -1: 2, 2: 3}  # how bad a limit state is
ALARM_STATES = ("active", "acknowledged", "latched", "shelved")
ALARM_KINDS = ("limit", "ack", "shelve", "unshelve")
ALARM_DAYS = 7.0  # how far back the alarm state is rebuilt from at start


@dataclass
class Alarm:
    """One (instrument, channel): what the fold has made of its events so far."""

    instrument: str
    channel: str
    level: int = NOMINAL  # present limit state
    raised: bool = False  # an alarm exists (not cleared)
    acked: bool = False
    worst: int = NOMINAL  # worst limit state since the last ack
    since_ns: int | None = None  # when it was raised
    last_limit_ns: int | None = None
    value: float | None = None  # the value at the last transition
    trip_value: float | None = None  # the value that raised it (or made it worse)
    trip_ns: int | None = None  # when that was
    shelved_until_ns: int | None = None
    acked_by: str | None = None
    ack_reason: str | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    changed_ns: int | None = None

    @property
    def out(self) -> bool:
        return self.level != NOMINAL

    def underlying(self) -> str | None:
        """active / acknowledged / latched, or None when cleared."""
        if not self.raised:
            return None
        if self.out:
            return "acknowledged" if self.acked else "active"
        return None if self.acked else "latched"

    def state_at(self, now_ns: int) -> str | None:
        under = self.underlying()
        if under is None:
            return None
        if self.shelved_until_ns is not None and now_ns < self.shelved_until_ns:
            return "shelved"
        return under

    def json(self, now_ns: int, partner: str | None) -> dict[str, Any]:
        shelved = self.shelved_until_ns is not None and now_ns < self.shelved_until_ns
        return {
            "instrument": self.instrument,
            "partner": partner,
            "channel": self.channel,
            "state": self.state_at(now_ns),
            "underlying": self.underlying(),
            "severity": STATE_NAMES.get(self.worst, str(self.worst)),
            "limit_state": STATE_NAMES.get(self.level, str(self.level)),
            "value": self.value,
            "trip_value": self.trip_value,
            "trip_ns": self.trip_ns,
            "trip": iso(self.trip_ns),
            "since_ns": self.since_ns,
            "since": iso(self.since_ns),
            "changed_ns": self.changed_ns,
            "acked_by": self.acked_by,
            "ack_reason": self.ack_reason,
            "shelved_until_ns": self.shelved_until_ns if shelved else None,
            "shelved_until": iso(self.shelved_until_ns) if shelved else None,
            "shelved_by": self.shelved_by if shelved else None,
            "shelve_reason": self.shelve_reason if shelved else None,
        }


class AlarmBook:
    """Every alarm of the station; ``apply`` folds one event (thread-safe)."""

    def __init__(self) -> None:
        self._alarms: dict[tuple[str, str], Alarm] = {}
        self._lock = threading.Lock()
        self.applied = 0

    def get(self, instrument: str, channel: str) -> Alarm | None:
        with self._lock:
            return self._alarms.get((instrument, channel))

    def alarms(self) -> list[Alarm]:
        with self._lock:
            return list(self._alarms.values())

    def rebuild(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Start over from ``events`` ((instrument, row) with ``time_ns``), folded in time order."""
        rows = sorted(events, key=lambda e: e[1]["time_ns"])
        with self._lock:
            self._alarms.clear()
        for instrument, row in rows:
            self.apply(instrument, row)

    def apply(self, instrument: str, row: dict[str, Any]) -> Alarm | None:
        """Fold one event row (``time_ns``, ``kind``, ``channel``, ``to_state``, ``value``,
        ``detail``); returns the alarm it changed, None when it changed none."""
        kind, channel = row.get("kind"), row.get("channel")
        if kind not in ALARM_KINDS or not channel:
            return None
        t = int(row["time_ns"])
        with self._lock:
            key = (instrument, channel)
            alarm = self._alarms.get(key)
            if alarm is None:
                alarm = self._alarms[key] = Alarm(instrument, channel)
            if kind == "limit":
                if alarm.last_limit_ns is not None and t <= alarm.last_limit_ns:
                    return None  # already folded (from the store's WAL at start)
                to = row.get("to_state")
                if to is None:
                    return None
                self._limit(alarm, int(to), t, row.get("value"))
            else:
                detail = _detail(row.get("detail"))
                if kind == "ack":
                    self._ack(alarm, detail)
                elif kind == "shelve":
                    until = detail.get("until_ns")
                    alarm.shelved_until_ns = int(until) if until is not None else None
                    alarm.shelved_by = detail.get("who")
                    alarm.shelve_reason = detail.get("reason")
                else:
                    alarm.shelved_until_ns = None
                    alarm.shelved_by = alarm.shelve_reason = None
            alarm.changed_ns = t
            self.applied += 1
            return alarm

    @staticmethod
    def _limit(alarm: Alarm, to: int, t: int, value: Any) -> None:
        alarm.level, alarm.last_limit_ns = to, t
        alarm.value = value if isinstance(value, int | float) else None
        if to == NOMINAL:
            if alarm.raised and alarm.acked:
                _clear(alarm)
            return
        if not alarm.raised:
            alarm.raised, alarm.acked, alarm.worst, alarm.since_ns = True, False, to, t
            alarm.acked_by = alarm.ack_reason = None
            alarm.trip_value, alarm.trip_ns = alarm.value, t
        elif RANK.get(to, 0) > RANK.get(alarm.worst, 0):
            alarm.worst = to
            alarm.acked = False  # worse than what was acknowledged: a new condition
            alarm.trip_value, alarm.trip_ns = alarm.value, t

    @staticmethod
    def _ack(alarm: Alarm, detail: dict[str, Any]) -> None:
        if not alarm.raised:
            return
        alarm.acked = True
        alarm.acked_by, alarm.ack_reason = detail.get("who"), detail.get("reason")
        if alarm.out:
            alarm.worst = alarm.level
        else:
            _clear(alarm)


def _clear(alarm: Alarm) -> None:
    alarm.raised, alarm.acked, alarm.worst, alarm.since_ns = False, False, NOMINAL, None
    alarm.trip_value = alarm.trip_ns = None
    alarm.acked_by = alarm.ack_reason = None


def _detail(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return detail
    if isinstance(detail, str) and detail:
        try:
            doc = json.loads(detail)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return {}


def listing(
    book: AlarmBook,
    now_ns: int,
    partner_of: Callable[[str], str | None],
    visible: Callable[[str], bool],
    states: list[str] | None = None,
    instruments: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The alarms not cleared, as JSON, that ``visible(instrument)`` allows, newest first."""
    out = []
    for alarm in book.alarms():
        state = alarm.state_at(now_ns)
        if state is None or not visible(alarm.instrument):
            continue
        if states is not None and state not in states:
            continue
        if instruments is not None and alarm.instrument not in instruments:
            continue
        out.append(alarm.json(now_ns, partner_of(alarm.instrument)))
    out.sort(key=lambda a: (-(a["changed_ns"] or 0), a["instrument"], a["channel"]))
    return out


class ConflictError(AccessError):
    """409: the action does not fit the alarm's state (ack of nothing, unshelve of no shelf)."""

    status = 409


def rebuild(book: AlarmBook, history: History, catalog: Catalog, days: float, now_ns: int) -> int:
    """Fold the alarm events of the last ``days`` of every instrument; returns how many."""
    start = now_ns - int(days * 86_400 * NS)
    stop = now_ns + 86_400 * NS  # packet clocks a little ahead still count
    events: list[tuple[str, dict[str, Any]]] = []
    for inst in catalog:
        table = history.events(inst.id, start, stop, ALARM_KINDS)
        if table.num_rows == 0:
            continue
        cols = {name: table.column(name) for name in ("kind", "channel", "to_state", "value")}
        times = table.column("time").cast(pa.int64()).to_pylist()
        pylists = {name: col.to_pylist() for name, col in cols.items()}
        details = table.column("detail").to_pylist()
        for k, t in enumerate(times):
            row = {name: pylists[name][k] for name in pylists}
            row["time_ns"], row["detail"] = t, details[k]
            events.append((inst.id, row))
    book.rebuild(events)
    return len(events)


class _Consoleish(Protocol):
    catalog: Catalog


def on_event(book: AlarmBook, console: _Consoleish, update: Update) -> None:
    """The StationState listener: fold a live event; a limit event that changed an alarm
    carries the alarm's new state to the WebSocket clients (``alarm``)."""
    if update.kind != "event" or update.data.get("kind") != "limit":
        return
    if "time_ns" not in update.data:
        return
    alarm = book.apply(update.instrument, update.data)
    if alarm is not None:
        inst = console.catalog.instruments.get(update.instrument)
        partner = inst.profile.partner if inst is not None else update.partner
        update.data["alarm"] = alarm.json(time.time_ns(), partner)
