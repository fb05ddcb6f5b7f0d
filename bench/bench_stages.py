"""Where ``Processor.process`` spends its time, per stage, against its kernels (issue 14).

Run: .venv/bin/python bench/bench_stages.py [PROFILE.yaml ...] [--packets N] [--batch B]
Default: the SUPARCO rover and the CNSA seismometer, 200k packets each in frames of 100,
processed in batches of 10k packets (ingest's batch at P2 rates), every packet accepted.

Each stage's functions, as the Processor module imports them, are wrapped with a timer for
one pass (the kernels: frame split, decode, integrity, sequence, calibrate, derived
expressions, limits, rollups, detectors; and Arrow table building); the rest of the wall time
is the Processor's own glue (Python per batch and NumPy between the kernels). A second pass
without timers gives the wall time that counts. The target: Processor rate >= 0.5 x the rate of
its kernels alone (the kernels' time summed for the same batches), so the glue stops dominating.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_process import START, frames_of
from ilrs_ops.processing import Processor
from ilrs_ops.processing import _processor as proc_module
from ilrs_ops.profiles import Expression, Instrument, load_profile

ROOT = Path(__file__).resolve().parents[1]
#: Stage -> the names the Processor module calls (kernels), or Processor methods (Arrow).
STAGES: dict[str, tuple[str, ...]] = {
    "split frames": ("split_frames",),
    "decode": ("decode", "element_counts", "field_values"),
    "integrity": ("checks", "fingerprints"),
    "sequence": ("check_sequence",),
    "calibrate": ("calibrate",),
    "limits": ("limit_states", "transitions", "channel_states", "select_context"),
    "rollups": ("rollup_many",),
    "detectors": ("sta_lta",),
}
ARROW = ("_raw_table", "_telemetry_table", "_events_table", "_quarantine_table")


@contextmanager
def timed(spent: dict[str, float]) -> Iterator[None]:
    """Every stage's functions wrapped, their seconds added to ``spent[stage]``."""
    undo: list[tuple[Any, str, Any]] = []
    depth: dict[str, int] = defaultdict(int)  # a call inside a timed call of its stage counts once

    def wrap(owner: Any, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timer(*args: Any, **kwargs: Any) -> Any:
            depth[stage] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[stage] -= 1
                if depth[stage] == 0:
                    spent[stage] += time.perf_counter() - t0

        undo.append((owner, name, fn))
        setattr(owner, name, timer)

    for stage, names in STAGES.items():
        for name in names:
            if hasattr(proc_module, name):
                wrap(proc_module, name, stage)
    wrap(Expression, "evaluate", "derived")
    for name in ARROW:
        if hasattr(Processor, name):
            wrap(Processor, name, "Arrow build")
    try:
        yield
    finally:
        for owner, name, fn in reversed(undo):
            setattr(owner, name, fn)


def run(inst: Instrument, frames: list[bytes], per_batch: int) -> tuple[float, int]:
    """Seconds of one pass in batches of ``per_batch`` frames; packets accepted."""
    recv = START + 10**17 + np.arange(len(frames), dtype=np.int64)  # after every packet
    proc = Processor(inst)
    accepted = 0
    t0 = time.perf_counter()
    for b in range(0, len(frames), per_batch):
        out = proc.process(frames[b : b + per_batch], recv[b : b + per_batch], "bench")
        accepted += out.telemetry.num_rows
    return time.perf_counter() - t0, accepted


def best(fn: Callable[[], tuple[float, int]], repeat: int = 3) -> tuple[float, int]:
    fn()  # compile, warm the caches
    return min((fn() for _ in range(repeat)), key=lambda r: r[0])


def report(inst: Instrument, packets: int, batch: int) -> None:
    frames = frames_of(inst, packets, 100)
    per_batch = max(1, batch // 100)
    wall, accepted = best(lambda: run(inst, frames, per_batch))
    assert accepted == packets, f"{accepted} of {packets} accepted: not the path measured"
    spent: dict[str, float] = defaultdict(float)
    with timed(spent):
        run(inst, frames, per_batch)  # warm with the timers
        spent.clear()
        timed_wall, _ = run(inst, frames, per_batch)
    kernels = sum(s for stage, s in spent.items() if stage != "Arrow build")
    arrow = spent.get("Arrow build", 0.0)
    glue = timed_wall - kernels - arrow
    print(f"\n{inst.id}: {packets:,} packets in batches of {batch:,}; Processor "
          f"{packets / wall / 1e6:.2f} M packets/s (best of 3, no timers)")  # fmt: skip
    print(f"{'stage':14s} {'seconds':>8s} {'share':>6s} {'M packets/s alone':>18s}")
    rows = [*sorted(spent.items(), key=lambda kv: -kv[1]), ("glue (rest)", glue)]
    for stage, s in rows:
        rate = f"{packets / s / 1e6:18.2f}" if s > 0 else f"{'-':>18s}"
        print(f"{stage:14s} {s:8.3f} {s / timed_wall:6.1%} {rate}")
    print(f"timed pass {timed_wall:.3f} s (untimed best {wall:.3f} s); kernels alone "
          f"{packets / kernels / 1e6:.2f} M packets/s; Processor / kernels = "
          f"{kernels / timed_wall:.2f} (target >= 0.5); with Arrow building as a stage: "
          f"{(kernels + arrow) / timed_wall:.2f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="*", type=Path, default=[
        ROOT / "hardware_profiles/suparco/rover-1.yaml",
        ROOT / "hardware_profiles/cnsa/seismometer.yaml",
    ])  # fmt: skip
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000, help="packets per process() call")
    args = ap.parse_args()
    for path in args.profiles:
        report(Instrument(load_profile(path), path), args.packets, args.batch)


if __name__ == "__main__":
    main()
