"""The store: WAL round trip and torn tails, disk errors, sealing, queries (also against NumPy,
DuckDB and Polars). Recovery after crashes is in test_store_recovery.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ilrs_ops.errors import IlrsError, StoreError
from ilrs_ops.history import History
from ilrs_ops.processing import (
    Lane,
    Processed,
    Processor,
    ProcessState,
    recover,
    seal,
    seal_by_replay,
)
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.schemas import EVENTS, QUARANTINE
from ilrs_ops.sim import Environment, Faults, Module
from ilrs_ops.store import WAL_SCHEMA, Store, read_segment

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_750_000_000 * NS  # 2025-06-15T15:06:40Z, a whole second, 40 s past a minute
ROVER = "acme-rover-1"


# ---------------------------------------------------------------------- helpers


def make_batches(
    inst: Instrument,
    n_batches: int,
    per_batch: int = 40,
    *,
    start_ns: int = T0,
    per_frame: int = 10,
    seed: int = 1,
    faults: Faults | None = None,
) -> list[tuple[np.ndarray, list[bytes]]]:
    """Simulated MQTT batches of ``inst``: (recv_ns per frame, frames of packets)."""
    module = Module(
        inst, Environment(epoch_ns=start_ns), seed=seed, start_ns=start_ns, faults=faults
    )
    out = []
    for _ in range(n_batches):
        b = module.next_batch(per_batch)
        frames = [
            b"".join(b.packets[i : i + per_frame]) for i in range(0, len(b.packets), per_frame)
        ]
        recv = np.full(len(frames), int(b.times_ns[-1]) + NS // 10, np.int64)
        out.append((recv, frames))
    return out


def ingest(
    store: History,
    inst: Instrument,
    batches: list[tuple[np.ndarray, list[bytes]]],
    *,
    seal_every: int | None = None,
    lane: Lane | None = None,
) -> Lane:
    """What the ingestor does: append (durable), feed the lane, seal every ``seal_every``
    batches."""
    lane = lane or Lane(inst.id, inst)
    wal = store.store.wal(inst.id)
    for k, (recv, frames) in enumerate(batches, 1):
        wal.append(recv, inst.topic(), frames)
        lane.feed(recv, [inst.topic()] * len(frames), frames)
        if seal_every and k % seal_every == 0:
            closed = wal.rotate()
            assert closed is not None
            seal(store.store, inst.id, inst, closed, *lane.take())
    return lane


def seal_current(
    store: History,
    lane: str,
    processed: list[Processed] | None = None,
    state: ProcessState | None = None,
) -> None:
    """Rotate the lane's WAL and seal the segment just closed: from ``processed`` (with the
    state the lane's processor has after them), or re-run from the WAL when None."""
    closed = store.store.wal(lane).rotate()
    if closed is None:
        return
    inst = store.catalog.instruments.get(lane)
    if processed is None:
        seal_by_replay(store.store, lane, inst, closed)
        return
    seal(store.store, lane, inst, closed, tables_of(lane, inst, processed), state)


def tables_of(lane: str, inst: Instrument | None, processed: list[Processed]) -> dict:
    """Processed batches as one segment's tables, as a Lane's ``take`` gives them."""
    holder = Lane(lane, inst)
    for p in processed:
        holder.keep(p)
    return holder.take()[0]


def reference(inst: Instrument, batches: list[tuple[np.ndarray, list[bytes]]]) -> Processed:
    """Everything processed in one go by a fresh processor, tables concatenated."""
    proc = Processor(inst)
    outs = [proc.process(frames, recv, inst.topic()) for recv, frames in batches]
    return Processed(
        *(pa.concat_tables([getattr(o, n) for o in outs]) for n in Processed.__dataclass_fields__
          if n != "latest"),
        latest=outs[-1].latest,
    )  # fmt: skip


def times(table: pa.Table, column: str = "time") -> np.ndarray:
    return table.column(column).cast(pa.int64()).to_numpy()


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


@pytest.fixture
def inst(rover: Catalog) -> Instrument:
    return rover.instruments[ROVER]


