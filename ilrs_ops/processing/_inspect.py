"""One packet taken apart for a person: its primary header, its time code and every field of
its profile, each with its raw and engineering value and the bits it lies in.

The values come from the Processor itself, run on a one-packet batch with a fresh state, so the
inspector shows what ingest makes of the octets (variants, sub-fields, byte orders, arrays and
variable-length arrays included) and there is no second decoder to disagree with the first. Only
the header, the time code and spare (``ignore``) fields, which the tables do not keep, are read
with ``pipelines.decode.field_values``. Bit offsets count from the packet's first bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ilrs_ops.ccsds import PRIMARY_HEADER_OCTETS, decode_primary_header
from ilrs_ops.processing._processor import Processor
from ilrs_ops.profiles import HEADER_FIELDS, FieldSpec, Instrument, Profile, time_fields
from ilrs_ops.schemas import RAW_SUFFIX
from pipelines.decode import element_counts, field_values
from pipelines.layout import Layout

#: The primary header's fields as the inspector names them, in packet order.
HEADER_NAMES = {
    "_version": "version",
    "_type": "type",
    "_sec_hdr": "sec_hdr_flag",
    "_apid": "apid",
    "_seq_flags": "seq_flags",
    "_seq_count": "seq_count",
    "_length": "length_field",
}


@dataclass(frozen=True)
class FieldView:
    """One field of a packet: ``group`` is header, time, data or derived (no bits of its own).
    ``spans`` are the [start, stop) bit ranges it occupies in the packet (several for a field
    whose octets travel out of order or an interleaved axis); empty for derived channels."""

    name: str
    group: str
    type: str | None = None
    units: str | None = None
    raw: object = None
    value: object = None
    state: int | None = None
    bit_offset: int | None = None
    bit_width: int | None = None
    count: int | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    ignored: bool = False
    description: str | None = None


@dataclass(frozen=True)
class PacketView:
    """What one packet says: the fields it could be decoded into, or ``error`` (the reason and
    detail a fresh Processor gives) when it cannot be; the header whenever it has 6 octets."""

    length: int
    header: list[FieldView]
    fields: list[FieldView]
    time_ns: int | None = None
    variant: str | None = None
    error: str | None = None


def inspect_packet(
    instrument: Instrument | None, data: bytes, recv_ns: int, topic: str = ""
) -> PacketView:
    """Take ``data`` (one packet's octets, received at ``recv_ns``) apart with the profile of
    ``instrument`` (None: header only, a message on a topic of no instrument)."""
    header = _header(data)
    if instrument is None:
        return PacketView(len(data), header, [], error="no instrument profile to decode it with")
    proc = Processor(instrument)  # a fresh state: duplicates and order are judged elsewhere
    out = proc.process([data], np.array([recv_ns], np.int64), topic or instrument.topic())
    if out.telemetry.num_rows != 1 or out.quarantine.num_rows:
        q = out.quarantine.select(["reason", "detail"]).to_pylist()
        why = "; ".join(f"{r['reason']}: {r['detail']}" for r in q) or "not decoded"
        return PacketView(len(data), header, [], error=why)
    row = {name: out.telemetry.column(name)[0] for name in out.telemetry.column_names}
    latest = out.latest
    p = instrument.profile
    buf = np.frombuffer(data, np.uint8)
    k = _variant(p, instrument, buf)
    flat = p.variant_profiles[k] if p.variants is not None else p
    layout = (instrument.variant_layouts or (instrument.layout,))[k]
    count = layout.var_slots[1] if layout.variable else 0
    if layout.variable:
        counts, _ = element_counts(buf, np.zeros(1, np.int64), np.array([len(data)]), layout)
        count = int(counts[0])
    spans = _Spans(layout, count)
    values: dict[str, object] = latest.get("values", {})
    states: dict[str, int] = latest.get("states", {})
    fields = [_time_field(name, layout, buf, spans) for name, _ in time_fields(flat.time)]
    for f in flat.channel_fields:
        raw = (
            _python(row[f.name + RAW_SUFFIX])
            if f.name + RAW_SUFFIX in row
            else _spare(f, layout, buf, spans.moved(layout.field_index(f.name)))
        )
        i = layout.field_index(f.name)
        fields.append(
            FieldView(
                name=f.name,
                group="data",
                type=f.type,
                units=f.units,
                raw=raw,
                value=None if f.ignore else _finite(values.get(f.name)),
                state=states.get(f.name),
                bit_offset=int(layout.bit_offset[layout.field_slot[i]]) + spans.moved(i),
                bit_width=f.width,
                count=(count if f.is_variable else f.count),
                spans=spans.of(i),
                ignored=f.ignore,
                description=f.description,
            )
        )
    for d in flat.derived:
        fields.append(
            FieldView(
                name=d.name,
                group="derived",
                units=d.units,
                value=_finite(values.get(d.name)),
                state=states.get(d.name),
                description=d.expr,
            )
        )
    variant = p.variants.cases[k].name if p.variants is not None else None
    return PacketView(len(data), header, fields, latest.get("time_ns"), variant)


# ---------------------------------------------------------------------- helpers


def _header(data: bytes) -> list[FieldView]:
    """The primary header by ``ccsds.decode_primary_header`` (any packet of 6 octets or more)."""
    if len(data) < PRIMARY_HEADER_OCTETS:
        return []
    h = decode_primary_header(data)
    values = (h.version, h.packet_type, h.secondary_header_flag, h.apid, h.sequence_flags,
              h.sequence_count, h.data_length)  # fmt: skip
    out, bit = [], 0
    for (name, width), value in zip(HEADER_FIELDS, values, strict=True):
        span = [(bit, bit + width)]
        kind = f"u{width}"
        out.append(FieldView(HEADER_NAMES[name], "header", kind, raw=value, value=value,
                             bit_offset=bit, bit_width=width, spans=span))  # fmt: skip
        bit += width
    return out


def _variant(p: Profile, inst: Instrument, buf: np.ndarray) -> int:
    """The variant the packet is (its selector's value), 0 without variants."""
    if p.variants is None:
        return 0
    value = int(field_values(buf, np.zeros(1, np.int64), inst.variant_layouts[0],
                             p.variants.selector)[0])  # fmt: skip
    for k, case in enumerate(p.variants.cases):
        if any(lo <= value <= hi for lo, hi in case.ranges):
            return k
    return 0  # the Processor accepted it, so a case matched; not reached


def _time_field(name: str, layout: Layout, buf: np.ndarray, spans: _Spans) -> FieldView:
    i = layout.field_index(name)
    raw = int(field_values(buf, np.zeros(1, np.int64), layout, name)[0])
    width = int(layout.bit_width[layout.field_slot[i]])
    return FieldView(
        name=name.lstrip("_"),
        group="time",
        type=f"u{width}",
        raw=raw,
        bit_offset=int(layout.bit_offset[layout.field_slot[i]]),
        bit_width=width,
        spans=spans.of(i),
    )


def _spare(f: FieldSpec, layout: Layout, buf: np.ndarray, moved: int) -> object:
    """An ignored field's raw bits (integers only; the tables do not keep them). After a
    variable-length array that came up short, the field lies ``-moved`` bits (whole octets)
    before where the layout puts it: read it from a buffer shifted by as much."""
    if f.count is not None or f.is_octets or f.base == "f":
        return None
    if moved:
        buf = np.concatenate([np.zeros(-moved // 8, np.uint8), buf])
    return int(field_values(buf, np.zeros(1, np.int64), layout, f.name)[0])


class _Spans:
    """Where each field of ``layout`` lies in a packet whose variable-length array (if any)
    has ``count`` elements: the slots after the array move up with it, as the decoder reads."""

    def __init__(self, layout: Layout, count: int) -> None:
        self.layout = layout
        self.count = count
        self.element = layout.element_index()
        self.moved_slots = layout.moved_slots()
        self.shift = 0
        if layout.variable:
            _, most, width = layout.var_slots
            self.shift = 8 * ((count - most) * width // 8)  # bits, <= 0, as pipelines.decode

    def moved(self, i: int) -> int:
        """Bits field ``i`` moved from where the layout puts it (<= 0)."""
        return self.shift if self.moved_slots[int(self.layout.field_slot[i])] else 0

    def of(self, i: int) -> list[tuple[int, int]]:
        lay = self.layout
        s0, n = int(lay.field_slot[i]), int(lay.field_count[i])
        assert lay.octet_map is not None
        bits: list[tuple[int, int]] = []
        for s in range(s0, s0 + n):
            if 0 <= self.count <= self.element[s]:
                continue  # an element this packet's array does not have
            shift = self.shift if self.moved_slots[s] else 0
            octets = lay.octet_map[s]
            if octets[0] >= 0:  # octets out of big-endian order: the octets that hold it
                bits += [(8 * int(o) + shift, 8 * int(o) + 8 + shift) for o in octets if o >= 0]
            else:
                at = int(lay.bit_offset[s]) + shift
                bits.append((at, at + int(lay.bit_width[s])))
        merged: list[tuple[int, int]] = []
        for a, b in sorted(bits):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged


def _python(scalar: pa.Scalar) -> object:
    """A ``__raw`` value as JSON can carry it: octets as hex, NaN and infinities as None."""
    value = scalar.as_py()
    if isinstance(value, bytes):
        return value.hex()
    return _finite(value)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
