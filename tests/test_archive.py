"""The archive as Delta Lake tables (issue 15), on a local path and on a real S3-compatible
server on loopback: what a store reads back is what the Parquet store (the reference) reads,
a seal is committed exactly once however often it runs, readers on other hosts see every
commit, and other engines read the tables."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.history import History
from ilrs_ops.processing import Processor, recover
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.schemas import COMMANDS, EVENTS
from ilrs_ops.sim import Faults
from ilrs_ops.store import Store, _archive, migrate, optimize, vacuum
from ilrs_ops.store._delta import DeltaTables
from ilrs_ops.store._parquet import ParquetTables
from tests.test_store import (
    DAY,
    NS,
    ROVER,
    T0,
    ingest,
    make_batches,
    reference,
    seal_current,
    tables_of,
    times,
)

MIDNIGHT = (T0 // DAY + 1) * DAY


@pytest.fixture
def inst(rover: Catalog) -> Instrument:
    return rover.instruments[ROVER]


def every_version_opens(store: Store) -> None:
    """Each table of a Delta archive opens and reads at every one of its versions."""
    from deltalake import DeltaTable

    archive = store.archive
    if not isinstance(archive, DeltaTables):
        return
    uris = [archive.table_uri(t, ROVER) for t in ("raw", "telemetry", "events", "rollups")]
    for uri in [*uris, archive.table_uri("quarantine", ROVER)]:
        if not DeltaTable.is_deltatable(uri, storage_options=archive.options):
            continue
        last = DeltaTable(uri, storage_options=archive.options).version()
        for v in range(last + 1):
            DeltaTable(uri, version=v, storage_options=archive.options).to_pyarrow_table()


def fill(history: History, inst: Instrument) -> None:
    """Batches across a UTC midnight with limit violations, gaps, corrupt and unknown
    packets, four sealed and two live; an unknown instrument's messages; console rows."""
    faults = Faults(limit=0.05, gap=0.02, corrupt=0.02, wrong_apid=0.02, limit_s=1.0)
    batches = make_batches(inst, 6, start_ns=MIDNIGHT - 70 * NS, faults=faults, seed=3)
    lane = ingest(history, inst, batches[:4], seal_every=2)
    ingest(history, inst, batches[4:], lane=lane)
    unknown = history.store.wal("_unknown")
    unknown.append(np.array([MIDNIGHT - 1, MIDNIGHT]), "ilrs/tm/x/ghost", [b"\x01", b"\x02"])
    seal_current(history, "_unknown")
    ack = {"time": [MIDNIGHT + 5 * NS], "kind": ["ack"], "channel": ["batt_v"]}
    ack |= {"from_state": [2], "to_state": [2], "value": [None], "detail": ["ops"]}
    history.store.append_events(ROVER, pa.table(ack).cast(EVENTS))
    cmd = {"time": [MIDNIGHT + 6 * NS], "id": ["r1"], "stage": ["queued"], "who": ["ops"]}
    history.store.append_commands(ROVER, pa.table(cmd | {"detail": ["{}"]}).cast(COMMANDS))


def views(history: History) -> dict[str, object]:
    """Everything a reader asks of a store, as values to compare."""
    lo, hi = MIDNIGHT - DAY, MIDNIGHT + DAY
    out: dict[str, object] = {
        "telemetry": history.query(ROVER, None, lo, hi, raw=True),
        "buckets": history.query(ROVER, None, lo, hi, buckets=9, source="telemetry"),
        "rollups": history.query(ROVER, ["batt_v"], MIDNIGHT - 60 * NS, MIDNIGHT + 60 * NS, 2),
        "events": history.events(ROVER, lo, hi),
        "quarantine": history.quarantine(ROVER, lo, hi),
        "unknown": history.quarantine("_unknown", lo, hi),
        "raw": history.raw(ROVER, lo, hi),
        "raw last": history.raw(ROVER, lo, hi, last=7),
        "latest": history.latest(ROVER),
        "counters": history.counters(ROVER),
        "commands": history.store.commands(ROVER, lo, hi),
        "replay": pa.Table.from_batches(list(history.raw_batches(ROVER, lo, hi))),
    }
    for table in ("telemetry", "events", "quarantine", "raw"):
        out[f"days {table}"] = history.store.days(table, ROVER)
    return out


