"""P4: downsampling one day of a 100 Hz, 12-channel instrument to 2000 buckets: the store's
query against DuckDB on the same Parquet files.

Run: .venv/bin/python bench/bench_query.py [hours] [buckets] [--delta]
With ``--delta`` the day is sealed into a Delta Lake archive (docs/ARCHIVE.md) and DuckDB reads
that archive's Parquet files (times there are int64 ns; nothing is compacted, so every file in
the folders is live).
A synthetic profile (12 calibrated i16 channels, 100 packets/s) is encoded, run through the real
a ``Lane`` in one-minute batches and sealed hour by hour with ``processing.seal``. Then, on
the same files: the store's query (auto: served from the 1 s rollups; and exact, from telemetry)
against DuckDB's GROUP BY (over raw telemetry, and over the rollups with the store's rule). Each
pair is checked equal before timing; best of 3 runs, warm caches.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from ilrs_ops.history import History
from ilrs_ops.processing import Lane, recover, seal
from ilrs_ops.profiles import load_catalog
from ilrs_ops.sim import Environment, Module

NS = 1_000_000_000
START = 1_750_032_000 * NS  # 2025-06-16T00:00:00Z
CHANNELS = [f"ch{k:02d}" for k in range(12)]
RATE_HZ = 100
PROFILE = """\
instrument: bench-imu
partner: bench
name: Synthetic 100 Hz instrument for the query benchmark
kind: imu
apid: 0x321
packet_length: {length}
expected_period_s: 0.01
time: {{code: cuc, coarse: 4, fine: 2}}
fields:
{fields}
"""


def build(root: Path, hours: int, archive: str | None = None) -> tuple[History, float]:
    """Write the profile and the sealed day; returns the store and the seconds it took."""
    folder = root / "profiles" / "bench"
    folder.mkdir(parents=True)
    fields = "\n".join(
        f"  - {{name: {c}, type: i16, units: V, calibration: {{poly: [0.0, 0.001]}}}}"
        for c in CHANNELS
    )
    (folder / "imu.yaml").write_text(PROFILE.format(length=12 + 2 * len(CHANNELS), fields=fields))
    catalog = load_catalog([root / "profiles"])
    inst = catalog.instruments["bench-imu"]
    module = Module(inst, Environment(epoch_ns=START), seed=1, start_ns=START)
    store = History.at(root / "data", catalog, archive)
    recover(store.store, catalog)
    lane = Lane(inst.id, inst)
    rng = np.random.default_rng(4)
    topic = inst.topic()
    size = inst.profile.packet_length
    t_build = time.perf_counter()
    per_batch = 60 * RATE_HZ  # one minute
    for hour in range(hours):
        for minute in range(60):
            k0 = (hour * 60 + minute) * per_batch
            t = START + (np.arange(k0, k0 + per_batch, dtype=np.int64) * NS) // RATE_HZ
            phase = 2 * np.pi * (t - START) / (86_400 * NS)
            values = {
                c: 10 * np.sin(phase * (j + 1)) + rng.normal(0, 0.5, t.shape)
                for j, c in enumerate(CHANNELS)
            }
            module.index = k0
            buf = module.encode(t, values).tobytes()
            frames = [buf[i : i + RATE_HZ * size] for i in range(0, len(buf), RATE_HZ * size)]
            recv = t[RATE_HZ - 1 :: RATE_HZ] + NS // 10
            lane.feed(recv, [topic] * len(frames), frames)
        seal(store.store, inst.id, inst, hour + 1, *lane.take())
    return store, time.perf_counter() - t_build


def best_of(fn: Callable[[], object], runs: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def ns(column: str, delta: bool) -> str:
    """A time column as ns since 1970 in DuckDB: the archive stores it so already."""
    return column if delta else f"epoch_ns({column})"


def duckdb_raw(files: str, start: int, stop: int, n: int, delta: bool) -> pa.Table:
    width = (stop - start) // n
    aggs = ", ".join(
        f"count({c}) as {c}__count, min({c}) as {c}__min, max({c}) as {c}__max, "
        f"avg({c}) as {c}__mean"
        for c in CHANNELS
    )
    return duckdb.sql(
        f"select ({ns('time', delta)} - {start}) // {width} as b, {aggs} "
        f"from read_parquet('{files}', hive_partitioning=true) "
        f"where {ns('time', delta)} >= {start} and {ns('time', delta)} < {stop} "
        "group by b order by b"
    ).to_arrow_table()


def duckdb_rollups(files: str, start: int, stop: int, n: int, delta: bool) -> pa.Table:
    """The store's rule over the 1 s rollups: a row counts in the bucket of its samples' middle."""
    width = (stop - start) // n
    wide = ", ".join(
        f"sum(count) filter (channel = '{c}') as {c}__count, "
        f"min(min) filter (channel = '{c}') as {c}__min, "
        f"max(max) filter (channel = '{c}') as {c}__max, "
        f"sum(sum) filter (channel = '{c}') / sum(count) filter (channel = '{c}') as {c}__mean"
        for c in CHANNELS
    )
    first, last = ns("first", delta), ns("last", delta)
    mid = f"{first} + ({last} - {first}) // 2"
    return duckdb.sql(
        f"select ({mid} - {start}) // {width} as b, {wide} "
        f"from read_parquet('{files}', hive_partitioning=true) "
        f"where width_s = 1 and {ns('bucket', delta)} >= {start} "
        f"and {ns('bucket', delta)} < {stop} "
        "group by b order by b"
    ).to_arrow_table()


def check_same(ours: pa.Table, theirs: pa.Table, n: int) -> None:
    assert theirs.column("b").to_pylist() == list(range(n)), "DuckDB left buckets out"
    for c in CHANNELS:
        for stat in ("count", "min", "max", "mean"):
            a = ours.column(f"{c}__{stat}").to_numpy(zero_copy_only=False).astype(float)
            b = theirs.column(f"{c}__{stat}").to_numpy(zero_copy_only=False).astype(float)
            exact = stat != "mean"
            same = np.array_equal(a, b) if exact else np.allclose(a, b, rtol=1e-9, atol=1e-9)
            assert same, f"{c}__{stat} differs"


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--delta"]
    delta = "--delta" in sys.argv
    hours = int(args[0]) if args else 24
    n = int(args[1]) if len(args) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = str(root / "archive") if delta else None
        store, took = build(root, hours, archive)
        start, stop = START, START + hours * 3600 * NS
        rows = hours * 3600 * RATE_HZ
        data = root / "data"
        tm_files = f"{data}/telemetry/instrument=bench-imu/**/*.parquet"
        ru_files = f"{data}/rollups/instrument=bench-imu/**/*.parquet"
        if archive is not None:
            tm_files = f"{archive}/telemetry/bench-imu/**/*.parquet"
            ru_files = f"{archive}/rollups/instrument=bench-imu/**/*.parquet"
        where = f"a Delta archive ({archive})" if archive else "Parquet tables"
        print(f"{rows:,} packets x {len(CHANNELS)} channels, {hours} h in {hours} sealed "
              f"segments, in {where}")  # fmt: skip
        print(f"built (encode + Processor + seal) in {took:.1f} s; {n} buckets of "
              f"{(stop - start) / n / NS:g} s")  # fmt: skip

        def auto() -> pa.Table:
            return store.query("bench-imu", CHANNELS, start, stop, n)

        def exact() -> pa.Table:
            return store.query("bench-imu", CHANNELS, start, stop, n, source="telemetry")

        t_auto, ours_auto = best_of(auto)
        t_exact, ours_exact = best_of(exact)
        t_duck_raw, duck_raw = best_of(lambda: duckdb_raw(tm_files, start, stop, n, delta))
        t_duck_ru, duck_ru = best_of(lambda: duckdb_rollups(ru_files, start, stop, n, delta))
        assert ours_auto.schema.metadata[b"source"] == b"rollups_1s"
        check_same(ours_exact, duck_raw, n)
        check_same(ours_auto, duck_ru, n)
        counts = [ours_auto.column(f"{c}__count").to_numpy() for c in CHANNELS]
        exact_counts = [ours_exact.column(f"{c}__count").to_numpy() for c in CHANNELS]
        off = max(int(np.abs(a - b).max()) for a, b in zip(counts, exact_counts, strict=True))
        print("results: store == DuckDB on the same files (both pairs checked)")
        print(f"rollup answer vs exact: at most {off} samples per bucket moved across an edge "
              f"(of {rows // n})")  # fmt: skip
        print()
        print(f"{'query':58} {'seconds':>8} {'vs DuckDB raw':>14}")
        for name, t in [
            ("DuckDB GROUP BY over raw telemetry (exact)", t_duck_raw),
            ("store.query, auto (1 s rollups + exact outer edges)", t_auto),
            ("store.query, source='telemetry' (exact)", t_exact),
            ("DuckDB GROUP BY over the 1 s rollups (same rule)", t_duck_ru),
        ]:
            print(f"{name:58} {t:8.3f} {t_duck_raw / t:13.1f}x")
        print()
        print(f"store auto vs DuckDB raw: {t_duck_raw / t_auto:.1f}x faster; "
              f"store exact vs DuckDB raw: {t_duck_raw / t_exact:.2f}x; "
              f"store auto vs DuckDB rollups: {t_duck_ru / t_auto:.2f}x")  # fmt: skip
        store.close()


if __name__ == "__main__":
    main()
