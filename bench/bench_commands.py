"""Command latency: request -> module receipt, and request -> executed, at nominal and 10x load.

Run: .venv/bin/python bench/bench_commands.py [--phase-s 40] [--rate 2] [--factor 10]

One run on a private Mosquitto (as bench_ingest.py starts it), with an in-process Ingestor
(status every 0.5 s, as shipped), the console served by uvicorn through
``ilrs_ops.console.serve`` (it hosts the commanding service and its uplink) and the station's
Simulator, which executes the commands, all in one event loop as ``ilrs-ops up`` runs them.

A client in its own process (spawned) sends ``POST /api/commands`` open loop at ``--rate`` per
second, round robin over instruments with a non-hazardous command whose execution shows in
telemetry, alternating its value so every command changes something; it stamps
``time.time_ns()`` before each request. The service answers once the packet is published
(``sent``, with its sequence count). Receipt: ``Simulator.handle`` is wrapped to stamp each TC
as the module gets it, found by (instrument, seq). Executed: the record's ``executed`` stage
time, stamped by the service when the condition holds in the live status it follows.

Baseline, in the same run and loop: raw aiomqtt QoS 1 publish -> a subscriber's receipt on the
same broker, 20 pings a second, during each phase.

Phases: nominal = the station at its profile rates; 10x = expected_period_s divided by 10 (a
second Simulator). The first 3 s of a phase are not counted. ``--sim-process``: each phase's
Simulator runs in a process of its own and sends its receipt stamps back at the end (the
modules stand for hardware, which does not share the ground system's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_console import fast_catalog, warm_up
from bench_ingest import HOST, free_port, private_mosquitto, table

from ilrs_ops.console import ConsoleSettings, create_token, serve
from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.sim import Simulator
from ilrs_ops.store import Store

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "hardware_profiles"
NS = 1_000_000_000
MS = 1_000_000
TOPIC_ROOT = "benchtc"
SETTLE_S = 3.0
#: (instrument, command, argument, two values it alternates between)
#: Instruments that send a packet a second (the acknowledgement comes in the next one), so
#: each can take a command every 2 s without a queue forming: what is timed is the path.
PLAN = [
    ("sup-rover-1", "set_mode", "mode", ("SCIENCE", "CHARGE")),
    ("cnsa-seismometer", "set_gain", "gain", ("LOW", "HIGH")),
    ("nasb-magnetometer", "set_range", "range", None),
    ("narit-space-weather", "set_mode", "mode", None),
    ("cnsa-eps", "batt_heater", "state", None),
]


def plan(catalog: Catalog) -> list[tuple[str, str, str, tuple[str, str]]]:
    """PLAN with each enum's first two labels where no values are given."""
    out = []
    for iid, name, arg, values in PLAN:
        c = catalog.instruments[iid].profile.command(name)
        assert c is not None, (iid, name)
        a = next(a for a in c.arguments if a.name == arg)
        labels = sorted(set((a.enum or {}).values()))
        out.append((iid, name, arg, values or (labels[0], labels[1])))
    return out


def client_worker(url: str, token: str, steps: list, rate: float, out: mp.Queue) -> None:
    """Spawned: POST each step open loop at ``rate``/s; then read every record back."""
    import httpx

    async def run() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            loop = asyncio.get_running_loop()
            t0 = loop.time() + 0.1
            sent: list[tuple[int, dict[str, Any]]] = []

            async def one(body: dict[str, Any]) -> None:
                stamp = time.time_ns()
                r = await client.post("/api/commands", json=body)
                sent.append((stamp, r.json() if r.status_code in (200, 201) else {"error": r.text}))

            tasks = []
            for i, body in enumerate(steps):
                delay = t0 + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(body)))
            await asyncio.gather(*tasks)
            await asyncio.sleep(15)  # the last ones verify
            out_rows = []
            for stamp, doc in sent:
                if "id" in doc:
                    doc = (await client.get(f"/api/commands/{doc['id']}")).json()
                out_rows.append({"t0": stamp, **doc})
            return out_rows

    try:
        out.put(("done", asyncio.run(run())))
    except Exception as exc:  # report, do not hang the parent
        out.put(("error", repr(exc)))


