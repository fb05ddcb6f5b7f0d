"""Console latency: publish-to-WebSocket at nominal, 10x and 100x load, and GET /api/status under
load.

Run: .venv/bin/python bench/bench_console.py [--nominal-s 40] [--fast-s 30] [--factors 10,100]
     [--framed 1000:50] [--rate 200] [--load-fast] [--sim-process [--paced]]
     [--ingest-process [N]]
     [--client-nodelay] [--nodelay]   (diagnostics: TCP_NODELAY on the in-process paho
     sockets / Mosquitto set_tcp_nodelay; off by default, as shipped)

One run on a private Mosquitto (as bench_ingest.py starts it), with an in-process Ingestor
(fresh tmp Store, ``status_interval_s`` set low, default 0.05 s, so the status cadence is not
what is measured; ``batch_delay_s`` left at its default), the console served by uvicorn
through ``ilrs_ops.console.serve`` and the station's Simulator with ``Faults(limit=...)`` so
limit events flow, all in one event loop as ``ilrs-ops up`` runs them. The clients run in
their own processes (spawned), so their CPU and event loop are not the server's. With
``--sim-process`` each phase's simulator runs in a process of its own; with ``--ingest-process``
the ingest does too (its own Store on the folder the console reads, as ``ilrs-ops ingest`` and
``ilrs-ops console`` run), so the console's WebSocket fan-out and the ingest's batches no longer
queue on one event loop; with ``--paced`` each phase's packets are made ahead by the simulator's
Modules and published on their schedule by one client (``paced_worker``: the Simulator itself
cannot keep 100x on one core). The clients:

- a WebSocket client on ``/api/live?token=...`` (operator token) stamps every message with
  ``time.time_ns()`` on receipt, before parsing;
- for the status phase, an ``httpx.AsyncClient`` fires ``GET /api/status`` open loop at a
  fixed rate (request i is started at t0 + i/rate whatever earlier ones are doing); latency is
  counted from the scheduled start, so a stall is not hidden (and from the actual send).

Publish time: the simulator stamps packet k ``start + k * period`` and publishes it at that
wall time (it sleeps until due). Rather than trust that, each Module's ``next_batch`` is
wrapped to record ``time.time_ns()`` as the packet leaves the generator, just before
``client.publish``: the measured publish time, looked up by (instrument, packet time). Latency =
WebSocket receive time - that publish time, for

- events (limit transitions): the packet time of the event (``time_ns``);
- status messages: the status's ``last_packet_time_ns`` (the newest packet it covers), each
  (instrument, packet) counted once (a health-only republication is skipped).

Decoded packet times are truncated by the time code (1/256 s at worst here), so the lookup
takes the latest published packet at or before the decoded time + 5 ms (periods are >= 0.1 s).
The latency against the packet's own timestamp (receive - packet time) is shown too.

Phases (one run, one broker/ingest/console): nominal = the 17-instrument station at its
profile rates; 10x (each of ``--factors``) = the same instruments with ``expected_period_s``
divided by 10 (Profile copies, another Simulator with another seed); status = nominal again
while the load generator runs (with ``--load-fast``, it also runs through each faster phase).
The first ``--settle-s`` seconds of each phase are not counted; with ``--paced`` a phase
begins once its packets are made.

Breakdown: status messages carry the ingest receive time (``last_recv``); the console's MQTT
receive time is recorded by wrapping ``StationState.apply``; the ingest's per-batch steps are
timed with bench_ingest's Split; GET /api/status is also timed inside the server (an ASGI
wrapper around the app ``serve`` builds). Whole-machine CPU use is read from /proc/stat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing as mp
import os
import queue
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import HOST, Split, free_port, patched, private_mosquitto, split_patches, table

from ilrs_ops._commands import freeze_heap
from ilrs_ops.console import ConsoleSettings, StationState, Update, create_token, serve
from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Catalog, Instrument, load_catalog
from ilrs_ops.sim import Environment, Faults, Module, Simulator
from ilrs_ops.store import Store

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "hardware_profiles"
NS = 1_000_000_000
MS = 1_000_000
TOPIC_ROOT = "benchc"
MATCH_SLACK_NS = 5 * MS


# ---------------------------------------------------------------------- broker


#: Mosquitto's Nagle switch (off by default), for --nodelay.
NODELAY = "set_tcp_nodelay true\n"


def timed_app_patch(server_ms: list[tuple[float, float]]) -> tuple[object, str, object]:
    """``serve`` builds its app with this: a pure ASGI wrapper that records, per GET
    /api/status, (start wall s, ms from the request reaching the app to its last body byte
    handed to uvicorn)."""
    import ilrs_ops.console._serve as serve_mod

    orig = serve_mod.create_app

    def create(settings: ConsoleSettings):
        app = orig(settings)

        async def timed(scope, receive, send):
            if scope["type"] != "http" or scope.get("path") != "/api/status":
                return await app(scope, receive, send)
            t0, w0 = time.perf_counter(), time.time()
            try:
                return await app(scope, receive, send)
            finally:
                server_ms.append((w0, (time.perf_counter() - t0) * 1e3))

        timed.state = app.state  # type: ignore[attr-defined]
        return timed

    return (serve_mod, "create_app", create)


def paho_nodelay_patch() -> tuple[object, str, object]:
    """Diagnostic: TCP_NODELAY on every paho socket of this process (ingest, console
    follower, simulator); paho leaves Nagle on."""
    import paho.mqtt.client as paho

    orig = paho.Client._create_socket_connection

    def create(self: paho.Client) -> socket.socket:
        sock = orig(self)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    return (paho.Client, "_create_socket_connection", create)


# ---------------------------------------------------------------------- client processes


def ws_worker(url: str, token: str, out: mp.Queue, stop: mp.Event) -> None:
    """Spawned: follow /api/live until ``stop``; put [(recv_ns, text)] then None on ``out``."""
    import websockets

    async def run() -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        ws_url = url.replace("http://", "ws://", 1)
        async with websockets.connect(f"{ws_url}/api/live?token={token}", max_size=None) as ws:
            first = await ws.recv()
            out.put(("ready", json.loads(first)["type"]))
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                got.append((time.time_ns(), msg if isinstance(msg, str) else msg.decode()))
        return got

    try:
        out.put(("done", asyncio.run(run())))
    except Exception as exc:  # report, do not hang the parent
        out.put(("error", repr(exc)))


def load_worker(url: str, token: str, rate: float, duration_s: float, out: mp.Queue) -> None:
    """Spawned: GET /api/status open loop at ``rate``/s for ``duration_s``; results on ``out``."""
    import httpx

    async def run() -> dict[str, object]:
        n = round(rate * duration_s)
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=30.0
        ) as client:
            for _ in range(20):  # warm: connections, routes
                (await client.get("/api/status")).raise_for_status()
            loop = asyncio.get_running_loop()

            async def one(sched: float) -> tuple[float, float, int, int]:
                sent = loop.time()
                try:
                    r = await client.get("/api/status")
                    code, size = r.status_code, len(r.content)
                except httpx.HTTPError:
                    code, size = -1, 0
                end = loop.time()
                return end - sched, end - sent, code, size

            t0 = loop.time() + 0.1
            cpu0 = time.process_time()
            tasks = []
            lateness = []
            for i in range(n):
                sched = t0 + i / rate
                delay = sched - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                lateness.append(loop.time() - sched)
                tasks.append(asyncio.create_task(one(sched)))
            fired_s = loop.time() - t0
            res = await asyncio.gather(*tasks)
            client_cpu = (time.process_time() - cpu0) / (loop.time() - t0)
            return {
                "from_sched": [r[0] for r in res],
                "from_send": [r[1] for r in res],
                "codes": [r[2] for r in res],
                "bytes": [r[3] for r in res],
                "fired_s": fired_s,
                "max_fire_late_s": max(lateness),
                "n": n,
                "client_cpu": client_cpu,
                "t0_wall": time.time() - (loop.time() - t0),
                "wall_s": loop.time() - t0,
            }

    try:
        out.put(("done", asyncio.run(run())))
    except Exception as exc:
        out.put(("error", repr(exc)))


async def from_queue(q: mp.Queue, timeout_s: float) -> tuple[str, object]:
    kind, value = await asyncio.to_thread(q.get, True, timeout_s)
    if kind == "error":
        raise RuntimeError(f"client process failed: {value}")
    return kind, value


# ---------------------------------------------------------------------- station side


def fast_catalog(catalog: Catalog, factor: float) -> Catalog:
    """The same instruments with expected_period_s divided by ``factor``."""
    out = {}
    for inst in catalog:
        p = inst.profile
        q = p.model_copy(update={"expected_period_s": p.expected_period_s / factor})
        out[inst.id] = Instrument(q, inst.path)
    return Catalog(out)


def phase_catalog(factor: float) -> Catalog:
    """The station's instruments at ``factor`` times their rates, as a phase runs them."""
    catalog = load_catalog([PROFILES])
    return catalog if factor == 1.0 else fast_catalog(catalog, factor)


