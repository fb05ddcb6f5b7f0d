"""The console's replays: recordings replayed onto the console's broker under their own topic
root (``replay_root``), each ingested into a new recording in-process, as ``ilrs-ops replay``
does (``replay_into``); paused, resumed and stopped by operators, progress pushed live.

Errors (AccessError, see ``_errors``): ``ReplayConflictError`` 409 (a taken target, a state
that does not allow the action), ``ReplayInputError`` 422 (a bad name, nothing to replay).
Replays live in memory: a restarted console lists none, but their recordings stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ilrs_ops.console._auth import Principal
from ilrs_ops.console._data import iso
from ilrs_ops.console._errors import AccessError, NotFoundError
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState, Update
from ilrs_ops.errors import IlrsError
from ilrs_ops.profiles import CatalogOwner
from ilrs_ops.replay import (
    META,
    Recording,
    RecordingError,
    ReplayControl,
    check_name,
    create_recording,
    read_recording,
    recordings_dir,
    replay_into,
    replay_root,
)
from ilrs_ops.sources import StoreSource

log = logging.getLogger(__name__)
audit = logging.getLogger("ilrs_ops.console.audit")

#: Seconds between progress messages of a running replay (state changes go at once).
TICK_S = 0.25
#: Replays running at once: each is a publisher and an ingestor in the console's process.
MAX_RUNNING = 4
#: Finished replays kept for the list.
KEEP_DONE = 100
#: Seconds a console shutdown waits for stopped replays to seal their recordings.
CLOSE_S = 60.0


class ReplayConflictError(AccessError):
    """409: the target recording exists or is being written, or the replay's state does not
    allow the action (pause of a paused replay, stop of a finished one)."""

    status = 409


class ReplayInputError(AccessError):
    """422: a recording name against the rules, or a recording with nothing to replay."""

    status = 422


@dataclass(eq=False)
class Replay:
    """One replay of recording ``recording`` into the new recording ``to``."""

    id: str
    recording: str
    to: str
    root: str
    speed: float | None
    by: str
    total: int
    started_ns: int = field(default_factory=time.time_ns)
    finished_ns: int | None = None
    error: str | None = None
    packets: int | None = None
    seq: int = 0  # one more at every change announced: the newest news wins on the page
    control: ReplayControl = field(default_factory=ReplayControl)
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.finished_ns is not None

    @property
    def state(self) -> str:
        """running, paused, stopping; then finished, stopped or failed."""
        stopped = self.control.state == "stopped"
        if self.done:
            return "failed" if self.error else "stopped" if stopped else "finished"
        return "stopping" if stopped else self.control.state

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recording": self.recording,
            "to": self.to,
            "topic_root": self.root,
            "speed": "max" if self.speed is None else self.speed,
            "state": self.state,
            "sent": self.control.sent,
            "total": self.total,
            "packets": self.packets,
            "by": self.by,
            "started": iso(self.started_ns),
            "started_ns": self.started_ns,
            "finished": iso(self.finished_ns),
            "finished_ns": self.finished_ns,
            "error": self.error,
            "seq": self.seq,
        }


class ReplayManager:
    """The replays of one console app (``app.state.replays``)."""

    def __init__(
        self, settings: ConsoleSettings, catalogs: CatalogOwner, state: StationState
    ) -> None:
        self.settings = settings
        self.catalogs = catalogs  # read at each start: a replay uses the profiles in force
        self.state = state
        self.replays: dict[str, Replay] = {}
        self._targets: set[str] = set()  # names being created, so two starts cannot share one

    # ------------------------------------------------------------------ recordings

    async def recordings(self, principal: Principal) -> list[dict[str, Any]]:
        """The recordings the principal may see, newest first."""
        writing = {r.to for r in self.replays.values() if not r.done}
        return await asyncio.to_thread(self._recordings, principal, writing)

    def _recordings(self, principal: Principal, writing: set[str]) -> list[dict[str, Any]]:
        folder = recordings_dir(self.settings.data)
        out = []
        paths = sorted(folder.iterdir()) if folder.is_dir() else []
        for path in paths:
            if not (path / META).is_file():
                continue
            try:
                rec = read_recording(path)
            except RecordingError as exc:
                if principal.is_operator:
                    out.append({"name": path.name, "error": str(exc), "created": None})
                continue
            if self._may_see(principal, rec):
                out.append(self._recording_json(principal, rec, rec.name in writing))
        out.sort(key=lambda r: (r["created"] or "", r["name"]), reverse=True)
        return out

    def _may_see(self, principal: Principal, rec: Recording) -> bool:
        if principal.is_operator:
            return True
        insts = [self.catalogs.current.instruments.get(i) for i in rec.instruments]
        return bool(insts) and all(i is not None and principal.can_read(i) for i in insts)

    def _recording_json(self, principal: Principal, rec: Recording, writing: bool) -> dict:
        start, stop = rec.window
        return {
            "name": rec.name,
            "kind": rec.origin,
            # a server path: partners see its last part only
            "source": rec.source if principal.is_operator else rec.source.rsplit("/", 1)[-1],
            "created": rec.created,
            "instruments": rec.instruments,
            "packets": sum(rec.packets.values()),
            "packets_by_instrument": rec.packets,
            "rejects": sum(sum(r.values()) for r in rec.rejects.values()),
            "window": None if start is None and stop is None else [iso(start), iso(stop)],
            "speed": rec.extra.get("speed"),
            "stopped": bool(rec.extra.get("stopped", False)),
            "writing": writing,
        }

    # ------------------------------------------------------------------ replays

    async def start(
        self, principal: Principal, recording: str, speed: float | None, to: str | None
    ) -> Replay:
        """Start replaying ``recording`` into a new recording ``to`` (default replay-TIME)."""
        data = self.settings.data
        try:
            check_name(recording)
        except RecordingError as exc:
            raise ReplayInputError(str(exc), "recording") from None
        src = recordings_dir(data) / recording
        if not (src / META).is_file():
            raise NotFoundError(f"no recording named {recording!r}", "recording")
        if recording in self._targets or recording in {
            r.to for r in self.replays.values() if not r.done
        }:
            raise ReplayConflictError(
                f"recording {recording!r} is still being written by a replay", "recording"
            )
        if sum(not r.done for r in self.replays.values()) >= MAX_RUNNING:
            raise ReplayConflictError(f"{MAX_RUNNING} replays are running; stop one first")
        name = self._target(to)
        self._targets.add(name)
        try:
            root = replay_root(self.settings.root, name)
            try:
                source = await asyncio.to_thread(StoreSource, src, self.catalogs.current, root=root)
            except IlrsError as exc:
                raise ReplayInputError(f"recording {recording!r}: {exc}", "recording") from None
            if source.total == 0:
                raise ReplayInputError(
                    f"recording {recording!r} holds no packets of the console's instruments",
                    "recording",
                )
            try:
                rec = create_recording(data, name, "replayed", str(src))
            except RecordingError as exc:
                raise ReplayConflictError(str(exc), "to") from None
        finally:
            self._targets.discard(name)
        rec.extra = {"speed": "max" if speed is None else speed, "direct": False, "bundle": 1,
                     "topic_root": root, "by": principal.name}  # fmt: skip
        replay = Replay(uuid.uuid4().hex[:12], recording, name, root, speed, principal.name,
                        source.total)  # fmt: skip
        self.replays[replay.id] = replay
        self._prune()
        replay.task = asyncio.create_task(self._run(replay, source, rec), name=f"replay {name}")
        audit.info("audit: %s (%s) replay %s -> %s at %s", principal.name, principal.role,
                   recording, name, rec.extra["speed"])  # fmt: skip
        self._announce(replay)
        return replay

    def _target(self, to: str | None) -> str:
        taken = recordings_dir(self.settings.data)
        if to is not None:
            try:
                check_name(to)
            except RecordingError as exc:
                raise ReplayInputError(str(exc), "to") from None
            if to in self._targets or (taken / to).exists():
                raise ReplayConflictError(f"recording {to!r} exists; choose another name", "to")
            return to
        base = "replay-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ").lower()
        return next(
            n for n in _numbered(base) if n not in self._targets and not (taken / n).exists()
        )

    async def _run(self, replay: Replay, source: StoreSource, rec: Recording) -> None:
        ticker = asyncio.create_task(self._tick(replay))
        try:
            await replay_into(
                source, rec, self.catalogs.current, host=self.settings.broker_host,
                port=self.settings.broker_port, speed=replay.speed, control=replay.control,
                **self.settings.broker_login,
            )  # fmt: skip
            replay.packets = sum(rec.packets.values())
        except asyncio.CancelledError:
            replay.error = "cancelled: the console shut down"
            raise
        except IlrsError as exc:
            replay.error = str(exc)
            log.warning("replay %s -> %s failed: %s", replay.recording, replay.to, exc)
        except Exception as exc:
            replay.error = f"{type(exc).__name__}: {exc}"
            log.exception("replay %s -> %s failed", replay.recording, replay.to)
        finally:
            ticker.cancel()
            replay.finished_ns = time.time_ns()
            if replay.error is not None and rec.path.exists():  # gone: it took nothing
                rec.extra = {**rec.extra, "error": replay.error}
                with contextlib.suppress(IlrsError):
                    rec.save()
            self._announce(replay)

    async def _tick(self, replay: Replay) -> None:
        """Progress at most every TICK_S, and only when something changed."""
        last = (replay.control.sent, replay.state)
        while True:
            await asyncio.sleep(TICK_S)
            now = (replay.control.sent, replay.state)
            if now != last:
                last = now
                self._announce(replay)

    def _announce(self, replay: Replay) -> None:
        replay.seq += 1
        self.state.publish(Update("replay", "", "", replay.to_json()))

    def _prune(self) -> None:
        done = [r for r in self.replays.values() if r.done]
        for r in done[: max(0, len(done) - KEEP_DONE)]:
            del self.replays[r.id]

    def get(self, replay_id: str) -> Replay:
        replay = self.replays.get(replay_id)
        if replay is None:
            raise NotFoundError(f"no replay {replay_id!r}", "id")
        return replay

    def listing(self) -> list[dict[str, Any]]:
        """Every replay kept, newest first."""
        replays = sorted(self.replays.values(), key=lambda r: r.started_ns, reverse=True)
        return [r.to_json() for r in replays]

    def act(self, principal: Principal, replay_id: str, action: str) -> Replay:
        """pause (a running replay), resume (a paused one), stop (either)."""
        replay = self.get(replay_id)
        allowed = {"pause": ("running",), "resume": ("paused",), "stop": ("running", "paused")}
        state = replay.state
        if state not in allowed[action]:
            raise ReplayConflictError(f"replay {replay_id} is {state}: it cannot {action}")
        getattr(replay.control, action)()
        audit.info("audit: %s (%s) replay %s %s (%s -> %s)", principal.name, principal.role,
                   action, replay_id, replay.recording, replay.to)  # fmt: skip
        self._announce(replay)
        return replay

    async def close(self) -> None:
        """Stop every running replay and let it seal what it took (CLOSE_S at most)."""
        tasks = []
        for replay in self.replays.values():
            if replay.task is not None and not replay.task.done():
                replay.control.stop()
                tasks.append(replay.task)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_S)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _numbered(base: str) -> Iterator[str]:
    yield base
    k = 2
    while True:
        yield f"{base}-{k}"
        k += 1
