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


def test_an_invalid_time_code_is_counted_and_the_monitor_goes_on(station: Catalog) -> None:
    inst = station.instruments["cnsa-lander-hk"]  # CDS: ms of day stops at 86400999
    packets = Module(inst, Environment(epoch_ns=0), seed=1, start_ns=0).next_batch(6).packets
    off = 6 + 2  # primary header, 2 octets of days
    bad = packets[2][:off] + (90_000_000).to_bytes(4, "big") + packets[2][off + 4 :]
    mon = Monitor(station)
    for pkt in [*packets[:2], bad, *packets[3:]]:
        mon.feed(inst.topic(), pkt)
    assert mon.rejected == {"bad_time": 1}
    assert mon.seen[inst.id].packets == 5


def test_a_topic_of_no_instrument_is_counted(rover: Catalog) -> None:
    mon = Monitor(rover)
    mon.feed("ilrs/tm/acme/ghost", b"\x00" * 10)
    mon.feed("elsewhere/x", b"\x00")
    assert mon.rejected == {"unknown_instrument": 2}
    assert all(s.packets == 0 for s in mon.seen.values())