def sim_worker(
    factor: float,
    seed: int,
    duration_s: float,
    port: int,
    faults: Faults,
    out: mp.Queue,
    bundle: int = 1,
) -> None:
    """--sim-process: the phase's simulator in a process of its own (the station's hardware
    is not in the ground system's process); sends back its publish records and counts."""
    catalog = phase_catalog(factor)
    sim = Simulator(
        catalog, host=HOST, port=port, root=TOPIC_ROOT, seed=seed, faults=faults,
        client_id=f"bench-console-sim-{seed}", bundle=bundle,
    )  # fmt: skip
    ph = Phase("child", lambda: sim, duration_s, sim=sim)
    ph.record_publishes()
    asyncio.run(sim.run(duration_s))
    inj = sum(v for (_, k), v in sim.injected().items() if k == "limit")
    out.put(("sim", (dict(ph.sent), sum(sim.published.values()), inj)))


def paced_worker(
    factor: float,
    seed: int,
    duration_s: float,
    port: int,
    faults: Faults,
    out: mp.Queue,
    bundle: int = 1,
) -> None:
    """--paced: the phase's station made ahead by the simulator's own Modules (values, limit
    faults, encoding and packet times as the Simulator makes them, ``bundle`` packets a call as
    it calls), then published from one aiomqtt client, each message when its last packet falls
    due, stamped as it goes. The Simulator encodes each packet when it is due (about 1.4 ms a
    packet), so at 100x it cannot keep its own schedule on a core; real hardware would, and this
    bench measures the ground system, not the stand-in."""
    catalog = phase_catalog(factor)
    start_ns = time.time_ns()
    env = Environment(epoch_ns=start_ns)
    due: list[tuple[int, str, bytes, str, np.ndarray]] = []  # (offset ns, topic, payload, ...)
    injected = published = 0
    for inst in catalog:
        m = Module(inst, env, seed=seed, start_ns=start_ns, faults=faults)
        total = max(1, round(duration_s * NS / m.period_ns))
        while m.index < total:
            n, first = min(bundle, total - m.index), m.index
            batch = m.next_batch(n)
            assert len(batch.packets) == n, "paced: only limit faults, one packet each"
            due.append(((first + n - 1) * m.period_ns, inst.topic(TOPIC_ROOT),
                        b"".join(batch.packets), inst.id, batch.times_ns))  # fmt: skip
            published += n
        injected += m.injected["limit"]
    due.sort(key=lambda d: d[0])
    sent: dict[str, list[tuple[int, int]]] = defaultdict(list)

    async def run() -> None:
        async with aiomqtt.Client(HOST, port, identifier=f"bench-console-paced-{seed}") as client:
            client.pending_calls_threshold = 1_000_000  # in flight at once, on purpose
            out.put(("publishing", None))  # made ahead; from now on, on schedule
            wall0, flying = time.time_ns(), set()
            for offset, topic, payload, iid, times in due:
                if (wait_ns := wall0 + offset - time.time_ns()) > 0:
                    await asyncio.sleep(wait_ns / NS)
                now = time.time_ns()
                sent[iid].extend((int(t), now) for t in times)
                task = asyncio.create_task(client.publish(topic, payload, qos=1))
                flying.add(task)
                task.add_done_callback(flying.discard)
            await asyncio.gather(*flying)

    asyncio.run(run())
    out.put(("sim", (dict(sent), published, injected)))