# ---------------------------------------------------------------------- API


def test_store_errors_are_ilrs_errors() -> None:
    assert issubclass(StoreError, IlrsError)


# ---------------------------------------------------------------------- WAL


def test_wal_round_trip(tmp_path: Path, rover: Catalog) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        assert store.store.wal(ROVER) is wal
        assert wal.append(np.array([1, 2], np.int64), "t/a", [b"x", b"yy"]) == 1
        assert wal.append(np.array([3], np.int64), ["t/b"], [b""]) == 1
        assert wal.append(np.array([], np.int64), "t/a", []) == 1
        seg = read_segment(wal.path)
        assert seg.discarded_bytes == 0 and seg.size == wal.size
        assert [b.num_rows for b in seg.batches] == [2, 1, 0]
        assert seg.table.schema == WAL_SCHEMA
        assert times(seg.table, "recv").tolist() == [1, 2, 3]
        assert seg.table.column("topic").to_pylist() == ["t/a", "t/a", "t/b"]
        assert seg.table.column("payload").to_pylist() == [b"x", b"yy", b""]
        assert wal.rotate() == 1
        assert wal.rotate() is None  # nothing appended since
        assert wal.append(np.array([4]), "t/a", [b"z"]) == 2
        assert (tmp_path / "wal" / ROVER / "000000000002.arrows").exists()
        with pytest.raises(ValueError, match="one time per payload"):
            wal.append(np.array([1, 2]), "t", [b"x"])
        with pytest.raises(ValueError, match="one topic per payload"):
            wal.append(np.array([1]), ["a", "b"], [b"x"])


def test_wal_torn_tail_at_every_offset(tmp_path: Path, rover: Catalog) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        sizes = []
        for k in range(3):
            wal.append(np.arange(5) + 10 * k, "t", [bytes([k]) * (k + 7)] * 5)
            sizes.append(wal.size)
        data = wal.path.read_bytes()
    whole = read_segment(wal.path)
    cut_file = tmp_path / "cut.arrows"
    for cut in range(sizes[1], sizes[2] + 1):
        cut_file.write_bytes(data[:cut])
        seg = read_segment(cut_file)
        complete = 3 if cut == sizes[2] else 2
        assert len(seg.batches) == complete, cut
        assert seg.discarded_bytes == cut - sizes[complete - 1], cut
        assert seg.table.equals(pa.Table.from_batches(whole.batches[:complete]))
    for cut in range(sizes[0] - 1):  # inside the schema or the first batch: nothing complete
        cut_file.write_bytes(data[:cut])
        assert len(read_segment(cut_file).batches) <= 1
    cut_file.write_bytes(data + os.urandom(100))  # garbage after the last batch
    seg = read_segment(cut_file)
    assert len(seg.batches) == 3 and seg.discarded_bytes == 100


def test_wal_rejects_a_foreign_file(tmp_path: Path) -> None:
    other = tmp_path / "other.arrows"
    with pa.OSFile(str(other), "wb") as f, pa.ipc.new_stream(f, pa.schema([("x", pa.int8())])):
        pass
    with pytest.raises(StoreError, match="not a WAL segment"):
        read_segment(other)
    with pytest.raises(StoreError, match=r"missing\.arrows"):
        read_segment(tmp_path / "missing.arrows")


