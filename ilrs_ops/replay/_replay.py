"""Replay a Source: onto MQTT under a topic root of its own at a speed factor, ingested there
into a recording by an in-process Ingestor; or straight through the pipelines (``direct``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from ilrs_ops import sources, wire
from ilrs_ops.errors import BrokerError, InputError
from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.profiles import Catalog
from ilrs_ops.replay._recorder import Recorder
from ilrs_ops.replay._recording import Recording
from ilrs_ops.sources import Protocol, Source, StoreSource, open_client
from ilrs_ops.store import Store

log = logging.getLogger(__name__)

NS = wire.NS
#: QoS 1 publishes in flight at once: enough to keep the broker busy, bounded in memory.
PUBLISH_WINDOW = 1000
#: Seconds without a message more reaching the ingestor before a replay gives up.
STALL_S = 60.0
#: Seconds a replay waits for its ingestor's first connection to the broker before it fails
#: (a broker that is down or refuses us: the operator sees why instead of a replay that waits).
CONNECT_S = 15.0


def replay_root(live_root: str, name: str) -> str:
    """The topic root a replay into recording ``name`` travels under: beside the live root,
    never inside it, so nothing subscribed to ``{live_root}/#`` (live ingest, status, alarms)
    ever sees replayed telemetry."""
    return f"{live_root}-replay/{name}"


@dataclass
class Published:
    messages: int = 0
    seconds: float = 0.0
    stopped: bool = False  # by ReplayControl.stop before the source's end


class ReplayControl:
    """Pause, resume or stop a running ``publish`` from elsewhere (the console), and see how
    far it is. A pause holds the source's timeline: after ``resume`` the replay goes on where
    it was, at the same speed."""

    def __init__(self) -> None:
        self.sent = 0
        self.total = 0
        self._running = asyncio.Event()
        self._running.set()
        self._stopped = False
        self._stop = asyncio.Event()  # for waits that a stop must cut short

    @property
    def state(self) -> str:
        if self._stopped:
            return "stopped"
        return "running" if self._running.is_set() else "paused"

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stopped = True
        self._stop.set()
        self._running.set()

    async def _hold(self) -> float:
        """Wait while paused; returns the seconds spent waiting."""
        if self._running.is_set():
            return 0.0
        t0 = time.monotonic()
        await self._running.wait()
        return time.monotonic() - t0


async def publish(
    source: Source,
    *,
    host: str,
    port: int,
    speed: float | None,
    progress: Callable[[int], None] | None = None,
    client_id: str | None = None,
    control: ReplayControl | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Published:
    """Publish the source's messages at QoS 1 on their topics, in order, keeping their relative
    timing divided by ``speed`` (None: as fast as possible); ``control`` pauses or stops it."""
    if speed is not None and not speed > 0:
        raise InputError(f"speed must be > 0 (or None for max), not {speed}")
    stats = Published()
    window = asyncio.Semaphore(PUBLISH_WINDOW)
    failures: list[BaseException] = []

    async def one(client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        try:
            await sources.publish(client, topic, payload)
        except aiomqtt.MqttError as exc:
            failures.append(exc)
        finally:
            window.release()

    t0 = time.monotonic()
    first: int | None = None
    try:
        async with open_client(
            host, port, identifier=client_id, username=username, password=password
        ) as client:
            client.pending_calls_threshold = PUBLISH_WINDOW + 100
            async with asyncio.TaskGroup() as tg:
                if control is not None:
                    control.total = source.total
                async for batch in source:
                    if failures:
                        break  # raised below, outside the task group (which would wrap it)
                    if control is not None and control._stopped:
                        stats.stopped = True
                        break
                    for m in batch:
                        if control is not None:
                            t0 += await control._hold()  # the timeline stands still
                            if control._stopped:
                                stats.stopped = True
                                break
                            control.sent += 1
                        if speed is not None:
                            first = m.recv_ns if first is None else first
                            due = t0 + (m.recv_ns - first) / NS / speed
                            if due > time.monotonic():
                                await asyncio.sleep(due - time.monotonic())
                        await window.acquire()
                        if failures:
                            window.release()
                            break
                        # Tasks start in creation order, each handing its message to the
                        # client before its first await: the wire order is the source order.
                        tg.create_task(one(client, m.topic, m.payload))
                        stats.messages += 1
                    if progress is not None:
                        progress(len(batch))
            if failures:
                raise failures[0]
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"replay: MQTT broker {host}:{port}: {exc}") from exc
    stats.seconds = time.monotonic() - t0
    return stats


async def replay_mqtt(
    source: Source,
    store: Store,
    catalog: Catalog,
    *,
    host: str,
    port: int,
    root: str,
    speed: float | None,
    protocol: Protocol = "auto",
    progress: Callable[[int], None] | None = None,
    control: ReplayControl | None = None,
    username: str | None = None,
    password: str | None = None,
    connect_s: float | None = None,
) -> Ingestor:
    """Publish ``source`` (whose topics are under ``root``) and ingest ``root`` into ``store``
    with an in-process Ingestor; returns once every message published has been committed and
    the ingestor has sealed (its ``status`` and ``rejects`` count what it took). BrokerError
    when the ingestor cannot connect within ``connect_s`` seconds (None: CONNECT_S)."""
    connect_s = CONNECT_S if connect_s is None else connect_s
    session = "ilrs-replay-" + root.replace("/", "-")
    config = IngestConfig(
        host=host,
        port=port,
        root=root,
        protocol=protocol,
        client_id=session + "-ingest",
        username=username,
        password=password,
    )
    async with Ingestor(catalog=catalog, store=store, config=config) as ingestor:
        running = asyncio.ensure_future(ingestor.wait())
        try:
            ready = asyncio.ensure_future(ingestor.ready())
            waits = {ready, running}
            if control is not None:  # a stop while the ingestor (re)connects, the broker down
                waits.add(asyncio.ensure_future(control._stop.wait()))
            await asyncio.wait(waits, timeout=connect_s, return_when=asyncio.FIRST_COMPLETED)
            is_ready = ready.done()
            for t in waits - {running}:
                t.cancel()
            if running.done():
                running.result()  # raises what stopped it
            if not is_ready and not (control is not None and control._stopped):
                why = ingestor.last_error or "no answer"
                raise BrokerError(
                    f"replay: cannot connect to the MQTT broker {host}:{port} within "
                    f"{connect_s:g} s ({why}); is it running, and does it take our login?"
                )
            if is_ready:
                sent = await publish(
                    source, host=host, port=port, speed=speed, progress=progress,
                    client_id=session, control=control, username=username, password=password,
                )  # fmt: skip
            else:
                sent = Published(stopped=True)  # stopped before anything was sent
            committed = ingestor.committed
            while committed.value < sent.messages:
                last = committed.value
                more = asyncio.ensure_future(committed.reach(last + 1))
                done, _ = await asyncio.wait(
                    {more, running}, timeout=STALL_S, return_when=asyncio.FIRST_COMPLETED
                )
                if running in done:
                    running.result()
                if not done:
                    more.cancel()
                    raise BrokerError(
                        f"replay: {last} of {sent.messages} messages reached the ingestor and "
                        f"nothing more for {STALL_S:g} s; is the broker dropping messages?"
                    )
        finally:
            running.cancel()
    await _clear_retained(host, port, root, catalog, username, password)
    return ingestor


async def _clear_retained(
    host: str, port: int, root: str, catalog: Catalog, username: str | None, password: str | None
) -> None:
    """The replay's ingestor left retained status and metrics under its root: remove them, a
    finished replay has no live status."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with open_client(host, port, username=username, password=password) as client:
            for inst in catalog:
                topic = wire.topic(root, wire.STATUS, inst.profile.partner, inst.id)
                await client.publish(topic, b"", qos=1, retain=True)
            await client.publish(wire.metrics_topic(root, 0), b"", qos=1, retain=True)


