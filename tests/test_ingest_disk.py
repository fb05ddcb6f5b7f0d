"""A store that refuses writes: a full disk (a tiny tmpfs, as root) and a file size limit
(RLIMIT_FSIZE, any user). Ingest must say so once, clearly, acknowledge nothing while it lasts
(the broker keeps the messages), resume by itself when writes succeed again, and in the end hold
every packet exactly once. Figures are printed (``-s``) for docs/RELIABILITY.md.

A read-only remount of the store is not tested: Linux refuses ``mount -o remount,ro`` (EBUSY)
while ingest holds its WAL segment open for writing, so a store cannot turn read-only under a
running ingest that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from ilrs_ops.history import History
from ilrs_ops.processing import recover
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Environment, Module
from tests.conftest import DATA, ROOT
from tests.test_ingest_overload import Watch, follow_metrics, until

LANE = "acme-rover-1"


class Ingest:
    """``ilrs-ops ingest`` as a subprocess, its stderr in a file, its metrics followed."""

    def __init__(self, broker: tuple[str, int], data: Path, root: str, log: Path) -> None:
        self.broker, self.data, self.root, self.log = broker, data, root, log
        self.proc: asyncio.subprocess.Process | None = None
        self.watch = Watch()
        self._follow: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cmd = [
            sys.executable, "-m", "ilrs_ops", "ingest",
            "--broker", f"{self.broker[0]}:{self.broker[1]}", "--data", str(self.data),
            "--root", self.root, "--profiles", str(DATA / "good_profiles"),
        ]  # fmt: skip
        # SIGXFSZ ignored (inherited through exec), so that a write past RLIMIT_FSIZE fails
        # with EFBIG instead of killing the process.
        shell = "trap '' XFSZ; exec \"$@\""
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                "sh", "-c", shell, "sh", *cmd, cwd=ROOT, stderr=err
            )
        self.watch = Watch()
        self._follow = asyncio.create_task(follow_metrics(self.broker, self.root, self.watch))
        await until(lambda: self.connected(), 60, "ingest to connect")

    def connected(self) -> bool:
        return bool(self.watch.last().get("connected"))

    @property
    def docs(self) -> list[tuple[float, dict]]:
        return self.watch.docs

    def lane(self) -> dict:
        return self.watch.last()["lanes"][LANE]

    async def stop(self, sig: int) -> None:
        if self._follow is not None:
            self._follow.cancel()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            await asyncio.wait_for(self.proc.wait(), 120)


def packets(n: int, start_ns: int, seed: int, rover: Catalog) -> list[bytes]:
    m = Module(rover.instruments[LANE], Environment(epoch_ns=0), seed=seed, start_ns=start_ns)
    return m.next_batch(n).packets


async def publish(broker: tuple[str, int], topic: str, batch: list[bytes]) -> None:
    async with aiomqtt.Client(*broker) as pub:
        for p in batch:
            await pub.publish(topic, p, qos=1)


def fill(path: Path) -> int:
    """Write ``path`` until the file system is full; returns the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    try:
        for chunk in (1 << 16, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return written


def assert_stored_exactly_once(data: Path, rover: Catalog, sent: list[bytes]) -> None:
    with History.at(data, rover) as store:
        recover(store.store, store.catalog)
    raw = ds.dataset(data / "raw" / f"instrument={LANE}", format="parquet").to_table()
    times = raw.column("time").cast(pa.int64()).to_pylist()
    keys = set(zip(raw.column("seq").to_pylist(), times, strict=True))
    assert len(keys) == raw.num_rows, "a packet was stored twice"
    assert raw.num_rows == len(sent), f"{len(sent) - raw.num_rows} packets lost"
    assert sorted(raw.column("data").to_pylist()) == sorted(sent)


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str = "4m"):
    """A tmpfs of ``size`` mounted on ``folder``: needs root (CAP_SYS_ADMIN)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the RLIMIT_FSIZE test runs anyway")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused (no CAP_SYS_ADMIN here?): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
async def test_full_disk_holds_acks_resumes_and_loses_nothing(
    rover: Catalog, private_broker: tuple[str, int], tmp_path: Path
) -> None:
    """Disk full twice: once ingest resumes by itself when space returns; once it is killed
    while the disk is full and restarted, and the broker delivers again what it never acked."""
    root = "diskfull"
    topic = rover.instruments[LANE].topic(root)
    log = tmp_path / "ingest.err"
    t0 = 1_790_000_000 * 10**9
    a, b, c = (packets(n, t0 + k * 10**12, k, rover) for k, n in enumerate((200, 300, 300)))
    figures: dict[str, object] = {}
    with tiny_tmpfs(tmp_path / "store") as data:
        ingest = Ingest(private_broker, data, root, log)
        filler = data / "filler"
        try:
            await ingest.start()
            await publish(private_broker, topic, a)
            await until(lambda: ingest.lane()["messages"] == len(a), 30, "the first packets")

            # Episode 1: full; publish; nothing more is acked; space back; ingest resumes.
            figures["filler_bytes"] = fill(filler)
            await publish(private_broker, topic, b)
            await until(lambda: ingest.lane()["store_failing"], 30, "the store error")
            t_fail = time.monotonic()
            await asyncio.sleep(5.0)
            stuck = ingest.watch.last()
            durable = stuck["lanes"][LANE]["messages"]
            assert durable < len(a) + len(b)  # (a little may fit in the last page)
            assert stuck["unacked"] == len(a) + len(b) - durable  # held, not acknowledged
            figures["episode1"] = {
                "durable_while_full": durable - len(a),
                "unacked_while_full": stuck["unacked"],
                "store_errors_after_5s": stuck["lanes"][LANE]["store_errors"],
            }
            filler.unlink()
            t_free = time.monotonic()
            await until(
                lambda: (
                    ingest.lane()["messages"] == len(a) + len(b)
                    and not ingest.lane()["store_failing"]
                    and ingest.watch.last()["unacked"] == 0
                ),
                30,
                "ingest to resume",
            )
            figures["episode1"]["full_s"] = round(t_free - t_fail, 1)  # type: ignore[index]
            figures["episode1"]["resumed_after_s"] = round(  # type: ignore[index]
                ingest.docs[-1][0] - t_free, 1
            )

            # Episode 2: full again; ingest is killed while it holds the messages unacked.
            fill(filler)
            await publish(private_broker, topic, c)
            await until(lambda: ingest.lane()["store_failing"], 30, "the store error")
            await asyncio.sleep(3.0)
            figures["episode2_unacked_at_kill"] = ingest.watch.last()["unacked"]
            await ingest.stop(signal.SIGKILL)
            filler.unlink()
            await ingest.start()  # the broker delivers again what was never acknowledged
            await until(
                lambda: (
                    ingest.lane()["messages"] >= figures["episode2_unacked_at_kill"]
                    and ingest.watch.last()["unacked"] == 0
                ),
                60,
                "the redelivered packets",
            )
            await asyncio.sleep(1.0)
        finally:
            await ingest.stop(signal.SIGINT)
        print("\ndisk full figures:", figures)
        text = log.read_text()
        errors = [line for line in text.splitlines() if "refuses writes" in line]
        print("\n".join(errors))
        assert len(errors) == 2, text  # once per episode, not once per retry
        for line in errors:
            assert line.startswith("ERROR") and f"store {data}" in line, line
            assert "(ENOSPC: No space left on device)" in line and "not acknowledging" in line
        assert text.count("takes writes again") == 1, text  # episode 2 ended in a kill
        assert_stored_exactly_once(data, rover, a + b + c)


async def test_file_size_limit_holds_acks_and_resumes_exactly_once(
    rover: Catalog, private_broker: tuple[str, int], tmp_path: Path
) -> None:
    """Without root: RLIMIT_FSIZE set on the running ingest (prlimit) at the size of its WAL
    segment makes the next append fail with EFBIG; raising it again lets ingest resume."""
    root = "fsize"
    topic = rover.instruments[LANE].topic(root)
    data = tmp_path / "store"
    log = tmp_path / "ingest.err"
    t0 = 1_790_000_000 * 10**9
    a, b = (packets(n, t0 + k * 10**12, k, rover) for k, n in enumerate((100, 300)))
    ingest = Ingest(private_broker, data, root, log)
    try:
        await ingest.start()
        assert ingest.proc is not None
        pid = ingest.proc.pid
        await publish(private_broker, topic, a)
        await until(lambda: ingest.lane()["messages"] == len(a), 30, "the first packets")
        segment = max((data / "wal" / LANE).glob("*.arrows"))
        limit = segment.stat().st_size
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        await publish(private_broker, topic, b)
        await until(lambda: ingest.lane()["store_failing"], 30, "the store error")
        await asyncio.sleep(2.0)
        stuck = ingest.watch.last()
        assert stuck["lanes"][LANE]["messages"] == len(a)  # not one more made durable
        assert stuck["unacked"] == len(b)  # all held unacknowledged
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        await until(
            lambda: (
                ingest.lane()["messages"] == len(a) + len(b) and ingest.watch.last()["unacked"] == 0
            ),
            30,
            "ingest to resume",
        )
    finally:
        await ingest.stop(signal.SIGINT)
    text = log.read_text()
    errors = [line for line in text.splitlines() if "refuses writes" in line]
    assert len(errors) == 1, text
    assert f"store {data}" in errors[0] and "(EFBIG: File too large)" in errors[0], errors
    assert text.count("takes writes again") == 1, text
    assert_stored_exactly_once(data, rover, a + b)
