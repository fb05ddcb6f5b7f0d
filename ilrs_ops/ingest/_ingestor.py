"""The ingestor: MQTT in, durable WAL, acknowledgement, pipelines, status and events out.

One lane per instrument keeps that instrument's packets in order: it gathers messages into a
batch (by count, size and age), appends the batch to the instrument's WAL with one fsync, only
then acknowledges the messages to the broker, and runs the pipelines on it. Lanes have bounded
queues; when the store falls behind, the reader stops taking messages, the broker's in-flight
window fills, and the broker holds the rest: backpressure, never a silent drop.

How far behind ingest is shows in its metrics (``Ingestor.metrics``): per shard ``unacked``
(messages received from the broker, not yet acknowledged: at ``receive_maximum`` the window is
full and the broker is holding a backlog), per lane ``queue``, ``lag_s`` (receive to durable)
and ``behind_s`` (how old the newest packet was, by its CCSDS packet time, when it was stored:
the whole delay from the instrument's clock to the store, broker backlog included).
Mosquitto 2.0.11 sends past the window while publishers flood it (266k held with a window of
5000, measured): ingest's read gate (``_mqtt.ReadGate``) then stops reading the socket at
``HOLD_HIGH`` held messages, so the backlog stays at the broker (``read_pauses`` counts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import watchfiles

from ilrs_ops._backoff import Backoff
from ilrs_ops.errors import ProfileError, StoreError
from ilrs_ops.ingest._mqtt import RECEIVE_MAXIMUM, Protocol, ReadGate, ack, make_client
from ilrs_ops.ingest._status import InstrumentStatus
from ilrs_ops.process import Processed, Processor, ProcessState
from ilrs_ops.profiles import Catalog, Instrument, load_catalog
from ilrs_ops.store import Store

log = logging.getLogger(__name__)

UNKNOWN = "_unknown"
METRICS_INTERVAL_S = 2.0
#: A lane merges each run of this many processed batches of its open segment into one. Each
#: batch's tables carry some 50 KB of Python and Arrow objects whatever their rows (measured:
#: 2000 batches of 10 cnsa-eps packets held 95 MB of RSS for 5 MB of table data; merged, 12 MB),
#: and under overload with many lanes batches are small and many until segment_s seals them.
MERGE_BATCHES = 64


def shard_of(instrument_id: str, shards: int) -> int:
    """The shard an instrument belongs to: a stable hash, the same in every process."""
    return zlib.crc32(instrument_id.encode()) % shards


@dataclass(frozen=True)
class IngestConfig:
    """How one ingest process connects, batches and seals."""

    host: str = "127.0.0.1"
    port: int = 1883
    protocol: Protocol = "v5"
    root: str = "ilrs"  # topic root: {root}/tm/{partner}/{instrument}
    shard: int = 0
    shards: int = 1
    client_id: str | None = None  # fixed per shard, so the broker keeps our session
    username: str | None = None  # MQTT login (see `ilrs-ops broker-config`); None: anonymous
    password: str | None = field(default=None, repr=False)
    batch_messages: int = 2000  # a batch is committed at this many messages,
    batch_bytes: int = 8 << 20  # or this many payload bytes,
    batch_delay_s: float = 0.01  # or when its first message has waited this long (messages
    # that queue up during a commit join the next batch at once: group commit needs no wait)
    lane_queue: int = 20_000  # messages waiting per instrument before the reader stops
    segment_messages: int = 200_000  # a WAL segment is sealed to Parquet at this many messages,
    segment_bytes: int = 256 << 20  # or when its processed tables held in memory reach this,
    segment_s: float = 60.0  # or at this age
    status_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard}/{self.shards}: use i/N with 0 <= i < N")
        for name in (
            "batch_messages",
            "batch_bytes",
            "lane_queue",
            "segment_messages",
            "segment_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def session_id(self) -> str:
        return self.client_id or f"ilrs-ingest-{self.root}-{self.shard}of{self.shards}"


@dataclass
class LaneMetrics:
    """Counters of one lane, exported as metrics."""

    messages: int = 0
    batches: int = 0
    last_batch: int = 0
    lag_s: float = 0.0  # receive-to-durable time of the oldest message in the last batch
    # Wall clock minus packet time of the last batch's newest packet when it was stored: with a
    # backlog at the broker this grows while lag_s stays bounded by the in-flight window.
    behind_s: float = 0.0
    commit_s: float = 0.0  # WAL append + fsync time of the last batch
    seals: int = 0
    store_errors: int = 0  # failed WAL appends (each retry counts) and failed seals
    store_failing: bool = False  # the store refuses this lane's writes right now: no acks


@dataclass
class _Lane:
    """The queue, processor and open segment of one instrument."""

    id: str
    topic: str
    instrument: Instrument | None
    processor: Processor | None
    queue: asyncio.Queue[tuple[aiomqtt.Client, aiomqtt.Message, int]]
    metrics: LaneMetrics = field(default_factory=LaneMetrics)
    pending: list[Processed] = field(default_factory=list)  # processed, not yet sealed
    pending_bytes: int = 0  # memory those tables hold: bounds a lane's memory in a catch-up
    merged: int = 0  # leading entries of ``pending`` that are merges of MERGE_BATCHES batches
    segment_messages: int = 0
    segment_started: float = field(default_factory=time.monotonic)
    sealing: asyncio.Task[None] | None = None  # the background seal of the previous segment
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # commits vs seals and reloads


class Ingestor:
    """Runs until cancelled: ``await Ingestor(catalog, store, config).run()``.

    With ``profiles`` (the folder the catalog came from), profile files are watched: a new or
    changed valid profile goes live without a restart; an invalid one is refused with its
    ProfileError and the version in force stays.
    """

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        config: IngestConfig | None = None,
        *,
        profiles: Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.config = config or IngestConfig()
        self.profiles = profiles
        self.profile_reloads = 0
        self.profile_errors: list[str] = []
        self.lanes: dict[str, _Lane] = {}
        self.status: dict[str, InstrumentStatus] = {}
        self.rejects: Counter[str] = Counter()
        self.events_published = 0
        self.unacked = 0  # messages taken from the broker and not yet acknowledged
        self._client: aiomqtt.Client | None = None
        self._gate: ReadGate | None = None
        self.read_pauses = 0  # times the read gate stopped reading (connections before this one)
        self._dirty: set[str] = set()
        self._ready = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None

    def mine(self, inst: Instrument) -> bool:
        return shard_of(inst.id, self.config.shards) == self.config.shard

    async def ready(self) -> None:
        """Returns once recovery is done and the subscription is in place."""
        await self._ready.wait()

    async def run(self) -> None:
        states = await asyncio.to_thread(self.store.recover)
        for inst in self.catalog:
            if self.mine(inst):
                self._add_lane(inst.id, inst.topic(self.config.root), inst, states.get(inst.id))
        if self.config.shards == 1:
            self._add_lane(UNKNOWN, f"{self.config.root}/tm/#", None, None)
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for lane in self.lanes.values():
                tg.create_task(self._run_lane(lane))
            tg.create_task(self._publish_status())
            tg.create_task(self._publish_metrics())
            tg.create_task(self._read())
            if self.profiles is not None:
                tg.create_task(self._watch_profiles(self.profiles))

    def _add_lane(self, lane_id: str, topic: str, inst: Instrument | None, state: object) -> None:
        processor = Processor(inst, state) if inst is not None else None  # type: ignore[arg-type]
        queue: asyncio.Queue = asyncio.Queue(self.config.lane_queue)
        self.lanes[lane_id] = _Lane(lane_id, topic, inst, processor, queue)
        if inst is not None:
            self.status[lane_id] = InstrumentStatus(inst)
            self._dirty.add(lane_id)

    # -- MQTT in ---------------------------------------------------------------------------

    async def _read(self) -> None:
        """Take messages from the broker into their lanes; reconnect with backoff."""
        cfg = self.config
        prefix = f"{cfg.root}/tm/"
        backoff = Backoff()
        while True:
            try:
                client = make_client(
                    cfg.host,
                    cfg.port,
                    client_id=cfg.session_id,
                    protocol=cfg.protocol,
                    username=cfg.username,
                    password=cfg.password,
                )
                async with client:
                    self._client = client
                    if self._gate is not None:
                        self.read_pauses += self._gate.pauses
                    self._gate = gate = ReadGate(client)
                    backoff.reset()
                    # One subscription per message: overlapping ones would deliver copies.
                    if cfg.shards == 1:
                        await client.subscribe(f"{cfg.root}/tm/#", qos=1)
                    else:
                        for lane in self.lanes.values():
                            await client.subscribe(lane.topic, qos=1)
                    self._ready.set()
                    log.info(
                        "ingest %d/%d connected to %s:%d", cfg.shard, cfg.shards, cfg.host, cfg.port
                    )
                    async for message in client.messages:
                        recv_ns = time.time_ns()
                        topic = str(message.topic)
                        lane_id = (
                            topic[len(prefix) :].rpartition("/")[2]
                            if topic.startswith(prefix)
                            else ""
                        )
                        lane = self.lanes.get(lane_id) or self.lanes.get(UNKNOWN)
                        if lane is None:  # another shard's instrument: not subscribed, not ours
                            continue
                        self.unacked += 1
                        # Held messages stop the reading far below a lane queue's bound, so
                        # the put below does not block while the client's queue grows.
                        gate.update(self._held())
                        await lane.queue.put((client, message, recv_ns))
            except aiomqtt.MqttError as exc:
                self._client = None
                await backoff.wait(log, f"ingest: broker {cfg.host}:{cfg.port}: {exc}")

    # -- lanes -----------------------------------------------------------------------------

    async def _run_lane(self, lane: _Lane) -> None:
        while True:
            batch = await self._gather(lane)
            async with lane.lock:  # a segment's WAL rows and processed tables stay together
                await self._commit(lane, batch)
                if (
                    lane.segment_messages >= self.config.segment_messages
                    or lane.pending_bytes >= self.config.segment_bytes
                    or time.monotonic() - lane.segment_started >= self.config.segment_s
                ):
                    await self._seal(lane)

    async def _gather(self, lane: _Lane) -> list[tuple[aiomqtt.Client, aiomqtt.Message, int]]:
        cfg = self.config
        first = await lane.queue.get()
        batch = [first]
        size = len(first[1].payload)  # type: ignore[arg-type]
        deadline = time.monotonic() + cfg.batch_delay_s
        while len(batch) < cfg.batch_messages and size < cfg.batch_bytes:
            try:
                item = lane.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(lane.queue.get(), left)
                except TimeoutError:
                    break
            batch.append(item)
            size += len(item[1].payload)  # type: ignore[arg-type]
        return batch

    async def _commit(
        self, lane: _Lane, batch: list[tuple[aiomqtt.Client, aiomqtt.Message, int]]
    ) -> None:
        """WAL append with one fsync, then the acks, then the pipelines."""
        recv = np.fromiter((r for _, _, r in batch), dtype=np.int64, count=len(batch))
        topics = [str(m.topic) for _, m, _ in batch]
        payloads = [bytes(m.payload) for _, m, _ in batch]  # type: ignore[arg-type]
        t0 = time.monotonic()
        await self._durable(lane, recv, topics, payloads)
        m = lane.metrics
        m.commit_s = time.monotonic() - t0
        m.lag_s = time.time_ns() / 1e9 - recv[0] / 1e9
        for client, message, _ in batch:
            if client is self._client:  # a message of a dead connection comes again anyway
                ack(client, message)
        self.unacked -= len(batch)
        if self._gate is not None:
            self._gate.update(self._held())
        m.messages += len(batch)
        m.batches += 1
        m.last_batch = len(batch)
        lane.segment_messages += len(batch)
        if lane.processor is None:
            self.rejects["unknown_instrument"] += len(batch)
            return
        processed = await asyncio.to_thread(lane.processor.process, payloads, recv, lane.topic)
        lane.pending.append(processed)
        if len(lane.pending) - lane.merged >= MERGE_BATCHES:
            tail = lane.pending[lane.merged :]
            try:
                lane.pending[lane.merged :] = [await asyncio.to_thread(_merge, tail)]
                lane.merged += 1
            except pa.ArrowException as exc:  # not expected: the seal concatenates them anyway
                log.warning("ingest %s: cannot merge processed batches: %s", lane.id, exc)
                lane.merged = len(lane.pending)
        lane.pending_bytes += sum(
            t.nbytes
            for t in (
                processed.raw,
                processed.telemetry,
                processed.events,
                processed.rollups,
                processed.quarantine,
            )
        )
        if processed.raw.num_rows:
            m.behind_s = time.time() - int(processed.latest["time_ns"]) / 1e9  # type: ignore[call-overload]
        self._update_status(lane, processed, recv)
        await self._publish_events(lane, processed)

    async def _durable(
        self, lane: _Lane, recv: np.ndarray, topics: list[str], payloads: list[bytes]
    ) -> None:
        """Append to the WAL; while the store refuses (disk full, read-only, file too large),
        acknowledge nothing, so the broker keeps the data, and retry with backoff. An episode
        is logged once when it starts (an error naming the store, the file and the OS error)
        and once when the store takes writes again; the retries in between only count."""
        m = lane.metrics
        failing_since: float | None = None
        backoff = Backoff()
        while True:
            try:
                wal = self.store.wal(lane.id)
                await asyncio.to_thread(wal.append, recv, topics, payloads)
                break
            except StoreError as exc:
                m.store_errors += 1
                if failing_since is None:
                    failing_since = time.monotonic()
                    m.store_failing = True
                    log.error(
                        "ingest %s: store %s refuses writes%s: %s; not acknowledging (the broker "
                        "keeps the messages), retrying",
                        lane.id,
                        self.store.root,
                        _os_error(exc),
                        exc,
                    )
                await backoff.wait()  # silent: the episode is logged once
        if failing_since is not None:
            m.store_failing = False
            log.warning(
                "ingest %s: store %s takes writes again after %.1f s and %d failed attempts; "
                "acknowledging",
                lane.id,
                self.store.root,
                time.monotonic() - failing_since,
                backoff.attempt,
            )

    async def _seal(self, lane: _Lane) -> None:
        """Close the lane's WAL segment now and write it as Parquet in the background, one
        seal at a time per lane, so ingest goes on while Parquet is written."""
        if lane.sealing is not None:
            await lane.sealing  # the previous seal first: the checkpoint only moves forward
        closed = self.store.wal(lane.id).rotate()
        pending, lane.pending, lane.pending_bytes, lane.merged = lane.pending, [], 0, 0
        lane.segment_messages = 0
        lane.segment_started = time.monotonic()
        if closed is None:
            return
        # A copy of the state as it is at the end of the closed segment.
        state = ProcessState.from_json(lane.processor.state.to_json()) if lane.processor else None
        lane.sealing = asyncio.create_task(self._seal_segment(lane, closed, pending, state))

    async def _seal_segment(
        self, lane: _Lane, segment: int, pending: list[Processed], state: ProcessState | None
    ) -> None:
        try:
            await asyncio.to_thread(self.store.seal_segment, lane.id, segment, pending, state)
            lane.metrics.seals += 1
        except StoreError as exc:
            # The segment stays in the WAL; the next run's recovery seals it by replay.
            lane.metrics.store_errors += 1
            log.error("ingest %s: sealing segment %d failed: %s", lane.id, segment, exc)

    async def close(self) -> None:
        """After ``run`` has stopped: seal every lane's open segment. Sealing replays the WAL
        from the checkpoint rather than trusting what a cancelled lane had processed."""
        for lane in self.lanes.values():
            if lane.sealing is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.sealing
            await asyncio.to_thread(self.store.seal_current, lane.id)

    # -- profiles, hot ------------------------------------------------------------------------

    async def _watch_profiles(self, folder: Path) -> None:
        async for _ in watchfiles.awatch(folder, debounce=500):
            await self.reload_profiles(folder)

    async def reload_profiles(self, folder: Path) -> None:
        """Load the profiles again; put new and changed instruments of this shard in force."""
        try:
            catalog = await asyncio.to_thread(load_catalog, [folder])
        except ProfileError as exc:
            self.profile_errors = [str(p) for p in exc.problems]
            for problem in exc.problems:
                log.error("profile refused, the version in force stays: %s", problem)
            return
        self.profile_errors = []
        for inst in catalog:
            old = self.catalog.instruments.get(inst.id)
            if not self.mine(inst) or (old is not None and old.profile == inst.profile):
                continue
            lane = self.lanes.get(inst.id)
            if lane is not None:
                async with lane.lock:
                    await self._seal(lane)  # the closed segment keeps the old profile's schema
                    if lane.sealing is not None:
                        await lane.sealing  # sealed with the old profile before it changes
                    self.catalog = Catalog({**self.catalog.instruments, inst.id: inst})
                    self.store.catalog = self.catalog
                    state = lane.processor.state if lane.processor else None
                    lane.instrument, lane.processor = inst, Processor(inst, state)
                    self.status[inst.id].instrument = inst
            else:
                self.catalog = Catalog({**self.catalog.instruments, inst.id: inst})
                self.store.catalog = self.catalog
            if lane is None:
                self._add_lane(inst.id, inst.topic(self.config.root), inst, None)
                new = self.lanes[inst.id]
                if self._tg is not None:
                    self._tg.create_task(self._run_lane(new))
                if self._client is not None and self.config.shards > 1:
                    await self._client.subscribe(new.topic, qos=1)
            self.profile_reloads += 1
            log.info("profile of %s in force (from %s)", inst.id, inst.path)

    # -- status, events and metrics out ----------------------------------------------------

    def _held(self) -> int:
        """Messages taken into the lanes and not yet durable, plus those in the client's queue:
        received from the broker and not acknowledged."""
        return self.unacked + (len(self._client.messages) if self._client else 0)

    def metrics(self) -> dict[str, object]:
        """Queue depths, batch sizes, lag, seals, store errors and rejects by reason.

        ``unacked`` reaching ``receive_maximum`` (the broker's in-flight window for us; None
        with MQTT 3.1.1, where the broker decides) means ingest is the bottleneck and the
        broker holds the rest; ``behind_s`` per lane then says by how much (see LaneMetrics).
        ``unacked`` above ``receive_maximum``: the broker does not keep to the window; at
        ``HOLD_HIGH`` the read gate stops reading (``read_paused``, ``read_pauses``).
        """
        return {
            "shard": f"{self.config.shard}/{self.config.shards}",
            "connected": self._client is not None,
            "unacked": self._held(),
            "receive_maximum": RECEIVE_MAXIMUM if self.config.protocol == "v5" else None,
            "read_paused": bool(self._gate and self._gate.paused),
            "read_pauses": self.read_pauses + (self._gate.pauses if self._gate else 0),
            "lanes": {
                lane.id: {"queue": lane.queue.qsize(), **dataclasses.asdict(lane.metrics)}
                for lane in self.lanes.values()
            },
            "rejects": dict(self.rejects),
            "events_published": self.events_published,
            "profile_reloads": self.profile_reloads,
            "profile_errors": self.profile_errors,
        }

    async def _publish_metrics(self) -> None:
        topic = f"{self.config.root}/metrics/ingest/{self.config.shard}"
        while True:
            await asyncio.sleep(METRICS_INTERVAL_S)
            if self._client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._client.publish(
                        topic, json.dumps(self.metrics()), qos=0, retain=True
                    )

    def _update_status(self, lane: _Lane, processed: Processed, recv: np.ndarray) -> None:
        st = self.status[lane.id]
        n = processed.raw.num_rows
        if n:
            st.last_recv_s = float(recv[-1]) / 1e9
            st.last_time_ns = int(processed.latest["time_ns"])  # type: ignore[call-overload]
            lengths = pc.binary_length(processed.raw.column("data"))
            st.bytes += int(pc.sum(lengths).as_py())
        st.packets += n
        for reason in processed.quarantine.column("reason").to_pylist():
            st.rejects[reason] = st.rejects.get(reason, 0) + 1
            self.rejects[reason] += 1
        st.latest.update(processed.latest.get("values", {}))
        st.states.update(processed.latest.get("states", {}))
        self._dirty.add(lane.id)

    async def _publish_events(self, lane: _Lane, processed: Processed) -> None:
        client, inst = self._client, lane.instrument
        if client is None or inst is None or not processed.events.num_rows:
            return
        topic = f"{self.config.root}/events/{inst.profile.partner}/{inst.id}"
        events = processed.events
        # ns timestamps as integers: pyarrow cannot make datetimes of sub-microsecond times.
        events = events.set_column(0, "time_ns", events.column("time").cast(pa.int64()))
        for row in events.to_pylist():
            row["instrument"] = inst.id
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(topic, json.dumps(row, default=str), qos=1)
                self.events_published += 1

    async def _publish_status(self) -> None:
        """Retained status per instrument, at most every status_interval_s; health changes
        (stale, offline) are noticed here even when nothing arrives."""
        health: dict[str, str] = {}
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            client = self._client
            if client is None:
                continue
            now = time.time()
            for lane_id, st in self.status.items():
                h = st.health(now)
                if lane_id not in self._dirty and health.get(lane_id) == h:
                    continue
                health[lane_id] = h
                self._dirty.discard(lane_id)
                p = st.instrument.profile
                topic = f"{self.config.root}/status/{p.partner}/{p.instrument}"
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(topic, st.to_json(now), qos=1, retain=True)


def _merge(parts: list[Processed]) -> Processed:
    """Consecutive batches of one lane as one, each table in one chunk (what sealing would
    concatenate anyway); the batches' tables have the schemas of one profile."""
    return Processed(
        *(
            pa.concat_tables([getattr(p, name) for p in parts]).combine_chunks()
            for name in ("raw", "telemetry", "events", "rollups", "quarantine")
        ),
        latest=parts[-1].latest,
    )


def _os_error(exc: BaseException) -> str:
    """`` (ENOSPC: No space left on device)`` for a StoreError caused by an OSError, else ''."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        name = errno.errorcode.get(cause.errno, str(cause.errno))
        return f" ({name}: {cause.strerror})"
    return ""