def receipt_stamps(sim: Simulator, receipts: dict[tuple[str, int], int]) -> None:
    """Wrap ``sim.handle`` to stamp each TC as its module gets it, by (instrument, seq)."""
    orig = sim.handle

    def handle(m, packet):  # type: ignore[no-untyped-def]
        receipts[m.instrument.id, int.from_bytes(packet[2:4], "big") & 0x3FFF] = time.time_ns()
        return orig(m, packet)

    sim.handle = handle  # type: ignore[method-assign]


def sim_worker(port: int, factor: float, seed: int, stop: Any, out: mp.Queue) -> None:
    """Spawned (``--sim-process``): the station's simulator in a process of its own, as real
    modules are not in the ground system's process; sends its receipts when ``stop`` is set."""
    catalog = load_catalog([PROFILES])
    cat = fast_catalog(catalog, factor) if factor != 1 else catalog
    sim = Simulator(cat, host=HOST, port=port, root=TOPIC_ROOT, seed=seed,
                    client_id=f"bench-commands-sim-{seed}")  # fmt: skip
    receipts: dict[tuple[str, int], int] = {}
    receipt_stamps(sim, receipts)

    async def run() -> None:
        task = asyncio.create_task(sim.run(3600))
        while not stop.is_set():
            await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    out.put((receipts, sum(sim.published.values())))


async def ping(host: str, port: int, stop: asyncio.Event, lat_ms: list[float]) -> None:
    """Baseline: QoS 1 publish -> subscriber receipt on the same broker, 20 a second."""
    topic = f"{TOPIC_ROOT}/ping"
    async with aiomqtt.Client(host, port) as sub, aiomqtt.Client(host, port) as pub:
        await sub.subscribe(topic, qos=1)

        async def receive() -> None:
            async for m in sub.messages:
                sent = int(bytes(m.payload).decode())  # type: ignore[arg-type]
                lat_ms.append((time.time_ns() - sent) / MS)

        rx = asyncio.create_task(receive())
        try:
            while not stop.is_set():
                await pub.publish(topic, str(time.time_ns()), qos=1)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        finally:
            rx.cancel()


def pct(xs: list[float]) -> list[str]:
    if not xs:
        return ["-", "-", "-"]
    a = np.array(xs)
    return [f"{np.percentile(a, 50):.1f}", f"{np.percentile(a, 99):.1f}", f"{a.max():.1f}"]


