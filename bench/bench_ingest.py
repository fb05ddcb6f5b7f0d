"""Ingest throughput against raw aiomqtt, on a private Mosquitto, in one run.

Run: .venv/bin/python bench/bench_ingest.py [--p1 N] [--rover N] [--seis N] [--no-profile]

Method (isolates the receiver from the publisher): a private Mosquitto on a free port
(unlimited queues and in-flight window, no persistence). Per scenario, three persistent MQTT 5
sessions subscribe QoS 1 to the scenario's topic root and go offline: raw-a, ingest, raw-b.
A fast paho publisher then sends N messages at QoS 1, which the broker queues for each session.
The receivers connect one after the other (raw-a, ingest, raw-b, so drift shows) and each is
timed from before its CONNECT until it has everything:

- raw: a plain aiomqtt MQTT 5 client, Receive Maximum as ingest's, auto-ack, counting messages;
- ingest: an in-process ``Ingestor`` on a fresh tmp Store, until the lanes' metrics show N
  messages committed (WAL append + fsync, then PUBACK) ("durable") and the status shows every
  packet processed ("processed"). Afterwards the ingest session is reconnected to check that
  the broker holds nothing more for it (every message acknowledged).

Scenarios: P1 single-packet messages of the SUPARCO rover (target: durable ingest >= 0.9 x raw
msg/s); P2 frames of 100 packets of the rover and of the CNSA seismometer (target >= 1 M
packets/s end to end). Samples = decoded channel values per packet (array elements count each).
Then, unless --no-profile, one more ingest run per profile under cProfile (main thread and the
``asyncio.to_thread`` workers merged) shows where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import importlib.metadata
import io
import os
import pstats
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Catalog, Instrument, load_profile
from ilrs_ops.sim import Environment, Module
from ilrs_ops.sources import RECEIVE_MAXIMUM, make_client
from ilrs_ops.store import Store, WalWriter

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
NS = 1_000_000_000
START = 1_795_000_000 * NS  # packet time of the first packet (fixed: reproducible packets)
#: A receive time after every packet's own time, for processing without MQTT: a packet stamped
#: after its receive time is quarantined as bad_time (from the future).
LATER = START + 10**17
TIMEOUT_S = 240.0


# ---------------------------------------------------------------------- broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    port: int
    pid: int

    def cpu_s(self) -> float:
        """User + system CPU seconds of the broker process so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            parts = f.read().rpartition(")")[2].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def private_mosquitto(binary: str, extra: str = "") -> Iterator[Broker]:
    """A Mosquitto of our own on a free port, with its config in a temp dir (plus ``extra``
    config lines); stopped after."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-mosquitto-"))
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\n"
        "allow_anonymous true\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "persistence false\n"
        "log_dest stderr\n" + extra
    )
    log = (tmp / "mosquitto.log").open("wb")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited ({proc.returncode}): {(tmp / 'mosquitto.log').read_text()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {HOST}:{port}")
            time.sleep(0.05)
        yield Broker(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- MQTT helpers


def raw_client(port: int, client_id: str) -> aiomqtt.Client:
    """The baseline: plain aiomqtt, MQTT 5, persistent session, ingest's Receive Maximum,
    paho's automatic PUBACK."""
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    props.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        HOST,
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    )


async def create_session(client: aiomqtt.Client, topic_filter: str) -> None:
    async with client:
        await client.subscribe(topic_filter, qos=1)


