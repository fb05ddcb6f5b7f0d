"""Recovery: unsealed WAL segments, torn tails, crashes mid-seal (also real SIGKILLs of a child
process at random points), leftover temp files, the WAL lock."""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ilrs_ops.errors import StoreError
from ilrs_ops.history import History
from ilrs_ops.processing import Processor, recover, seal
from ilrs_ops.profiles import Catalog, Instrument, load_catalog
from ilrs_ops.store import Store, _seal
from tests.test_archive import every_version_opens
from tests.test_store import (
    DAY,
    ROVER,
    T0,
    ingest,
    make_batches,
    parquet_files,
    reference,
    seal_current,
    tables_of,
    times,
)

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"


@pytest.fixture
def inst(rover: Catalog) -> Instrument:
    return rover.instruments[ROVER]


def all_telemetry(store: Store):
    return store.query(ROVER, None, T0 - DAY, T0 + DAY, raw=True)


def wal_segments(root: Path) -> list[Path]:
    return sorted((root / "wal" / ROVER).glob("*.arrows"))


def test_recover_seals_what_a_crash_left(
    tmp_path: Path, rover: Catalog, inst: Instrument, archived: Callable[[Path], Path]
) -> None:
    archived(tmp_path)
    batches = make_batches(inst, 5)
    store = History.at(tmp_path, rover)
    proc = ingest(store, inst, batches, seal_every=2)  # the fifth batch stays in the WAL
    store.close()  # as a crash leaves it: the lock goes with the process
    assert len(wal_segments(tmp_path)) == 1
    with History.at(tmp_path, rover) as store:
        states = recover(store.store, store.catalog)
        assert states[ROVER].to_json() == proc.state.to_json()
        assert all_telemetry(store).equals(reference(inst, batches).telemetry)
        assert not wal_segments(tmp_path)
        assert store.store.wal(ROVER).segment == 4  # numbering continues after the sealed ones
        with Store(tmp_path / "fresh") as fresh:
            assert recover(fresh, rover)[ROVER].packets == 0


