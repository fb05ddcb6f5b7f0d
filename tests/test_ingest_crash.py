"""Crash test: the ingestor is killed with SIGKILL at random points of a 100k-packet QoS 1
stream and restarted; in the end the store holds every published packet exactly once.

After every kill, before the restart, every visible Parquet file must open; what the kill
interrupted (a WAL append torn mid-batch, a seal with its files written but not committed, the
recovery of the previous run) is counted and printed, as are the figures of
docs/RELIABILITY.md. The helpers here (an ingest subprocess, the store checks) serve
tests/test_seal_crash.py and tests/test_broker_restart.py too.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ilrs_ops.files import is_temp
from ilrs_ops.history import History
from ilrs_ops.processing import recover
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Environment, Module
from ilrs_ops.store import TABLES, Store, list_segments, read_segment
from tests.conftest import DATA, ROOT
from tests.test_archive import every_version_opens

ROVER = "acme-rover-1"
N_PACKETS = 100_000
PER_MESSAGE = 20  # packets per MQTT message, as `ilrs-ops simulate --bundle 20` sends them
KILLS = 21
SEGMENT_MESSAGES = 100  # a seal every 2000 packets, so that kills land in seals as well
STREAM_S = 60.0  # the publisher spreads the stream over this long, so kills land all along it
WINDOW = 64  # QoS 1 publishes in flight at once


@dataclass
class Ingest:
    """An ``ilrs-ops ingest`` subprocess; its stderr is drained into ``lines``."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, broker: tuple[str, int], data: Path, root: str, profiles: Path, *extra: str
    ) -> Ingest:
        cmd = [
            sys.executable, "-m", "ilrs_ops", "ingest",
            "--broker", f"{broker[0]}:{broker[1]}", "--data", str(data), "--root", root,
            "--profiles", str(profiles), *extra,
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 60)  # "ingesting shard ..."
        assert b"ingesting" in line, line
        self = cls(proc, [line.decode()])
        self.reader = asyncio.create_task(self._drain())  # a full pipe would block ingest
        return self

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(line.decode())

    async def stop(self, sig: int) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 60)
        if self.reader is not None:
            await self.reader
        return code


def parquet_files(data: Path) -> list[Path]:
    """Every visible Parquet file of the store (temp files are hidden: ``.name.tmp``)."""
    return sorted(p for t in TABLES for p in (data / t).rglob("*.parquet") if not is_temp(p))


def check_parquet_opens(data: Path, seen: dict[Path, tuple[int, int]]) -> int:
    """Open every visible Parquet file not opened before (as (mtime, size)); their count."""
    opened = 0
    for path in parquet_files(data):
        st = path.stat()
        if seen.get(path) != (st.st_mtime_ns, st.st_size):
            pq.read_table(path)  # raises on a torn or half-written file
            seen[path] = (st.st_mtime_ns, st.st_size)
            opened += 1
    return opened


def interrupted(data: Path, lane: str) -> set[str]:
    """What a kill left behind: ``torn``: a WAL append cut mid-batch; ``seal``: a seal cut
    between its first file and its checkpoint (temp files, or Parquet above the checkpoint);
    ``unsealed``: WAL segments a recovery must seal."""
    found = set()
    segments = list_segments(data / "wal" / lane)
    if segments and read_segment(segments[-1][1]).discarded_bytes:
        found.add("torn")
    with Store(data) as store:
        checkpoint = store.checkpoint(lane)[0]
    temps = [p for p in data.rglob("*") if is_temp(p)]
    mine = [p for p in parquet_files(data) if f"instrument={lane}" in p.parts[-3]]
    above = [p for p in mine if int(p.stem.split("-")[-1]) > checkpoint]
    if temps or above:
        found.add("seal")
    if [n for n, _ in segments if n > checkpoint]:
        found.add("unsealed")
    return found


