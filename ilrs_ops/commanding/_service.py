"""The commanding service: a request goes through checks, a queue and the uplink, then its
verification stages are followed in live telemetry until a final state.

    submit -> checks (role, partner, arguments, pre-send conditions)  -> refused: RefusedError
           -> requested -> [queued: approval]  (hazardous: a second operator approves)
                        -> [queued: hold]      (the instrument's queue is held)
           -> sent (one per instrument at a time) -> received (the module's acknowledgement)
           -> executed (the command's conditions in telemetry) -> completed
    or failed (at pre / sent / received), timed_out (at received / executed), rejected
    (by an approver), cancelled (before it was sent).

Every stage is a row of the ``commands`` table, written before it is applied: the records
are a fold over those rows, so a restarted service has the same history, the same next
sequence counts and the same commands waiting (their deadlines re-armed). The service reads
live status through ``live`` (instrument -> its latest status document) and is told of new
status with ``on_status``; it never reads a replay's topics and publishes only under the
live root, so replays never receive commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from ilrs_ops import wire
from ilrs_ops.commanding._codec import Codec, Telecommands, Value
from ilrs_ops.commanding._history import Record, fold, row, rows_of
from ilrs_ops.commanding._uplink import CommandLinkError
from ilrs_ops.errors import CommandError, IlrsError
from ilrs_ops.profiles import CatalogOwner, Command, Condition, Profile
from ilrs_ops.store import Store

log = logging.getLogger(__name__)
audit = logging.getLogger("ilrs_ops.commanding.audit")

#: Days of command history rebuilt at start (older stages stay in the store, for DuckDB).
HISTORY_DAYS = 30
#: Seconds a deadline re-armed at start waits at least: live status must come in first.
RESTART_GRACE_S = 5.0
#: Sequence counts are 14 bits.
SEQ_MOD = 16384
#: Ids of queue rows in the ``commands`` table: ``queue:{instrument}``, stage hold or release.
QUEUE_ID = "queue:"
HOLD, RELEASE = "hold", "release"
SERVICE = "commanding"  # the ``who`` of the stages the service itself reaches

Publish = Callable[[str, bytes], Awaitable[None]]


class Actor(Protocol):
    """Who asks: the console's Principal, or anything with its three attributes."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def partner(self) -> str | None: ...


