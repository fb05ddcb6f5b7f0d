"""Crash test: the ingestor is killed with SIGKILL at random points of a QoS 1 stream and
restarted; in the end the store holds every published packet exactly once."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from pathlib import Path

import aiomqtt
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Environment, Module
from ilrs_ops.store import Store
from tests.conftest import DATA, ROOT

N_PACKETS = 4000
KILLS = 5


async def start_ingest(
    broker: tuple[str, int], data: Path, root: str
) -> asyncio.subprocess.Process:
    cmd = [
        sys.executable,
        "-m",
        "ilrs_ops",
        "ingest",
        "--broker",
        f"{broker[0]}:{broker[1]}",
        "--data",
        str(data),
        "--root",
        root,
        "--profiles",
        str(DATA / "good_profiles"),
    ]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stderr.readline(), 60)  # "ingesting shard ..."
    assert b"ingesting" in line, line
    return proc


async def stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    proc.send_signal(sig)
    await proc.communicate()  # drains and closes its stderr pipe


@pytest.mark.slow
async def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(
    rover: Catalog, private_broker: tuple[str, int], tmp_path: Path
) -> None:
    root = "crash"
    inst = rover.instruments["acme-rover-1"]
    m = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=1_790_000_000 * 10**9)
    packets = m.next_batch(N_PACKETS).packets
    data = tmp_path / "store"

    proc = await start_ingest(private_broker, data, root)  # creates the persistent session
    await asyncio.sleep(1.0)

    async def publish() -> None:
        async with aiomqtt.Client(*private_broker) as pub:
            for i, p in enumerate(packets):
                await pub.publish(inst.topic(root), p, qos=1)
                if i % 50 == 0:
                    await asyncio.sleep(0.02)  # a stream, not a burst: kills land mid-stream

    publisher = asyncio.create_task(publish())
    rng = random.Random(7)
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        await stop(proc, signal.SIGKILL)
        proc = await start_ingest(private_broker, data, root)
    await publisher
    await asyncio.sleep(3.0)  # let the last run drain what the broker kept for it
    await stop(proc, signal.SIGINT)
    assert proc.returncode in (0, -signal.SIGINT, 130), proc.returncode

    with Store(data, rover) as store:
        store.recover()
    raw = ds.dataset(data / "raw", format="parquet", partitioning="hive").to_table()
    keys = list(
        zip(
            raw.column("seq").to_pylist(),
            raw.column("time").cast(pa.int64()).to_pylist(),
            strict=True,
        )
    )
    assert len(keys) == len(set(keys)), "a packet was stored twice"
    assert raw.num_rows == N_PACKETS, f"{N_PACKETS - raw.num_rows} packets lost"
    assert sorted(raw.column("data").to_pylist()) == sorted(packets)
