"""`ilrs-ops ingest --workers N` on the real Mosquitto: N shard processes over one store, a shard
killed with SIGKILL is started again and loses nothing, SIGTERM stops them all (sealed, exit 0),
and a shard that refuses its settings stops the supervisor with its error. Also: a shard that
starts again beside a running one recovers only its own lanes (before, it tried to take the
other shard's WAL locks and refused to start)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from ilrs_ops.history import History
from ilrs_ops.ingest import IngestConfig, Ingestor, shard_of
from ilrs_ops.processing import recover
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Simulator
from ilrs_ops.store import Store
from tests.conftest import MOSQUITTO, ROOT
from tests.test_ingest import table

PID = re.compile(r"ingest worker (\d+)/(\d+): pid (\d+)")


async def start_workers(
    n: int, data: Path, root: str, profiles: Path = ROOT / "hardware_profiles"
) -> asyncio.subprocess.Process:
    cmd = [
        sys.executable, "-m", "ilrs_ops", "ingest", "--workers", str(n),
        "--broker", f"{MOSQUITTO[0]}:{MOSQUITTO[1]}", "--data", str(data), "--root", root,
        "--profiles", str(profiles),
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stderr=asyncio.subprocess.PIPE)


async def read_until(proc: asyncio.subprocess.Process, lines: list[str], pattern: str) -> str:
    """Lines of the supervisor's stderr (kept in ``lines``) up to one that matches."""
    assert proc.stderr is not None
    while True:
        raw = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert raw, f"stderr ended before {pattern!r}:\n{''.join(lines)}"
        lines.append(raw.decode())
        if re.search(pattern, lines[-1]):
            return lines[-1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
async def test_workers_share_the_station_survive_a_kill_and_stop_together(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    proc = await start_workers(2, data, topic_root)
    lines: list[str] = []
    pids: dict[int, int] = {}
    while len(pids) < 2 or sum("ingesting shard" in x for x in lines) < 2:
        m = PID.search(await read_until(proc, lines, r"ingest worker|ingesting shard"))
        if m:
            assert m.group(2) == "2"
            pids[int(m.group(1))] = int(m.group(3))
    await asyncio.sleep(3.0)  # both subscribed (persistent sessions: nothing is lost after)
    sim = Simulator(station, host=MOSQUITTO[0], port=MOSQUITTO[1], root=topic_root, seed=8)
    run = asyncio.create_task(sim.run(8.0))
    await asyncio.sleep(3.0)
    os.kill(pids[0], signal.SIGKILL)  # mid-stream
    line = await read_until(proc, lines, r"ingest worker 0/2: pid")
    restarted = int(PID.search(line).group(3))  # type: ignore[union-attr]
    assert restarted != pids[0]
    await run
    await asyncio.sleep(4.0)  # the restarted shard catches up on its session's backlog
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 150)
    assert proc.stderr is not None
    lines += [x.decode() for x in (await proc.stderr.read()).splitlines(keepends=True)]
    text = "".join(lines)
    assert code == 0, text
    assert not alive(pids[1]) and not alive(restarted), text
    assert "SIGKILL" in text  # the supervisor says why it started shard 0 again
    with History.at(data, station) as h:
        recover(h.store, h.catalog)  # what the kill left in shard 0's WAL
    for inst in station:
        raw = table(data, "raw", inst.id)
        assert raw.num_rows == sim.published[inst.id], (inst.id, shard_of(inst.id, 2))
        times = raw.column("time").cast(pa.int64()).to_pylist()
        keys = set(zip(raw.column("seq").to_pylist(), times, strict=True))
        assert len(keys) == raw.num_rows, inst.id  # no duplicates


async def test_a_shard_that_refuses_its_settings_stops_the_supervisor(
    topic_root: str, tmp_path: Path
) -> None:
    data = tmp_path / "not-a-folder"
    data.write_text("a file where the store should be\n")
    proc = await start_workers(2, data, topic_root)
    assert proc.stderr is not None
    code = await asyncio.wait_for(proc.wait(), 90)
    text = (await proc.stderr.read()).decode()
    assert code == 2, text
    assert "refused to run" in text and str(data) in text, text


async def test_workers_and_shard_together_are_refused(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ilrs_ops", "ingest", "--workers", "2", "--shard", "1/2",
        "--data", str(tmp_path), cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},  # the usage box wraps long lines
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "leave out --shard" in err.decode()


async def test_a_shard_restarts_beside_a_running_one(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    """Two Stores on one root stand for two shard processes (each holds its lanes' locks)."""

    def config(shard: int) -> IngestConfig:
        return IngestConfig(
            root=topic_root,
            shard=shard,
            shards=2,
            client_id=f"{topic_root}-ingest-{shard}".replace("/", "-"),
        )

    mine = [sorted(i.id for i in station if shard_of(i.id, 2) == s) for s in range(2)]
    with Store(tmp_path) as other, Store(tmp_path) as first:
        async with Ingestor(catalog=station, store=other, config=config(1)) as one:
            await asyncio.wait_for(one.ready(), 30)
            async with Ingestor(catalog=station, store=first, config=config(0)) as zero:
                await asyncio.wait_for(zero.ready(), 30)
            first.close()
            # What shard 1 (running) and the console may be writing at this moment, and what
            # a crash of shard 0 left: only the last is shard 0's to delete.
            theirs = tmp_path / "raw" / f"instrument={mine[1][0]}" / "date=2026-12-03"
            console = tmp_path / "events" / f"instrument={mine[0][0]}" / "date=2026-12-03"
            ours = tmp_path / "raw" / f"instrument={mine[0][0]}" / "date=2026-12-03"
            for folder in (theirs, console, ours):
                folder.mkdir(parents=True, exist_ok=True)
            kept = [theirs / ".000000000007.parquet.tmp", console / ".console-1.parquet.tmp"]
            gone = ours / ".000000000007.parquet.tmp"
            for path in [*kept, gone]:
                path.write_bytes(b"half a file")
            with Store(tmp_path) as again:
                async with Ingestor(catalog=station, store=again, config=config(0)) as zero:
                    await asyncio.wait_for(zero.ready(), 30)
                    assert set(zero.lanes) >= set(mine[0])
    assert all(p.exists() for p in kept)
    assert not gone.exists()
