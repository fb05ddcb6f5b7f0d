"""Seal throughput: today's Parquet seal against a Delta Lake seal (issue 15), same segments.

Run: .venv/bin/python bench/bench_seal.py [PROFILE.yaml] [segments] [packets_per_segment]
Default: the SUPARCO rover profile, 20 segments of 50k packets (frames of 100).

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
