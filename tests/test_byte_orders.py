"""Byte orders beyond big and little (``endian: "3412"``, ccsdspy's digits): the octet maps the
compiler makes, hand-made packets, and ccsdspy's real byte-order test packets decoded to their
CSV of expected values and to ccsdspy's own decode, written back octet for octet by the
encoder, and stored by the processor. Located errors: tests/data/broken_profiles/byte_order*.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest

from ilrs_ops.profiles import Profile, compile_layout, load_profile
from pipelines.decode import decode
from pipelines.encode import encode
from tests.conftest import reference_fields
from tests.inline import instrument, process, profile, profile_text
from tests.reference import decode_packet

BYTE_ORDER_DATA = importlib.resources.files("ccsdspy") / "tests" / "data" / "byte_order"
BYTE_ORDER_FILES = sorted(
    Path(str(p)) for p in BYTE_ORDER_DATA.iterdir() if p.name.endswith(".bin")
)
ORDERS = [
    '{name: uptime, type: u32, endian: "3412"}',  # octets 12..15
    '{name: energy, type: f64, endian: "78563412"}',  # 16..23
    '{name: board_t, type: i16, endian: "21"}',  # 24..25
    "{name: le, type: u16, endian: little}",  # 26..27
    "{name: big, type: u16, endian: 12}",  # 28..29, unquoted digits
]


def csv_rows(path: Path, number: type = int) -> list[list]:
    text = path.with_suffix(".csv").read_text()
    return [[number(x) for x in line.split(",")] for line in text.split()]


def byte_order_profile(order: str) -> Profile:
    """A profile of ccsdspy's byte-order packets (its byte_order_packets.py): no secondary
    header, then 80 unsigned values of len(order) octets each, in that order."""
    n = len(order)
    field = f'{{name: value, type: u{8 * n}, count: 80, endian: "{order}"}}'
    text = profile_text([field], 6 + 80 * n, time="{code: none}", apid=0x0E2)
    return load_profile(f"byteorder_{order}.yaml", text=text)


def test_byte_orders_compile_to_octet_maps() -> None:
    p = profile(ORDERS, 30)
    layout = compile_layout(p)

    def row(name: str) -> list[int]:
        m = layout.octet_map[int(layout.field_slot[layout.field_index(name)])]
        return m[m >= 0].tolist()

    # The octets of each value's big-endian image, most significant first, as they travel.
    assert row("uptime") == [14, 15, 12, 13]
    assert row("energy") == [22, 23, 20, 21, 18, 19, 16, 17]
    assert row("board_t") == [25, 24]  # "21" is little endian
    assert row("le") == [27, 26]
    assert row("big") == [] and row("_apid") == []  # big endian: bit-packed
    orders = [f.byte_order for f in p.fields]
    assert orders == [(2, 3, 0, 1), (6, 7, 4, 5, 2, 3, 0, 1), (1, 0), (1, 0), None]
    assert [f.endian for f in p.fields][-1] == "12"


def test_word_swapped_values_decode_from_a_hand_made_packet() -> None:
    layout = compile_layout(profile(ORDERS, 30))
    packet = bytearray(30)
    packet[12:16] = bytes([0x56, 0x78, 0x12, 0x34])  # 0x12345678, its 16-bit words swapped
    packet[16:24] = bytes([0x07, 0x08, 0x05, 0x06, 0x03, 0x04, 0x01, 0x02])
    packet[24:26] = bytes([0xFE, 0xFF])  # -2, little endian
    packet[26:28] = bytes([0x34, 0x12])
    packet[28:30] = bytes([0x12, 0x34])
    out = decode(np.frombuffer(bytes(packet), np.uint8), np.array([0]), layout)
    assert out["uptime"].tolist() == [0x12345678]
    assert out["energy"].view(np.uint64).tolist() == [0x0102030405060708]
    assert out["board_t"].tolist() == [-2]
    assert out["le"].tolist() == [0x1234] and out["big"].tolist() == [0x1234]
    assert encode(layout, out, 1).tobytes() == bytes(packet)


def test_the_ccsdspy_byte_order_data_is_there() -> None:
    orders = {p.stem.split("_")[1] for p in BYTE_ORDER_FILES}
    assert {"3412", "2143", "4321", "78563412", "87654321", "321", "21"} <= orders


@pytest.mark.parametrize("path", BYTE_ORDER_FILES, ids=lambda p: p.stem)
def test_ccsdspy_byte_order_packets_decode_to_their_csv(path: Path) -> None:
    from ccsdspy import FixedLength, PacketField

    order = path.stem.split("_")[1]
    p = byte_order_profile(order)
    layout = compile_layout(p)
    raw = path.read_bytes()
    size = p.packet_length
    assert len(raw) % size == 0
    buf = np.frombuffer(raw, np.uint8)
    starts = np.arange(len(raw) // size, dtype=np.int64) * size
    columns = decode(buf, starts, layout)
    expected = csv_rows(path)
    assert columns["value"].tolist() == expected
    # ccsdspy's own decode of the file, one field per value, as its tests do.
    fields = [
        PacketField(name=f"v{k}", data_type="uint", bit_length=8 * len(order), byte_order=order)
        for k in range(80)
    ]
    theirs = FixedLength(fields).load(str(path))
    assert columns["value"].tolist() == [
        [int(theirs[f"v{k}"][i]) for k in range(80)] for i in range(len(expected))
    ]
    # The encoder writes the same orders: the decoded columns give the file back, octet for
    # octet (the primary headers are fields too). And the reference reads it the same way.
    assert encode(layout, columns, starts.shape[0]).tobytes() == raw
    assert decode_packet(raw[:size], reference_fields(p))["value"] == expected[0]


@pytest.mark.parametrize("order", ["21", "321", "3412", "2143", "123456"])
def test_the_processor_stores_ccsdspy_byte_order_packets(order: str) -> None:
    # The generator's APID 0x8E2 does not fit in 11 bits: its top bit lands in the version
    # field, which a real packet keeps 0. Clear it, and the processor takes every packet.
    path = next(p for p in BYTE_ORDER_FILES if p.stem == f"byteorder_{order}")
    p = byte_order_profile(order)
    raw = bytearray(path.read_bytes())
    for start in range(0, len(raw), p.packet_length):
        raw[start] &= 0x1F
    out = process(instrument(p), bytes(raw), len(raw) // p.packet_length)
    # Telemetry is float64, exact for these values (below 2**53).
    assert out.telemetry.column("value").to_pylist() == csv_rows(path, float)
