"""Ingest over processes: `ilrs-ops ingest --workers N`, N = 1 and 2, against raw aiomqtt, on a
private Mosquitto, in one run (issue 14: one host, many cores).

Run: .venv/bin/python bench/bench_workers.py [--frames F] [--workers 1,2]

Method: four instruments, clones of the SUPARCO rover profile under ids chosen so that two
fall in each shard of 2 (equal work per shard); frames of 100 packets, F frames each (default
5000: 2 M packets, 20k messages). Per N, a persistent session per shard is made first (the
workers start, subscribe, stop), plus one raw session on the same topics; then a paho publisher
queues every frame at QoS 1 in the broker. The workers start again, and are timed from the
moment every shard has said it is ingesting until the retained status of every instrument
shows all its packets processed (the status comes every 0.5 s: that is the resolution). Then
the raw session, a plain aiomqtt client, receives the same queued messages: what one receiving
process takes from this broker, the baseline. Prints packets/s of each, the ratio, and the
scaling 2 workers / 1 worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_ingest import (
    HOST,
    Broker,
    create_session,
    frames,
    make_packets,
    private_mosquitto,
    publish,
    raw_client,
    raw_receive,
)
from ilrs_ops import wire
from ilrs_ops.ingest import shard_of
from ilrs_ops.profiles import Instrument, load_profile

ROOT = Path(__file__).resolve().parents[1]
ROVER = ROOT / "hardware_profiles/suparco/rover-1.yaml"
PER_FRAME = 100
TIMEOUT_S = 600.0


def clone_profiles(folder: Path, per_shard: int = 2, shards: int = 2) -> list[Instrument]:
    """Rover clones, ``per_shard`` in each shard of ``shards``, written to ``folder``."""
    text = ROVER.read_text()
    wanted = dict.fromkeys(range(shards), per_shard)
    out: list[Instrument] = []
    k = 0
    while any(wanted.values()):
        k += 1
        iid = f"bench-rover-{k}"
        s = shard_of(iid, shards)
        if not wanted[s]:
            continue
        wanted[s] -= 1
        path = folder / f"{iid}.yaml"
        body = text.replace("instrument: sup-rover-1", f"instrument: {iid}")
        body = body.replace("apid: 0x2A1", f"apid: {0x300 + k:#x}")
        path.write_text(body)
        out.append(Instrument(load_profile(path), path))
    return out


class Workers:
    """An `ilrs-ops ingest --workers N` process."""

    def __init__(self, n: int, broker: Broker, profiles: Path, data: Path, root: str) -> None:
        self.n, self.args = n, [
            sys.executable, "-m", "ilrs_ops", "ingest", "--workers", str(n),
            "--broker", f"{HOST}:{broker.port}", "--profiles", str(profiles),
            "--data", str(data), "--root", root,
        ]  # fmt: skip
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []

    async def start(self) -> None:
        """Start, and return once every shard has said it is ingesting."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=ROOT, stderr=asyncio.subprocess.PIPE
        )
        assert self.proc.stderr is not None
        ready = 0
        while ready < self.n:
            line = (await asyncio.wait_for(self.proc.stderr.readline(), 120)).decode()
            if not line:
                raise RuntimeError("ingest workers ended:\n" + "".join(self.lines))
            self.lines.append(line)
            ready += bool(re.match(r"ingesting shard", line))

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 300)
        if self.proc.returncode != 0:
            raise RuntimeError(
                f"ingest workers exited {self.proc.returncode}:\n{''.join(self.lines)}"
                + err.decode()
            )


async def all_processed(port: int, root: str, expected: dict[str, int]) -> float:
    """perf_counter time when every instrument's retained status shows its packets."""
    seen: dict[str, int] = {}
    async with asyncio.timeout(TIMEOUT_S), aiomqtt.Client(HOST, port) as client:
        await client.subscribe(wire.all_of(root, wire.STATUS), qos=0)
        async for m in client.messages:
            doc = json.loads(bytes(m.payload))  # type: ignore[arg-type]
            seen[doc["instrument"]] = int(doc["packets"])
            if all(seen.get(i, 0) >= n for i, n in expected.items()):
                return time.perf_counter()
    raise AssertionError("unreachable")


async def one_run(
    n: int, broker: Broker, profiles: Path, insts: list[Instrument], frames_each: int, tmp: Path
) -> tuple[float, float]:
    """(seconds for the workers, seconds for the raw receiver) over the same messages."""
    root = f"bw{n}"
    data = tmp / f"data-{n}"
    raw_id = f"bench-raw-{n}"
    await create_session(raw_client(broker.port, raw_id), f"{root}/{wire.TM}/#")
    workers = Workers(n, broker, profiles, data, root)
    await workers.start()  # the shards' persistent sessions, subscribed
    await asyncio.sleep(3.0)
    await workers.stop()
    expected: dict[str, int] = {}
    total = 0
    for k, inst in enumerate(insts):
        size = inst.profile.packet_length
        payloads = frames(make_packets(inst, frames_each * PER_FRAME, seed=k), PER_FRAME * size)
        await asyncio.to_thread(publish, broker.port, inst.topic(root), payloads)
        expected[inst.id] = frames_each * PER_FRAME
        total += len(payloads)
    watch = asyncio.create_task(all_processed(broker.port, root, expected))
    await workers.start()
    t0 = time.perf_counter()
    t1 = await watch
    await workers.stop()
    raw_s = await raw_receive(broker.port, raw_id, total)
    return t1 - t0, raw_s


async def amain(args: argparse.Namespace) -> None:
    counts = [int(x) for x in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "profiles").mkdir()
        insts = clone_profiles(tmp / "profiles")
        packets = len(insts) * args.frames * PER_FRAME
        print(
            f"{len(insts)} rover clones x {args.frames} frames of {PER_FRAME} packets = "
            f"{packets:,} packets; machine: {os.cpu_count()} CPUs"
        )
        rates: dict[int, float] = {}
        with private_mosquitto(args.mosquitto) as broker:
            for n in counts:
                ingest_s, raw_s = await one_run(
                    n, broker, tmp / "profiles", insts, args.frames, tmp
                )
                rates[n] = packets / ingest_s
                print(
                    f"--workers {n}: {ingest_s:6.2f} s  {rates[n] / 1e6:5.2f} M packets/s durable "
                    f"and processed; raw aiomqtt (one process) {raw_s:5.2f} s "
                    f"{packets / raw_s / 1e6:5.2f} M packets/s; ingest/raw {raw_s / ingest_s:4.2f}"
                )
        if 1 in rates:
            for n in counts:
                if n != 1:
                    print(f"scaling {n} workers / 1: x{rates[n] / rates[1]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5000, help="frames per instrument")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    ap.add_argument("--mosquitto", default="/usr/sbin/mosquitto")
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
