"""The live decode view counts what arrives and shows enum states by name."""

from __future__ import annotations

from ilrs_ops.monitor import Monitor
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim import Environment, Faults, Module


def test_monitor_counts_packets_and_rejects(rover: Catalog) -> None:
    m = Module(
        rover.instruments["acme-rover-1"],
        Environment(epoch_ns=0),
        seed=3,
        start_ns=0,
        faults=Faults(corrupt=0.1),
    )
    mon = Monitor(rover)
    for pkt in m.next_batch(200).packets:
        mon.feed(rover.instruments["acme-rover-1"].topic(), pkt)
    seen = mon.seen["acme-rover-1"]
    assert seen.packets == 200 - m.injected["corrupt"]
    assert mon.rejected["bad_version"] == m.injected["corrupt"] > 0
    assert seen.latest["mode"] in {"SAFE", "DRIVE", "SCIENCE"}
    assert float(seen.latest["batt_v"]) > 20