def _fail(monkeypatch: pytest.MonkeyPatch, name: str, code: int, times: int = 1) -> list[int]:
    """Make ``os.<name>`` raise OSError(code) for the next ``times`` calls."""
    real = getattr(os, name)
    left = [times]

    def fake(*args: object) -> object:
        if left[0] > 0:
            left[0] -= 1
            raise OSError(code, os.strerror(code))
        return real(*args)

    monkeypatch.setattr(os, name, fake)
    return left


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("pwrite", errno.ENOSPC, "disk is full"),
        ("fsync", errno.EIO, "I/O error"),
        ("pwrite", errno.EROFS, "read-only"),
        ("fsync", errno.ENOSPC, "disk is full"),
    ],
)
def test_wal_disk_errors_lose_no_acknowledged_data(
    tmp_path: Path,
    rover: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    code: int,
    words: str,
) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        wal.append(np.array([1]), "t", [b"acked-1"])
        _fail(monkeypatch, name, code)
        with pytest.raises(StoreError, match=words) as info:
            wal.append(np.array([2]), "t", [b"refused"])
        assert str(wal.path) in str(info.value) and info.value.path == str(wal.path)
        wal.append(np.array([3]), "t", [b"acked-2"])  # works fully again
        seg = read_segment(wal.path)
        assert seg.table.column("payload").to_pylist() == [b"acked-1", b"acked-2"]
        assert seg.discarded_bytes == 0 and wal.path.stat().st_size == wal.size


def test_wal_short_write_then_full_disk(
    tmp_path: Path, rover: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        wal.append(np.array([1]), "t", [b"acked"])
        real = os.pwrite
        calls = []

        def short_then_full(fd: int, data: object, offset: int) -> int:
            calls.append(offset)
            if len(calls) == 1:
                return real(fd, bytes(memoryview(data)[:17]), offset)  # type: ignore[arg-type]
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data, offset)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "pwrite", short_then_full)
        with pytest.raises(StoreError, match="disk is full"):
            wal.append(np.array([2]), "t", [b"x" * 1000])
        assert wal.path.stat().st_size == wal.size  # the 17 bytes were cut off again
        wal.append(np.array([3]), "t", [b"next"])
        assert read_segment(wal.path).table.column("payload").to_pylist() == [b"acked", b"next"]


