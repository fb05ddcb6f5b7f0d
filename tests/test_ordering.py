"""What decides duplicates and order when the packet clock cannot be trusted: ``order: arrival``
(a repeat is the same octets with the same sequence count; nothing is out of order), against
``order: time`` on the same packets. The packets come from the simulator, so the clock rolls
over as a narrow hardware counter does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ilrs_ops.processing import Processor, ProcessState
from ilrs_ops.profiles import Instrument
from ilrs_ops.sim import Environment, Module
from tests.test_time_sources import TOPIC, UNIX, profile

#: A one-octet seconds counter: it wraps every 256 s (the rover sends two packets a second).
CLOCK = "time: {code: counter, seconds: clock}"


def rover(tmp_path: Path, order: str | None) -> Instrument:
    head = CLOCK if order is None else f"{CLOCK}\norder: {order}"
    return profile(tmp_path, head, ["{name: clock, type: u8}"], 1)


def packets(inst: Instrument, n: int) -> list[bytes]:
    return Module(inst, Environment(epoch_ns=0), seed=1, start_ns=UNIX).next_batch(n).packets


def reasons(out: object) -> dict[str, int]:
    col = out.quarantine.column("reason").to_pylist()  # type: ignore[attr-defined]
    return {r: col.count(r) for r in set(col)}


def test_a_wrapping_clock_puts_packets_out_of_order_by_time_not_by_arrival(
    tmp_path: Path,
) -> None:
    pkts = packets(rover(tmp_path / "t", "time"), 1000)
    clock = [p[6] for p in pkts]
    assert clock.index(0) < 1000 and max(clock) == 255  # the counter does wrap in the stream
    by_time = Processor(rover(tmp_path / "t", "time")).process(pkts, np.full(1000, UNIX), TOPIC)
    assert reasons(by_time).get("out_of_order", 0) > 500  # the failure order: arrival prevents
    inst = rover(tmp_path / "a", "arrival")
    out = Processor(inst).process(pkts, np.full(1000, UNIX), TOPIC)
    assert reasons(out) == {}
    assert out.raw.column("data").to_pylist() == pkts  # every packet, in arrival order
    assert out.events.filter(pa.compute.equal(out.events.column("kind"), "gap")).num_rows == 0


def test_a_redelivered_packet_is_a_duplicate_across_batches_and_a_restart(tmp_path: Path) -> None:
    inst = rover(tmp_path, "arrival")
    pkts = packets(inst, 600)
    first = Processor(inst)
    first.process(pkts[:400], np.full(400, UNIX), TOPIC)
    # The state a checkpoint keeps, then QoS 1 redelivers the last 100 with the next 200.
    state = ProcessState.from_json(first.state.to_json())
    again = pkts[300:600]
    out = Processor(inst, state).process(again, np.full(300, UNIX + 10**9), TOPIC)
    assert reasons(out) == {"duplicate": 100}
    assert out.raw.column("data").to_pylist() == pkts[400:]
    detail = out.quarantine.column("detail")[0].as_py()
    assert "same packet as one already accepted" in detail


def test_the_same_count_with_other_octets_is_a_new_packet(tmp_path: Path) -> None:
    """A module restarts and its sequence count starts again: same counts, new contents."""
    inst = rover(tmp_path, "arrival")
    pkts = packets(inst, 40)
    restarted = [p[:7] + bytes([p[7] ^ 0xFF]) + p[8:] for p in pkts[:20]]  # new data octet
    proc = Processor(inst)
    out = proc.process(pkts + restarted + pkts[:5], np.full(65, UNIX), TOPIC)
    assert reasons(out) == {"duplicate": 5}
    assert out.raw.num_rows == 60


def test_gaps_are_counted_in_arrival_order(tmp_path: Path) -> None:
    inst = rover(tmp_path, "arrival")
    pkts = packets(inst, 600)
    kept = pkts[:250] + pkts[257:600]  # 7 lost just before the clock wraps
    out = Processor(inst).process(kept, np.full(len(kept), UNIX), TOPIC)
    gaps = out.events.filter(pa.compute.equal(out.events.column("kind"), "gap"))
    assert gaps.column("value").to_pylist() == [7.0]
    assert reasons(out) == {}


def test_without_a_clock_order_is_arrival_and_a_redelivery_is_caught(tmp_path: Path) -> None:
    inst = profile(tmp_path, "time: {code: none}", [], 0)
    assert inst.profile.ordering == "arrival"
    pkts = packets(inst, 5)
    proc = Processor(inst)
    proc.process(pkts, np.arange(5) + UNIX, TOPIC)
    # Redelivered later: another receive time, so by (count, time) it would look new.
    out = proc.process(pkts[3:], np.arange(2) + UNIX + 10**9, TOPIC)
    assert reasons(out) == {"duplicate": 2}


def test_a_state_written_before_fingerprints_still_loads(tmp_path: Path) -> None:
    inst = rover(tmp_path, "time")
    proc = Processor(inst)
    proc.process(packets(inst, 10), np.full(10, UNIX), TOPIC)
    old = proc.state.to_json()
    old["version"] = 1
    old["dedupe"] = {"time_ns": old["dedupe"].pop("key"), "seq": old["dedupe"]["seq"]}
    state = ProcessState.from_json(old)
    assert np.array_equal(state.dedupe_key, proc.state.dedupe_key)
    assert state.dedupe_key.shape == (10,)


@pytest.mark.parametrize("order", ["sequence", "clock"])
def test_an_unknown_order_is_a_located_error(tmp_path: Path, order: str) -> None:
    from ilrs_ops.profiles import ProfileError

    want = rf"rover\.yaml:\d+:\d+: '{order}' is not allowed here; use 'time' or 'arrival'"
    with pytest.raises(ProfileError, match=want):
        rover(tmp_path, order)