class RefusedError(IlrsError):
    """A request the service does not take; ``status`` is its HTTP status (403 not allowed,
    404 no such instrument or record in a path, 409 not in a state for it, 422 a request
    naming a bad argument or no such instrument or command)."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        self.status = status
        self.parameter = parameter
        super().__init__(message)


@dataclass
class _Lane:
    """One instrument's queue: the next sequence count, the command sent and not yet received,
    and whether the queue is held."""

    next_seq: int = 0
    in_flight: str | None = None
    held: bool = False
    held_by: str | None = None


@dataclass
class Commander:
    """The commands of one station (``app.state.commander`` in the console)."""

    store: Store
    catalogs: CatalogOwner
    live: Callable[[str], Mapping[str, Any] | None]
    root: str = "ilrs"
    notify: Callable[[Record], None] = lambda _rec: None
    records: dict[str, Record] = field(default_factory=dict)
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _codecs: dict[str, tuple[Profile, Telecommands]] = field(default_factory=dict)
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _writer: ThreadPoolExecutor | None = None  # made at the first write, ended by close
    _publish: Publish | None = None

    # ------------------------------------------------------------------ start

    def rebuild(self, now_ns: int | None = None, days: int = HISTORY_DAYS) -> int:
        """Fold the stored stages of the last ``days`` (blocking: run in a thread before
        ``start``). Returns the rows read."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        start = now_ns - days * 86_400 * wire.NS
        rows = []
        for iid in self.catalogs.current.instruments:
            rows += rows_of(self.store.commands(iid, start, now_ns + 86_400 * wire.NS))
        rows.sort(key=lambda r: r[0])
        for t, id, stage, who, detail in rows:
            if id.startswith(QUEUE_ID):
                lane = self._lane(id[len(QUEUE_ID) :])
                lane.held, lane.held_by = stage == HOLD, who
                continue
            rec = fold(self.records, t, id, stage, who, detail)
            if rec is not None and rec.seq is not None:
                lane = self._lane(rec.instrument)
                lane.next_seq = (rec.seq + 1) % SEQ_MOD
        for rec in self.records.values():
            if rec.stage == wire.SENT:
                self._lane(rec.instrument).in_flight = rec.id
        return len(rows)

    def start(self, publish: Publish) -> None:
        """Begin sending with ``publish`` (the Uplink's): re-arm the deadlines of commands in
        verification and send what waits (call in the running loop, after ``rebuild``)."""
        self._publish = publish
        for rec in self.records.values():
            if rec.stage in (wire.SENT, wire.RECEIVED):
                self._arm(rec, grace=RESTART_GRACE_S)
        for iid in list(self._lanes):
            self._spawn(self._dispatch(iid))

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    # ------------------------------------------------------------------ requests

    def definitions(self, actor: Actor, instrument: str) -> list[Command]:
        """The commands ``actor`` may see of ``instrument`` (RefusedError 403/404)."""
        p = self._profile(instrument)
        self._may_see(actor, p.partner)
        return list(p.commands)

    def telecommands(self, instrument: str) -> Telecommands:
        p = self._profile(instrument)
        cached = self._codecs.get(instrument)
        if cached is None or cached[0] is not p:
            cached = self._codecs[instrument] = (p, Telecommands(p))
        return cached[1]

    async def submit(
        self,
        actor: Actor,
        instrument: str,
        command: str,
        args: Mapping[str, Any],
        id: str | None = None,
    ) -> Record:
        """Check and take one command request; the same ``id`` again is the same command
        (its record returned, nothing sent twice). RefusedError: 403 a viewer, or a partner's
        request for another partner's instrument; 422 a bad argument, or no such instrument
        or command (``parameter`` names which); 409 a pre-send condition that does not hold.
        Nothing refused reaches the wire."""
        rec, _ = await self.request(actor, instrument, command, args, id)
        return rec

    async def request(
        self,
        actor: Actor,
        instrument: str,
        command: str,
        args: Mapping[str, Any],
        id: str | None = None,
    ) -> tuple[Record, bool]:
        """``submit``, and whether the request made a new command (False: its ``id`` was
        known, and the record is the earlier request's)."""
        p = self._may_command(actor, instrument, command)
        async with self._lock:
            if id is not None and id in self.records:
                rec = self.records[id]
                if (rec.instrument, rec.command) != (instrument, command):
                    raise RefusedError(409, f"request id {id!r} is another command", "id")
                return rec, False
            codec, values = self._checked(actor, instrument, command, args)
            c = codec.command
            unmet = self._unmet(instrument, c.pre, values)
            if unmet:
                self._audit(actor, "refused", instrument, command, unmet)
                raise RefusedError(409, f"{command} not sent: pre-send condition {unmet}", "pre")
            detail = {
                "instrument": instrument,
                "partner": p.partner,
                "command": command,
                "args": values,
                "raw": codec.raw(values),
                "hazardous": c.hazardous,
                "sensitive": [a.name for a in c.arguments if a.sensitive],
                "role": actor.role,
            }
            rec = await self._stage(id or uuid.uuid4().hex, wire.REQUESTED, actor.name, detail)
            if c.hazardous:
                await self._stage(rec.id, wire.QUEUED, SERVICE, {"waiting": "approval"})
        self._audit(actor, "submitted", instrument, command, rec.id)
        await self._dispatch(instrument)
        return rec, True

    def preview(
        self, actor: Actor, instrument: str, command: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What ``submit`` would send now, without sending: checked arguments, raw counts and
        the exact packet with the instrument's next sequence count (a command sent before it
        takes that count, and this one the next), and the pre-send condition that does not
        hold, if one does not. Refused as ``submit`` is."""
        self._may_command(actor, instrument, command)
        codec, values = self._checked(actor, instrument, command, args)
        seq = self._lane(instrument).next_seq
        return {
            "instrument": instrument,
            "command": command,
            "hazardous": codec.command.hazardous,
            "args": values,
            "raw": codec.raw(values),
            "seq": seq,
            "packet": codec.encode(values, seq).hex(),
            "unmet": self._unmet(instrument, codec.command.pre, values),
        }

    def _may_command(self, actor: Actor, instrument: str, command: str) -> Profile:
        """The instrument's profile, if ``actor`` may command it (422 unknown, 403 not)."""
        p = self._profile(instrument, 422)
        if actor.role == "viewer" or (actor.role == "partner" and actor.partner != p.partner):
            self._audit(actor, "refused", instrument, command, "not allowed")
            raise RefusedError(403, f"{actor.name!r} may not command {instrument!r}")
        return p

    def _checked(
        self, actor: Actor, instrument: str, command: str, args: Mapping[str, Any]
    ) -> tuple[Codec, dict[str, Value]]:
        """The command's codec and its checked arguments (422 naming what is wrong)."""
        try:
            codec = self.telecommands(instrument).codec(command)
            return codec, codec.arguments(args)
        except CommandError as exc:
            self._audit(actor, "refused", instrument, command, str(exc))
            raise RefusedError(422, str(exc), exc.argument or "command") from None

    async def approve(self, actor: Actor, id: str) -> Record:
        """A second operator lets a hazardous command go (not its requester)."""
        async with self._lock:
            rec = self._waiting(actor, id, "approve")
            if rec.requested_by == actor.name:
                raise RefusedError(403, f"{actor.name!r} asked for {id}: another operator approves")
            await self._stage(id, wire.APPROVED, actor.name, {})
        self._audit(actor, "approved", rec.instrument, rec.command, id)
        await self._dispatch(rec.instrument)
        return rec

    async def reject(self, actor: Actor, id: str, reason: str = "") -> Record:
        """An operator refuses a hazardous command waiting for approval."""
        async with self._lock:
            rec = self._waiting(actor, id, "reject")
            detail = {"at": "approval", "reason": reason or f"rejected by {actor.name}"}
            await self._stage(id, wire.REJECTED, actor.name, detail)
        self._audit(actor, "rejected", rec.instrument, rec.command, id)
        return rec

    async def cancel(self, actor: Actor, id: str) -> Record:
        """Its requester or an operator withdraws a command not yet sent."""
        async with self._lock:
            rec = self._get(actor, id)
            if not (actor.role == "operator" or actor.name == rec.requested_by):
                raise RefusedError(403, f"only its requester or an operator may cancel {id}")
            if rec.stage not in (wire.REQUESTED, wire.QUEUED, wire.APPROVED):
                raise RefusedError(409, f"{id} is {rec.stage}: only an unsent command is cancelled")
            await self._stage(id, wire.CANCELLED, actor.name, {"at": rec.stage})
        self._audit(actor, "cancelled", rec.instrument, rec.command, id)
        return rec

    async def hold(self, actor: Actor, instrument: str, held: bool = True) -> dict[str, Any]:
        """Hold (or release) an instrument's queue: held, nothing more is sent from it."""
        if actor.role != "operator":
            raise RefusedError(403, "only operators hold and release queues")
        self._profile(instrument)
        async with self._lock:
            lane = self._lane(instrument)
            table = row(time.time_ns(), QUEUE_ID + instrument, HOLD if held else RELEASE,
                        actor.name, {})  # fmt: skip
            await self._write(instrument, table)
            lane.held, lane.held_by = held, actor.name
        self._audit(actor, HOLD if held else RELEASE, instrument, "", "queue")
        await self._dispatch(instrument)
        return self.queue(instrument)

    def queue(self, instrument: str) -> dict[str, Any]:
        lane = self._lane(instrument)
        waiting = [r.id for r in self._pending(instrument)]
        return {
            "instrument": instrument,
            "held": lane.held,
            "held_by": lane.held_by,
            "in_flight": lane.in_flight,
            "waiting": waiting,
        }

    def visible(self, actor: Actor, rec: Record) -> bool:
        return actor.role in ("operator", "viewer") or rec.partner == actor.partner

    def get(self, actor: Actor, id: str) -> Record:
        return self._get(actor, id)

    def history(
        self,
        actor: Actor,
        instrument: str | None = None,
        state: str | None = None,
        since_ns: int | None = None,
        limit: int = 200,
        stop_ns: int | None = None,
    ) -> list[Record]:
        """The records ``actor`` may see, newest first; requested in [since_ns, stop_ns) when
        given (the console's archive window)."""
        out = [
            r
            for r in self.records.values()
            if self.visible(actor, r)
            and (instrument is None or r.instrument == instrument)
            and (state is None or r.stage == state or (state == "open" and not r.final))
            and (since_ns is None or r.requested_ns >= since_ns)
            and (stop_ns is None or r.requested_ns < stop_ns)
        ]
        out.sort(key=lambda r: r.requested_ns, reverse=True)
        return out[:limit]

    # ------------------------------------------------------------------ live telemetry

    def on_status(self, instrument: str) -> None:
        """New status of ``instrument``: follow the verification of its commands."""
        if any(r.instrument == instrument and r.stage in (wire.SENT, wire.RECEIVED)
               for r in self.records.values()):  # fmt: skip
            self._spawn(self._verify(instrument))

    async def _verify(self, instrument: str) -> None:
        async with self._lock:
            moved = False
            for rec in [r for r in self.records.values() if r.instrument == instrument]:
                if rec.stage == wire.SENT:
                    moved |= await self._check_received(rec)
                if rec.stage == wire.RECEIVED:
                    await self._check_executed(rec)
        if moved:
            await self._dispatch(instrument)

    async def _check_received(self, rec: Record) -> bool:
        p = self._profile(rec.instrument)
        link = p.link
        values = self._values(rec.instrument)
        last = _int(values.get(link.last_seq))
        if last is None or last != rec.seq:
            return False
        accepted, rejected = _int(values.get(link.accepted)), _int(values.get(link.rejected))
        base_acc, base_rej = rec.baseline.get("accepted"), rec.baseline.get("rejected")
        why = values.get(link.error) if link.error else None
        if base_acc is None and base_rej is None:  # no telemetry when sent: the error says
            refused = why not in (None, wire.TC_NONE)
        elif rejected is not None and rejected != base_rej:
            refused = True
        elif accepted is not None and accepted != base_acc:
            refused = False
        else:
            return False  # the sequence count of an older command: wait for a counter
        if refused:
            await self._final(rec, wire.FAILED, "received", f"the module rejected it: {why}")
            return True
        await self._stage(rec.id, wire.RECEIVED, SERVICE, {})
        self._arm(rec)
        return True

    async def _check_executed(self, rec: Record) -> None:
        c = self._profile(rec.instrument).command(rec.command)
        conditions = c.verify.executed if c is not None else []
        if self._unmet(rec.instrument, conditions, rec.args):
            return
        if conditions:
            await self._stage(rec.id, wire.EXECUTED, SERVICE, {})
        await self._final(rec, wire.COMPLETED, None, None)

    def _arm(self, rec: Record, grace: float = 0.0) -> None:
        """The deadline of the stage ``rec`` waits for next (received or executed)."""
        p = self._profile_or_none(rec.instrument)
        cmd = p.command(rec.command) if p is not None else None
        if rec.stage == wire.SENT:
            window = p.received_s(cmd) if p is not None and cmd is not None else 5.0
            since = rec.at(wire.SENT)
        else:
            window = cmd.verify.executed_s if cmd is not None else 10.0
            since = rec.at(wire.RECEIVED)
        left = window - (time.time_ns() - (since or time.time_ns())) / wire.NS
        stage = rec.stage
        old = self._timers.pop(rec.id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[rec.id] = loop.call_later(
            max(left, grace), lambda: self._spawn(self._expire(rec.id, stage, window))
        )

    async def _expire(self, id: str, stage: str, window: float) -> None:
        async with self._lock:
            rec = self.records.get(id)
            if rec is None or rec.stage != stage:
                return
            waited = "received" if stage == wire.SENT else "executed"
            what = "no acknowledgement" if stage == wire.SENT else "the conditions did not hold"
            await self._final(rec, wire.TIMED_OUT, waited, f"{what} within {window:g} s")
        await self._dispatch(rec.instrument)

    # ------------------------------------------------------------------ sending

    def _pending(self, instrument: str) -> list[Record]:
        """Commands ready to go (approved or needing none), oldest first."""
        return sorted(
            (r for r in self.records.values() if r.instrument == instrument
             and (r.stage in (wire.REQUESTED, wire.APPROVED)
                  or (r.stage == wire.QUEUED and r.waiting == HOLD))),
            key=lambda r: r.requested_ns,
        )  # fmt: skip

    async def _dispatch(self, instrument: str) -> None:
        """Send the next command of ``instrument`` if its queue may."""
        async with self._lock:
            lane = self._lane(instrument)
            if self._publish is None:
                return
            if lane.in_flight is not None:
                held = self.records.get(lane.in_flight)
                if held is not None and held.stage == wire.SENT:
                    return
                lane.in_flight = None
            pending = self._pending(instrument)
            if lane.held:
                for rec in pending:
                    if rec.stage != wire.QUEUED:
                        await self._stage(rec.id, wire.QUEUED, SERVICE, {"waiting": HOLD})
                return
            if pending:
                await self._send(pending[0])
        if pending and lane.in_flight is None:
            await self._dispatch(instrument)  # that one ended at once: the next may go

    async def _send(self, rec: Record) -> None:
        p = self._profile_or_none(rec.instrument)
        c = p.command(rec.command) if p is not None else None
        if p is None or c is None:
            await self._final(rec, wire.FAILED, "sent", "no longer defined in the profile")
            return
        unmet = self._unmet(rec.instrument, c.pre, rec.args)
        if unmet:
            await self._final(rec, wire.FAILED, "pre", f"pre-send condition {unmet}")
            return
        lane = self._lane(rec.instrument)
        codec = self.telecommands(rec.instrument).codec(rec.command)
        seq = lane.next_seq
        try:
            packet = codec.encode(rec.args, seq)
        except CommandError as exc:  # the profile changed under a queued command
            await self._final(rec, wire.FAILED, "sent", str(exc))
            return
        values, link = self._values(rec.instrument), p.link
        baseline = {"accepted": _int(values.get(link.accepted)),
                    "rejected": _int(values.get(link.rejected))}  # fmt: skip
        detail = {"seq": seq, "packet": packet.hex(), "baseline": baseline}
        await self._stage(rec.id, wire.SENT, SERVICE, detail)
        lane.next_seq = (seq + 1) % SEQ_MOD
        lane.in_flight = rec.id
        assert self._publish is not None
        try:
            await self._publish(wire.topic(self.root, wire.TC, p.partner, p.instrument), packet)
        except CommandLinkError as exc:
            lane.in_flight = None
            await self._final(rec, wire.FAILED, "sent", str(exc))
            return
        self._arm(rec)

    # ------------------------------------------------------------------ stages

    async def _stage(self, id: str, stage: str, who: str, detail: dict[str, Any]) -> Record:
        """Write one stage, then apply it and tell the listeners (callers hold the lock)."""
        t = time.time_ns()
        known = self.records.get(id)
        instrument = detail["instrument"] if known is None else known.instrument
        await self._write(instrument, row(t, id, stage, who, detail))
        rec = fold(self.records, t, id, stage, who, detail)
        assert rec is not None
        if stage in wire.FINAL_STAGES or stage == wire.RECEIVED:
            timer = self._timers.pop(id, None)
            if timer is not None:
                timer.cancel()
        try:
            self.notify(rec)
        except Exception:
            log.exception("command listener failed on %s", id)
        return rec

    async def _final(self, rec: Record, stage: str, at: str | None, reason: str | None) -> None:
        await self._stage(rec.id, stage, SERVICE, {"at": at, "reason": reason})
        lane = self._lane(rec.instrument)
        if lane.in_flight == rec.id:
            lane.in_flight = None
        log.info("command %s %s %s: %s%s", rec.id, rec.instrument, rec.command, stage,
                 f" at {at}: {reason}" if reason else "")  # fmt: skip

    # ------------------------------------------------------------------ helpers

    async def _write(self, instrument: str, table: pa.Table) -> None:
        """Append stage rows, durable when it returns, on the service's own writer thread: a
        command never waits in the default pool behind ingest's or the console's jobs."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="commands-writer")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self.store.append_commands, instrument, table)

    def _lane(self, instrument: str) -> _Lane:
        return self._lanes.setdefault(instrument, _Lane())

    def _profile_or_none(self, instrument: str) -> Profile | None:
        inst = self.catalogs.current.instruments.get(instrument)
        return None if inst is None else inst.profile

    def _profile(self, instrument: str, status: int = 404) -> Profile:
        """The profile of ``instrument``; RefusedError ``status`` (404 for a path, 422 for a
        request body) when there is none."""
        p = self._profile_or_none(instrument)
        if p is None:
            raise RefusedError(status, f"no instrument {instrument!r}", "instrument")
        return p

    def _may_see(self, actor: Actor, partner: str) -> None:
        if actor.role == "partner" and actor.partner != partner:
            raise RefusedError(403, f"{actor.name!r} may not see another partner's commands")

    def _get(self, actor: Actor, id: str) -> Record:
        rec = self.records.get(id)
        if rec is None or not self.visible(actor, rec):
            raise RefusedError(404, f"no command {id!r}", "id")
        return rec

    def _waiting(self, actor: Actor, id: str, action: str) -> Record:
        if actor.role != "operator":
            raise RefusedError(403, f"only operators {action} hazardous commands")
        rec = self._get(actor, id)
        if rec.stage != wire.QUEUED or rec.waiting != "approval":
            raise RefusedError(409, f"{id} is {rec.stage}, not waiting for approval")
        return rec

    def _values(self, instrument: str) -> dict[str, Any]:
        doc = self.live(instrument) or {}
        values = doc.get("values") if isinstance(doc, Mapping) else None
        if not isinstance(values, Mapping):
            return {}
        return {k: v.get("value") if isinstance(v, Mapping) else v for k, v in values.items()}

    def _unmet(
        self, instrument: str, conditions: list[Condition], args: Mapping[str, Value]
    ) -> str | None:
        """The first condition that does not hold in live telemetry, said with the value
        seen; None when all hold."""
        values = self._values(instrument)
        for cond in conditions:
            seen = values.get(cond.channel)
            for test, want in cond.tests:
                if isinstance(want, str) and want.startswith("$"):
                    want = args[want[1:]]
                if not _holds(test, seen, want):
                    shown = "no live value" if seen is None else f"it is {seen}"
                    words = {"equals": "==", "above": ">", "below": "<"}[test]
                    return f"{cond.channel} {words} {want} does not hold ({shown})"
        return None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("commanding task failed", exc_info=task.exception())

    def _audit(self, actor: Actor, action: str, instrument: str, command: str, what: str) -> None:
        audit.info("audit: %s (%s%s) %s %s %s: %s", actor.name, actor.role,
                   f" of {actor.partner}" if actor.partner else "", action, instrument, command,
                   what)  # fmt: skip


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return int(v)


def _holds(test: str, seen: Any, want: Value) -> bool:
    if seen is None:
        return False
    if isinstance(want, str) or isinstance(seen, str):
        return test == "equals" and str(seen) == str(want)
    if not isinstance(seen, int | float):
        return False
    if test == "equals":
        return math.isclose(seen, want, rel_tol=1e-9, abs_tol=1e-9)
    return seen > want if test == "above" else seen < want
