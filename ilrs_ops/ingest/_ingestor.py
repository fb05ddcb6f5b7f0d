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

from ilrs_ops import wire
from ilrs_ops.backoff import Backoff
from ilrs_ops.errors import InputError, ProfileError, StoreError
from ilrs_ops.processing import Lane, Processed, ProcessState, recover, recover_lane, seal
from ilrs_ops.profiles import Catalog, CatalogOwner, Instrument, load_catalog
from ilrs_ops.sources import (
    RECEIVE_MAXIMUM,
    Protocol,
    ReadGate,
    Version,
    ack,
    connect,
    make_client,
    publish,
)
from ilrs_ops.store import UNKNOWN, Store
from ilrs_ops.wire import InstrumentStatus

log = logging.getLogger(__name__)

METRICS_INTERVAL_S = wire.METRICS_INTERVAL_S
#: A batch of at most this many messages is processed on the event loop: for a few packets
#: (about 1 ms of work) a worker thread costs more, waiting for the GIL behind the loop and
#: the other lanes (21 ms p50 from WAL to processed at nominal, measured). Larger batches
#: (a catch-up) go to a thread, so the loop keeps receiving.
INLINE_MESSAGES = 16


#: The golden ratio's fractional part: k * _GOLDEN mod 1 spreads any k lanes evenly over [0, 1).
_GOLDEN = 0.6180339887498949


def shard_of(instrument_id: str, shards: int) -> int:
    """The shard an instrument belongs to: a stable hash, the same in every process."""
    return zlib.crc32(instrument_id.encode()) % shards


