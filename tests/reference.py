"""Independent pure-Python references for the pipelines kernels: int.from_bytes and struct only.

A field is (name, bit_offset, width, kind, little_endian, count): bit offsets from the first bit
of the packet, kind "u", "i", "f32" or "f64", count None for a scalar or the element count of an
array whose elements follow each other.
"""

from __future__ import annotations

import struct

Field = tuple[str, int, int, str, bool, "int | None"]


def _read(data: bytes, offset: int, width: int, little: bool) -> int:
    if little:
        return int.from_bytes(data[offset // 8 : offset // 8 + width // 8], "little")
    first, last = offset // 8, (offset + width - 1) // 8
    chunk = int.from_bytes(data[first : last + 1], "big")
    return (chunk >> (8 * (last + 1) - offset - width)) & ((1 << width) - 1)


def _value(bits: int, width: int, kind: str, float_bits: bool) -> int | float:
    if kind == "i":
        return bits - (1 << width) if bits >> (width - 1) else bits
    if kind in ("f32", "f64") and not float_bits:
        fmt = ">f" if kind == "f32" else ">d"
        return struct.unpack(fmt, bits.to_bytes(width // 8, "big"))[0]
    return bits


def decode_packet(data: bytes, fields: list[Field], float_bits: bool = False) -> dict:
    """Decode one packet: {name: value} for scalars, {name: [values]} for arrays.

    With ``float_bits`` float fields come back as their integer bit patterns (exact for NaNs).
    """
    out: dict = {}
    for name, offset, width, kind, little, count in fields:
        values = [
            _value(_read(data, offset + j * width, width, little), width, kind, float_bits)
            for j in range(1 if count is None else count)
        ]
        out[name] = values[0] if count is None else values
    return out


def encode_packet(values: dict, fields: list[Field], packet_length: int) -> bytes:
    """Encode one packet from {name: value or [values]}; float values given as bit patterns."""
    packet = 0
    for name, offset, width, _kind, little, count in fields:
        items = [values[name]] if count is None else list(values[name])
        for j, v in enumerate(items):
            bits = int(v) & ((1 << width) - 1)
            if little:
                bits = int.from_bytes(bits.to_bytes(width // 8, "little"), "big")
            shift = 8 * packet_length - (offset + j * width) - width
            packet |= bits << shift
    return packet.to_bytes(packet_length, "big")


def split_reference(
    data: bytes, frames: list[tuple[int, int]], known: dict[int, int] | None = None
) -> list[tuple]:
    """Items (start, length, frame, apid, status name) of the frames ``data[start:end]``.

    ``known`` (APID -> expected length, 0 for any) turns resync on: a bad item whose own
    length does not end on the frame end or a plausible packet ends at the next plausible one.
    """

    def plausible(q: int, end: int) -> bool:
        if known is None or end - q < 6:
            return False
        word, apid_word, _, length = struct.unpack(">BBHH", data[q : q + 6])
        apid = ((word & 0x07) << 8) | apid_word
        want = known.get(apid)
        fits = length + 7 <= end - q and (not want or length + 7 == want)
        return word >> 5 == 0 and want is not None and fits

    def header_ok(q: int, end: int) -> bool:
        if end - q < 6:
            return False
        word, _, _, length = struct.unpack(">BBHH", data[q : q + 6])
        return word >> 5 == 0 and length + 7 <= end - q

    items = []
    for f, (start, end) in enumerate(frames):
        pos = start
        while pos < end:
            rest = end - pos
            if rest < 6:
                items.append((pos, rest, f, -1, "truncated"))
                break
            word, apid_word, _, length = struct.unpack(">BBHH", data[pos : pos + 6])
            apid = ((word & 0x07) << 8) | apid_word
            total = length + 7
            if word >> 5:
                status = "bad_version"
            elif total > rest:
                status = "length_past_end"
            else:
                status = "ok"
            lands = total <= rest and (pos + total == end or header_ok(pos + total, end))
            total = min(total, rest)
            if known is not None and status != "ok" and not lands:
                nxt = next((q for q in range(pos + 1, end) if plausible(q, end)), None)
                total = total if nxt is None else nxt - pos
            items.append((pos, total, f, apid, status))
            pos += total
    return items
