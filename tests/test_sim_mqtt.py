"""The simulator on a real broker: a plain aiomqtt subscriber sees every instrument at its rate.

Runs against the machine's Mosquitto on 127.0.0.1:1883 and against the embedded amqtt broker.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

import aiomqtt
import numpy as np
import pytest

from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Simulator
from tests.by_apid import decode_frames
from tests.conftest import MOSQUITTO, ROOT


async def collect(host: str, port: int, root: str, started: asyncio.Event, done: asyncio.Event):
    """Every message on {root}/tm/# with its arrival time, until ``done`` and a quiet second.

    The reader is never cancelled while messages may still come: cancelling aiomqtt's
    ``messages`` iterator can lose the message being taken from its queue (aiomqtt 2.5.1).
    """
    got: list[tuple[str, bytes, float]] = []

    async def read(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            got.append((str(message.topic), bytes(message.payload), time.monotonic()))

    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(f"{root}/tm/#", qos=1)
        reader = asyncio.create_task(read(client))
        started.set()
        await done.wait()
        while not got or time.monotonic() - got[-1][2] < 1.0:
            await asyncio.sleep(0.2)
        reader.cancel()
    return got


def check_station_traffic(
    catalog: Catalog, got, root: str, duration_s: float, bundle: int = 1
) -> None:
    by_topic = defaultdict(list)
    for topic, payload, t in got:
        by_topic[topic].append((payload, t))
    for inst in catalog:
        messages = by_topic[inst.topic(root)]
        expected = max(1, round(duration_s / inst.profile.expected_period_s))
        decoded, rejected = decode_frames(catalog, [p for p, _ in messages])
        assert not rejected.reasons, (inst.id, rejected.counts())
        assert [d.instrument.id for d in decoded] == [inst.id]
        d = decoded[0]
        assert len(d) == expected, (inst.id, len(d), expected)
        assert len(messages) == -(-expected // bundle)
        assert list(d.seq_count) == list(range(expected))
        # Packet times advance by exactly the profile's period (to the time code's resolution).
        period_ns = inst.profile.expected_period_s * 1e9
        if len(d) > 1:
            assert np.allclose(np.diff(d.time_ns), period_ns, atol=1.1e6)  # CDS has 1 ms resolution
        # Arrivals keep pace with the wall clock: first to last is about (n - 1) periods.
        if len(messages) > 2:
            span = messages[-1][1] - messages[0][1]
            assert span == pytest.approx(
                (expected - bundle) * inst.profile.expected_period_s, abs=0.6
            )
        # Plausible: nominal values sit inside the red limits.
        eng = d.engineering()
        for f in inst.profile.fields:
            if f.limits and f.limits.red and not f.ignore:
                lo, hi = f.limits.red
                v = eng[f.name]
                assert lo is None or v.min() >= lo, (inst.id, f.name)
                assert hi is None or v.max() <= hi, (inst.id, f.name)


async def run_station(
    catalog: Catalog, host: str, port: int, root: str, duration_s: float, bundle: int = 1
):
    started, done = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(collect(host, port, root, started, done))
    await started.wait()
    sim = Simulator(catalog, host=host, port=port, root=root, seed=5, bundle=bundle)
    await sim.run(duration_s)
    done.set()
    return sim, await listener


async def test_every_instrument_arrives_at_its_rate_on_mosquitto(
    station: Catalog, topic_root: str
) -> None:
    duration = 6.0
    sim, got = await run_station(station, *MOSQUITTO, topic_root, duration)
    assert sum(sim.published.values()) == sum(
        max(1, round(duration / i.profile.expected_period_s)) for i in station
    )
    check_station_traffic(station, got, topic_root, duration)


async def test_bundled_frames_on_the_embedded_broker(
    station: Catalog, topic_root: str, free_port: int
) -> None:
    async with EmbeddedBroker(port=free_port):
        _, got = await run_station(station, "127.0.0.1", free_port, topic_root, 4.0, bundle=4)
    check_station_traffic(station, got, topic_root, 4.0, bundle=4)


async def test_simulate_command_publishes_to_the_broker(station: Catalog, topic_root: str) -> None:
    started, done = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(collect(*MOSQUITTO, topic_root, started, done))
    await started.wait()
    cmd = [
        sys.executable,
        "-m",
        "ilrs_ops",
        "simulate",
        "--duration",
        "3",
        "--root",
        topic_root,
        "--broker",
        "127.0.0.1:1883",
        "--seed",
        "1",
        "--profiles",
        str(ROOT / "hardware_profiles"),
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    done.set()
    got = await listener
    decoded, rejected = decode_frames(station, [p for _, p, _ in got])
    assert not rejected.reasons
    assert {d.instrument.id for d in decoded} == set(station.instruments)
    published = re.search(r"published (\d+) packets", err.decode())
    counts = {d.instrument.id: len(d) for d in decoded}
    assert published and int(published[1]) == sum(counts.values()), str(counts)
