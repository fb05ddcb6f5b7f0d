"""Arrow schemas of the stored tables: the contract between processing, the store and readers.

Every table is Hive-partitioned on disk by ``instrument`` and ``date`` (UTC day of the row's
time), so the partition columns are not in the files. Times are UTC nanoseconds since 1970.
Telemetry has one schema per instrument (its channels); see ``telemetry_schema``.
"""

from __future__ import annotations

import pyarrow as pa

from ilrs_ops.profiles import FieldSpec, Instrument

TIME = pa.timestamp("ns", tz="UTC")

#: Every good, unique packet as it arrived: the source of truth everything else derives from.
RAW = pa.schema(
    [
        ("time", TIME),  # packet time from its secondary header
        ("recv", TIME),  # when the ingestor received its MQTT message
        ("apid", pa.int16()),
        ("seq", pa.int16()),
        ("data", pa.binary()),
    ]
)

#: Everything that could not become telemetry, with why and its bytes: nothing is dropped.
QUARANTINE = pa.schema(
    [
        ("recv", TIME),
        ("topic", pa.string()),
        ("reason", pa.string()),  # one of ilrs_ops.wire.REASONS
        ("detail", pa.string()),
        ("data", pa.binary()),
    ]
)

#: Things that happened: limit transitions, sequence gaps, detector triggers, and (from the
#: console) alarm acks, shelves and profile changes. Rejects are not events: see QUARANTINE.
EVENTS = pa.schema(
    [
        ("time", TIME),
        ("kind", pa.string()),  # one of ilrs_ops.wire.EVENT_KINDS
        ("channel", pa.string()),  # null when not about one channel
        ("from_state", pa.int8()),  # limit states: -1 invalid, 0 nominal, 1 yellow, 2 red
        ("to_state", pa.int8()),
        ("value", pa.float64()),  # the value at the transition, gap size, ratio...
        ("detail", pa.string()),
    ]
)

#: Command history, event-sourced: one row per stage a command reaches (requested, queued,
#: approved, sent, received, executed, completed, failed, timed_out, rejected, cancelled), written
#: by the commanding service; the command's state is a fold over its rows.
COMMANDS = pa.schema(
    [
        ("time", TIME),
        ("id", pa.string()),  # the request id: one command, however often it is asked for
        ("stage", pa.string()),  # one of ilrs_ops.wire.COMMAND_STAGES
        ("who", pa.string()),  # the operator, partner or service that caused the stage
        ("detail", pa.string()),  # JSON: the command, its arguments, seq, packet, reason...
    ]
)

#: Per channel, per bucket (1 s and 60 s) aggregates. A bucket may appear in several rows (one
#: per batch that touched it); readers combine rows of one bucket: sum counts and sums, min of
#: mins, max of maxes, first of firsts, last of lasts.
ROLLUPS = pa.schema(
    [
        ("channel", pa.string()),
        ("width_s", pa.int32()),
        ("bucket", TIME),  # start of the bucket
        ("count", pa.int64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("sum", pa.float64()),
        ("first", TIME),
        ("last", TIME),
    ]
)

ROLLUP_WIDTHS_S: tuple[int, ...] = (1, 60)
STATE_SUFFIX = "__state"
#: The column beside each field's channel with the value exactly as the packet carried it.
RAW_SUFFIX = "__raw"


def rollup_widths(inst: Instrument) -> tuple[int, ...]:
    """The rollup widths an instrument keeps: those wider than its packet period. A 1 s rollup
    of a 1 Hz instrument would only repeat its telemetry, at ten times the bytes."""
    return tuple(w for w in ROLLUP_WIDTHS_S if w > inst.profile.expected_period_s)


def octets_type(f: FieldSpec) -> pa.DataType:
    """The channel column of a string (string), bytes (binary) or wide integer field (its
    exact big-endian octets, fixed_size_binary)."""
    if f.type == "string":
        return pa.string()
    return pa.binary() if f.type == "bytes" else pa.binary(f.width // 8)


def telemetry_schema(inst: Instrument) -> pa.Schema:
    """time, seq, then one column per channel (calibrated float64; enum codes as int64; arrays
    as fixed-size lists, a variable-length array as a list of each packet's elements; strings
    as string, blobs as binary, integers wider than 64 bits as their big-endian octets,
    fixed_size_binary), then ``{channel}__state`` (int8) for each channel with limits, then
    ``{field}__raw`` for each stored field: its raw value in the field's own type (uint8..64,
    int8..64, float32/64; the octets of a string, blob or wide integer as fixed_size_binary),
    exactly the packet's bits, where float64 would round a u64 above 2**53 or a float32 NaN's
    payload."""
    cols: list[tuple[str, pa.DataType]] = [("time", TIME), ("seq", pa.int16())]
    p = inst.profile
    for f in p.channel_fields:
        if f.ignore:
            continue
        if f.is_octets:
            cols.append((f.name, octets_type(f)))
            continue
        scalar = pa.int64() if f.enum else pa.float64()
        cols.append((f.name, _array_type(scalar, f) if f.count is not None else scalar))
    cols += [(d.name, pa.float64()) for d in p.derived_channels]
    limited = [f.name for f in p.channel_fields if f.limits and not f.ignore]
    limited += [d.name for d in p.derived_channels if d.limits]
    cols += [(name + STATE_SUFFIX, pa.int8()) for name in limited]
    for f in p.channel_fields:
        if f.is_octets and not f.ignore:
            cols.append((f.name + RAW_SUFFIX, pa.binary(f.width // 8)))
        elif not f.ignore:
            native = pa.from_numpy_dtype(inst.field_dtype(f.name))
            cols.append((f.name + RAW_SUFFIX, _array_type(native, f) if f.count else native))
    return pa.schema(cols)


def _array_type(value: pa.DataType, f: FieldSpec) -> pa.DataType:
    """A fixed-size list of ``count``, or a list of each packet's elements for a
    variable-length array (``count_from``)."""
    return pa.list_(value) if f.is_variable else pa.list_(value, f.count)