def ingest_worker(
    port: int,
    data: Path,
    status_interval_s: float,
    shard: tuple[int, int],
    freeze: bool,
    cmds: mp.Queue,
    out: mp.Queue,
) -> None:
    """--ingest-process: shard ``shard`` (i, N) of the ingest in a process of its own, as
    ``ilrs-ops ingest --shard i/N`` runs beside ``ilrs-ops console`` (one store folder); answers
    "split" with its per-batch step timers, and "stop" with its store errors and its full
    collections' pauses (ms) once stopped. ``freeze``: ``freeze_heap`` once ready, as the
    command does."""
    logging.basicConfig(level=logging.ERROR)
    catalog = load_catalog([PROFILES])
    warm_up(catalog)
    split = Split()
    config = ingest_config(port, status_interval_s, shard)
    seals: list[int] = []  # wall ns at which each segment's seal began
    seal_segment = Ingestor._seal_segment

    async def timed_seal(self: Ingestor, *args: object) -> None:
        seals.append(time.time_ns())
        await seal_segment(self, *args)  # type: ignore[arg-type]

    async def run() -> None:
        patches = (*split_patches(split), (Ingestor, "_seal_segment", timed_seal))
        with Store(data) as store, patched(*patches):
            async with Ingestor(catalog=catalog, store=store, config=config) as ingestor:
                await ingestor.ready()
                if freeze:
                    freeze_heap()
                pauses = gc_pauses()
                out.put(("ready", os.getpid()))
                while await asyncio.to_thread(cmds.get) != "stop":
                    out.put(("split", (dict(split.wall), dict(split.calls))))
            errors = sum(la.metrics.store_errors for la in ingestor.lanes.values())
        out.put(("stopped", (errors, pauses, seals)))

    try:
        asyncio.run(run())
    except Exception as exc:  # said in the bench's process, which waits on ``out``
        out.put(("error", repr(exc)))


def ingest_config(port: int, status_interval_s: float, shard: tuple[int, int]) -> IngestConfig:
    """The bench's ingest: shard ``shard`` (i, N), the status published every
    ``status_interval_s`` so its cadence is not what is measured."""
    i, n = shard
    return IngestConfig(
        host=HOST, port=port, root=TOPIC_ROOT, status_interval_s=status_interval_s, shard=i,
        shards=n,
    )  # fmt: skip


