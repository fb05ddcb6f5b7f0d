"""What the real-mission profile features cost: packets through the whole Processor (split,
route, integrity check, decode, sequence, calibrate, limits, rollups) for a CRC-checked, an
arrival-ordered, a variable-length and a packet-variants profile, against the fixed-layout
rover in the same run.

Run: .venv/bin/python bench/bench_layouts.py [n_packets]   (default 200,000 per profile)

Each profile's packets come from the station simulator, 100 per frame, all received at once;
rates are packets/s and MB/s of packet octets, best of 3, and the ratio to the rover's rate.
The checks: every packet is accepted, none is quarantined.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Instrument, load_catalog
from ilrs_ops.sim import Environment, Module

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_790_000_000 * 10**9
PER_FRAME = 100


def frames_of(inst: Instrument, n: int) -> list[bytes]:
    pkts = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=T0).next_batch(n).packets
    return [b"".join(pkts[i : i + PER_FRAME]) for i in range(0, n, PER_FRAME)]


def rate(inst: Instrument, frames: list[bytes], n: int, repeat: int = 3) -> float:
    recv = np.full(len(frames), T0 + 10**17)  # received (3 years) after the last was made
    topic = f"bench/tm/{inst.profile.partner}/{inst.id}"
    Processor(inst).process(frames[:2], recv[:2], topic)  # compile or load the caches
    best = float("inf")
    for _ in range(repeat):
        proc = Processor(inst)
        t0 = time.perf_counter()
        out = proc.process(frames, recv, topic)
        best = min(best, time.perf_counter() - t0)
        assert out.raw.num_rows == n and out.quarantine.num_rows == 0, inst.id
    return n / best


def fixed_twin(inst: Instrument) -> Instrument:
    """The same profile with its variable-length array at a fixed count (its most)."""
    fields = [f.model_copy(update={"count_from": None}) for f in inst.profile.fields]
    return Instrument(inst.profile.model_copy(update={"fields": fields}), inst.path)


def main(n: int) -> None:
    station = load_catalog([ROOT / "hardware_profiles"]).instruments
    missions = load_catalog([ROOT / "tests" / "data" / "missions"]).instruments
    v2 = load_catalog([ROOT / "tests" / "data" / "v2_profiles"]).instruments
    wave = v2["acme-wave"]
    rover = station["sup-rover-1"]
    arrival = Instrument(rover.profile.model_copy(update={"order": "arrival"}), rover.path)
    cases = [
        ("rover (fixed layout, CUC, order by time)", rover),
        ("rover, order: arrival (fingerprints)", arrival),
        ("narit space weather (CRC-16)", station["narit-space-weather"]),
        ("Europa Clipper ECM FG3 (CRC-16, 1508 octets, J2000 CUC)", missions["nasa-ecm-fg3"]),
        ("wave probe (0..64 x i16 by a count field, CRC-16)", wave),
        ("wave probe twin, count fixed at 64 (what variable costs)", fixed_twin(wave)),
        ("acme event probe: 2 variants by pkt_type, CRC-16, waveform 0..32", v2["acme-event"]),
    ]
    print(f"{n:,} packets per profile, {PER_FRAME} per frame; best of 3")
    base = None
    for label, inst in cases:
        frames = frames_of(inst, n)
        r = rate(inst, frames, n)
        base = base or r
        mb = r * sum(map(len, frames)) / n / 1e6  # octets as sent: variable lengths too
        print(f"  {label:<62}{r:>12,.0f} pkt/s {mb:8.1f} MB/s   {r / base:5.2f}x rover")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