def same_views(seen: dict[str, object], expected: dict[str, object]) -> None:
    """Equal, but for bucket means summed in another grouping of the same rows (a file of
    its own per seal, or one per day after a migration): those to 1e-12."""
    for key, value in expected.items():
        got = seen[key]
        if not isinstance(value, pa.Table):
            assert got == value, key
            continue
        assert isinstance(got, pa.Table) and got.schema == value.schema, key
        for name in value.column_names:
            a, b = got.column(name), value.column(name)
            if name.endswith("__mean"):
                assert a.is_null().equals(b.is_null()), (key, name)
                x, y = (np.asarray(c.to_numpy(zero_copy_only=False), float) for c in (a, b))
                assert np.allclose(x, y, rtol=1e-12, equal_nan=True), (key, name)
            else:
                assert a.equals(b), (key, name)


def test_reads_of_a_delta_archive_equal_the_parquet_stores(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    with History.at(tmp_path / "parquet", rover) as ref:
        fill(ref, inst)
        expected = views(ref)
    with History.at(tmp_path / "delta", rover, delta_archive) as got:
        fill(got, inst)
        seen = views(got)
        assert isinstance(got.store.archive, DeltaTables)
        every_version_opens(got.store)
    assert expected["events"].num_rows > 2 and expected["quarantine"].num_rows > 0  # type: ignore[attr-defined]
    assert len(expected["days telemetry"]) == 2  # type: ignore[arg-type]
    same_views(seen, expected)


def test_a_seal_run_again_commits_nothing(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    from deltalake import DeltaTable

    batches = make_batches(inst, 2)
    with History.at(tmp_path, rover, delta_archive) as history:
        proc = Processor(inst)
        wal = history.store.wal(ROVER)
        pending = []
        for recv, frames in batches:
            wal.append(recv, inst.topic(), frames)
            pending.append(proc.process(frames, recv, inst.topic()))
        segment = wal.rotate()
        tables = tables_of(ROVER, inst, pending)
        assert history.store.seal(ROVER, segment, tables, proc.state.to_json())
        uri = history.store.archive.table_uri("telemetry", ROVER)  # type: ignore[union-attr]
        options = history.store.archive.options  # type: ignore[union-attr]
        version = DeltaTable(uri, storage_options=options).version()
        assert history.store.seal(ROVER, segment, tables, proc.state.to_json()) == []
        assert DeltaTable(uri, storage_options=options).version() == version
        assert DeltaTable(uri, storage_options=options).transaction_version(ROVER) == segment
        got = history.query(ROVER, None, T0 - DAY, T0 + DAY, raw=True)
        assert got.equals(reference(inst, batches).telemetry)


def test_a_crash_between_table_commits_seals_each_table_once(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    batches = make_batches(inst, 4, faults=Faults(limit=0.05, limit_s=1.0), seed=5)
    expected = reference(inst, batches)
    history = History.at(tmp_path, rover, delta_archive)
    ingest(history, inst, batches[:2], seal_every=2)
    ingest(history, inst, batches[2:])
    real = DeltaTables._write
    commits: list[str] = []

    def crash_after_two(self: DeltaTables, uri: str, *args: object) -> bool:
        if len(commits) == 2:
            raise KeyboardInterrupt  # the process dies with raw and telemetry committed
        commits.append(uri)
        return real(self, uri, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(DeltaTables, "_write", crash_after_two)
        seal_current(history, ROVER)
    history.close()
    lo, hi = T0 - DAY, T0 + DAY
    with History.at(tmp_path, rover) as reader:  # segment 2 from the WAL, not twice
        assert reader.query(ROVER, None, lo, hi, raw=True).equals(expected.telemetry)
        assert reader.raw(ROVER, lo, hi).num_rows == expected.raw.num_rows
    with History.at(tmp_path, rover) as history:
        recover(history.store, history.catalog)
        assert history.query(ROVER, None, lo, hi, raw=True).equals(expected.telemetry)
        assert history.events(ROVER, lo, hi).equals(expected.events)
        assert history.raw(ROVER, lo, hi).num_rows == expected.raw.num_rows
    with History.at(tmp_path / "elsewhere", rover, delta_archive) as remote:
        assert remote.query(ROVER, None, lo, hi, raw=True).equals(expected.telemetry)


def test_a_reader_on_another_host_sees_every_commit(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    batches = make_batches(inst, 6)
    with History.at(tmp_path / "ingest", rover, delta_archive) as history:
        ingest(history, inst, batches, seal_every=2)
    with History.at(tmp_path / "console", rover, delta_archive) as remote:
        got = remote.query(ROVER, None, T0 - DAY, T0 + DAY, raw=True)
    assert got.equals(reference(inst, batches).telemetry)


def test_shards_commit_to_the_station_tables_at_once(
    tmp_path: Path, station: Catalog, delta_archive: str
) -> None:
    ids = sorted(station.instruments)[:4]
    errors: list[BaseException] = []

    def shard(k: int, mine: list[str]) -> None:
        try:
            with History.at(tmp_path / f"host{k}", station, delta_archive) as h:
                for iid in mine:
                    ingest(
                        h,
                        station.instruments[iid],
                        make_batches(station.instruments[iid], 6, 10),
                        seal_every=1,
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=shard, args=(k, ids[k::2])) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with History.at(tmp_path / "console", station, delta_archive) as remote:
        for iid in ids:
            inst = station.instruments[iid]
            want = reference(inst, make_batches(inst, 6, 10))
            assert remote.raw(iid, T0 - DAY, T0 + DAY).equals(want.raw), iid
            assert remote.query(iid, None, T0 - DAY, T0 + DAY, raw=True).equals(want.telemetry)


def test_a_store_keeps_the_archive_it_was_given(tmp_path: Path, delta_archive: str) -> None:
    Store(tmp_path / "a", archive=delta_archive).close()
    assert isinstance(Store(tmp_path / "a").archive, DeltaTables)  # recorded in archive.json
    with pytest.raises(InputError, match=r"keeps its sealed tables in .*give --archive"):
        Store(tmp_path / "a", archive=str(tmp_path / "other"))
    (tmp_path / "b" / "telemetry").mkdir(parents=True)
    with pytest.raises(InputError, match=r"holds Parquet tables \(telemetry\).*archive migrate"):
        Store(tmp_path / "b", archive=delta_archive)
    (tmp_path / "a" / "archive.json").write_text("{}")
    with pytest.raises(StoreError, match=r"archive.json is corrupt"):
        Store(tmp_path / "a")


def test_other_engines_read_the_archive(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    import duckdb
    import polars as pl
    from deltalake import DeltaTable

    batches = make_batches(inst, 4)
    with History.at(tmp_path, rover, delta_archive) as history:
        ingest(history, inst, batches, seal_every=2)
        ours = history.query(ROVER, None, T0 - DAY, T0 + DAY)
        archive = history.store.archive
        assert isinstance(archive, DeltaTables)
        uri, options = archive.table_uri("telemetry", ROVER), archive.options
    frame = pl.read_delta(uri, storage_options=options).sort("time")
    assert frame["time"].to_list() == times(ours).tolist()  # int64 ns since 1970
    assert frame["wheel_temp"].to_list() == ours.column("wheel_temp").to_pylist()
    dataset = DeltaTable(uri, storage_options=options).to_pyarrow_dataset()
    db = duckdb.connect()
    db.register("telemetry", dataset)
    row = db.sql("select count(*), sum(batt_v) from telemetry").fetchall()[0]
    assert row[0] == ours.num_rows
    assert row[1] == pytest.approx(float(np.sum(ours.column("batt_v").to_numpy())))


def test_migrate_converts_a_parquet_store_losing_nothing(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    root = tmp_path / "data"
    with History.at(root, rover) as before:
        fill(before, inst)  # two batches stay in the WAL, unsealed, as after a stop
        expected = views(before)
    real = _archive._commit_day
    calls: list[int] = []

    def crash_on_the_third(*args: object) -> None:
        if len(calls) == 2:
            raise KeyboardInterrupt  # the migration dies half way
        calls.append(1)
        real(*args)  # type: ignore[arg-type]

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(_archive, "_commit_day", crash_on_the_third)
        migrate(root, delta_archive)
    assert isinstance(Store(root).archive, ParquetTables)  # not switched: run it again
    done = subprocess.run(
        [sys.executable, "-m", "ilrs_ops", "archive", "migrate", f"--data={root}",
         f"--archive={delta_archive}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "delete it when satisfied" in done.stdout
    assert (root / "parquet-before-archive" / "telemetry").is_dir()
    assert not (root / "telemetry").exists()
    with History.at(root, rover) as after:
        assert isinstance(after.store.archive, DeltaTables)
        seen = views(after)
        every_version_opens(after.store)
        recover(after.store, after.catalog)  # the WAL left seals into the archive
        assert after.query(ROVER, None, MIDNIGHT - DAY, MIDNIGHT + DAY, raw=True).equals(
            expected["telemetry"]  # type: ignore[arg-type]
        )
    same_views(seen, expected)
    with pytest.raises(InputError, match="has an archive already"):
        migrate(root, delta_archive)


def test_optimize_and_vacuum_while_ingest_seals(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    from deltalake import DeltaTable

    batches = make_batches(inst, 12, 20)
    with History.at(tmp_path, rover, delta_archive) as history:
        lane = ingest(history, inst, batches[:6], seal_every=1)
        uri = history.store.archive.table_uri("telemetry", ROVER)  # type: ignore[union-attr]
        options = history.store.archive.options  # type: ignore[union-attr]
        files = len(DeltaTable(uri, storage_options=options).file_uris())
        compacted: list[dict[str, int]] = []
        worker = threading.Thread(target=lambda: compacted.append(optimize(history.store)))
        worker.start()
        ingest(history, inst, batches[6:], seal_every=1, lane=lane)  # seals meanwhile
        worker.join()
        assert compacted and compacted[0][uri] >= 1
        assert len(DeltaTable(uri, storage_options=options).file_uris()) < files + 6
        assert vacuum(history.store, 0)[uri] >= 2  # the compacted files are gone
        got = history.query(ROVER, None, T0 - DAY, T0 + DAY, raw=True)
        assert got.equals(reference(inst, batches).telemetry)
        replay = pa.Table.from_batches(list(history.raw_batches(ROVER, T0 - DAY, T0 + DAY)))
        assert replay.equals(reference(inst, batches).raw)
    with pytest.raises(InputError, match="keeps Parquet tables"):
        optimize(Store(tmp_path / "parquet"))


def test_the_archive_as_it_was_at_an_instant(
    tmp_path: Path, rover: Catalog, inst: Instrument, delta_archive: str
) -> None:
    import datetime
    import time

    batches = make_batches(inst, 4)
    with History.at(tmp_path, rover, delta_archive) as history:
        lane = ingest(history, inst, batches[:2], seal_every=2)
        time.sleep(0.01)  # commit times are in ms
        then = datetime.datetime.now(datetime.UTC)
        time.sleep(0.01)
        ingest(history, inst, batches[2:], seal_every=2, lane=lane)
    lo, hi = T0 - DAY, T0 + DAY
    with History.at(tmp_path, rover, as_of=then) as past:
        assert past.query(ROVER, None, lo, hi, raw=True).equals(
            reference(inst, batches[:2]).telemetry
        )
        with pytest.raises(InputError, match="read only"):
            past.store.wal(ROVER)
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    with History.at(tmp_path, rover, as_of=long_ago) as before:  # before any table existed
        assert before.query(ROVER, None, lo, hi).num_rows == 0
    with History.at(tmp_path, rover) as now:
        assert now.query(ROVER, None, lo, hi, raw=True).equals(reference(inst, batches).telemetry)
    with pytest.raises(InputError, match="needs a Delta archive"):
        Store(tmp_path / "parquet", as_of=then)
    with pytest.raises(InputError, match="no time zone"):
        Store(tmp_path, as_of=datetime.datetime(2026, 1, 1))
