"""Import and replay throughput, each against a plain aiomqtt publisher, in one run.

Run: .venv/bin/python bench/bench_replay.py [--import-packets N] [--replay-packets N]

On a private Mosquitto (bench_ingest's, on a free port):

- raw publish: a plain aiomqtt client publishes N single-packet messages at QoS 1, awaiting
  each publish in turn (the plain way), and again with up to 1000 publishes in flight (as
  ``ilrs_ops.replay.publish`` does); messages/s;
- import: a file of N rover + seismometer packets (raw concatenated CCSDS) imported into a
  fresh recording (chunks, split, route, Processor, Parquet); packets/s;
- replay --speed max over MQTT: the imported rover packets replayed from the recording onto
  the broker, one packet per message, and ingested by an in-process Ingestor into a fresh
  recording, timed until every message is committed and sealed; packets/s end to end, and the
  publish side alone; then again with --bundle 10 (10 packets per message);
- replay --direct: every imported packet straight through the pipelines into a recording.

Each rate is also given as a ratio to the plain publisher's messages/s of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ingest import START, Broker, make_packets, private_mosquitto, warm_up

from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import (
    Recorder,
    create_recording,
    import_packets,
    replay_direct,
    replay_mqtt,
    replay_root,
)
from ilrs_ops.sources import StoreSource
from ilrs_ops.store import Store

ROOT = Path(__file__).resolve().parents[1]
ROVER, SEIS = "sup-rover-1", "cnsa-seismometer"


async def plain_publish(port: int, topic: str, payloads: list[bytes]) -> float:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        t0 = time.perf_counter()
        for p in payloads:
            await client.publish(topic, p, qos=1)
        return time.perf_counter() - t0


async def windowed_publish(port: int, topic: str, payloads: list[bytes]) -> float:
    window = asyncio.Semaphore(1000)

    async def one(client: aiomqtt.Client, p: bytes) -> None:
        try:
            await client.publish(topic, p, qos=1)
        finally:
            window.release()

    async with aiomqtt.Client("127.0.0.1", port) as client:
        client.pending_calls_threshold = 2000
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for p in payloads:
                await window.acquire()
                tg.create_task(one(client, p))
        return time.perf_counter() - t0


def packets_of(buf: bytes, size: int) -> list[bytes]:
    return [buf[i : i + size] for i in range(0, len(buf), size)]


async def amain(args: argparse.Namespace, broker: Broker, tmp: Path) -> None:
    catalog = load_catalog([ROOT / "hardware_profiles"])
    sub = Catalog({k: catalog.instruments[k] for k in (ROVER, SEIS)})
    warm_up(sub)
    rover, seis = sub.instruments[ROVER], sub.instruments[SEIS]
    size = rover.profile.packet_length

    sample = packets_of(make_packets(rover, args.replay_packets, seed=1), size)
    plain_s = await plain_publish(broker.port, "bench/raw/plain", sample)
    window_s = await windowed_publish(broker.port, "bench/raw/window", sample)
    plain = len(sample) / plain_s

    # A campaign file: rover and seismometer packets, interleaved in blocks.
    n_seis = args.import_packets // 20
    r = make_packets(rover, args.import_packets - n_seis, seed=2)
    s = make_packets(seis, n_seis, seed=3)
    path = tmp / "campaign.bin"
    with path.open("wb") as f:
        step_r, step_s = 19 * 100 * size, 100 * seis.profile.packet_length
        for i in range(0, max(len(r) // step_r, len(s) // step_s) + 1):
            f.write(r[i * step_r : (i + 1) * step_r])
            f.write(s[i * step_s : (i + 1) * step_s])
    data = tmp / "data"
    rec = create_recording(data, "campaign", "imported", str(path))
    t0 = time.perf_counter()
    with Store(rec.path) as store:
        summary = import_packets(path, Recorder(store, sub), sub.by_apid, recv_ns=START)
    import_s = time.perf_counter() - t0
    imported = summary.items
    assert sum(summary.decoded.values()) == imported, summary

    # Replay the rover's packets over MQTT, max speed, into a fresh recording.
    window = (START, START + args.replay_packets * int(rover.profile.expected_period_s * 1e9))
    name = "again"
    root = replay_root("bench", name)
    source = StoreSource(
        rec.path, sub, root=root, instruments=[ROVER], start_ns=window[0], stop_ns=window[1]
    )
    published: list[float] = []
    out = create_recording(data, name, "replayed", str(rec.path))
    t0 = time.perf_counter()
    with Store(out.path) as store:
        ing = await replay_mqtt(
            source, store, sub, host="127.0.0.1", port=broker.port, root=root, speed=None,
            progress=lambda n: published.append(time.perf_counter()),
        )  # fmt: skip
    replay_s = time.perf_counter() - t0
    replayed = ing.status[ROVER].packets
    assert replayed == source.total, (replayed, source.total)
    publish_s = published[-1] - t0

    # The same with 10 packets per message: the per-message cost shared out.
    root10 = replay_root("bench", "again10")
    source10 = StoreSource(
        rec.path, sub, root=root10, instruments=[ROVER], start_ns=window[0],
        stop_ns=window[1], bundle=10,
    )  # fmt: skip
    out10 = create_recording(data, "again10", "replayed", str(rec.path))
    t0 = time.perf_counter()
    with Store(out10.path) as store:
        ing = await replay_mqtt(
            source10, store, sub, host="127.0.0.1", port=broker.port, root=root10, speed=None
        )
    bundle_s = time.perf_counter() - t0
    assert ing.status[ROVER].packets == replayed

    direct = create_recording(data, "direct", "replayed", str(rec.path))
    t0 = time.perf_counter()
    with Store(direct.path) as store:
        await replay_direct(StoreSource(rec.path, sub, bundle=100), Recorder(store, sub))
    direct_s = time.perf_counter() - t0

    rows = [
        ("raw publish, plain aiomqtt (awaited, QoS 1)", len(sample), plain_s, "msg"),
        ("raw publish, aiomqtt 1000 in flight", len(sample), window_s, "msg"),
        (f"import ({path.stat().st_size >> 20} MiB file, rover + seis)", imported, import_s, "pkt"),
        ("replay --speed max over MQTT: publish side", replayed, publish_s, "pkt"),
        ("replay --speed max over MQTT: end to end (ingested, sealed)", replayed, replay_s, "pkt"),
        ("replay --speed max --bundle 10 over MQTT: end to end", replayed, bundle_s, "pkt"),
        ("replay --direct (all imported packets)", imported, direct_s, "pkt"),
    ]
    print(f"\n{'what':62} {'count':>9} {'seconds':>8} {'rate/s':>10} {'x plain':>8}")
    for what, n, secs, unit in rows:
        rate = n / secs
        print(f"{what:62} {n:>9} {secs:>8.2f} {rate:>10,.0f} {rate / plain:>8.2f}  {unit}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--import-packets", type=int, default=1_000_000)
    ap.add_argument("--replay-packets", type=int, default=50_000)
    ap.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        with private_mosquitto(args.mosquitto) as broker:
            asyncio.run(amain(args, broker, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
