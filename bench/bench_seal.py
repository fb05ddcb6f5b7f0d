"""Seal throughput: today's Parquet seal against a Delta Lake seal (issue 15), same segments.

Run: .venv/bin/pip install -e '.[bench]'
     .venv/bin/python bench/bench_seal.py [PROFILE.yaml] [segments] [packets_per_segment]
Default: the SUPARCO rover profile, 20 segments of 50k packets (frames of 100).

Each segment's tables (raw, telemetry, events, rollups, quarantine) come from the real
``Processor``. Three sinks seal the same segments, one after another, best of 3:
- ``parquet``: ``Store.seal`` as the ingest does it (Hive Parquet, fsync, checkpoint);
- ``delta local``: one ``write_deltalake`` append per table under a local path, each commit
  carrying the lane's app transaction (lane, segment), after a ``transaction_version`` check,
  which is what makes a re-run seal a no-op;
- ``delta s3``: the same against a moto S3 server on loopback (skipped when moto is missing:
  ``pip install 'moto[server]'``).
Prints rows/s and packets/s of each and its ratio against the Parquet seal, and the cost of a
re-run seal (every table already committed) on Delta.
"""

from __future__ import annotations

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_process import frames_of
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Instrument, load_profile
from ilrs_ops.store import Store

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


def seal_parquet(root: Path, lane: str, segments: list[Segment]) -> None:
    with Store(root) as store:
        for n, tables in enumerate(segments, 1):
            store.seal(lane, n, tables, {"bench": n})


#: Delta Lake has no unsigned integers and no nanosecond timestamps (its timestamp is in
#: microseconds: delta-rs truncates ns silently). Unsigned go to the next wider signed type,
#: u64 to a decimal of 20 digits, ns times to int64 ns, so every value stays exact.
WIDER = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
    pa.timestamp("ns", tz="UTC"): pa.int64(),
}


def delta_ready(table: pa.Table) -> pa.Table:
    """``table`` with the types Delta Lake lacks replaced (see WIDER); values unchanged."""
    fields = [pa.field(f.name, WIDER.get(f.type, f.type), f.nullable) for f in table.schema]
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table


def delta_sink(uri: str, options: dict[str, str] | None) -> Callable[[str, list[Segment]], None]:
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    def seal(lane: str, segments: list[Segment]) -> None:
        tables: dict[str, DeltaTable | None] = {}
        for n, seg in enumerate(segments, 1):
            for name, table in seg.items():
                if table.num_rows == 0:
                    continue
                target = f"{uri}/{name}/instrument={lane}"
                if name not in tables:
                    known = DeltaTable.is_deltatable(target, storage_options=options)
                    tables[name] = DeltaTable(target, storage_options=options) if known else None
                dt = tables[name]
                if dt is not None and (dt.transaction_version(lane) or 0) >= n:
                    continue  # this segment is in the table already: a re-run seal
                props = CommitProperties(app_transactions=[Transaction(lane, n)])
                write_deltalake(
                    dt if dt is not None else target,
                    delta_ready(table),
                    mode="append",
                    commit_properties=props,
                    storage_options=options,
                )
                if dt is None:
                    tables[name] = DeltaTable(target, storage_options=options)
                else:
                    dt.update_incremental()

    return seal


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str] | None]:
    try:
        import boto3  # moto's own dependency: present with moto
        import moto  # noqa: F401
    except ImportError:
        yield None
        return
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
            "conditional_put": "etag",  # safe with concurrent writers (docs/ARCHIVE.md)
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


def main() -> None:
    path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "hardware_profiles/suparco/rover-1.yaml"
    )
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    packets = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    inst = Instrument(load_profile(path), path)
    segs = segments_of(inst, count, packets)
    rows = sum(t.num_rows for s in segs for t in s.values())
    mb = sum(t.nbytes for s in segs for t in s.values()) / 1e6
    lane = inst.id
    print(f"{inst.id}: {count} segments x {packets} packets, {rows} rows, {mb:.0f} MB in Arrow")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        base = Path(tmp)
        run = [0]

        def fresh() -> None:
            run[0] += 1

        def where(kind: str) -> Path:
            return base / f"{kind}-{run[0]}"

        results["parquet"] = best(lambda: seal_parquet(where("pq"), lane, segs), fresh)
        results["delta local"] = best(
            lambda: delta_sink(str(where("delta")), None)(lane, segs), fresh
        )
        again = delta_sink(str(where("delta")), None)
        t0 = time.perf_counter()
        again(lane, segs)
        rerun = time.perf_counter() - t0
        with moto_server() as s3:
            if s3 is not None:
                results["delta s3"] = best(
                    lambda: delta_sink(f"s3://ilrs/run-{run[0]}", s3)(lane, segs), fresh
                )
            else:
                print("delta s3: skipped (pip install 'moto[server]')")
    base_s = results["parquet"]
    for name, s in results.items():
        print(
            f"{name:12s} {s:7.2f} s  {rows / s / 1e6:6.2f} M rows/s  "
            f"{count * packets / s / 1e6:6.2f} M packets/s  x{base_s / s:5.2f} of parquet"
        )
    print(f"delta re-run seal of {count} committed segments: {rerun:.2f} s (a no-op per table)")


if __name__ == "__main__":
    main()
