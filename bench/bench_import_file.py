"""`ilrs-ops import` of a long packet file, whole process (start, decode, store, seal), against
an independent decoder's whole process on the same file (ccsdspy loading it into arrays).

Run: .venv/bin/python bench/bench_import_file.py

The file is ccsdspy's hs dataset, APID 895 (71,970 packets of 34 octets), with the profile
tests/data/missions/ccsdspy/hs-apid895.yaml; ccsdspy reads its own published definition
(defs.csv) of the same packets. Best of 3 wall-clock runs each; ccsdspy only decodes into
memory, ilrs-ops also stores everything (raw, telemetry, rollups) as Parquet.
"""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "data" / "missions" / "ccsdspy" / "hs-apid895.yaml"
CCSDSPY = """
import sys, ccsdspy
packets = ccsdspy.FixedLength.from_file(sys.argv[1]).load(sys.argv[2])
assert len(packets["pkt895_time_secs"]) == 71970
"""


def wall(command: Callable[[int], list[str]]) -> float:
    """The best of 3 wall-clock runs of ``command(run)``."""
    best = float("inf")
    for run in range(3):
        t0 = time.perf_counter()
        subprocess.run(command(run), check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    folder = Path(str(importlib.resources.files("ccsdspy") / "tests" / "data" / "hs" / "apid895"))
    (tlm,) = folder.glob("*.tlm")
    theirs = wall(lambda _: [sys.executable, "-c", CCSDSPY, str(folder / "defs.csv"), str(tlm)])
    cli = str(Path(sys.executable).with_name("ilrs-ops"))
    with tempfile.TemporaryDirectory() as tmp:
        ours = wall(
            lambda run: [
                cli,
                "import",
                str(tlm),
                "--profile",
                str(PROFILE),
                "--data",
                f"{tmp}/{run}",
            ]
        )
    print(f"{tlm.name}: {tlm.stat().st_size:,} octets, 71,970 packets; best of 3, whole process")
    print(f"  ccsdspy load (decode only)          {theirs:6.2f} s")
    print(f"  ilrs-ops import (decode and store)  {ours:6.2f} s   {ours / theirs:5.1f}x ccsdspy")


if __name__ == "__main__":
    main()
