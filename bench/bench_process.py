"""Processing throughput: ``Processor.process`` on simulated packets bundled into frames.

Run: .venv/bin/python bench/bench_process.py [PROFILE.yaml] [n_packets] [per_frame] [batch]
Default: the SUPARCO rover housekeeping profile of hardware_profiles/, 1M packets in frames of
100 packets, processed in batches of 1M packets (one call) and of 10k packets (100 calls).
Prints packets/s (best of 3) and a cProfile of one pass in 10k-packet batches (top 10).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Instrument, load_profile
from ilrs_ops.sim import Environment, Module

ROOT = Path(__file__).resolve().parents[1]
START = 1_795_000_000 * 10**9


def frames_of(inst: Instrument, n: int, per_frame: int) -> list[bytes]:
    m = Module(inst, Environment(epoch_ns=START), seed=1, start_ns=START)
    size = inst.profile.packet_length
    out: list[bytes] = []
    chunk = 100 * per_frame
    while m.index < n:
        k = min(chunk, n - m.index)
        t = m.times(k)
        buf = m.encode(t, m.values(t)).tobytes()
        m.index += k
        step = per_frame * size
        out.extend(buf[i : i + step] for i in range(0, len(buf), step))
    return out


def run(inst: Instrument, frames: list[bytes], batch_frames: int) -> float:
    # received long after the last packet was made: a receive time before a packet's own time
    # quarantines it as bad_time (from the future), and that is not the path measured here
    recv = np.arange(len(frames), dtype=np.int64) + START + 10**17
    proc = Processor(inst)
    t0 = time.perf_counter()
    for b in range(0, len(frames), batch_frames):
        proc.process(frames[b : b + batch_frames], recv[b : b + batch_frames], "bench")
    return time.perf_counter() - t0


def main() -> None:
    path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "hardware_profiles/suparco/rover-1.yaml"
    )
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    per_frame = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    inst = Instrument(load_profile(path), path)
    frames = frames_of(inst, n, per_frame)
    run(inst, frames[:20], 10)  # compile / load the Numba caches
    print(f"{inst.id}: {n:,} packets of {inst.profile.packet_length} B, {per_frame} per frame")
    for batch_packets in (n, 10_000):
        batch_frames = max(1, batch_packets // per_frame)
        best = min(run(inst, frames, batch_frames) for _ in range(3))
        print(f"  batches of {batch_packets:>9,} packets: {n / best / 1e6:6.2f} M packets/s")
    batch_frames = max(1, 10_000 // per_frame)
    print(f"cProfile, batches of {batch_frames * per_frame:,} packets, top 10 by own time:")
    prof = cProfile.Profile()
    prof.runcall(run, inst, frames, batch_frames)
    pstats.Stats(prof).sort_stats("tottime").print_stats(10)


if __name__ == "__main__":
    main()