def test_recover_drops_a_torn_tail(
    tmp_path: Path, rover: Catalog, inst: Instrument, archived: Callable[[Path], Path]
) -> None:
    archived(tmp_path)
    batches = make_batches(inst, 3)
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        ingest(store, inst, batches[:2])
        whole = wal.size
        ingest(store, inst, batches[2:])
    (segment,) = wal_segments(tmp_path)
    with open(segment, "r+b") as f:
        f.truncate(whole + (segment.stat().st_size - whole) // 2)  # the third batch torn
    with History.at(tmp_path, rover) as store:
        assert recover(store.store, store.catalog)[ROVER].packets == 80
        assert all_telemetry(store).equals(reference(inst, batches[:2]).telemetry)


def test_recover_after_crash_between_checkpoint_and_wal_delete(
    tmp_path: Path, rover: Catalog, inst: Instrument, archived: Callable[[Path], Path]
) -> None:
    archived(tmp_path)
    batches = make_batches(inst, 2)
    with History.at(tmp_path, rover) as store:
        ingest(store, inst, batches)
        (segment,) = wal_segments(tmp_path)
        shutil.copy(segment, tmp_path / "copy")
        seal_current(store, ROVER)
    shutil.copy(tmp_path / "copy", segment)  # as if the deletion never happened
    with History.at(tmp_path, rover) as store:
        assert all_telemetry(store).num_rows == 80  # readers ignore sealed WAL segments
        assert recover(store.store, store.catalog)[ROVER].packets == 80
        assert all_telemetry(store).num_rows == 80 and not wal_segments(tmp_path)


def test_recover_after_crash_mid_seal(
    tmp_path: Path, rover: Catalog, inst: Instrument, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = make_batches(inst, 4)
    store = History.at(tmp_path, rover)
    ingest(store, inst, batches[:2], seal_every=2)
    ingest(store, inst, batches[2:])

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # dies after the Parquet files, before the checkpoint

    monkeypatch.setattr(_seal, "write_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        seal_current(store, ROVER)
    monkeypatch.undo()
    store.close()
    folder = tmp_path / "telemetry" / f"instrument={ROVER}" / "date=2025-06-15"
    assert (folder / "000000000002.parquet").exists()  # complete, but not committed
    leftovers = [folder / ".000000000003.parquet.tmp", tmp_path / "state" / f".{ROVER}.json.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    expected = reference(inst, batches).telemetry
    with History.at(tmp_path, rover) as reader:
        assert all_telemetry(reader).equals(expected)  # segment 2 from the WAL, not twice
    with History.at(tmp_path, rover) as store:
        recover(store.store, store.catalog)
        assert not any(p.exists() for p in leftovers)
        assert all_telemetry(store).equals(expected)
        assert not wal_segments(tmp_path)


def test_a_failed_seal_is_done_by_the_next(
    tmp_path: Path, rover: Catalog, inst: Instrument, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = make_batches(inst, 4)
    with History.at(tmp_path, rover) as store:
        proc = ingest(store, inst, batches[:2])
        real = os.fsync

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(StoreError, match="disk is full"):
            seal_current(store, ROVER)
        monkeypatch.setattr(os, "fsync", real)
        assert all_telemetry(store).num_rows == 80  # still served from the WAL
        ingest(store, inst, batches[2:], lane=proc)
        seal_current(store, ROVER)  # seals segment 1 (replayed) before segment 2
        assert not wal_segments(tmp_path)
        assert all_telemetry(store).equals(reference(inst, batches).telemetry)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_wal_needs_recovery_first_and_one_writer(
    tmp_path: Path, rover: Catalog, inst: Instrument
) -> None:
    with History.at(tmp_path, rover) as store:
        ingest(store, inst, make_batches(inst, 1))
    with History.at(tmp_path, rover) as store:
        with pytest.raises(StoreError, match="recover them first"):
            store.store.wal(ROVER)
        recover(store.store, store.catalog)
        store.store.wal(ROVER)
        with History.at(tmp_path, rover) as other, pytest.raises(StoreError, match="locked"):
            other.store.wal(ROVER)
        with pytest.raises(StoreError, match="recover first"):
            recover(store.store, store.catalog)
        with pytest.raises(StoreError, match="older than the last sealed"):
            seal(store.store, ROVER, inst, 0, tables_of(ROVER, inst, []), Processor(inst).state)


# ---------------------------------------------------------------------- real crashes

CHILD_BATCHES = 40


def crash_child(root: str, seed: int, mode: str) -> None:
    """Run in a child process: ingest (append, acknowledge on stdout, process, seal every two
    batches) or only recover, until killed."""
    catalog = load_catalog([DATA / "good_profiles"])
    inst = catalog.instruments[ROVER]
    batches = make_batches(inst, CHILD_BATCHES, 200, per_frame=20, seed=seed)
    with History.at(Path(root), catalog) as store:
        if mode == "recover":
            print("ready", flush=True)
            recover(store.store, store.catalog)
            print("done", flush=True)
            time.sleep(60)
        states = recover(store.store, store.catalog)
        proc = Processor(inst, states[ROVER])
        wal = store.store.wal(ROVER)
        print("ready", flush=True)
        pending = []
        for k, (recv, frames) in enumerate(batches):
            wal.append(recv, inst.topic(), frames)
            print(f"ack {k}", flush=True)
            pending.append(proc.process(frames, recv, inst.topic()))
            if k % 2 == 1:
                seal_current(store, ROVER, pending, proc.state)
                pending = []
        print("done", flush=True)
        time.sleep(60)


def run_and_kill(root: Path, seed: int, mode: str, delay: float, after: str = "ready") -> list[str]:
    """Start a child, SIGKILL it ``delay`` seconds after it printed ``after``; its stdout."""
    code = f"from tests.test_store_recovery import crash_child; crash_child({str(root)!r}, {seed}, {mode!r})"  # noqa: E501
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stderr is not None
        seen = []
        while (line := child.stdout.readline().strip()) != after:
            if not line or line == "done":
                child.wait(30)
                pytest.fail(f"child stopped before {after!r}: {seen} {child.stderr.read()}")
            seen.append(line)
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    lines = [*seen, after, *child.stdout.read().splitlines()]
    child.stdout.close()
    child.stderr.close()
    return lines


def check_after_crash(root: Path, inst: Instrument, acked: int, seed: int) -> None:
    """Every visible Parquet file (every version of a Delta archive) opens; recovery restores
    every acknowledged batch, at most the one being written besides, nothing twice."""
    for path in parquet_files(root):
        pq.read_table(path)
    with Store(root) as store:
        every_version_opens(store)
    batches = make_batches(inst, CHILD_BATCHES, 200, per_frame=20, seed=seed)
    with History.at(root, inst_catalog(inst)) as store:
        state = recover(store.store, store.catalog)[ROVER]
        got = all_telemetry(store)
    assert not wal_segments(root)
    assert (np.diff(times(got)) > 0).all()  # in order, nothing twice
    acknowledged = 200 * acked
    upto = reference(inst, batches[: min(acked + 1, CHILD_BATCHES)]).telemetry
    assert got.num_rows in {acknowledged, upto.num_rows}
    assert got.equals(upto.slice(0, got.num_rows))
    assert state.packets == got.num_rows


def inst_catalog(inst: Instrument) -> Catalog:
    return Catalog({inst.id: inst})


def _crash_once(root: Path, inst: Instrument, seed: int, rng: random.Random, twice: bool) -> None:
    ack = f"ack {rng.randrange(CHILD_BATCHES - 1)}"
    lines = run_and_kill(root, seed, "ingest", rng.uniform(0.0, 0.03), after=ack)
    acked = sum(1 for line in lines if line.startswith("ack"))
    if twice:  # and a crash in the middle of the recovery as well
        run_and_kill(root, seed, "recover", rng.uniform(0.0, 0.2))
    check_after_crash(root, inst, acked, seed)


def test_sigkill_during_ingest_and_seal(
    tmp_path: Path, inst: Instrument, archived: Callable[[Path], Path]
) -> None:
    rng = random.Random(20240)
    for k in range(3):
        _crash_once(archived(tmp_path / str(k)), inst, k, rng, twice=False)


@pytest.mark.slow
def test_sigkill_many_times(
    tmp_path: Path, inst: Instrument, archived: Callable[[Path], Path]
) -> None:
    rng = random.Random(7)
    for k in range(16):
        _crash_once(archived(tmp_path / str(k)), inst, k, rng, twice=k % 2 == 1)