def gc_pauses() -> list[float]:
    """A list that gets the wall ms of each full (generation 2) collection from now on."""
    pauses: list[float] = []
    began = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(1e3 * (time.perf_counter() - began[0]))

    gc.callbacks.append(callback)
    return pauses


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_up(catalog: Catalog) -> None:
    """Numba caches and pyarrow paths loaded before anything is timed."""
    start = time.time_ns() - 3600 * NS
    for inst in catalog:
        m = Module(inst, Environment(epoch_ns=start), seed=99, start_ns=start)
        pkts = m.next_batch(16).packets
        Processor(inst).process(pkts, np.full(len(pkts), start, np.int64), "warm")


@dataclass
class Phase:
    name: str
    make: Callable[[], Simulator]  # made when the phase starts: packet times start then
    duration_s: float
    sim: Simulator | None = None
    sent: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    t_start_ns: int = 0
    t_end_ns: int = 0
    load: dict[str, float] = field(default_factory=dict)
    split: dict[str, tuple[float, int]] = field(default_factory=dict)  # name -> (wall s, calls)
    factor: float = 1.0  # for --sim-process: the child makes its own simulator
    seed: int = 0
    bundle: int = 1  # packets per message (frames)
    load_s: float = 0.0  # GET /api/status load during the phase, seconds
    load_res: dict = field(default_factory=dict)  # the load client's figures

    def record_publishes(self) -> None:
        """Wrap each Module.next_batch: (packet time, wall time) as the packet leaves."""
        assert self.sim is not None
        for m in self.sim.modules:
            orig = m.next_batch
            sent = self.sent[m.instrument.id]

            def next_batch(n: int, orig=orig, sent=sent):
                batch = orig(n)
                now = time.time_ns()
                sent.extend((int(t), now) for t in batch.times_ns)
                return batch

            m.next_batch = next_batch  # type: ignore[method-assign]

    def lookup(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for iid, rows in self.sent.items():
            a = np.array(sorted(rows), dtype=np.int64).reshape(-1, 2)
            out[iid] = (a[:, 0], a[:, 1])
        return out


@dataclass
class Latencies:
    pub: list[float] = field(default_factory=list)  # ms, receive - measured publish
    pkt: list[float] = field(default_factory=list)  # ms, receive - packet timestamp
    to_ingest: list[float] = field(default_factory=list)  # ms, ingest receive - publish
    to_console: list[float] = field(default_factory=list)  # ms, console MQTT receive - publish
    console_to_ws: list[float] = field(default_factory=list)  # ms, WS receive - console receive
    published_s: list[float] = field(default_factory=list)  # each one's publish, s into the phase
    unmatched: int = 0


def analyse(
    phase: Phase,
    msgs: list[tuple[int, str]],
    settle_ns: int,
    console_seen: dict[tuple[str, str, int], int],
) -> tuple[Latencies, Latencies, int]:
    """(events, status, other events) latencies of the WebSocket messages received in the
    phase's window (after settling)."""
    table_ = phase.lookup()
    ev, st = Latencies(), Latencies()
    other = 0
    seen: set[tuple[str, int]] = set()
    lo, hi = phase.t_start_ns + settle_ns, phase.t_end_ns
    for recv, text in msgs:
        if not lo <= recv <= hi:
            continue
        doc = json.loads(text)
        if doc.get("type") == "event":
            e = doc["event"]
            if e.get("kind") != "limit":
                other += 1
                continue
            iid, t = e["instrument"], int(e["time_ns"])
            lat, kind = ev, "event"
        elif doc.get("type") == "status":
            s = doc["status"]
            iid, t = s["instrument"], s.get("last_packet_time_ns")
            if t is None or (iid, t) in seen:
                continue
            seen.add((iid, t))
            lat, kind = st, "status"
        else:
            continue
        times, walls = table_.get(iid, (np.empty(0, np.int64), np.empty(0, np.int64)))
        k = int(np.searchsorted(times, t + MATCH_SLACK_NS, side="right")) - 1
        if k < 0 or t - times[k] > MATCH_SLACK_NS + 10 * MS:
            lat.unmatched += 1  # a packet of an earlier phase
            continue
        pub = int(walls[k])
        lat.pub.append((recv - pub) / MS)
        lat.published_s.append((pub - phase.t_start_ns) / NS)
        if lat is st and doc["status"].get("last_recv") is not None:
            lat.to_ingest.append(doc["status"]["last_recv"] * 1e3 - pub / MS)
        at = console_seen.get((kind, iid, t))
        if at is not None:
            lat.to_console.append((at - pub) / MS)
            lat.console_to_ws.append((recv - at) / MS)
        lat.pkt.append((recv - t) / MS)
    return ev, st, other


def console_recorder(seen: dict[tuple[str, str, int], int]) -> Callable:
    """StationState.apply wrapped: when the console first got each (kind, instrument, packet
    time) from MQTT (events by their time_ns, status by last_packet_time_ns)."""
    orig = StationState.apply

    def apply(self: StationState, topic: str, payload: bytes) -> Update | None:
        now = time.time_ns()
        update = orig(self, topic, payload)
        if update is not None:
            key = "time_ns" if update.kind == "event" else "last_packet_time_ns"
            t = update.data.get(key)
            if t is not None:
                seen.setdefault((update.kind, update.instrument, int(t)), now)
        return update

    return apply


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float]) -> tuple[str, str, str, str]:
    if not xs:
        return ("-", "-", "-", "-")
    a = np.asarray(xs)
    return (
        f"{np.percentile(a, 50):.1f}",
        f"{np.percentile(a, 99):.1f}",
        f"{a.max():.1f}",
        f"{a.mean():.1f}",
    )


