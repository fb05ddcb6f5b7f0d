"""Sub-fields (``of:`` and ``bit:``): bits of an earlier field read again as channels of
their own, in big-endian and little-endian parents; where the compiler puts them, what they
decode to, how the simulator writes them into their parent, and that the processor treats
them as ordinary channels. Located errors: tests/data/broken_profiles/acme/subfields.yaml.
"""

from __future__ import annotations

import numpy as np

from ilrs_ops.processing import Processor
from ilrs_ops.profiles import field_bits, load_catalog
from ilrs_ops.sim import Environment, Faults, Module
from pipelines.decode import decode
from tests.conftest import DATA, reference_fields
from tests.inline import START_NS, process, simulated
from tests.reference import decode_packet

#: A test profile with every field feature: sub-fields, enum ranges, byte orders, i1.
PDU = load_catalog([DATA / "v2_profiles"]).instruments["acme-pdu"]


def bits_of(a: np.ndarray) -> list:
    if a.dtype.kind == "f":
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64).tolist()
    return a.tolist()


def test_subfields_lie_inside_their_parent_and_take_no_bits() -> None:
    layout = PDU.layout
    at = {n: int(layout.bit_offset[layout.field_slot[layout.field_index(n)]]) for n in layout.names}
    assert (at["status"], at["pdu_mode"], at["heater_on"], at["load_a"], at["fault_code"]) == (
        96, 96, 99, 100, 108)  # fmt: skip
    assert at["flags_le"] == 112 and at["polarity"] == 128  # the cursor skipped the sub-fields
    bits = field_bits(PDU.profile)
    assert bits["heater_on"] == (99, 1) and bits["polarity"] == (128, 1)
    assert "status" in PDU.channels and "flags_le" not in PDU.channels  # ignored parent
    assert {"pdu_mode", "heater_on", "bus_ok", "charger_on"} <= set(PDU.channels)


def test_subfields_decode_from_a_hand_made_packet() -> None:
    packet = bytearray(PDU.profile.packet_length)
    packet[12:14] = (0b1011_0100_0000_0101).to_bytes(2, "big")  # status
    packet[14:16] = (0x0801).to_bytes(2, "little")  # flags_le: value bits 4 and 15 set
    out = decode(np.frombuffer(bytes(packet), np.uint8), np.array([0]), PDU.layout)
    got = {n: out[n].tolist()[0] for n in ("pdu_mode", "heater_on", "load_a", "fault_code",
                                          "flags_le", "bus_ok", "charger_on")}  # fmt: skip
    assert got == {"pdu_mode": 0b101, "heater_on": 1, "load_a": 0b0100, "fault_code": 0b0101,
                   "flags_le": 0x0801, "bus_ok": 1, "charger_on": 1}  # fmt: skip


def test_the_simulator_writes_subfields_into_their_parent() -> None:
    n = 30
    data = simulated(PDU, n)
    size = PDU.profile.packet_length
    cols = decode(np.frombuffer(data, np.uint8), np.arange(n) * size, PDU.layout)
    status = cols["status"].astype(np.int64)
    assert np.array_equal(status >> 13, cols["pdu_mode"])
    assert np.array_equal((status >> 12) & 1, cols["heater_on"])
    assert np.array_equal((status >> 8) & 15, cols["load_a"])
    assert np.array_equal(status & 15, cols["fault_code"])
    flags = cols["flags_le"].astype(np.int64)
    assert np.array_equal(flags & 1, cols["bus_ok"]) and (cols["bus_ok"] == 1).all()
    assert set(cols["pdu_mode"].tolist()) == {1, 6}  # NOMINAL (lowest code 1) and SURVIVAL
    out = process(PDU, data, n)
    assert out.telemetry.column("load_a").to_pylist() == [2.0] * n  # calibrated, 0.5 A/count
    assert out.telemetry.column("load_a__state").to_pylist() == [0] * n
    assert out.latest["values"]["bus_ok"] == "OK"


def test_a_sim_excursion_on_a_subfield_raises_its_limit() -> None:
    m = Module(PDU, Environment(epoch_ns=0), seed=2, start_ns=START_NS,
               faults=Faults.parse("limit=1"))  # fmt: skip
    batch = m.next_batch(200)
    out = Processor(PDU).process([b"".join(batch.packets)], np.array([START_NS]), PDU.topic())
    channels = set(out.events.column("channel").to_pylist())
    assert channels & {"load_a", "bus_v", "board_t"}


def test_random_octets_decode_like_the_reference() -> None:
    rng = np.random.default_rng(11)
    size, n = PDU.profile.packet_length, 64
    raw = rng.integers(0, 256, size=n * size, dtype=np.uint8)
    out = decode(raw, np.arange(n) * size, PDU.layout)
    fields = reference_fields(PDU.profile)
    for i in range(n):
        ref = decode_packet(raw[i * size : (i + 1) * size].tobytes(), fields, float_bits=True)
        for name, value in ref.items():
            assert bits_of(out[name][i : i + 1])[0] == value, (name, i)