def publish(port: int, topic: str, payloads: list[bytes]) -> float:
    """Publish every payload at QoS 1 from a paho client with a wide window; returns the
    seconds until the broker acknowledged the last one (it has queued them by then). At most
    20k are outstanding: paho refuses a message whose 16-bit message id is still in flight."""
    connected, done = threading.Event(), threading.Event()
    window = threading.Semaphore(20_000)
    acked = [0]

    def on_connect(client, userdata, flags, reason, props) -> None:
        connected.set()

    def on_publish(client, userdata, mid, reason, props) -> None:
        acked[0] += 1
        window.release()
        if acked[0] == len(payloads):
            done.set()

    c = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{topic}", protocol=paho.MQTTv5
    )
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.on_connect, c.on_publish = on_connect, on_publish
    c.connect(HOST, port)
    c.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("publisher: no CONNACK")
        t0 = time.perf_counter()
        for p in payloads:
            if not window.acquire(timeout=TIMEOUT_S):
                raise RuntimeError("publisher: the broker stopped acknowledging")
            info = c.publish(topic, p, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {paho.error_string(info.rc)}")
        if not done.wait(TIMEOUT_S):
            raise RuntimeError(f"publisher: {acked[0]} of {len(payloads)} acknowledged")
        return time.perf_counter() - t0
    finally:
        c.disconnect()
        c.loop_stop()


async def raw_receive(port: int, client_id: str, n: int) -> float:
    """Seconds from before CONNECT until the n-th queued message has arrived."""
    got = 0
    t0 = time.perf_counter()
    async with asyncio.timeout(TIMEOUT_S), raw_client(port, client_id) as client:
        async for _ in client.messages:
            got += 1
            if got >= n:
                break
        return time.perf_counter() - t0


async def left_in_broker(port: int, client_id: str, wait_s: float = 1.0) -> int:
    """Messages the broker still delivers to a session (unacknowledged ones come again)."""
    n = 0
    async with make_client(HOST, port, client_id=client_id) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                async for _ in client.messages:
                    n += 1
    return n


# ---------------------------------------------------------------------- instrumentation


@dataclass
class Split:
    """Wall and CPU seconds per wrapped call site (the per-batch steps of a lane)."""

    wall: Counter[str] = field(default_factory=Counter)
    cpu: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    active: bool = True  # off once the timed window ends (close() seals by replay)

    def timed(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not self.active:
                return fn(*args, **kwargs)
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - t0
                self.cpu[name] += time.thread_time() - c0
                self.calls[name] += 1

        return wrapper

    def timed_async(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            if not self.active:
                return await fn(*args, **kwargs)
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - t0
                self.calls[name] += 1

        return wrapper


@contextlib.contextmanager
def patched(*patches: tuple[object, str, object]) -> Iterator[None]:
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, new in patches:
            setattr(obj, name, new)
        yield
    finally:
        for obj, name, old in reversed(saved):
            setattr(obj, name, old)


def split_patches(split: Split) -> list[tuple[object, str, object]]:
    """Per-batch timers only (nothing per message), so the timed run is not slowed."""
    return [
        (WalWriter, "append", split.timed("wal_append", WalWriter.append)),
        (os, "fsync", split.timed("fsync", os.fsync)),
        (Processor, "process", split.timed("process", Processor.process)),
        (Ingestor, "_update_status", split.timed("status", Ingestor._update_status)),
        (Ingestor, "_publish_events", split.timed_async("events", Ingestor._publish_events)),
    ]


class ThreadProfiles:
    """cProfile of the ``asyncio.to_thread`` workers: one profiler per worker thread, on only
    while it runs a call (Python 3.11 profiles one thread per profiler). ``restart`` begins a
    new set of profilers (for the seal after the ingest window)."""

    def __init__(self) -> None:
        self.active = True
        self.restart()
        self._orig = asyncio.to_thread

    def restart(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()

    def patch(self) -> tuple[object, str, object]:
        async def to_thread(func, /, *args, **kwargs):
            def run():
                if not self.active:
                    return func(*args, **kwargs)
                prof = getattr(self._local, "prof", None)
                if prof is None:
                    prof = self._local.prof = cProfile.Profile()
                    self.profiles.append(prof)
                prof.enable()
                try:
                    return func(*args, **kwargs)
                finally:
                    prof.disable()

            return await self._orig(run)

        return (asyncio, "to_thread", to_thread)

    def stats(self, main: cProfile.Profile | None = None) -> pstats.Stats | None:
        profs = ([main] if main is not None else []) + self.profiles
        if not profs:
            return None
        stats = pstats.Stats(profs[0])
        for prof in profs[1:]:
            stats.add(prof)
        return stats


def busy_cpu_s() -> float:
    """CPU seconds all processes of the machine have used (non-idle time of /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- ingest run


@dataclass
class IngestRun:
    durable_s: float
    processed_s: float
    main_cpu_s: float  # the event-loop thread of the bench process (the ingestor's)
    worker_cpu_s: float  # the bench process's other threads (to_thread workers)
    broker_cpu_s: float
    other_cpu_s: float  # every other process of the machine, during the ingest window
    batches: int
    rejects: dict[str, int]
    held_bytes: int  # processed tables the lanes hold for the seal when the window ends
    seal_s: float  # the lanes' own seal of what they hold (Parquet), after the window
    left: int
    split: Split
    stats: pstats.Stats | None = None
    seal_stats: pstats.Stats | None = None


def held_bytes(ingestor: Ingestor) -> int:
    total = 0
    for feed in ingestor.lanes.values():
        total += feed.lane.segment_bytes
    return total


async def ingest_receive(
    broker: Broker,
    catalog: Catalog,
    root: str,
    client_id: str,
    n_msgs: int,
    n_packets: int,
    profile: bool = False,
) -> IngestRun:
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    split = Split()
    threads = ThreadProfiles()
    patches = split_patches(split) + ([threads.patch()] if profile else [])
    main_prof = cProfile.Profile() if profile else None
    try:
        with Store(tmp) as store, patched(*patches):
            config = IngestConfig(host=HOST, port=broker.port, root=root, client_id=client_id)
            ingestor = Ingestor(catalog=catalog, store=store, config=config)
            await ingestor.__aenter__()  # recovery of the empty store: before the clock
            cpu0, main0 = time.process_time(), time.thread_time()
            broker0, busy0 = broker.cpu_s(), busy_cpu_s()
            if main_prof is not None:
                main_prof.enable()
            t0 = time.perf_counter()
            task = ingestor._task  # the ingestor's own run, cancelled below as a shutdown would
            assert task is not None
            durable_s = processed_s = None
            while processed_s is None:
                await asyncio.sleep(0.005)
                if task.done():
                    task.result()
                    raise RuntimeError("the ingestor stopped")
                now = time.perf_counter() - t0
                if now > TIMEOUT_S:
                    raise RuntimeError(f"ingest did not finish in {TIMEOUT_S:.0f}s")
                lanes = list(ingestor.lanes.values())
                if durable_s is None and sum(la.metrics.messages for la in lanes) >= n_msgs:
                    durable_s = now
                done = sum(st.packets + sum(st.rejects.values()) for st in ingestor.status.values())
                if durable_s is not None and done >= n_packets:
                    processed_s = now
            split.active = threads.active = False
            if main_prof is not None:
                main_prof.disable()
            main_cpu = time.thread_time() - main0
            worker_cpu = time.process_time() - cpu0 - main_cpu
            broker_cpu = broker.cpu_s() - broker0
            # /proc/stat ticks are 10 ms: a short window can come out slightly negative.
            other_cpu = max(0.0, busy_cpu_s() - busy0 - main_cpu - worker_cpu - broker_cpu)
            await asyncio.sleep(0.3)  # let the last PUBACKs leave before we disconnect
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Seal what the lanes hold as the ingestor does when a segment is full
            # (Ingestor._seal: Parquet from the processed tables, no replay), timed apart.
            held = held_bytes(ingestor)
            stats = threads.stats(main_prof) if profile else None
            threads.restart()
            threads.active = profile
            t1 = time.perf_counter()
            for lane in ingestor.lanes.values():
                await ingestor._seal(lane)
            for lane in ingestor.lanes.values():
                if lane.sealing is not None:
                    await lane.sealing
            seal_s = time.perf_counter() - t1
            threads.active = False
            seal_stats = threads.stats()
            await ingestor.__aexit__(None, None, None)  # nothing is left to seal
            batches = sum(la.metrics.batches for la in ingestor.lanes.values())
            rejects = dict(ingestor.rejects)
            metrics = [la.metrics for la in ingestor.lanes.values()]
            if sum(m.store_errors for m in metrics):
                raise RuntimeError(f"store errors: {metrics}")
        left = await left_in_broker(broker.port, client_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IngestRun(
        durable_s,
        processed_s,
        main_cpu,
        worker_cpu,
        broker_cpu,
        other_cpu,
        batches,
        rejects,
        held,
        seal_s,
        left,
        split,
        stats,
        seal_stats,
    )


# ---------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    inst: Instrument
    payloads: list[bytes]
    per_msg: int

    @property
    def packets(self) -> int:
        return len(self.payloads) * self.per_msg

    @property
    def samples_per_packet(self) -> int:
        return sum(f.count or 1 for f in self.inst.profile.fields if not f.ignore)


@dataclass
class Result:
    scenario: Scenario
    publish_s: float
    raw_s: list[float]
    ingest: IngestRun


def make_packets(inst: Instrument, n: int, seed: int) -> bytes:
    """n packets of ``inst`` from the simulator's Module.next_batch, concatenated."""
    m = Module(inst, Environment(epoch_ns=START), seed=seed, start_ns=START)
    parts = []
    while m.index < n:
        parts.append(b"".join(m.next_batch(min(50_000, n - m.index)).packets))
    return b"".join(parts)


def frames(buf: bytes, size: int) -> list[bytes]:
    return [buf[i : i + size] for i in range(0, len(buf), size)]


def warm_up(catalog: Catalog) -> None:
    """Load the Numba caches and pyarrow paths before anything is timed."""
    for inst in catalog:
        buf = make_packets(inst, 64, seed=99)
        recv = np.full(8, LATER, np.int64)
        Processor(inst).process(frames(buf, 8 * inst.profile.packet_length), recv, "warm")


async def run_scenario(broker: Broker, catalog: Catalog, sc: Scenario, root: str) -> Result:
    topic = sc.inst.topic(root)
    ids = {k: f"{root}-{k}" for k in ("raw-a", "ingest", "raw-b")}
    await create_session(raw_client(broker.port, ids["raw-a"]), f"{root}/tm/#")
    await create_session(make_client(HOST, broker.port, client_id=ids["ingest"]), f"{root}/tm/#")
    await create_session(raw_client(broker.port, ids["raw-b"]), f"{root}/tm/#")
    publish_s = await asyncio.to_thread(publish, broker.port, topic, sc.payloads)
    n = len(sc.payloads)
    raw_a = await raw_receive(broker.port, ids["raw-a"], n)
    ing = await ingest_receive(broker, catalog, root, ids["ingest"], n, sc.packets)
    raw_b = await raw_receive(broker.port, ids["raw-b"], n)
    return Result(sc, publish_s, [raw_a, raw_b], ing)


async def profile_scenario(broker: Broker, catalog: Catalog, sc: Scenario, root: str) -> IngestRun:
    cid = f"{root}-ingest"
    await create_session(make_client(HOST, broker.port, client_id=cid), f"{root}/tm/#")
    await asyncio.to_thread(publish, broker.port, sc.inst.topic(root), sc.payloads)
    return await ingest_receive(
        broker, catalog, root, cid, len(sc.payloads), sc.packets, profile=True
    )


# ---------------------------------------------------------------------- report


def si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}" if x / scale < 100 else f"{x / scale:.0f}{unit}"
    return f"{x:.3g}"


def table(rows: list[list[str]]) -> str:
    """Rows as aligned text: the first column left, the others right, a rule under the head."""
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if k else c.ljust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(rows[0]), "  ".join("-" * w for w in widths), *map(line, rows[1:])])


def report(results: list[Result], alone: dict[str, tuple[float, float]]) -> None:
    rows = [
        [
            "scenario",
            "msgs",
            "pkt/msg",
            "raw msg/s a|b",
            "ingest msg/s",
            "ratio",
            "raw pkt/s",
            "ingest pkt/s",
            "samples/s",
            "target",
        ]
    ]
    for r in results:
        sc, ing = r.scenario, r.ingest
        n = len(sc.payloads)
        raw_rates = [n / t for t in r.raw_s]
        raw = sum(raw_rates) / len(raw_rates)
        if sc.per_msg == 1:
            rate = n / ing.durable_s
            target = f"ratio {rate / raw:.2f} {'>=' if rate / raw >= 0.9 else '<'} 0.9"
        else:
            rate = n / ing.processed_s
            pk = sc.packets / ing.processed_s
            target = f"{pk / 1e6:.2f}M {'>=' if pk >= 1e6 else '<'} 1M pkt/s"
        pkt_rate = sc.packets / ing.processed_s
        rows.append(
            [
                sc.name,
                f"{n:,}",
                str(sc.per_msg),
                f"{si(raw_rates[0])}|{si(raw_rates[1])}",
                si(rate),
                f"{rate / raw:.2f}",
                si(raw * sc.per_msg),
                si(pkt_rate),
                si(pkt_rate * sc.samples_per_packet),
                target,
            ]
        )
    print(table(rows))
    print(
        "ingest msg/s: P1 to durable+acked; P2 to processed (durable, acked, pipelines, status)."
        " ratio = ingest / mean(raw a, raw b). samples = decoded channel values per packet"
        " (rover 23, seismometer 154)."
    )
    rows = [
        [
            "ingest run",
            "durable s",
            "processed s",
            "batches",
            "main CPU",
            "worker CPU",
            "broker CPU",
            "others CPU",
            "WAL append",
            "(fsync)",
            "process",
            "status",
            "process alone kept|dropped",
            "held MB",
            "seal s",
            "seal pkt/s",
            "left",
        ]
    ]
    for r in results:
        ing, s, sc = r.ingest, r.ingest.split, r.scenario
        kept, dropped = alone[sc.name]
        rows.append(
            [
                sc.name,
                f"{ing.durable_s:.2f}",
                f"{ing.processed_s:.2f}",
                f"{ing.batches} ({len(sc.payloads) / max(ing.batches, 1):.0f} msg)",
                f"{ing.main_cpu_s:.2f}",
                f"{ing.worker_cpu_s:.2f}",
                f"{ing.broker_cpu_s:.2f}",
                f"{ing.other_cpu_s:.2f}",
                f"{s.wall['wal_append']:.2f}",
                f"{s.wall['fsync']:.2f}",
                f"{s.wall['process']:.2f}",
                f"{s.wall['status'] + s.wall['events']:.2f}",
                f"{kept:.2f}|{dropped:.2f}",
                f"{ing.held_bytes / 1e6:,.0f}",
                f"{ing.seal_s:.2f}",
                si(sc.packets / ing.seal_s),
                str(ing.left),
            ]
        )
    print()
    print(table(rows))
    rejects = {r.scenario.name: r.ingest.rejects for r in results if r.ingest.rejects}
    print(
        "seconds. main CPU = the event-loop thread (MQTT receive, lanes, acks, status); worker"
        " = to_thread workers; others = every other process on the machine in the same window."
        " WAL append (fsync part of it), process, status = wall time summed over batches."
        " process alone = Processor.process on the same batches outside ingest, its outputs"
        " kept (as lane.pending keeps them until the seal) | dropped. held = processed tables"
        " the lanes hold for the seal at the end; seal = Ingestor._seal of them to Parquet"
        " (after the window, not in the rates). left = messages the broker still had for the"
        f" ingest session afterwards (must be 0). rejects: {rejects or 'none'}."
    )


def profile_report(name: str, stats: pstats.Stats, wall_s: float, top: int) -> None:
    groups: Counter[str] = Counter()
    keys = (
        ("select", "(idle: epoll)"),
        ("paho", "paho"),
        ("aiomqtt", "aiomqtt"),
        ("asyncio", "asyncio"),
        ("ilrs_ops/ingest", "ilrs_ops.ingest"),
        ("ilrs_ops/store", "ilrs_ops.store"),
        ("ilrs_ops/processing", "ilrs_ops.processing"),
        ("pipelines", "pipelines"),
        ("pyarrow", "pyarrow"),
        ("numpy", "numpy"),
        ("fsync", "os.fsync"),
    )
    total = 0.0
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        label = next((lab for k, lab in keys if k in file or k in func), "other")
        groups[label] += tt
    print(f"\ncProfile, {name}: {wall_s:.2f}s wall under the profiler")
    shares = [f"{lab} {t:.2f}s ({t / total:.0%})" for lab, t in groups.most_common(8)]
    print("  own time by package: " + ", ".join(shares))
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    start = text.find("   ncalls")
    print(text[start:].rstrip() if start >= 0 else text)


def process_alone(sc: Scenario, batch_msgs: int) -> tuple[float, float]:
    """Seconds of Processor.process over the scenario's messages in ingest's batches, with
    the outputs kept (as a lane keeps them until its seal) and dropped."""
    out = []
    for keep in (True, False):
        proc = Processor(sc.inst)
        kept = []
        t0 = time.perf_counter()
        for b in range(0, len(sc.payloads), batch_msgs):
            part = sc.payloads[b : b + batch_msgs]
            p = proc.process(part, np.full(len(part), LATER, np.int64), "bench")
            if keep:
                kept.append(p)
        out.append(time.perf_counter() - t0)
        del kept
    return out[0], out[1]


# ---------------------------------------------------------------------- main


async def amain(args: argparse.Namespace) -> None:
    rover = Instrument(load_profile(p := ROOT / "hardware_profiles/suparco/rover-1.yaml"), p)
    seis = Instrument(load_profile(p := ROOT / "hardware_profiles/cnsa/seismometer.yaml"), p)
    catalog = Catalog({rover.id: rover, seis.id: seis})
    t = time.perf_counter()
    warm_up(catalog)
    per = args.per_frame
    rover_p1 = make_packets(rover, args.p1, seed=1)
    rover_p2 = make_packets(rover, args.rover * per, seed=2)
    seis_p2 = make_packets(seis, args.seis * per, seed=3)
    size_r, size_s = rover.profile.packet_length, seis.profile.packet_length
    scenarios = [
        Scenario("P1 rover 1 pkt/msg", rover, frames(rover_p1, size_r), 1),
        Scenario(f"P2 rover x{per}", rover, frames(rover_p2, per * size_r), per),
        Scenario(f"P2 seismometer x{per}", seis, frames(seis_p2, per * size_s), per),
    ]
    del rover_p1, rover_p2, seis_p2
    print(f"packets generated (Module.next_batch) in {time.perf_counter() - t:.1f}s")
    results, profiles = [], []
    with private_mosquitto(args.mosquitto) as broker:
        print(f"private mosquitto pid {broker.pid} on {HOST}:{broker.port}")
        for k, sc in enumerate(scenarios):
            r = await run_scenario(broker, catalog, sc, f"bench{k}")
            n = len(sc.payloads)
            print(
                f"  {sc.name}: published {n:,} msgs in {r.publish_s:.1f}s ({si(n / r.publish_s)}"
                f" msg/s); raw {r.raw_s[0]:.2f}s / {r.raw_s[1]:.2f}s; ingest durable"
                f" {r.ingest.durable_s:.2f}s, processed {r.ingest.processed_s:.2f}s,"
                f" seal {r.ingest.seal_s:.2f}s",
                flush=True,
            )
            results.append(r)
        if args.profile:
            for k, sc in enumerate(scenarios[:2]):
                n = max(1, len(sc.payloads) // 2)
                small = Scenario(sc.name, sc.inst, sc.payloads[:n], sc.per_msg)
                run = await profile_scenario(broker, catalog, small, f"prof{k}")
                profiles.append((f"{n:,} msgs", small, run))
    alone = {}
    for r in results:
        batch = max(1, round(len(r.scenario.payloads) / max(r.ingest.batches, 1)))
        alone[r.scenario.name] = process_alone(r.scenario, batch)
    print()
    report(results, alone)
    for what, sc, run in profiles:
        if run.stats is not None:
            name = f"ingest of {sc.name} ({what}; main thread + to_thread workers)"
            profile_report(name, run.stats, run.processed_s, args.top)
        if run.seal_stats is not None and sc.per_msg > 1:
            name = f"seal of {sc.name} ({what}; the seal worker)"
            profile_report(name, run.seal_stats, run.seal_s, args.top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p1", type=int, default=100_000, help="P1 single-packet messages")
    ap.add_argument("--rover", type=int, default=10_000, help="P2 rover messages (frames)")
    ap.add_argument("--seis", type=int, default=3_000, help="P2 seismometer messages (frames)")
    ap.add_argument("--per-frame", type=int, default=100, help="P2 packets per message")
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--top", type=int, default=12, help="profile lines to print")
    ap.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    args = ap.parse_args()
    print("command: " + shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min) at start;"
        f" python {sys.version.split()[0]}, aiomqtt {aiomqtt.__version__}, paho-mqtt"
        f" {importlib.metadata.version('paho-mqtt')}"
    )
    t0 = time.perf_counter()
    busy0 = busy_cpu_s()
    asyncio.run(amain(args))
    wall = time.perf_counter() - t0
    print(
        f"\ntotal {wall:.0f}s; load average {os.getloadavg()[0]:.2f} at end; the machine was"
        f" busy {(busy_cpu_s() - busy0) / wall:.2f} of {os.cpu_count()} CPUs on average"
    )


if __name__ == "__main__":
    main()
