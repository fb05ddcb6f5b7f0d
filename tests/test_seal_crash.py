"""Crash test of sealing through the ingest process: ``ilrs-ops ingest --segment-messages 5``
seals a WAL segment to Parquet every few messages while a QoS 1 stream comes in, and is killed
with SIGKILL again and again, half of the kills aimed at a seal (the moment a temp Parquet file
appears). After every kill every visible Parquet file opens; in the end recovery has restored
every acknowledged packet, exactly once. (tests/test_store_recovery.py does the same to a store
writer without MQTT.)"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import watchfiles

from ilrs_ops.files import is_temp
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Environment, Module
from ilrs_ops.store import Store
from tests.test_archive import every_version_opens
from tests.test_ingest_crash import (
    ROVER,
    Ingest,
    check_parquet_opens,
    duplicates,
    stored_raw,
    stream_with_kills,
)

N_PACKETS = 12_000
PER_MESSAGE = 10
KILLS = 12
SEGMENT_MESSAGES = 5  # a seal every 50 packets: the seal thread is hardly ever idle
STREAM_S = 30.0
T0 = 1_790_000_000 * 10**9


def seal_file(path: str) -> bool:
    """A file a seal writes first: a temp Parquet file, or a Delta archive's data file (its
    commit comes after)."""
    return (is_temp(Path(path)) and path.endswith(".parquet.tmp")) or (
        Path(path).name.startswith("part-") and path.endswith(".parquet")
    )


def new_segment(path: str) -> bool:
    """A WAL segment begun: the one before it is being sealed now (the sign of a seal into
    an archive on S3, whose files no watcher sees)."""
    return path.endswith(".arrows")


async def kill_in_a_seal(
    ingest: Ingest, data: Path, timeout: float, sign: Callable[[str], bool] = seal_file
) -> bool:
    """SIGKILL ``ingest`` as soon as a file under ``data`` says a seal is on (``sign``; or
    after ``timeout``); whether a seal was caught."""
    stop = asyncio.Event()
    caught = False

    async def watch() -> None:
        nonlocal caught
        async for changes in watchfiles.awatch(
            data, watch_filter=None, debounce=1, step=1, stop_event=stop
        ):
            if any(sign(p) for _, p in changes):
                caught = True
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watch(), timeout)
    stop.set()
    await ingest.stop(signal.SIGKILL)
    return caught


@pytest.mark.slow
@pytest.mark.parametrize("archive", [None, "archive", "s3"])
async def test_sigkill_while_sealing_keeps_every_parquet_file_readable_and_every_ack(
    rover: Catalog, private_broker: tuple[str, int], tmp_path: Path, archive: str | None,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """On the store's own Parquet tables, with a Delta archive on a local path (a kill when a
    seal writes its first data file) and one on the S3 server (a kill just after a WAL
    segment closes: its seal has begun)."""
    t_start = time.monotonic()
    inst = rover.instruments[ROVER]
    m = Module(inst, Environment(epoch_ns=0), seed=2, start_ns=T0)
    packets = m.next_batch(N_PACKETS).packets
    data = tmp_path / "store"
    watched = tmp_path / archive if archive == "archive" else data
    watched.mkdir()
    sign = new_segment if archive == "s3" else seal_file
    uri = request.getfixturevalue("s3_bucket") if archive == "s3" else str(tmp_path / "archive")
    extra = () if archive is None else ("--archive", uri)
    rng = random.Random(11)
    aimed = caught = 0

    async def kill(k: int, ingest: Ingest) -> None:
        nonlocal aimed, caught
        if k % 2:  # once the run has committed a batch, in the next seal
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            aimed += 1
            caught += await kill_in_a_seal(ingest, watched, 3.0, sign)
        else:  # any time after start: in the recovery's seals, or running
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await ingest.stop(signal.SIGKILL)

    run = await stream_with_kills(
        private_broker, rover, data, "sealcrash", packets,
        per_message=PER_MESSAGE, segment_messages=SEGMENT_MESSAGES, stream_s=STREAM_S,
        kills=KILLS, kill=kill, extra=extra,
    )  # fmt: skip
    done, kinds = run.done, run.kinds

    every: dict[Path, tuple[int, int]] = {}
    files = check_parquet_opens(data, every)  # all of them once more, after the last run
    raw = stored_raw(data, rover, ROVER)
    dup = duplicates(raw)
    with History.at(data, rover) as store:
        tm = store.query(ROVER, None, T0, T0 + N_PACKETS * 10**9)
    t = tm.column("time").cast("int64").to_numpy()
    print(
        f"\n{KILLS} SIGKILLs with a seal every {SEGMENT_MESSAGES} messages; {aimed} aimed at a "
        f"seal, {caught} caught one; kills that cut: {dict(kinds)}; stored at each kill "
        f"{run.durable}; {files} Parquet files in the end, all open; acknowledged {done[0]} "
        f"messages = {done[0] * PER_MESSAGE} packets, stored {raw.num_rows} "
        f"(live count {run.got}), "
        f"lost {N_PACKETS - raw.num_rows}, duplicates {dup}; "
        f"wall {time.monotonic() - t_start:.1f} s"
    )
    assert done[0] * PER_MESSAGE == N_PACKETS  # every packet was acknowledged by the broker
    assert dup == 0, "a packet was stored twice"
    assert raw.num_rows == N_PACKETS, f"{N_PACKETS - raw.num_rows} packets lost"
    assert sorted(raw.column("data").to_pylist()) == sorted(packets)
    assert tm.num_rows == N_PACKETS and (np.diff(t) > 0).all()  # telemetry too, in order
    if archive is None:
        assert kinds["seal"] >= 3, f"too few kills landed in a seal: {dict(kinds)}"
    else:  # a seal cut short leaves its segment unsealed: recovery seals it again, once
        assert caught >= 3, f"too few kills landed in a seal: {caught} of {aimed}"
        with Store(data) as store:
            every_version_opens(store)
