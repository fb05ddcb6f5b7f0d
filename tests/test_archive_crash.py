"""Two ingest shards on two hosts (separate data folders) commit to one archive bucket on a
real S3-compatible server, through SIGKILLs of both at random points of a QoS 1 stream: in
the end the archive holds every acknowledged packet exactly once, and every version of its
tables opens (issue 15)."""

from __future__ import annotations

import asyncio
import random
import signal
import zlib
from pathlib import Path

import pytest

from ilrs_ops.history import History
from ilrs_ops.processing import recover
from ilrs_ops.profiles import load_catalog
from ilrs_ops.sim import Environment, Module
from ilrs_ops.store import Store
from tests.conftest import DATA
from tests.test_archive import every_version_opens
from tests.test_ingest_crash import Ingest, duplicates, publish_paced, stored_packets

ROVER = "acme-rover-1"
PACKETS = 16_000  # per instrument
PER_MESSAGE = 20
SEGMENT_MESSAGES = 50  # a seal every 1000 packets: kills land in seals too
STREAM_S = 30.0
KILLS = 8


def two_rovers(folder: Path) -> list[str]:
    """A profiles folder of the test rover and a second one that the other shard of two
    owns; their ids, the rover's first."""
    text = (DATA / "good_profiles" / "acme" / "rover.yaml").read_text()
    other = next(
        f"acme-rover-{k}"
        for k in range(2, 100)
        if zlib.crc32(f"acme-rover-{k}".encode()) % 2 != zlib.crc32(ROVER.encode()) % 2
    )
    (folder / "acme").mkdir(parents=True)
    (folder / "acme" / "rover.yaml").write_text(text)
    second = text.replace(ROVER, other).replace("apid: 0x2A1", "apid: 0x2A2")
    (folder / "acme" / "other.yaml").write_text(second)
    return [ROVER, other]


@pytest.mark.slow
async def test_two_hosts_commit_to_one_bucket_through_sigkills(
    tmp_path: Path, private_broker: tuple[str, int], s3_bucket: str
) -> None:
    profiles = tmp_path / "profiles"
    ids = two_rovers(profiles)
    catalog = load_catalog([profiles])
    shard = {iid: zlib.crc32(iid.encode()) % 2 for iid in ids}
    hosts = {s: tmp_path / f"host{s}" for s in (0, 1)}
    sent = {}
    for k, iid in enumerate(ids):
        m = Module(
            catalog.instruments[iid],
            Environment(epoch_ns=0),
            seed=k,
            start_ns=1_790_000_000 * 10**9,
        )
        sent[iid] = m.next_batch(PACKETS).packets

    def args(s: int) -> tuple[object, ...]:
        return (
            private_broker, hosts[s], "twohosts", profiles, "--shard", f"{s}/2",
            "--archive", s3_bucket, "--segment-messages", str(SEGMENT_MESSAGES),
        )  # fmt: skip

    runs = {s: await Ingest.start(*args(s)) for s in (0, 1)}  # type: ignore[arg-type]
    await asyncio.sleep(1.5)  # the persistent sessions exist: nothing published is lost
    done = {iid: [0] for iid in ids}
    publishers = []
    for iid in ids:
        frames = [b"".join(sent[iid][i : i + PER_MESSAGE]) for i in range(0, PACKETS, PER_MESSAGE)]
        topic = catalog.instruments[iid].topic("twohosts")
        publishers.append(
            asyncio.create_task(publish_paced(private_broker, topic, frames, STREAM_S, done[iid]))
        )
    rng = random.Random(15)
    try:
        for k in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 2 * STREAM_S / KILLS))
            victims = [0, 1] if k % 3 == 2 else [rng.randrange(2)]  # now and then both
            for s in victims:
                await runs[s].stop(signal.SIGKILL)
            for s in victims:
                runs[s] = await Ingest.start(*args(s))  # type: ignore[arg-type]
        await asyncio.gather(*publishers)
        for iid in ids:  # every message the broker took reaches the ingest that owns it
            data = hosts[shard[iid]]
            for _ in range(240):
                if await stored_packets(data, catalog, iid) >= PACKETS:
                    break
                await asyncio.sleep(0.5)
        for s in (0, 1):
            code = await runs[s].stop(signal.SIGINT)
            assert code in (0, -signal.SIGINT, 130), (code, runs[s].lines)
    finally:
        for p in publishers:
            p.cancel()
        for run in runs.values():
            await run.stop(signal.SIGKILL)
    for data in hosts.values():  # what a stop left unsealed goes into the archive too
        with History.at(data, catalog) as history:
            recover(history.store, history.catalog)
    with History.at(tmp_path / "console", catalog, s3_bucket) as console:
        for iid in ids:
            raw = console.raw(iid, 0, 2**62)
            assert duplicates(raw) == 0, f"{iid}: a packet stored twice"
            assert raw.num_rows == PACKETS, f"{iid}: {PACKETS - raw.num_rows} packets lost"
            assert sorted(raw.column("data").to_pylist()) == sorted(sent[iid])
            tm = console.query(iid, None, 0, 2**62)
            assert tm.num_rows == PACKETS
    with Store(hosts[shard[ROVER]]) as store:
        every_version_opens(store)