@dataclass(frozen=True)
class IngestConfig:
    """How one ingest process connects, batches and seals."""

    host: str = "127.0.0.1"
    port: int = 1883
    protocol: Protocol = "auto"  # auto: MQTT 5, or 3.1.1 where the broker refuses 5
    root: str = "ilrs"  # topic root: {root}/tm/{partner}/{instrument}
    shard: int = 0
    shards: int = 1
    client_id: str | None = None  # fixed per shard, so the broker keeps our session
    username: str | None = None  # MQTT login (see `ilrs-ops broker-config`); None: anonymous
    password: str | None = field(default=None, repr=False)
    batch_messages: int = 2000  # a batch is committed at this many messages,
    batch_bytes: int = 8 << 20  # or this many payload bytes,
    batch_delay_s: float = 0.01  # or when its first message has waited this long; but a
    # message that came alone commits at once (a live trickle: the wait was 10 ms of each
    # packet's latency), and messages that queue up during a commit join the next batch
    lane_queue: int = 20_000  # messages waiting per instrument before the reader stops
    segment_messages: int = 200_000  # a WAL segment is sealed to Parquet at this many messages,
    segment_bytes: int = 256 << 20  # or when its processed tables held in memory reach this,
    segment_s: float = 60.0  # or at this age (a lane's first one is younger: _add_lane)
    status_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise InputError(f"shard {self.shard}/{self.shards}: use i/N with 0 <= i < N")
        for name in (
            "batch_messages",
            "batch_bytes",
            "lane_queue",
            "segment_messages",
            "segment_bytes",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1")

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


@dataclass(eq=False)
class _Feed:
    """One instrument's way through ingest: its queue, its Lane and its WAL segment's seal."""

    lane: Lane
    topic: str
    queue: asyncio.Queue[tuple[aiomqtt.Client, aiomqtt.Message, int]]
    metrics: LaneMetrics = field(default_factory=LaneMetrics)
    segment_started: float = field(default_factory=time.monotonic)
    sealing: asyncio.Task[None] | None = None  # the background seal of the previous segment
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # commits vs seals and reloads

    @property
    def id(self) -> str:
        return self.lane.id


class Committed:
    """A count that only grows, and waits for it to reach a value (on the event loop)."""

    def __init__(self) -> None:
        self.value = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def add(self, n: int) -> None:
        self.value += n
        for target, fut in list(self._waiting):
            if self.value >= target and not fut.done():
                fut.set_result(None)

    async def reach(self, target: int) -> None:
        if self.value >= target:
            return
        entry = (target, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        finally:
            self._waiting.remove(entry)


class Ingestor:
    """MQTT in, durable WAL, acks, lanes, status and events out; an async context manager.

    ``async with Ingestor(catalog=..., store=..., config=...) as ingestor:`` recovers what an
    earlier run left in the WAL, then runs in the background until the block ends, when every
    lane's open segment is sealed. ``ready()`` waits for the subscription, ``wait()`` for the
    end (raising what stopped it), ``committed`` counts the messages made durable and processed.

    ``catalog`` is a Catalog or the process's CatalogOwner. With ``profiles`` (the folder the
    catalog came from), profile files are watched: a new or changed valid profile goes live
    without a restart (through the owner); an invalid one is refused with its ProfileError and
    the version in force stays.
    """

    def __init__(
        self,
        *,
        catalog: Catalog | CatalogOwner,
        store: Store,
        config: IngestConfig | None = None,
        profiles: Path | None = None,
    ) -> None:
        self.catalogs = CatalogOwner.of(catalog)
        self.store = store
        self.config = config or IngestConfig()
        self.profiles = profiles
        self.profile_reloads = 0
        self.profile_errors: list[str] = []
        self.lanes: dict[str, _Feed] = {}
        self.status: dict[str, InstrumentStatus] = {}
        self.rejects: Counter[str] = Counter()
        self.events_published = 0
        self.committed = Committed()
        self.unacked = 0  # messages taken from the broker and not yet acknowledged
        self._client: aiomqtt.Client | None = None
        self.speaking: Version | None = None  # the MQTT version of the last connection
        self.last_error: str | None = None  # why the last connection failed or ended
        self._gate: ReadGate | None = None
        self.read_pauses = 0  # times the read gate stopped reading (connections before this one)
        self._dirty: set[str] = set()
        self._ready = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.current

    def mine(self, inst: Instrument) -> bool:
        return shard_of(inst.id, self.config.shards) == self.config.shard

    async def __aenter__(self) -> Ingestor:
        # Only this shard's lanes: the others' may be running in the same store. The unknown
        # lane is shard 0's to recover (only a single shard receives into it).
        lanes = {inst.id for inst in self.catalog if self.mine(inst)}
        if self.config.shard == 0:
            lanes.add(UNKNOWN)
        states = await asyncio.to_thread(recover, self.store, self.catalog, lanes)
        for inst in self.catalog:
            if self.mine(inst):
                self._add_lane(inst.id, inst.topic(self.config.root), inst, states.get(inst.id))
        if self.config.shards == 1:
            self._add_lane(UNKNOWN, wire.all_of(self.config.root, wire.TM), None, None)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the run and seal every lane, also when the run failed (its error is raised
        after the seal)."""
        try:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            await self._close()

    async def ready(self) -> None:
        """Returns once the subscription is in place (raises what stopped the ingestor, if
        it stopped before)."""
        assert self._task is not None, "use the Ingestor in `async with`"
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            self._task.result()

    async def wait(self) -> None:
        """Run until cancelled; raises what stopped the ingestor."""
        assert self._task is not None, "use the Ingestor in `async with`"
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for feed in self.lanes.values():
                tg.create_task(self._run_lane(feed))
            tg.create_task(self._publish_status())
            tg.create_task(self._publish_metrics())
            tg.create_task(self._read())
            if self.profiles is not None:
                tg.create_task(self._watch_profiles(self.profiles))

    def _add_lane(
        self, lane_id: str, topic: str, inst: Instrument | None, state: ProcessState | None
    ) -> _Feed:
        queue: asyncio.Queue = asyncio.Queue(self.config.lane_queue)
        feed = self.lanes[lane_id] = _Feed(Lane(lane_id, inst, state), topic, queue)
        # Lanes made together would seal together every segment_s: 17 seals at once held the
        # event loop 300 ms at 100x the station's rate (bench/RESULTS.md, "Seals in step").
        # The first segment of the k-th lane is cut short by a golden-ratio share of segment_s,
        # so the lanes' seals fall spread over it, whatever the number of lanes.
        feed.segment_started -= self.config.segment_s * ((len(self.lanes) - 1) * _GOLDEN % 1.0)
        if inst is not None:
            self.status[lane_id] = InstrumentStatus(inst)
            self._dirty.add(lane_id)
        return feed

    # -- MQTT in ---------------------------------------------------------------------------

    async def _read(self) -> None:
        """Take messages from the broker into their lanes; reconnect with backoff."""
        cfg = self.config
        backoff = Backoff()

        def make(version: Version) -> aiomqtt.Client:
            self.speaking = version
            return make_client(cfg.host, cfg.port, client_id=cfg.session_id, protocol=version,
                               username=cfg.username, password=cfg.password)  # fmt: skip

        while True:
            try:
                async with connect(cfg.host, cfg.port, make, cfg.protocol) as client:
                    # Status and events go out all in flight at once (_publish_all).
                    client.pending_calls_threshold = 10 * len(self.lanes) + 1000
                    self._client = client
                    self.last_error = None
                    if self._gate is not None:
                        self.read_pauses += self._gate.pauses
                    self._gate = gate = ReadGate(client)
                    backoff.reset()
                    # One subscription per message: overlapping ones would deliver copies.
                    if cfg.shards == 1:
                        await client.subscribe(wire.all_of(cfg.root, wire.TM), qos=1)
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
                        lane_id = wire.instrument_of(cfg.root, wire.TM, topic) or ""
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
                self.last_error = str(exc)
                await backoff.wait(log, f"ingest: broker {cfg.host}:{cfg.port}: {exc}")

    # -- lanes -----------------------------------------------------------------------------

    async def _run_lane(self, feed: _Feed) -> None:
        cfg = self.config
        while True:
            batch = await self._gather(feed)
            async with feed.lock:  # a segment's WAL rows and processed tables stay together
                await self._commit(feed, batch)
                lane = feed.lane
                if (
                    lane.segment_messages >= cfg.segment_messages
                    or lane.segment_bytes >= cfg.segment_bytes
                    or time.monotonic() - feed.segment_started >= cfg.segment_s
                ):
                    await self._seal(feed)

    async def _gather(self, feed: _Feed) -> list[tuple[aiomqtt.Client, aiomqtt.Message, int]]:
        cfg = self.config
        first = await feed.queue.get()
        batch = [first]
        size = len(first[1].payload)  # type: ignore[arg-type]
        deadline = time.monotonic() + cfg.batch_delay_s
        while len(batch) < cfg.batch_messages and size < cfg.batch_bytes:
            try:
                item = feed.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0 or len(batch) == 1:
                    break
                try:
                    item = await asyncio.wait_for(feed.queue.get(), left)
                except TimeoutError:
                    break
            batch.append(item)
            size += len(item[1].payload)  # type: ignore[arg-type]
        return batch

    async def _commit(
        self, feed: _Feed, batch: list[tuple[aiomqtt.Client, aiomqtt.Message, int]]
    ) -> None:
        """WAL append with one fsync, then the acks, then the lane."""
        recv = np.fromiter((r for _, _, r in batch), dtype=np.int64, count=len(batch))
        topics = [str(m.topic) for _, m, _ in batch]
        payloads = [bytes(m.payload) for _, m, _ in batch]  # type: ignore[arg-type]
        t0 = time.monotonic()
        await self._durable(feed, recv, topics, payloads)
        m = feed.metrics
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
        if len(batch) <= INLINE_MESSAGES:
            processed = feed.lane.feed(recv, topics, payloads)
        else:
            processed = await asyncio.to_thread(feed.lane.feed, recv, topics, payloads)
        if feed.lane.instrument is None:
            self.rejects[wire.UNKNOWN_INSTRUMENT] += len(batch)
        else:
            if processed.raw.num_rows:
                latest = int(processed.latest["time_ns"])  # type: ignore[call-overload]
                m.behind_s = time.time() - latest / 1e9
            self._update_status(feed, processed, recv)
            await self._publish_events(feed, processed)
        self.committed.add(len(batch))

    async def _durable(
        self, feed: _Feed, recv: np.ndarray, topics: list[str], payloads: list[bytes]
    ) -> None:
        """Append to the WAL; while the store refuses (disk full, read-only, file too large),
        acknowledge nothing, so the broker keeps the data, and retry with backoff. An episode
        is logged once when it starts (an error naming the store, the file and the OS error)
        and once when the store takes writes again; the retries in between only count."""
        m = feed.metrics
        failing_since: float | None = None
        backoff = Backoff()
        while True:
            try:
                wal = self.store.wal(feed.id)
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
                        feed.id,
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
                feed.id,
                self.store.root,
                time.monotonic() - failing_since,
                backoff.attempt,
            )

    async def _seal(self, feed: _Feed) -> None:
        """Close the lane's WAL segment now and write it as Parquet in the background, one
        seal at a time per lane, so ingest goes on while Parquet is written."""
        if feed.sealing is not None:
            await feed.sealing  # the previous seal first: the checkpoint only moves forward
        closed = self.store.wal(feed.id).rotate()
        tables, state = feed.lane.take()
        feed.segment_started = time.monotonic()
        if closed is None:
            return
        feed.sealing = asyncio.create_task(
            self._seal_segment(feed, closed, feed.lane.instrument, tables, state)
        )

    async def _seal_segment(
        self,
        feed: _Feed,
        segment: int,
        instrument: Instrument | None,
        tables: dict[str, pa.Table],
        state: ProcessState | None,
    ) -> None:
        try:
            await asyncio.to_thread(
                seal,
                self.store,
                feed.id,
                instrument,
                segment,
                tables,
                state,
            )
            feed.metrics.seals += 1
        except StoreError as exc:
            # The segment stays in the WAL; the next seal or recovery seals it by replay.
            feed.metrics.store_errors += 1
            log.error("ingest %s: sealing segment %d failed: %s", feed.id, segment, exc)

    async def _close(self) -> None:
        """After the run has stopped: seal every lane's open segment. Sealing re-runs the WAL
        from the checkpoint rather than trusting what a cancelled lane had processed."""
        for feed in self.lanes.values():
            if feed.sealing is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.sealing
            self.store.close_wal(feed.id)
            await asyncio.to_thread(recover_lane, self.store, feed.id, feed.lane.instrument)

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
            feed = self.lanes.get(inst.id)
            if feed is not None:
                async with feed.lock:
                    await self._seal(feed)  # the closed segment keeps the old profile's schema
                    if feed.sealing is not None:
                        await feed.sealing  # sealed with the old profile before it changes
                    self.catalogs.replace(Catalog({**self.catalog.instruments, inst.id: inst}))
                    feed.lane.reprofile(inst)
                    self.status[inst.id].instrument = inst
            else:
                self.catalogs.replace(Catalog({**self.catalog.instruments, inst.id: inst}))
                new = self._add_lane(inst.id, inst.topic(self.config.root), inst, None)
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
            "updated": time.time(),  # a reader can tell a dead shard's retained document
            "connected": self._client is not None,
            "unacked": self._held(),
            "receive_maximum": RECEIVE_MAXIMUM if self.speaking == "v5" else None,
            "read_paused": bool(self._gate and self._gate.paused),
            "read_pauses": self.read_pauses + (self._gate.pauses if self._gate else 0),
            "lanes": {
                feed.id: {"queue": feed.queue.qsize(), **dataclasses.asdict(feed.metrics)}
                for feed in self.lanes.values()
            },
            "rejects": dict(self.rejects),
            "events_published": self.events_published,
            "profile_reloads": self.profile_reloads,
            "profile_errors": self.profile_errors,
        }

    async def _publish_metrics(self) -> None:
        topic = wire.metrics_topic(self.config.root, self.config.shard)
        while True:
            await asyncio.sleep(METRICS_INTERVAL_S)
            if self._client is not None:
                with contextlib.suppress(aiomqtt.MqttError):  # a stop's cancel is kept
                    doc = json.dumps(self.metrics()).encode()
                    await publish(self._client, topic, doc, qos=0, retain=True)

    def _update_status(self, feed: _Feed, processed: Processed, recv: np.ndarray) -> None:
        st = self.status[feed.id]
        n = processed.raw.num_rows
        if n:
            st.last_recv_s = float(recv[-1]) / 1e9
            st.last_time_ns = int(processed.latest["time_ns"])  # type: ignore[call-overload]
            lengths = pc.binary_length(processed.raw.column("data"))
            st.bytes += int(pc.sum(lengths).as_py())
        st.packets += n
        events = processed.events
        if events.num_rows:
            gaps = events.filter(pc.equal(events.column("kind"), wire.GAP))
            st.gaps += gaps.num_rows
            st.missing += int(pc.sum(gaps.column("value")).as_py() or 0)
        for reason in processed.quarantine.column("reason").to_pylist():
            st.rejects[reason] = st.rejects.get(reason, 0) + 1
            self.rejects[reason] += 1
        st.latest.update(processed.latest.get("values", {}))
        st.states.update(processed.latest.get("states", {}))
        self._dirty.add(feed.id)

    async def _publish_events(self, feed: _Feed, processed: Processed) -> None:
        client, inst = self._client, feed.lane.instrument
        if client is None or inst is None or not processed.events.num_rows:
            return
        topic = wire.topic(self.config.root, wire.EVENTS, inst.profile.partner, inst.id)
        events = processed.events
        # ns timestamps as integers: pyarrow cannot make datetimes of sub-microsecond times.
        events = events.set_column(0, "time_ns", events.column("time").cast(pa.int64()))
        messages = [(topic, wire.event_json(row, inst.id), False) for row in events.to_pylist()]
        self.events_published += await _publish_all(client, messages)

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
            messages = []
            # A copy: a profile reload adds lanes while this loop awaits a publish (it crashed
            # `up` with "dictionary changed size during iteration" after a profile upload).
            for lane_id, st in list(self.status.items()):
                h = st.health(now)
                if lane_id not in self._dirty and health.get(lane_id) == h:
                    continue
                health[lane_id] = h
                self._dirty.discard(lane_id)
                p = st.instrument.profile
                topic = wire.topic(self.config.root, wire.STATUS, p.partner, p.instrument)
                messages.append((topic, st.to_json(now), True))
            await _publish_all(client, messages)


async def _publish_all(client: aiomqtt.Client, messages: list[tuple[str, bytes, bool]]) -> int:
    """Publish ``(topic, payload, retain)`` at QoS 1, all in flight at once rather than each
    waiting for the previous one's PUBACK (on a busy loop a status round of 17 instruments took
    17 round trips). The broker still gets them in this order: paho queues each publish before
    its task first waits. How many the broker took; a failed one is dropped (status is
    republished, events are in the store)."""
    if not messages:
        return 0
    sent = await asyncio.gather(
        *(publish(client, t, m, retain=r) for t, m, r in messages), return_exceptions=True
    )
    for result in sent:
        if isinstance(result, BaseException) and not isinstance(result, aiomqtt.MqttError):
            raise result
    return sum(1 for result in sent if not isinstance(result, BaseException))


def _os_error(exc: BaseException) -> str:
    """`` (ENOSPC: No space left on device)`` for a StoreError caused by an OSError, else ''."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        name = errno.errorcode.get(cause.errno, str(cause.errno))
        return f" ({name}: {cause.strerror})"
    return ""