def test_wal_stays_refusing_while_it_cannot_repair(
    tmp_path: Path, rover: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        wal.append(np.array([1]), "t", [b"acked"])
        _fail(monkeypatch, "fsync", errno.EIO)
        left = _fail(monkeypatch, "ftruncate", errno.EIO, times=2)
        with pytest.raises(StoreError):
            wal.append(np.array([2]), "t", [b"lost"])  # fsync fails, cut-back fails
        with pytest.raises(StoreError, match="I/O error"):
            wal.append(np.array([3]), "t", [b"refused"])  # cannot cut back: refuses again
        assert left[0] == 0
        wal.append(np.array([4]), "t", [b"ok"])  # the disk is back
        assert read_segment(wal.path).table.column("payload").to_pylist() == [b"acked", b"ok"]


def test_wal_cannot_create_segment(
    tmp_path: Path, rover: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        real = os.open

        def no_access(path: object, flags: int, *args: object) -> int:
            if str(path).endswith(".arrows"):
                raise OSError(errno.EACCES, "Permission denied")
            return real(path, flags, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", no_access)
        with pytest.raises(StoreError, match=r"permission denied.*writable") as info:
            wal.append(np.array([1]), "t", [b"x"])
        assert "000000000001.arrows" in str(info.value)
        monkeypatch.setattr(os, "open", real)
        assert wal.append(np.array([1]), "t", [b"x"]) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_wal_read_only_directory(tmp_path: Path, rover: Catalog) -> None:
    (tmp_path / "wal" / ROVER).mkdir(parents=True)
    with History.at(tmp_path, rover) as store:
        wal = store.store.wal(ROVER)
        (tmp_path / "wal" / ROVER).chmod(0o555)
        try:
            with pytest.raises(StoreError, match="permission denied"):
                wal.append(np.array([1]), "t", [b"x"])
        finally:
            (tmp_path / "wal" / ROVER).chmod(0o755)


# ---------------------------------------------------------------------- sealing


def test_seal_layout_and_contents(tmp_path: Path, rover: Catalog, inst: Instrument) -> None:
    batches = make_batches(inst, 4, faults=Faults(duplicate=0.05, corrupt=0.05, gap=0.05))
    with History.at(tmp_path, rover) as store:
        proc = ingest(store, inst, batches, seal_every=2)
        assert not list((tmp_path / "wal" / ROVER).glob("*.arrows"))
    ref = reference(inst, batches)
    names = {p.relative_to(tmp_path).as_posix() for p in parquet_files(tmp_path)}
    date = "date=2025-06-15"
    for table in ("raw", "telemetry", "rollups", "events", "quarantine"):
        for seg in (1, 2):
            assert f"{table}/instrument={ROVER}/{date}/{seg:012d}.parquet" in names
    got = pa.concat_tables(
        pq.read_table(f) for f in sorted((tmp_path / "telemetry").rglob("*.parquet"))
    )
    assert got.equals(ref.telemetry)
    meta = pq.ParquetFile(next((tmp_path / "raw").rglob("*.parquet"))).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    checkpoint = (tmp_path / "state" / f"{ROVER}.json").read_text()
    assert '"segment":2' in checkpoint
    with Store(tmp_path) as fresh:
        assert recover(fresh, rover)[ROVER].to_json() == proc.state.to_json()


def test_seal_splits_by_utc_date_and_unknown_instruments(
    tmp_path: Path, rover: Catalog, inst: Instrument
) -> None:
    midnight = (T0 // DAY + 1) * DAY
    batches = make_batches(inst, 3, start_ns=midnight - 20 * NS)  # 60 s around midnight
    with History.at(tmp_path, rover) as store:
        ingest(store, inst, batches)
        unknown = store.store.wal("_unknown")
        unknown.append(np.array([midnight - 1, midnight]), "ilrs/tm/x/ghost", [b"\x01", b"\x02"])
        seal_current(store, ROVER)  # replayed from the WAL
        seal_current(store, "_unknown")
        tm = store.query(ROVER, None, midnight - DAY, midnight + DAY)
        q = store.quarantine("_unknown", midnight - DAY, midnight + DAY)
    days = sorted(p.name for p in (tmp_path / "telemetry" / f"instrument={ROVER}").iterdir())
    assert days == ["date=2025-06-15", "date=2025-06-16"]
    before = pq.read_table(tmp_path / f"telemetry/instrument={ROVER}/date=2025-06-15")
    assert times(before).max() < midnight <= times(tm).max()
    assert tm.num_rows == 120
    qdays = sorted(p.name for p in (tmp_path / "quarantine" / "instrument=_unknown").iterdir())
    assert qdays == ["date=2025-06-15", "date=2025-06-16"]
    assert q.schema == QUARANTINE and q.column("reason").to_pylist() == ["unknown_instrument"] * 2
    assert q.column("data").to_pylist() == [b"\x01", b"\x02"]
    assert "ilrs/tm/x/ghost" in q.column("detail")[0].as_py()


@pytest.mark.parametrize("order", ["in time order", "out of order"])
def test_seal_day_split_keeps_every_row_in_its_order(tmp_path: Path, order: str) -> None:
    """Rows in time order are split by slicing, others by selecting: the same rows either way,
    each day's file in the segment's row order."""
    midnight = (T0 // DAY + 1) * DAY
    t = midnight + np.array([-3, -2, -1, 0, 1, 2, 86_405], np.int64) * NS
    if order == "out of order":
        t = t[[3, 0, 6, 1, 4, 2, 5]]
    n = len(t)
    events = pa.Table.from_arrays(
        [
            pa.array(t, EVENTS.field("time").type),
            pa.array([f"kind{i}" for i in range(n)]),
            pa.array([None, "a", "b", None, "c", "d", "e"]),
            pa.array(range(n), pa.int8()),
            pa.array(range(n, 2 * n), pa.int8()),
            pa.array([i / 3 for i in range(n)], pa.float64()),
            pa.array([str(i) for i in range(n)]),
        ],
        schema=EVENTS,
    )
    with Store(tmp_path) as store:
        store.seal(ROVER, 1, {"events": events}, None)
    base = tmp_path / "events" / f"instrument={ROVER}"
    days = sorted(p.name for p in base.iterdir())
    assert days == ["date=2025-06-15", "date=2025-06-16", "date=2025-06-17"]
    day_of = (t // DAY).tolist()
    for k, day in enumerate(sorted(set(day_of))):
        got = pq.read_table(base / days[k] / "000000000001.parquet", schema=EVENTS)
        want = events.take([i for i in range(n) if day_of[i] == day])
        assert got.equals(want)


def test_reseal_is_idempotent(tmp_path: Path, rover: Catalog, inst: Instrument) -> None:
    batches = make_batches(inst, 2)
    with History.at(tmp_path, rover) as store:
        proc = Processor(inst)
        wal = store.store.wal(ROVER)
        pending = []
        for recv, frames in batches:
            wal.append(recv, inst.topic(), frames)
            pending.append(proc.process(frames, recv, inst.topic()))
        segment = wal.rotate()
        assert segment == 1
        tables = tables_of(ROVER, inst, pending)
        seal(store.store, ROVER, inst, segment, tables, proc.state)
        first = {p: pq.read_table(p) for p in parquet_files(tmp_path)}
        seal(store.store, ROVER, inst, segment, tables, proc.state)  # again: same names, rows
        again = {p: pq.read_table(p) for p in parquet_files(tmp_path)}
        assert first.keys() == again.keys()
        assert all(first[p].equals(again[p]) for p in first)
        assert store.query(ROVER, ["batt_v"], T0, T0 + DAY).num_rows == 80
        with pytest.raises(ValueError, match="state after it"):
            seal(store.store, ROVER, inst, segment, tables_of(ROVER, inst, pending), None)
        wal.append(batches[0][0], inst.topic(), batches[0][1])
        with pytest.raises(StoreError, match="still open"):
            seal(store.store, ROVER, inst, wal.segment, tables_of(ROVER, inst, []), proc.state)


# ---------------------------------------------------------------------- queries


@pytest.fixture
def filled(tmp_path: Path, rover: Catalog, inst: Instrument):
    """Six batches of 40 packets (0.5 s apart) from T0: four sealed, two live in the WAL."""
    batches = make_batches(inst, 6)
    store = History.at(tmp_path, rover)
    proc = ingest(store, inst, batches[:4], seal_every=2)
    ingest(store, inst, batches[4:], lane=proc)
    yield store, reference(inst, batches), proc
    store.close()


def test_warm_asks_each_instrument_with_data_and_stops_when_told(
    filled, tmp_path: Path, rover: Catalog
) -> None:
    """The console's start-up warm-up (History.warm) reads the instruments that have data, skips
    those without, and stops at once when the console closes."""
    store, _, _ = filled
    with_data = [i for i in rover.instruments if store.latest(i).num_rows]
    assert with_data and store.warm() == len(with_data)
    assert store.warm(lambda: True) == 0
    with History.at(tmp_path / "empty", rover) as empty:
        assert empty.warm() == 0


def test_query_window_is_start_inclusive_stop_exclusive(filled) -> None:
    store, ref, _ = filled
    t = times(ref.telemetry)
    assert t.shape == (240,) and (np.diff(t) > 0).all()
    for i, j in [(0, 240), (3, 7), (79, 81), (150, 151), (159, 200)]:
        stop = int(t[j]) if j < 240 else int(t[-1]) + 1
        got = store.query(ROVER, ["batt_v"], int(t[i]), stop)
        assert times(got).tolist() == t[i:j].tolist()
    assert store.query(ROVER, None, int(t[5]) + 1, int(t[6])).num_rows == 0


def test_query_channels_sealed_and_live(filled) -> None:
    store, ref, _ = filled
    full = store.query(ROVER, None, T0, T0 + DAY, raw=True)
    assert full.equals(ref.telemetry)  # 160 sealed rows + 80 replayed from the live WAL
    plain = [c for c in ref.telemetry.column_names if not c.endswith("__raw")]
    assert store.query(ROVER, None, T0, T0 + DAY).equals(ref.telemetry.select(plain))
    assert list((store.store.root / "wal" / ROVER).glob("*.arrows"))
    got = store.query(ROVER, ["wheel_temp", "mode"], T0, T0 + DAY)
    assert got.column_names == ["time", "seq", "wheel_temp", "mode", "wheel_temp__state"]
    assert got.column("wheel_temp").equals(ref.telemetry.column("wheel_temp"))


def test_query_sees_live_data_from_another_process_view(
    filled, rover: Catalog, inst: Instrument
) -> None:
    store, _, proc = filled
    reader = History.at(store.store.root, rover)  # a console: no WAL writer, no lock
    assert reader.query(ROVER, ["batt_v"], T0, T0 + DAY).num_rows == 240
    more = make_batches(inst, 7)[6:]
    ingest(store, inst, more, lane=proc)
    assert reader.query(ROVER, ["batt_v"], T0, T0 + DAY).num_rows == 280  # the WAL grew
    seal_current(store, ROVER)
    assert reader.query(ROVER, ["batt_v"], T0, T0 + DAY).num_rows == 280  # sealed meanwhile
    c = reader.counters(ROVER)
    assert c["packets"] == 280 and c["sealed_segment"] == 3 and c["live_segments"] == 0


def test_query_validates_input(filled) -> None:
    store, _, _ = filled
    bad = [
        (("nope", None, T0, T0 + 1), "unknown instrument 'nope'; known: acme-rover-1"),
        ((ROVER, ["batt_v", "volts"], T0, T0 + 1), r"unknown channel\(s\) \['volts'\]"),
        ((ROVER, "batt_v", T0, T0 + 1), "list of names"),
        ((ROVER, None, T0, T0), "must be before"),
        ((ROVER, None, T0 + 1, T0), "must be before"),
        ((ROVER, None, float(T0), T0 + 1), "must be integers"),
    ]
    for args, message in bad:
        with pytest.raises(ValueError, match=message):
            store.query(*args)
    for buckets in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match="buckets must be an integer >= 1"):
            store.query(ROVER, None, T0, T0 + NS, buckets)
    with pytest.raises(ValueError, match="narrower than the narrowest rollup"):
        store.query(ROVER, None, T0, T0 + NS, 10, source="rollups")
    with pytest.raises(ValueError, match="unknown event kinds"):
        store.events(ROVER, T0, T0 + 1, ["limits"])
    with pytest.raises(ValueError, match="unknown instrument"):
        store.counters("_unknown")


def test_query_translates_corrupt_files(filled) -> None:
    store, _, _ = filled
    victim = next((store.store.root / "telemetry").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(StoreError, match="corrupt") as info:
        store.query(ROVER, None, T0, T0 + DAY)
    assert "telemetry" in str(info.value)


def _numpy_buckets(t: np.ndarray, v: np.ndarray, start: int, stop: int, n: int) -> dict:
    """Independent reference: one bucket at a time with boolean masks."""
    out = {"count": [], "min": [], "max": [], "mean": []}
    for i in range(n):
        lo, hi = start + i * (stop - start) // n, start + (i + 1) * (stop - start) // n
        x = v[(t >= lo) & (t < hi)]
        x = x[~np.isnan(x)]
        out["count"].append(x.size)
        out["min"].append(x.min() if x.size else None)
        out["max"].append(x.max() if x.size else None)
        out["mean"].append(x.mean() if x.size else None)
    return out


def _check_buckets(got: pa.Table, channel: str, expected: dict, exact_mean: bool = False) -> None:
    assert got.column(f"{channel}__count").to_pylist() == expected["count"]
    for stat in ("min", "max", "mean"):
        g, e = got.column(f"{channel}__{stat}").to_pylist(), expected[stat]
        assert [x is None for x in g] == [x is None for x in e], stat
        assert np.allclose([x for x in g if x is not None], [x for x in e if x is not None],
                           rtol=1e-12, atol=1e-12), stat  # fmt: skip


def test_buckets_from_telemetry_match_numpy(filled) -> None:
    store, ref, _ = filled
    t = times(ref.telemetry)
    wheel = np.array(ref.telemetry.column("wheel_temp").to_pylist()).mean(axis=1)
    columns = {
        "batt_v": ref.telemetry.column("batt_v").to_numpy(),
        "wheel_temp": wheel,  # an array channel: the mean of each packet
        "mode": ref.telemetry.column("mode").to_numpy().astype(float),  # enum codes
    }
    rng = np.random.default_rng(7)
    for _ in range(5):
        start = T0 + int(rng.integers(-5 * NS, 60 * NS))
        stop = start + int(rng.integers(NS, 150 * NS))
        n = int(rng.integers(1, 40))
        got = store.query(ROVER, list(columns), start, stop, n, source="telemetry")
        assert got.schema.metadata[b"source"] == b"telemetry"
        assert times(got).tolist() == [start + i * (stop - start) // n for i in range(n)]
        for name, v in columns.items():
            _check_buckets(got, name, _numpy_buckets(t, v, start, stop, n))


def test_buckets_from_rollups_match_numpy_on_aligned_edges(filled) -> None:
    store, ref, _ = filled
    t = times(ref.telemetry)
    v = ref.telemetry.column("power_w").to_numpy()
    minute = T0 // (60 * NS) * 60 * NS
    for start, stop, n, source in [
        (minute, minute + 180 * NS, 3, "rollups_60s"),  # 60 s buckets from 60 s rollups
        (T0 + 3 * NS, T0 + 113 * NS, 11, "rollups_1s"),  # 10 s buckets from 1 s rollups
        (T0 - 30 * NS, T0 + 150 * NS, 3, "rollups_1s"),  # 60 s off the minute: 1 s rollups
        (T0 + NS // 3, T0 + 100 * NS + NS // 3, 4, "rollups_1s"),  # >= 10 widths, partial ends
    ]:
        got = store.query(ROVER, ["power_w"], start, stop, n)
        assert got.schema.metadata[b"source"].decode() == source
        expected = _numpy_buckets(t, v, start, stop, n)
        if start % NS == 0:
            _check_buckets(got, "power_w", expected)
        else:  # inner edges off the rollup grid: totals exact, each edge within half a rollup
            assert sum(got.column("power_w__count").to_pylist()) == sum(expected["count"])
            assert np.nanmax(got.column("power_w__max").to_numpy(zero_copy_only=False)) == max(
                x for x in expected["max"] if x is not None
            )
            counts = np.array(got.column("power_w__count").to_pylist())
            assert np.abs(counts - expected["count"]).max() <= 2  # 0.5 s of 2 Hz data


def test_buckets_short_widths_come_from_telemetry(filled) -> None:
    store, _, _ = filled
    got = store.query(ROVER, ["batt_v"], T0 + NS // 7, T0 + 9 * NS, 3)  # 3 s, off the grid
    assert got.schema.metadata[b"source"] == b"telemetry"
    got = store.query(ROVER, ["batt_v"], T0, T0 + 120 * NS, 1000)  # 0.12 s
    assert got.num_rows == 1000 and sum(got.column("batt_v__count").to_pylist()) == 240


def test_events_quarantine_latest_counters(
    tmp_path: Path, rover: Catalog, inst: Instrument
) -> None:
    faults = Faults(limit=0.02, gap=0.03, duplicate=0.03, corrupt=0.03, wrong_apid=0.03)
    batches = make_batches(inst, 6, seed=3, faults=faults)
    ref = reference(inst, batches)
    with History.at(tmp_path, rover) as store:
        proc = ingest(store, inst, batches[:3], seal_every=3)
        ingest(store, inst, batches[3:], lane=proc)
        ev = store.events(ROVER, T0 - DAY, T0 + DAY)
        assert ev.num_rows == ref.events.num_rows > 0
        assert sorted(ev.to_pylist(), key=str) == sorted(ref.events.to_pylist(), key=str)
        gaps = store.events(ROVER, T0 - DAY, T0 + DAY, ["gap"])
        assert set(gaps.column("kind").to_pylist()) == {"gap"}
        q = store.quarantine(ROVER, T0 - DAY, T0 + DAY)
        assert q.num_rows == ref.quarantine.num_rows > 0
        dup = store.quarantine(ROVER, T0 - DAY, T0 + DAY, ["duplicate"])
        assert set(dup.column("reason").to_pylist()) <= {"duplicate"}
        assert store.events(ROVER, T0 - DAY, T0 + DAY, []).num_rows == 0  # no kind: no rows
        assert store.quarantine(ROVER, T0 - DAY, T0 + DAY, []).num_rows == 0
        last = store.latest(ROVER)
        assert last.num_rows == 1 and last.equals(ref.telemetry.slice(ref.telemetry.num_rows - 1))
        c = store.counters(ROVER)
        assert c["packets"] == ref.telemetry.num_rows and c["live_batches"] == 3
        assert sum(c["rejects"].values()) == ref.quarantine.num_rows
        seal_current(store, ROVER)
        assert store.latest(ROVER).equals(last)  # now from Parquet
    with History.at(tmp_path / "empty", rover) as store:
        assert store.latest(ROVER).num_rows == 0
        assert store.query(ROVER, None, T0, T0 + 1).num_rows == 0
        empty = store.query(ROVER, ["batt_v"], T0, T0 + 60 * NS, 2)
        assert empty.column("batt_v__count").to_pylist() == [0, 0]


# ---------------------------------------------------------------------- other readers


def test_duckdb_and_polars_read_the_tree(filled) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    store, _, _ = filled
    seal_current(store, ROVER)
    ours = store.query(ROVER, None, T0, T0 + DAY)
    glob = f"{store.store.root}/telemetry/instrument={ROVER}/**/*.parquet"
    row = duckdb.sql(
        "select count(*), epoch_ns(min(time)), epoch_ns(max(time)), sum(batt_v), "
        f"any_value(instrument), any_value(date) from read_parquet('{glob}', "
        "hive_partitioning=true)"
    ).fetchall()[0]
    assert row[0] == ours.num_rows == 240
    assert [row[1], row[2]] == [times(ours)[0], times(ours)[-1]]
    assert row[3] == pytest.approx(float(np.sum(ours.column("batt_v").to_numpy())))
    assert row[4] == ROVER and str(row[5]) == "2025-06-15"
    frame = pl.scan_parquet(f"{store.store.root}/telemetry/**/*.parquet", hive_partitioning=True)
    got = frame.filter(pl.col("instrument") == ROVER).sort("time").collect()
    assert got.height == 240
    assert got["time"].cast(pl.Int64).to_list() == times(ours).tolist()
    assert got["wheel_temp"].to_list() == ours.column("wheel_temp").to_pylist()
    rollups = duckdb.sql(
        f"select count(*) from read_parquet('{store.store.root}/rollups/**/*.parquet', "
        "hive_partitioning=true) where width_s = 60"
    ).fetchall()[0]
    assert rollups[0] > 0


def test_unknown_instrument_rows_of_a_lane_go_to_the_unknown_partition(
    tmp_path: Path, rover: Catalog, inst: Instrument
) -> None:
    row = pa.table(
        {
            "recv": pa.array([T0], QUARANTINE.field("recv").type),
            "topic": ["ilrs/tm/acme/acme-rover-1"],
            "reason": ["unknown_instrument"],
            "detail": ["routed here"],
            "data": [b"\x00"],
        },
        schema=QUARANTINE,
    )
    proc = Processor(inst)
    ((recv, frames),) = make_batches(inst, 1)
    out = proc.process(frames, recv, inst.topic())
    mixed = Processed(out.raw, out.telemetry, out.events, out.rollups, row, out.latest)
    with History.at(tmp_path, rover) as store:
        store.store.wal(ROVER).append(recv, inst.topic(), frames)
        seal_current(store, ROVER, [mixed], proc.state)
        files = sorted(p.name for p in (tmp_path / "quarantine").rglob("*.parquet"))
        assert files == [f"{ROVER}-000000000001.parquet"]
        assert store.quarantine("_unknown", T0, T0 + 1).column("detail").to_pylist() == [
            "routed here"
        ]
        assert store.quarantine(ROVER, T0 - DAY, T0 + DAY).num_rows == 0