async def replay_into(
    source: StoreSource,
    rec: Recording,
    catalog: Catalog,
    *,
    host: str,
    port: int,
    speed: float | None,
    direct: bool = False,
    protocol: Protocol = "auto",
    progress: Callable[[int], None] | None = None,
    control: ReplayControl | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Recording:
    """What ``ilrs-ops replay`` and the console run: ``source`` (whose topics are under its
    ``root``, a ``replay_root``) into the fresh recording ``rec``, over MQTT with
    ``replay_mqtt`` or ``direct``; then ``rec`` records the packets taken and is saved.

    A replay that fails or is interrupted (Ctrl-C, a broker it cannot reach) before any data
    reached the recording removes the recording: nothing is left that looks like an empty
    replay. One that took data keeps it (its recording.json says what it took so far)."""
    try:
        with Store(rec.path) as store:
            if direct:
                recorder = Recorder(store, catalog)
                await replay_direct(source, recorder, progress)
                packets, rejects = dict(recorder.packets), dict(recorder.rejects)
            else:
                ing = await replay_mqtt(
                    source, store, catalog, host=host, port=port, root=source.root,
                    speed=speed, protocol=protocol, progress=progress, control=control,
                    username=username, password=password,
                )  # fmt: skip
                packets = {i: st.packets for i, st in ing.status.items() if st.packets}
                rejects = {i: dict(st.rejects) for i, st in ing.status.items() if st.rejects}
    except BaseException:
        if not _holds_data(rec):
            shutil.rmtree(rec.path, ignore_errors=True)
        raise
    if control is not None and control.state == "stopped":
        rec.extra = {**rec.extra, "stopped": True}
    rec.finish(source.instruments, packets, rejects)
    return rec


def _holds_data(rec: Recording) -> bool:
    """Whether any table or WAL file was written into the recording's store."""
    return any(
        p.is_file() and p.suffix in (".parquet", ".arrows") and p.stat().st_size
        for p in rec.path.rglob("*")
    )


async def replay_direct(
    source: Source, recorder: Recorder, progress: Callable[[int], None] | None = None
) -> None:
    """Every message of ``source`` straight through the recorder's processors (no MQTT, no
    pacing); receive times are the source's (for a store: packet times), so the result is the
    same on every run. Seals at the end."""
    async for batch in source:
        await asyncio.to_thread(recorder.feed, batch)
        if progress is not None:
            progress(len(batch))
    await asyncio.to_thread(recorder.close)