# ---------------------------------------------------------------------- main


async def amain(args: argparse.Namespace) -> None:
    catalog = load_catalog([PROFILES])
    factors = [float(f) for f in args.factors.split(",") if f]
    framed = [(float(f), int(b)) for f, b in (x.split(":") for x in args.framed.split(",") if x)]
    nominal_pps = sum(1 / i.profile.expected_period_s for i in catalog)
    t = time.perf_counter()
    warm_up(catalog)
    print(
        f"{len(catalog)} instruments, nominal {nominal_pps:.2f} packets/s, then "
        + ", ".join(f"{f:g}x {nominal_pps * f:.0f} packets/s" for f in factors)
        + "".join(f", {f:g}x {nominal_pps * f:.0f} packets/s in frames of {b}" for f, b in framed)
        + f"; warm-up {time.perf_counter() - t:.1f}s"
    )
    faults = Faults(limit=args.limit, limit_s=args.limit_s)
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        with (
            private_mosquitto(
                args.mosquitto, "set_tcp_nodelay true\n" if args.nodelay else ""
            ) as broker,
            contextlib.ExitStack() as stores,
        ):
            print(
                f"private mosquitto pid {broker.pid} on {HOST}:{broker.port}"
                f" (set_tcp_nodelay {'true' if args.nodelay else 'false, the default'});"
                f" paho sockets TCP_NODELAY: {'on (patched)' if args.client_nodelay else 'off'}"
            )
            console_seen: dict[tuple[str, str, int], int] = {}
            split = Split()
            stack = contextlib.ExitStack()
            data = tmp / "data"
            if args.ingest_process:  # the ingest process opens the store; the console reads it
                shards = []  # (process, commands, answers) per ingest shard
                for i in range(args.ingest_process):
                    cmds, answers = ctx.Queue(), ctx.Queue()
                    shard = (i, args.ingest_process)
                    ing_proc = ctx.Process(
                        target=ingest_worker,
                        args=(
                            broker.port,
                            data,
                            args.status_interval,
                            shard,
                            args.gc_freeze,
                            cmds,
                            answers,
                        ),
                    )
                    ing_proc.start()
                    await from_queue(answers, 300)
                    shards.append((ing_proc, cmds, answers))
                ing_pids = [proc.pid for proc, _, _ in shards]

                async def split_now() -> tuple[dict[str, float], dict[str, int]]:
                    wall: Counter[str] = Counter()
                    calls: Counter[str] = Counter()
                    for _, cmds, answers in shards:
                        cmds.put("split")
                        w, c = (await from_queue(answers, 60))[1]  # type: ignore[misc]
                        wall.update(w)
                        calls.update(c)
                    return dict(wall), dict(calls)
            else:
                store = stores.enter_context(Store(data))
                stack.enter_context(patched(*split_patches(split)))

                async def split_now() -> tuple[dict[str, float], dict[str, int]]:
                    return dict(split.wall), dict(split.calls)

            server_ms: list[tuple[float, float]] = []
            stack.enter_context(patched(timed_app_patch(server_ms)))
            if args.client_nodelay:
                stack.enter_context(patched(paho_nodelay_patch()))
            stack.enter_context(patched((StationState, "apply", console_recorder(console_seen))))
            if not args.ingest_process:
                config = ingest_config(broker.port, args.status_interval, (0, 1))
                ingestor = Ingestor(catalog=catalog, store=store, config=config)
                await ingestor.__aenter__()
            token = create_token(tmp / "tokens.yaml", "bench", "operator")
            settings = ConsoleSettings(
                broker_host=HOST,
                broker_port=broker.port,
                root=TOPIC_ROOT,
                data=data,
                profiles=PROFILES,
                tokens=tmp / "tokens.yaml",
                http_host=HOST,
                http_port=free_port(),
                ws_queue=4096,
            )
            async with asyncio.TaskGroup() as tg:
                if not args.ingest_process:
                    ing_task = tg.create_task(ingestor.wait())
                    await ingestor.ready()
                started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                con_task = tg.create_task(serve(settings, started))
                url = await started
                if args.gc_freeze:
                    freeze_heap()
                pauses = gc_pauses()
                print(f"console on {url}")
                await asyncio.sleep(0.5)  # the console's MQTT follower subscribes
                ws_q, stop = ctx.Queue(), ctx.Event()
                ws_proc = ctx.Process(target=ws_worker, args=(url, token, ws_q, stop))
                ws_proc.start()
                _, first = await from_queue(ws_q, 60)
                print(f"WebSocket client connected (first message: {first})")

                def sim(cat: Catalog, seed: int, bundle: int = 1) -> Callable[[], Simulator]:
                    return lambda: Simulator(
                        cat,
                        host=HOST,
                        port=broker.port,
                        root=TOPIC_ROOT,
                        seed=seed,
                        faults=faults,
                        client_id=f"bench-console-sim-{seed}",
                        bundle=bundle,
                    )

                phases = [
                    Phase("nominal", sim(catalog, 1), args.nominal_s, seed=1),
                    *(
                        Phase(
                            f"{f:g}x nominal",
                            sim(fast_catalog(catalog, f), 2 + k),
                            args.fast_s,
                            factor=f,
                            seed=2 + k,
                        )
                        for k, f in enumerate(factors, start=1)
                    ),
                    *(
                        Phase(
                            f"{f:g}x nominal, frames of {b}",
                            sim(fast_catalog(catalog, f), 20 + k, b),
                            args.fast_s,
                            factor=f,
                            seed=20 + k,
                            bundle=b,
                        )
                        for k, (f, b) in enumerate(framed, start=1)
                    ),
                    Phase(
                        f"nominal + {args.rate:g} req/s", sim(catalog, 9), args.load_s + 4, seed=9
                    ),
                ]
                for ph in phases:
                    if args.sim_process:
                        sq = ctx.Queue()
                        sp = ctx.Process(
                            target=paced_worker if args.paced else sim_worker,
                            args=(
                                ph.factor,
                                ph.seed,
                                ph.duration_s,
                                broker.port,
                                faults,
                                sq,
                                ph.bundle,
                            ),
                        )
                        sp.start()
                        if args.paced:  # the phase begins when its packets are made
                            await from_queue(sq, 600)
                    w0, c0 = await split_now()
                    ph.t_start_ns = time.time_ns()
                    la0 = os.getloadavg()[0]
                    cpu0, busy0 = time.process_time(), busy_cpu_s()
                    ing0 = sum(map(process_cpu_s, ing_pids)) if args.ingest_process else 0.0
                    if args.sim_process:
                        run = asyncio.create_task(from_queue(sq, ph.duration_s + 600))
                    else:
                        ph.sim = ph.make()
                        ph.record_publishes()
                        run = asyncio.create_task(ph.sim.run(ph.duration_s))
                    if ph is phases[-1] or (args.load_fast and ph.factor != 1.0):
                        await asyncio.sleep(2.0)
                        ph.load_s = args.load_s if ph is phases[-1] else ph.duration_s - 4
                        lq = ctx.Queue()
                        lp = ctx.Process(
                            target=load_worker, args=(url, token, args.rate, ph.load_s, lq)
                        )
                        lp.start()
                        try:
                            _, ph.load_res = await from_queue(lq, ph.load_s + 120)
                        except queue.Empty:  # said below; the latencies are still reported
                            wait_s = ph.load_s + 120
                            print(f"  the status load client gave no result in {wait_s:g} s")
                            lp.kill()
                        lp.join(10)
                    if args.sim_process:
                        _, (sent, pubs, inj) = await run
                        ph.sent.update(sent)
                        sp.join(10)
                    else:
                        await run
                        pubs = sum(ph.sim.published.values())
                        inj = sum(v for (_, k), v in ph.sim.injected().items() if k == "limit")
                    ph.t_end_ns = time.time_ns()
                    ph.load = {"start": la0, "end": os.getloadavg()[0]}
                    wall = (ph.t_end_ns - ph.t_start_ns) / NS
                    ph.load["cpu"] = (time.process_time() - cpu0) / wall
                    ph.load["busy"] = (busy_cpu_s() - busy0) / wall
                    w1, c1 = await split_now()
                    ph.split = {k: (w1[k] - w0.get(k, 0.0), c1[k] - c0.get(k, 0)) for k in c1}
                    where = "console" if args.ingest_process else "ingest+console"
                    where += "" if args.sim_process else "+sim"
                    if args.ingest_process:
                        ing_cpu = (sum(map(process_cpu_s, ing_pids)) - ing0) / wall
                        where = f"{len(ing_pids)} ingest process(es) {ing_cpu:.2f} CPU; {where}"
                    print(
                        f"  {ph.name}: {(ph.t_end_ns - ph.t_start_ns) / NS:.1f}s, {pubs} packets"
                        f" published, {inj} limit excursions injected, load average"
                        f" {la0:.2f} -> {ph.load['end']:.2f}; this process ({where})"
                        f" {ph.load['cpu']:.2f} CPU, whole machine {ph.load['busy']:.2f}"
                        f" of {os.cpu_count()} CPUs busy",
                        flush=True,
                    )
                    await asyncio.sleep(1.0)  # the last updates drain
                stop.set()
                _, msgs = await from_queue(ws_q, 60)
                ws_proc.join(10)
                con_task.cancel()
                if args.ingest_process:
                    store_errors, seal_windows = 0, []
                    for i, (proc, cmds, answers) in enumerate(shards):
                        cmds.put("stop")
                        errors, pauses, seals = (await from_queue(answers, 120))[1]  # type: ignore[misc]
                        store_errors += errors
                        seal_windows += seals
                        proc.join(10)
                        print(f"ingest shard {i}: {full_collections(pauses)}")
                else:
                    ing_task.cancel()
            stack.close()
            if not args.ingest_process:
                await ingestor.__aexit__(None, None, None)
                store_errors = sum(la.metrics.store_errors for la in ingestor.lanes.values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    settle = round(args.settle_s * NS)
    rows = [
        [
            "phase",
            "kind",
            "n",
            "p50 ms",
            "p99 ms",
            "max ms",
            "mean ms",
            "vs packet time p50|p99",
            "unmatched",
            "load avg",
        ]
    ]
    for ph in phases:
        ev, st, other = analyse(ph, msgs, settle, console_seen)  # type: ignore[arg-type]
        for kind, lat in (("limit events", ev), ("status", st)):
            p50, p99, mx, mean = pct(lat.pub)
            q = pct(lat.pkt)
            rows.append(
                [
                    ph.name,
                    kind,
                    str(len(lat.pub)),
                    p50,
                    p99,
                    mx,
                    mean,
                    f"{q[0]}|{q[1]}",
                    str(lat.unmatched),
                    f"{ph.load['start']:.2f}->{ph.load['end']:.2f}",
                ]
            )
        if other:
            rows.append([ph.name, f"(other events: {other})", *[""] * 8])
    print()
    print("publish-to-WebSocket latency (WebSocket receive - measured publish time)")
    print(table(rows))
    target = [r for r in rows[1:] if r[0] == "nominal" and r[1] == "limit events"]
    if target and target[0][4] != "-":
        p99 = float(target[0][4])
        print(f"target: nominal limit events p99 {p99:.1f} ms {'<=' if p99 <= 100 else '>'} 100 ms")

    rows = [
        [
            "phase",
            "kind",
            "publish->ingest",
            "publish->console MQTT",
            "console MQTT->WS",
        ]
    ]
    for ph in phases:
        ev, st, _ = analyse(ph, msgs, settle, console_seen)  # type: ignore[arg-type]
        for kind, lat in (("limit events", ev), ("status", st)):
            cells = [pct(xs) for xs in (lat.to_ingest, lat.to_console, lat.console_to_ws)]
            rows.append([ph.name, kind, *(f"{c[0]}|{c[1]}" for c in cells)])
    print()
    print("when the slowest 1% of limit events were published, s into their phase (settling")
    print("included); and the ingest's segment seals (all lanes, --ingest-process only)")
    for ph in phases:
        ev, _, _ = analyse(ph, msgs, settle, console_seen)  # type: ignore[arg-type]
        if len(ev.pub) < 100:
            continue
        cut = float(np.percentile(ev.pub, 99))
        slow = sorted(t for t, x in zip(ev.published_s, ev.pub, strict=True) if x >= cut)
        seals = sorted(
            (a - ph.t_start_ns) / NS
            for a in (seal_windows if args.ingest_process else [])
            if ph.t_start_ns <= a <= ph.t_end_ns
        )
        print(
            f"  {ph.name}: >= {cut:.0f} ms at "
            + " ".join(f"{t:.1f}" for t in slow)
            + (f"; seals began at {seals[0]:.1f}-{seals[-1]:.1f} s ({len(seals)})" if seals else "")
        )
    print()
    print("breakdown, p50|p99 ms (status carries the ingest receive time; console MQTT receive")
    print("= StationState.apply, wrapped)")
    print(table(rows))
    names = ("wal_append", "fsync", "process", "status", "events")
    rows = [["phase", *(f"{n} ms (calls)" for n in names)]]
    for ph in phases:
        row = [ph.name]
        for n in names:
            wall, calls = ph.split.get(n, (0.0, 0))
            row.append(f"{wall / calls * 1e3:.1f} ({calls})" if calls else "-")
        rows.append(row)
    print()
    print(table(rows))
    print(
        "ingest per-batch steps, mean wall ms per call (calls) over the phase, settling"
        " included; events = publishing a batch's events (QoS 1, awaits PUBACK)."
    )

    for ph in phases:
        if not ph.load_res:
            continue
        load_res = ph.load_res
        codes = load_res["codes"]
        ok = sum(1 for c in codes if c == 200)
        a = load_res["from_sched"]
        b = load_res["from_send"]
        rows = [[f"GET /api/status ({ph.name})", "n", "ok", "offered req/s", "p50 ms", "p99 ms",
                 "max ms"]]  # fmt: skip
        offered = load_res["n"] / max(load_res["fired_s"], 1e-9)
        for name, xs in (("from scheduled start", a), ("from actual send", b)):
            p50, p99, mx, _ = pct([x * 1e3 for x in xs])
            rows.append([name, str(load_res["n"]), str(ok), f"{offered:.1f}", p50, p99, mx])
        print()
        print(table(rows))
        lo_w = load_res["t0_wall"]
        hi_w = lo_w + ph.load_s + 2  # requests fired in the window (the next may follow)
        srv = [ms for w, ms in server_ms if lo_w <= w <= hi_w]
        p50, p99, mx, _ = pct(srv)
        print(
            f"server side (ASGI app, request in to response handed over): n {len(srv)},"
            f" p50 {p50} ms, p99 {p99} ms, max {mx} ms"
        )
        slow = [(i / args.rate, x) for i, x in enumerate(load_res["from_sched"]) if x > 1.0]
        if slow:
            print(
                f"client: {len(slow)} requests over 1 s, scheduled between"
                f" {slow[0][0]:.2f}s and {slow[-1][0]:.2f}s of the window; worst"
                f" {max(x for _, x in slow):.2f}s"
            )
        sizes = load_res["bytes"]
        print(
            f"open loop, {args.rate:g} req/s for {ph.load_s:g}s; response"
            f" {np.mean(sizes) / 1e3:.1f} kB mean; firing fell behind schedule by at most"
            f" {load_res['max_fire_late_s'] * 1e3:.1f} ms; non-200: {len(codes) - ok}; client"
            f" process {load_res['client_cpu']:.2f} CPU over {load_res['wall_s']:.1f}s"
        )
    print(f"ingest store errors: {store_errors}")
    where = "console" if args.ingest_process else "ingest+console"
    print(f"{where} process: {full_collections(pauses)}")


def full_collections(pauses: list[float]) -> str:
    worst = f", {max(pauses):.1f} ms at most" if pauses else ""
    return f"{len(pauses)} full collections (generation 2) while measured{worst}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nominal-s", type=float, default=40.0, help="nominal phase, seconds")
    ap.add_argument("--fast-s", type=float, default=30.0, help="each faster phase, seconds")
    ap.add_argument("--load-s", type=float, default=20.0, help="status load, seconds")
    ap.add_argument("--rate", type=float, default=200.0, help="GET /api/status per second")
    ap.add_argument("--factors", default="10,100", help="rate multipliers of the faster phases")
    ap.add_argument(
        "--framed",
        default="1000:50",
        help="FACTOR:BUNDLE,...: faster phases whose packets go BUNDLE to a message (frames)",
    )
    ap.add_argument("--settle-s", type=float, default=3.0, help="not counted at phase start")
    ap.add_argument("--status-interval", type=float, default=0.05, help="ingest status_interval_s")
    ap.add_argument("--limit", type=float, default=0.1, help="Faults.limit (per packet)")
    ap.add_argument("--limit-s", type=float, default=0.5, help="Faults.limit_s")
    ap.add_argument(
        "--nodelay", action="store_true", help="Mosquitto set_tcp_nodelay true (Nagle off)"
    )
    ap.add_argument(
        "--client-nodelay",
        action="store_true",
        help="diagnostic: TCP_NODELAY on the in-process paho sockets (Nagle off)",
    )
    ap.add_argument(
        "--sim-process",
        action="store_true",
        help="run each phase's simulator in its own process (default: in the loop, as `up`)",
    )
    ap.add_argument(
        "--paced",
        action="store_true",
        help="with --sim-process: each phase's packets made ahead by the simulator's Modules and"
        " published on their schedule by one client (the Simulator cannot keep 100x on a core)",
    )
    ap.add_argument(
        "--ingest-process",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="run the ingest in processes of its own beside the console's, as `ilrs-ops ingest`"
        " and `ilrs-ops console` run: N shards, 1 without N (default: one event loop for both,"
        " as `up`)",
    )
    ap.add_argument(
        "--load-fast",
        action="store_true",
        help="the GET /api/status load also during each faster phase (default: the last only)",
    )
    ap.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="leave the started heap to the collector (the services freeze it: freeze_heap)",
    )
    ap.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    args = ap.parse_args()
    args.sim_process = args.sim_process or args.paced
    logging.basicConfig(level=logging.ERROR)
    print("command: " + shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    print(
        f"machine: {os.cpu_count()} CPUs, load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start; python"
        f" {sys.version.split()[0]}"
    )
    t0 = time.perf_counter()
    asyncio.run(amain(args))
    print(
        f"\ntotal {time.perf_counter() - t0:.0f}s; load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
