"""Independent pure-Python references for the pipelines kernels: int.from_bytes and struct only.

A field is (name, bit_offset, width, kind, byte_order, count) or, for bits inside another
field's value (a sub-field), (name, bit_offset, width, kind, byte_order, count, container):

- kind "u", "i", "f32" or "f64"; count None for a scalar or the element count of an array whose
  elements follow each other;
- byte_order "big" (or False): bit-packed, most significant bit first; "little" (or True): the
  octets of each element reversed; or a string of digits in ccsdspy's convention: octet k of
  the packet is octet ``int(byte_order[k])`` of the big-endian value, 1 the most significant;
- without a container, bit offsets count from the first bit of the packet and each element is
  a value of its own, ``stride`` bits after the one before (an 8th item; default ``width``:
  elements back to back; wider for one axis of a 2-D array whose axes interleave); with
  ``container`` = (offset, width), the value at bits [offset, offset + width) of the packet,
  read in ``byte_order``, holds the elements, and ``bit_offset`` counts in that value from its
  most significant bit.

``encode_packet`` writes the fields in order and each replaces the bits it covers, so a
sub-field overwrites its bits of the container written before it.
"""

from __future__ import annotations

import struct

Field = tuple


def _order(byte_order: object) -> str:
    if byte_order in (False, None, "big"):
        return "big"
    if byte_order in (True, "little"):
        return "little"
    assert isinstance(byte_order, str) and byte_order.isdigit(), byte_order
    return byte_order


def _read(data: bytes, offset: int, width: int, byte_order: object) -> int:
    """The unsigned value at bits [offset, offset + width) of ``data``."""
    order = _order(byte_order)
    if order == "big":
        first, last = offset // 8, (offset + width - 1) // 8
        chunk = int.from_bytes(data[first : last + 1], "big")
        return (chunk >> (8 * (last + 1) - offset - width)) & ((1 << width) - 1)
    assert offset % 8 == 0 and width % 8 == 0, (offset, width, order)
    octets = data[offset // 8 : offset // 8 + width // 8]
    if order == "little":
        return int.from_bytes(octets, "little")
    assert len(order) == len(octets), (order, width)
    value = bytearray(len(octets))
    for k, digit in enumerate(order):
        value[int(digit) - 1] = octets[k]
    return int.from_bytes(bytes(value), "big")


def _write(packet: bytearray, offset: int, width: int, byte_order: object, value: int) -> None:
    """Replace bits [offset, offset + width) of ``packet`` with ``value`` (unsigned)."""
    order = _order(byte_order)
    value &= (1 << width) - 1
    if order == "big":
        whole = int.from_bytes(packet, "big")
        shift = 8 * len(packet) - offset - width
        whole = (whole & ~(((1 << width) - 1) << shift)) | (value << shift)
        packet[:] = whole.to_bytes(len(packet), "big")
        return
    n = width // 8
    big = value.to_bytes(n, "big")
    octets = big[::-1] if order == "little" else bytes(big[int(d) - 1] for d in order)
    packet[offset // 8 : offset // 8 + n] = octets


def _value(bits: int, width: int, kind: str, float_bits: bool) -> int | float:
    if kind == "i":
        return bits - (1 << width) if bits >> (width - 1) else bits
    if kind in ("f32", "f64") and not float_bits:
        fmt = ">f" if kind == "f32" else ">d"
        return struct.unpack(fmt, bits.to_bytes(width // 8, "big"))[0]
    return bits


def _elements(field: Field) -> tuple[str, int, int, str, object, int | None, tuple | None, int]:
    name, offset, width, kind, byte_order, count = field[:6]
    container = field[6] if len(field) > 6 else None
    stride = field[7] if len(field) > 7 else width
    return name, offset, width, kind, byte_order, count, container, stride


def decode_packet(data: bytes, fields: list[Field], float_bits: bool = False) -> dict:
    """Decode one packet: {name: value} for scalars, {name: [values]} for arrays.

    With ``float_bits`` float fields come back as their integer bit patterns (exact for NaNs).
    """
    out: dict = {}
    for field in fields:
        name, offset, width, kind, byte_order, count, container, stride = _elements(field)
        values = []
        for j in range(1 if count is None else count):
            at = offset + j * stride
            if container is None:
                bits = _read(data, at, width, byte_order)
            else:
                c_offset, c_width = container
                whole = _read(data, c_offset, c_width, byte_order)
                bits = (whole >> (c_width - at - width)) & ((1 << width) - 1)
            values.append(_value(bits, width, kind, float_bits))
        out[name] = values[0] if count is None else values
    return out


def encode_packet(values: dict, fields: list[Field], packet_length: int) -> bytes:
    """Encode one packet from {name: value or [values]}; float values given as bit patterns."""
    packet = bytearray(packet_length)
    for field in fields:
        name, offset, width, _kind, byte_order, count, container, stride = _elements(field)
        items = [values[name]] if count is None else list(values[name])
        for j, v in enumerate(items):
            at = offset + j * stride
            bits = int(v) & ((1 << width) - 1)
            if container is None:
                _write(packet, at, width, byte_order, bits)
            else:
                c_offset, c_width = container
                whole = _read(bytes(packet), c_offset, c_width, byte_order)
                shift = c_width - at - width
                whole = (whole & ~(((1 << width) - 1) << shift)) | (bits << shift)
                _write(packet, c_offset, c_width, byte_order, whole)
    return bytes(packet)


def split_reference(
    data: bytes,
    frames: list[tuple[int, int]],
    known: dict[int, int] | None = None,
    prefix: int = 0,
) -> list[tuple]:
    """Items (start, length, frame, apid, status name) of the frames ``data[start:end]``.

    ``known`` (APID -> expected length, 0 for any) turns resync on: a bad item whose own
    length does not end on the frame end or a plausible packet ends at the next plausible one.
    ``prefix`` octets come before every packet: a good packet's are in no item, a bad item
    starts at its own.
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
            if rest < prefix + 6:
                items.append((pos, rest, f, -1, "truncated"))
                break
            at, pos, rest = pos, pos + prefix, rest - prefix
            word, apid_word, _, length = struct.unpack(">BBHH", data[pos : pos + 6])
            apid = ((word & 0x07) << 8) | apid_word
            total = length + 7
            if word >> 5:
                status = "bad_version"
            elif total > rest:
                status = "length_past_end"
            else:
                status = "ok"
            lands = total <= rest and (pos + total == end or header_ok(pos + total + prefix, end))
            total = min(total, rest)
            if known is not None and status != "ok" and not lands:
                nxt = next(
                    (q for q in range(pos + 1, end - prefix) if plausible(q + prefix, end)), None
                )
                total = total if nxt is None else nxt - pos
            if status == "ok":
                items.append((pos, total, f, apid, status))
            else:
                items.append((at, total + prefix, f, apid, status))
            pos += total
    return items
