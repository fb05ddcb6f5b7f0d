"""Seal throughput: today's Parquet seal against a Delta Lake seal (issue 15), same segments.

Run: .venv/bin/python bench/bench_seal.py [PROFILE.yaml] [segments] [packets_per_segment]
Default: the SUPARCO rover profile, 20 segments of 50k packets (frames of 100).
With ``--options``: the Parquet writer's options instead (issue 14), see ``writer_matrix``,
each through ``write_segment`` as the seal calls it; then the Delta seal with delta-rs's old
and current writer options.

Each segment's tables (raw, telemetry, events, rollups, quarantine) come from the real
``Processor``. ``Store.seal`` (as the ingest calls it) seals the same segments into each
archive, one after another, best of 3:
- ``parquet``: the store's own Parquet tables (Hive Parquet, fsync, checkpoint);
- ``delta local``: Delta Lake tables on a local path, one commit per table with the lane's
  app transaction (lane, segment), which is what makes a re-run seal a no-op;
- ``delta s3``: the same on a moto S3 server on loopback.
Prints rows/s and packets/s of each and its ratio against the Parquet seal, and the cost of a
re-run seal (every table already committed) on Delta.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_process import frames_of
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Instrument, load_profile
from ilrs_ops.store import Store, _delta, _seal

ROOT = Path(__file__).resolve().parents[1]
START = 1_795_000_000 * 10**9
#: Receive times after every packet time, so no packet is "from the future" (quarantined).
RECV = START + 30 * 86_400 * 10**9
NAMES = ("raw", "telemetry", "events", "rollups", "quarantine")
Segment = dict[str, pa.Table]


def segments_of(inst: Instrument, count: int, packets: int) -> list[Segment]:
    """``count`` segments of ``packets`` packets each, processed as the ingest would."""
    frames = frames_of(inst, count * packets, 100)
    per = packets // 100
    proc = Processor(inst)
    out: list[Segment] = []
    for s in range(count):
        chunk = frames[s * per : (s + 1) * per]
        recv = RECV + np.arange(s * per, (s + 1) * per, dtype=np.int64)
        p = proc.process(chunk, recv, "bench")
        out.append({n: getattr(p, n) for n in NAMES})
    return out


def seal(root: Path, archive: str | None, lane: str, segments: list[Segment]) -> None:
    """Every segment sealed by ``Store.seal`` as the ingest does it, into ``archive``."""
    with Store(root, archive) as store:
        for n, tables in enumerate(segments, 1):
            store.seal(lane, n, tables, {"bench": n})


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            region_name="us-east-1",
        ).create_bucket(Bucket="ilrs")
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    finally:
        proc.terminate()
        proc.wait()


def best(fn: Callable[[], None], fresh: Callable[[], None], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        fresh()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---------------------------------------------------------------------- writer options (--options)

#: Columns that readers filter on besides each table's time column (History's rollups, events
#: and quarantine reads); statistics let pyarrow skip row groups by them.
FILTERED = {"rollups": ["width_s", "channel"], "events": ["kind"], "quarantine": ["reason"]}


def leaves(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    """(Parquet column path, Arrow type) of every leaf column (fixed-size lists as one)."""
    out = []
    for f in schema:
        if pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type):
            out.append((f"{f.name}.list.element", f.type.value_type))
        else:
            out.append((f.name, f.type))
    return out


def small(t: pa.DataType) -> bool:
    """Strings, and integers of 16 bits or less: the columns a dictionary may pay for."""
    return pa.types.is_string(t) or (pa.types.is_integer(t) and t.bit_width <= 16)


def options(
    compression: str = "zstd",
    level: int | None = None,
    dictionary: str = "all",
    stats: str = "all",
    row_group: int | None = None,
    split: bool = False,
) -> _seal.WriterOptions:
    """Writer options: ``dictionary`` all / none / small (``small``); ``stats`` all / time
    (each table's time column and the ``FILTERED`` ones); ``split``: floating-point columns
    in BYTE_STREAM_SPLIT encoding (only without dictionaries)."""

    def make(name: str, schema: pa.Schema) -> dict[str, object]:
        kw: dict[str, object] = {"compression": compression}
        if level is not None:
            kw["compression_level"] = level
        cols = leaves(schema)
        if dictionary == "none":
            kw["use_dictionary"] = False
        elif dictionary == "small":
            kw["use_dictionary"] = [c for c, t in cols if small(t)]
        if stats == "time":
            kw["write_statistics"] = [_seal.TIME_COLUMN[name], *FILTERED.get(name, [])]
        if row_group is not None:
            kw["row_group_size"] = row_group
        if split:
            floats = [c for c, t in cols if pa.types.is_floating(t)]
            kw["column_encoding"] = dict.fromkeys(floats, "BYTE_STREAM_SPLIT")
        return kw

    return make


def writer_matrix() -> dict[str, _seal.WriterOptions]:
    return {
        "old: zstd": lambda name, schema: {"compression": "zstd"},
        "zstd level 3": options(level=3),
        "zstd level -3": options(level=-3),
        "lz4": options("lz4"),
        "snappy": options("snappy"),
        "none": options("none"),
        "zstd, no dictionary": options(dictionary="none"),
        "zstd, dictionary small": options(dictionary="small"),
        "zstd, stats time": options(stats="time"),
        "zstd, row group 64k": options(row_group=65_536),
        "zstd, no dict, float split": options(dictionary="none", split=True),
        "lz4, no dict": options("lz4", dictionary="none"),
        "lz4, no dict, stats time": options("lz4", dictionary="none", stats="time"),
        "new: zstd, dict strings": _seal.writer_options,
    }


def compare_delta(lane: str, segs: list[Segment], packets: int, runs: int) -> None:
    """The Delta seal (local path) with delta-rs's old writer options and the current ones,
    interleaved, best of ``runs``."""
    from deltalake import WriterProperties

    current = _delta.writer_properties
    variants = {"old: ZSTD": lambda schema: WriterProperties(compression="ZSTD"), "new": current}
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        try:
            for r in range(runs):
                for k, (label, props) in enumerate(variants.items()):
                    _delta.writer_properties = props  # what DeltaTables._write calls
                    root = Path(tmp) / f"d{r}-{k}"
                    t0, c0 = time.perf_counter(), time.process_time()
                    seal(root / "store", str(root / "delta"), lane, segs)
                    times[label].append(time.perf_counter() - t0)
                    cpu[label].append(time.process_time() - c0)
                    sizes[label] = sum(
                        f.stat().st_size for f in (root / "delta").rglob("*.parquet")
                    )
        finally:
            _delta.writer_properties = current
    total = len(segs) * packets
    base = min(times["old: ZSTD"])
    cbase = min(cpu["old: ZSTD"])
    for label, ts in times.items():
        s, c = min(ts), min(cpu[label])
        print(
            f"delta {label:26s} {s:7.2f} {total / s / 1e6:8.2f} {base / s:6.2f} {c:6.2f} "
            f"{cbase / c:6.2f} {sizes[label] / total:9.1f} {sizes[label] / 1e6:.0f}"
        )


def compare_options(lane: str, segs: list[Segment], packets: int, runs: int) -> None:
    """Each option set writes every segment through ``write_segment`` (day split, fsync,
    rename), interleaved round by round, best of ``runs``; bytes per packet on disk. Also the
    process's CPU seconds (best of ``runs``): on a busy machine they vary far less than the
    wall clock, and the seal's work is CPU but for its fsyncs."""
    matrix = writer_matrix()
    times: dict[str, list[float]] = {k: [] for k in matrix}
    cpu: dict[str, list[float]] = {k: [] for k in matrix}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for r in range(runs):
            for k, (label, opts) in enumerate(matrix.items()):
                root = Path(tmp) / f"{r}-{k}"
                t0, c0 = time.perf_counter(), time.process_time()
                files = []
                for n, tables in enumerate(segs, 1):
                    files += _seal.write_segment(root, lane, n, tables, options=opts)
                times[label].append(time.perf_counter() - t0)
                cpu[label].append(time.process_time() - c0)
                sizes[label] = sum(f.stat().st_size for f in files)
                if r == 0 and k == 0:
                    meta = pq.ParquetFile(files[0]).metadata
                    print(f"  (first file: {meta.num_rows} rows, {meta.num_row_groups} row groups)")
    total = len(segs) * packets
    base = min(times["old: zstd"])
    cbase = min(cpu["old: zstd"])
    print(
        f"{'options':32s} {'best s':>7s} {'M pkt/s':>8s} {'x old':>6s} {'CPU s':>6s} "
        f"{'x old':>6s} {'B/packet':>9s} MB"
    )
    for label, ts in times.items():
        s, c = min(ts), min(cpu[label])
        print(
            f"{label:32s} {s:7.2f} {total / s / 1e6:8.2f} {base / s:6.2f} {c:6.2f} "
            f"{cbase / c:6.2f} {sizes[label] / total:9.1f} {sizes[label] / 1e6:.0f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", default=ROOT / "hardware_profiles/suparco/rover-1.yaml")
    ap.add_argument("segments", nargs="?", type=int, default=20)
    ap.add_argument("packets", nargs="?", type=int, default=50_000, help="per segment")
    ap.add_argument("--options", action="store_true", help="compare Parquet writer options")
    ap.add_argument("--runs", type=int, default=3, help="best of")
    args = ap.parse_args()
    path = Path(args.profile)
    count, packets = args.segments, args.packets
    inst = Instrument(load_profile(path), path)
    segs = segments_of(inst, count, packets)
    rows = sum(t.num_rows for s in segs for t in s.values())
    mb = sum(t.nbytes for s in segs for t in s.values()) / 1e6
    lane = inst.id
    print(f"{inst.id}: {count} segments x {packets} packets, {rows} rows, {mb:.0f} MB in Arrow")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if args.options:
        compare_options(lane, segs, packets, args.runs)
        compare_delta(lane, segs, packets, args.runs)
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
        return
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        base = Path(tmp)
        run = [0]

        def fresh() -> None:
            run[0] += 1

        def where(kind: str) -> Path:
            return base / f"{kind}-{run[0]}"

        results["parquet"] = best(lambda: seal(where("pq"), None, lane, segs), fresh)
        results["delta local"] = best(
            lambda: seal(where("d"), str(where("delta")), lane, segs), fresh
        )
        # The crash case: every segment is in the archive, no checkpoint says so.
        (where("d") / "state" / f"{lane}.json").unlink()
        with Store(where("d")) as store:
            t0 = time.perf_counter()
            for n, tables in enumerate(segs, 1):
                store.seal(lane, n, tables, {"bench": n})
            rerun = time.perf_counter() - t0
        with moto_server() as s3:
            os.environ.update(s3)
            results["delta s3"] = best(
                lambda: seal(where("s"), f"s3://ilrs/run-{run[0]}", lane, segs), fresh
            )
    base_s = results["parquet"]
    for name, s in results.items():
        print(
            f"{name:12s} {s:7.2f} s  {rows / s / 1e6:6.2f} M rows/s  "
            f"{count * packets / s / 1e6:6.2f} M packets/s  x{base_s / s:5.2f} of parquet"
        )
    print(f"delta re-run seal of {count} committed segments: {rerun:.2f} s (a no-op per table)")


if __name__ == "__main__":
    main()