async def amain(args: argparse.Namespace) -> None:
    catalog = load_catalog([PROFILES])
    steps_plan = plan(catalog)
    warm_up(catalog)
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    results = []
    with private_mosquitto(args.mosquitto) as broker, Store(tmp / "data") as store:
        print(f"private mosquitto pid {broker.pid} on {HOST}:{broker.port}; load {os.getloadavg()}")
        ingestor = Ingestor(
            catalog=catalog, store=store,
            config=IngestConfig(host=HOST, port=broker.port, root=TOPIC_ROOT),
        )  # fmt: skip
        await ingestor.__aenter__()
        token = create_token(tmp / "tokens.yaml", "bench", "operator")
        settings = ConsoleSettings(
            broker_host=HOST, broker_port=broker.port, root=TOPIC_ROOT, data=store.root,
            profiles=PROFILES, tokens=tmp / "tokens.yaml", http_host=HOST,
            http_port=free_port(),
        )  # fmt: skip
        async with asyncio.TaskGroup() as tg:
            ing = tg.create_task(ingestor.wait())
            await ingestor.ready()
            started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            con = tg.create_task(serve(settings, started))
            url = await started
            await asyncio.sleep(1.0)
            fast = fast_catalog(catalog, args.factor)
            phases = [
                ("nominal", catalog, 1, 1.0),
                (f"{args.factor:g}x nominal", fast, 2, args.factor),
            ]
            for name, cat, seed, factor in phases:
                receipts: dict[tuple[str, int], int] = {}
                if args.sim_process:
                    sim_stop, sim_out = ctx.Event(), ctx.Queue()
                    sim_proc = ctx.Process(
                        target=sim_worker, args=(broker.port, factor, seed, sim_stop, sim_out)
                    )
                    sim_proc.start()
                else:
                    sim = Simulator(cat, host=HOST, port=broker.port, root=TOPIC_ROOT, seed=seed,
                                    client_id=f"bench-commands-sim-{seed}")  # fmt: skip
                    receipt_stamps(sim, receipts)
                n = int(args.phase_s * args.rate)
                steps = []
                for i in range(n):
                    iid, cmd, arg, values = steps_plan[i % len(steps_plan)]
                    value = values[(i // len(steps_plan)) % 2]
                    steps.append({"instrument": iid, "command": cmd, "args": {arg: value}})
                if not args.sim_process:
                    run = asyncio.create_task(sim.run(args.phase_s + SETTLE_S + 20))
                await asyncio.sleep(SETTLE_S + (5.0 if args.sim_process else 0.0))  # its start
                stop, lat = asyncio.Event(), []
                pinger = asyncio.create_task(ping(HOST, broker.port, stop, lat))
                q = ctx.Queue()
                proc = ctx.Process(target=client_worker, args=(url, token, steps, args.rate, q))
                load0, busy0 = os.getloadavg()[0], time.process_time()
                w0 = time.monotonic()
                proc.start()
                kind, rows = await asyncio.to_thread(q.get, True, args.phase_s + 120)
                if kind == "error":
                    raise RuntimeError(rows)
                proc.join(10)
                stop.set()
                await pinger
                cpu = (time.process_time() - busy0) / (time.monotonic() - w0)
                if args.sim_process:
                    sim_stop.set()
                    receipts, pubs = await asyncio.to_thread(sim_out.get, True, 60)
                    sim_proc.join(10)
                else:
                    run.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await run
                    pubs = sum(sim.published.values())
                results.append((name, rows, receipts, lat, load0, cpu, pubs))
            ing.cancel()
            con.cancel()
    print()
    out = [["phase", "what", "n", "p50 ms", "p99 ms", "max ms"]]
    for name, rows, receipts, lat, load0, cpu, pubs in results:
        to_module, to_sent, to_exec, states = [], [], [], {}
        for r in rows:
            states[r.get("state", "error")] = states.get(r.get("state", "error"), 0) + 1
            if "stages" not in r:
                continue
            at = {s["stage"]: s["time_ns"] for s in r["stages"]}
            if "sent" in at:
                to_sent.append((at["sent"] - r["t0"]) / MS)
            got = receipts.get((r["instrument"], r.get("seq")))
            if got is not None:
                to_module.append((got - r["t0"]) / MS)
            if "executed" in at:
                to_exec.append((at["executed"] - r["t0"]) / MS)
        out.append([name, "MQTT ping (baseline)", str(len(lat)), *pct(lat)])
        out.append([name, "request -> sent (service)", str(len(to_sent)), *pct(to_sent)])
        out.append([name, "request -> module receipt", str(len(to_module)), *pct(to_module)])
        out.append([name, "request -> executed", str(len(to_exec)), *pct(to_exec)])
        base = np.percentile(lat, 99) if lat else float("nan")
        mod = np.percentile(to_module, 99) if to_module else float("nan")
        print(f"{name}: {pubs} packets published, {len(rows)} commands: {states}; "
              f"server process CPU {cpu:.2f}, load at start {load0:.2f}; "
              f"p99 to module / p99 MQTT ping = {mod / base:.1f}x")  # fmt: skip
    print()
    print(table(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase-s", type=float, default=40.0, help="seconds of commands per phase")
    ap.add_argument("--rate", type=float, default=2.0, help="commands per second")
    ap.add_argument("--factor", type=float, default=10.0, help="rate multiplier of phase 2")
    ap.add_argument("--mosquitto", default="/usr/sbin/mosquitto")
    ap.add_argument(
        "--sim-process",
        action="store_true",
        help="the simulator in a process of its own (real modules are not in the ground system)",
    )
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
