"""The live WAL tail a console telemetry query sees: before (5a2cc74's Store, which re-reads
every unsealed WAL segment on each query) and after (History, which reads only what was
appended).

`.venv/bin/python bench/bench_history.py [--packets 100000] [--before PATH]`: writes an
unsealed WAL of ``--packets`` suparco rover packets (frames of 10, as ingest would), then in a
fresh process per implementation starts the console app (in process, FastAPI's TestClient) and
makes one cold ``GET /api/instruments/sup-rover-1/telemetry`` (every packet decoded) and 20 warm
ones over a 5-minute window at the WAL's end, each after one more 10-packet message is appended
to the WAL (a live station). ``--before`` is a checkout of the old code
(``git worktree add /tmp/before 5a2cc74``); its Store reads the same WAL format. Baseline in the
same run: reading the WAL segment files alone (``read_segment``), which both must do at least
once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENT = "sup-rover-1"
START = 1_790_000_000 * 1_000_000_000

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from fastapi.testclient import TestClient
from ilrs_ops.console import ConsoleSettings, create_app
from ilrs_ops.profiles import load_catalog
from ilrs_ops.store import WalWriter
from ilrs_ops.sim import Environment, Module
data, kind, start, packets = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
profiles = Path(sys.argv[1]) / "hardware_profiles"
inst = load_catalog([profiles]).instruments["sup-rover-1"]
settings = ConsoleSettings(data=data, profiles=profiles, dev=True, broker_port=9)
app = create_app(settings)
lo, hi = start + (packets - 300) * 10**9, start + (packets + 300) * 10**9  # 5 min of the tail
url = f"/api/instruments/{inst.id}/telemetry?channels=batt_v&start={lo}&stop={hi}"
module = Module(inst, Environment(epoch_ns=start), seed=9, start_ns=start)
module.index = packets
writer = WalWriter(data / "wal" / inst.id, 2)
with TestClient(app) as client:
    h = {"Authorization": f"Bearer {app.state.dev_token}"}
    def query():
        r = client.get(url, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["rows"]
    t0 = time.perf_counter(); rows = query(); cold = time.perf_counter() - t0
    warm = []
    for k in range(20):
        b = module.next_batch(10)
        writer.append(np.array([b.times_ns[-1]]), inst.topic(), [b"".join(b.packets)])
        t0 = time.perf_counter(); n = query(); warm.append(time.perf_counter() - t0)
print(json.dumps({"cold": cold, "warm": warm, "rows": rows, "rows_after": n}))
"""


def build(data: Path, packets: int) -> None:
    sys.path.insert(0, str(ROOT))
    from ilrs_ops.profiles import load_catalog
    from ilrs_ops.sim import Environment, Module
    from ilrs_ops.store import Store

    catalog = load_catalog([ROOT / "hardware_profiles"])
    inst = catalog.instruments[INSTRUMENT]
    module = Module(inst, Environment(epoch_ns=START), seed=9, start_ns=START)
    with Store(data) as store:
        wal = store.wal(INSTRUMENT)
        for _ in range(packets // 1000):
            b = module.next_batch(1000)
            frames = [b"".join(b.packets[i : i + 10]) for i in range(0, 1000, 10)]
            recv = np.repeat(b.times_ns[9::10], 1)
            wal.append(recv, inst.topic(), frames)


def wal_read_s(data: Path) -> float:
    from ilrs_ops.store import list_segments, read_segment

    t0 = time.perf_counter()
    for _, path in list_segments(data / "wal" / INSTRUMENT):
        read_segment(path)
    return time.perf_counter() - t0


def run(code: Path, data: Path, kind: str, packets: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(code), str(data), kind, str(START), str(packets)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--before", type=Path, default=Path("/tmp/before"))
    args = ap.parse_args()
    results = {}
    for kind, code in (("before", args.before), ("after", ROOT)):
        with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
            data = Path(tmp)
            build(data, args.packets)
            base = min(wal_read_s(data) for _ in range(3))
            results[kind] = run(code, data, kind, args.packets) | {"wal_read_s": base}
    print(f"{args.packets} unsealed packets of {INSTRUMENT}; GET telemetry of batt_v, 5 minutes")
    print("| code | WAL read alone | cold query | warm query (median of 20) | warm / WAL read |")
    print("| --- | --- | --- | --- | --- |")
    for kind, r in results.items():
        warm = statistics.median(r["warm"])
        print(
            f"| {kind} | {r['wal_read_s'] * 1e3:.1f} ms | {r['cold'] * 1e3:.0f} ms | "
            f"{warm * 1e3:.2f} ms | {warm / r['wal_read_s']:.2f} |"
        )
    b, a = (statistics.median(results[k]["warm"]) for k in ("before", "after"))
    print(f"warm query, before / after: {b / a:.1f}x (rows {results['after']['rows_after']})")


if __name__ == "__main__":
    main()