def stored_raw(data: Path, catalog: Catalog, lane: str) -> pa.Table:
    """The raw packets of ``lane`` after a final recovery, as the sealed Parquet has them (or
    the archive, read back through the store, for a store with one)."""
    with History.at(data, catalog) as store:
        recover(store.store, store.catalog)
        if not (data / "raw").is_dir():
            return store.raw(lane, 0, 2**62)
    raw = ds.dataset(data / "raw", format="parquet", partitioning="hive").to_table()
    return raw.filter(pc.equal(raw.column("instrument"), lane))


def duplicates(raw: pa.Table) -> int:
    keys = zip(
        raw.column("seq").to_pylist(), raw.column("time").cast(pa.int64()).to_pylist(), strict=True
    )
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


async def stored_packets(data: Path, catalog: Catalog, lane: str) -> int:
    """Packets of ``lane`` accepted so far (sealed and live WAL), read as another process would."""

    def count() -> int:
        with History.at(data, catalog) as store:
            return int(store.counters(lane)["packets"])  # type: ignore[call-overload]

    return await asyncio.to_thread(count)


async def wait_stored(data: Path, catalog: Catalog, lane: str, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    got = await stored_packets(data, catalog, lane)
    while got < n and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        got = await stored_packets(data, catalog, lane)
    return got


def last_segment(data: Path, lane: str) -> int:
    segments = list_segments(data / "wal" / lane)
    return segments[-1][0] if segments else -1


async def committed_since(data: Path, lane: str, segment: int, timeout: float) -> None:
    """Wait until a run has recovered and committed a batch to a WAL segment after
    ``segment``, so that a run is not always killed before it gets anything done."""
    deadline = time.monotonic() + timeout
    with Store(data) as store:
        while time.monotonic() < deadline:
            for n, _ in list_segments(data / "wal" / lane):
                wal = store.read_wal(lane, n) if n > segment else None  # None: sealed since
                if wal is not None and wal.batches:
                    return
            await asyncio.sleep(0.05)


async def publish_paced(
    broker: tuple[str, int], topic: str, frames: list[bytes], stream_s: float, done: list[int]
) -> None:
    """QoS 1, ``WINDOW`` publishes in flight, in order, spread over ``stream_s``; ``done[0]``
    counts the messages the broker has acknowledged."""
    async with aiomqtt.Client(*broker, max_queued_outgoing_messages=10 * WINDOW) as pub:
        pub.pending_calls_threshold = WINDOW + 10
        inflight: collections.deque[asyncio.Task[None]] = collections.deque()
        t0 = time.monotonic()
        for i, frame in enumerate(frames):
            # Tasks start in creation order and paho queues each publish as its task starts,
            # so the broker gets the messages in stream order.
            inflight.append(asyncio.create_task(pub.publish(topic, frame, qos=1)))
            if len(inflight) >= WINDOW:
                await inflight.popleft()
                done[0] += 1
            await asyncio.sleep(max(0.0, t0 + stream_s * i / len(frames) - time.monotonic()))
        while inflight:
            await inflight.popleft()
            done[0] += 1


@dataclass
class KillRun:
    """What a stream with kills left: the store, the messages the broker acknowledged
    (``done[0]``), every Parquet file opened (as (mtime, size)), what the kills cut, packets
    acknowledged and stored at each kill, and the live count at the end."""

    data: Path
    done: list[int] = field(default_factory=lambda: [0])
    seen: dict[Path, tuple[int, int]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    at: list[int] = field(default_factory=list)
    durable: list[int] = field(default_factory=list)
    got: int = 0


async def stream_with_kills(
    broker: tuple[str, int],
    catalog: Catalog,
    data: Path,
    root: str,
    packets: list[bytes],
    *,
    per_message: int,
    segment_messages: int,
    stream_s: float,
    kills: int,
    kill: Callable[[int, Ingest], Awaitable[None]],
    extra: tuple[str, ...] = (),
) -> KillRun:
    """Publish ``packets`` of the rover, ``per_message`` to a message, over ``stream_s`` while
    ``kill(k, ingest)`` ends the ingest run ``kills`` times (odd k only once the run has
    committed a batch); after each kill every visible Parquet file must open, then a new run
    starts. Returns once the last run has stored everything and stopped cleanly."""
    frames = [b"".join(packets[i : i + per_message]) for i in range(0, len(packets), per_message)]
    topic = catalog.instruments[ROVER].topic(root)
    args = (
        broker, data, root, DATA / "good_profiles", "--segment-messages", str(segment_messages),
        *extra,
    )  # fmt: skip
    run = KillRun(data)
    segment = -1
    ingest = await Ingest.start(*args)  # creates the persistent session
    await asyncio.sleep(1.5)
    publisher = asyncio.create_task(publish_paced(broker, topic, frames, stream_s, run.done))
    try:
        for k in range(kills):
            # Kill k not before k/kills of the stream is out, so the kills land all along it
            # however fast a run restarts.
            while run.done[0] < k * len(frames) // kills and not publisher.done():
                await asyncio.sleep(0.05)
            if k % 2:  # after the run has committed something: mid-stream, mid-batch, mid-seal
                await committed_since(data, ROVER, segment, 30)
            await kill(k, ingest)
            run.at.append(run.done[0] * per_message)
            check_parquet_opens(data, run.seen)
            run.kinds.update(interrupted(data, ROVER))
            run.durable.append(await stored_packets(data, catalog, ROVER))
            segment = last_segment(data, ROVER)
            ingest = await Ingest.start(*args)
        await publisher
        run.got = await wait_stored(data, catalog, ROVER, len(packets), 90)
        code = await ingest.stop(signal.SIGINT)
        assert code in (0, -signal.SIGINT, 130), (code, ingest.lines)
    finally:
        publisher.cancel()
        await ingest.stop(signal.SIGKILL)  # when the test failed half-way; else a no-op
    return run


@pytest.mark.slow
@pytest.mark.parametrize("archive", ["parquet", "s3"])
async def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(
    rover: Catalog, private_broker: tuple[str, int], tmp_path: Path, archive: str,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """On the store's own Parquet tables, and with a Delta archive on the S3 server."""
    extra = () if archive == "parquet" else ("--archive", request.getfixturevalue("s3_bucket"))
    t_start = time.monotonic()
    inst = rover.instruments[ROVER]
    m = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=1_790_000_000 * 10**9)
    packets = m.next_batch(N_PACKETS).packets
    rng = random.Random(7)

    async def kill(k: int, ingest: Ingest) -> None:
        # odd k: after a commit; even k: any time after start, in the recovery or running
        await asyncio.sleep(rng.uniform(0.0, 1.0) if k % 2 else rng.uniform(0.1, 1.6))
        await ingest.stop(signal.SIGKILL)

    run = await stream_with_kills(
        private_broker, rover, tmp_path / "store", "crash", packets,
        per_message=PER_MESSAGE, segment_messages=SEGMENT_MESSAGES, stream_s=STREAM_S,
        kills=KILLS, kill=kill, extra=extra,
    )  # fmt: skip
    check_parquet_opens(run.data, run.seen)
    with Store(run.data) as store:
        every_version_opens(store)

    raw = stored_raw(run.data, rover, ROVER)
    dup = duplicates(raw)
    durable = run.durable
    print(
        f"\n{KILLS} SIGKILLs; packets published {run.at}, stored {durable} at each kill "
        f"(of {N_PACKETS}, {PER_MESSAGE} per message); kills that cut: {dict(run.kinds)}; "
        f"{len(run.seen)} Parquet files opened; "
        f"stored {raw.num_rows} (live count {run.got}), lost {N_PACKETS - raw.num_rows}, "
        f"duplicates {dup}; wall {time.monotonic() - t_start:.1f} s"
    )
    assert dup == 0, "a packet was stored twice"
    assert raw.num_rows == N_PACKETS, f"{N_PACKETS - raw.num_rows} packets lost"
    assert sorted(raw.column("data").to_pylist()) == sorted(packets)
    assert durable[0] < N_PACKETS // 4 and durable[-2] > N_PACKETS // 2, f"not spread: {durable}"
