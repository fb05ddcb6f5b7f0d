"""Streamed exports of telemetry: Parquet, Arrow IPC stream or CSV, written chunk by chunk.

The window [start, stop) is read in time slices sized to about CHUNK_ROWS rows each, and each
slice is written and handed to the response before the next is read: memory holds one slice.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ilrs_ops.console._data import NS, reading
from ilrs_ops.history import History
from ilrs_ops.profiles import Instrument

log = logging.getLogger(__name__)

Format = Literal["parquet", "arrow", "csv"]
MEDIA_TYPES: dict[str, str] = {
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
    "csv": "text/csv; charset=utf-8",
}
SUFFIXES = {"parquet": "parquet", "arrow": "arrows", "csv": "csv"}
CHUNK_ROWS = 100_000
MIN_SLICE_NS = 60 * NS
MAX_SLICE_NS = 86_400 * NS  # a store partition
#: Slices are read one by one, empty or not: this bounds the work of one export.
MAX_EXPORT_NS = 366 * 86_400 * NS


class _Sink:
    """A write-only file that keeps what was written until ``take``; counts its position
    (the Parquet writer asks for it) across takes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        b = bytes(data)
        self._parts.append(b)
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def stamp(ns: int) -> str:
    """A file name's UTC time: ``20261203T170000Z`` (sub-second digits only when there are
    any: ``20261203T170000.250Z``)."""
    sec, frac = divmod(ns, NS)
    text = time.strftime("%Y%m%dT%H%M%S", time.gmtime(sec))
    return f"{text}.{frac:09d}".rstrip("0").rstrip(".") + "Z" if frac else f"{text}Z"


def slices(inst: Instrument, start_ns: int, stop_ns: int) -> Iterator[tuple[int, int]]:
    width = int(CHUNK_ROWS * inst.profile.expected_period_s * NS)
    width = min(max(width, MIN_SLICE_NS), MAX_SLICE_NS)
    t = start_ns
    while t < stop_ns:
        yield t, min(t + width, stop_ns)
        t += width


#: The two hex digits of each octet, as ASCII.
_HEX = np.frombuffer(b"".join(f"{k:02x}".encode() for k in range(256)), np.uint8).reshape(256, 2)


def hex_column(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Binary or fixed-size binary as hex text, two digits per octet, without a loop per row:
    CSV is text, and blobs or wide integers are octets."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        return pa.array([None if v is None else v.hex() for v in arr.to_pylist()], pa.string())
    n = len(arr)
    if pa.types.is_fixed_size_binary(arr.type):
        size = arr.type.byte_width
        data = np.frombuffer(arr.buffers()[1], np.uint8)[arr.offset * size :][: n * size]
        offsets = np.arange(n + 1, dtype=np.int64) * size
    else:
        offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset :][: n + 1].astype(np.int64)
        data = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
    text = np.ascontiguousarray(_HEX[data].reshape(-1))
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(2 * offsets), pa.py_buffer(text)]
    ).cast(pa.string())


def flatten_arrays(table: pa.Table) -> pa.Table:
    """Array channels as one column per element (``wheel_temp[0]``...): CSV has no lists;
    blobs, wide integers and the octets of ``__raw`` as hex text (``hex_column``)."""
    columns, names = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_binary(col.type) or pa.types.is_fixed_size_binary(col.type):
            columns.append(hex_column(col))
            names.append(name)
        elif pa.types.is_fixed_size_list(col.type):
            size = col.type.list_size
            flat = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            for k in range(size):
                columns.append(pa.compute.list_element(flat, k))
                names.append(f"{name}[{k}]")
        else:
            columns.append(col)
            names.append(name)
    return pa.table(columns, names=names)


_ELEMENT = re.compile(r"^(.*)\[\d+\]$")


def _labels(col: pa.ChunkedArray | pa.Array, enum: Any) -> pa.Array:
    """The enum label of each raw value (null where none covers it), looked up once per
    distinct value."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    distinct = pc.unique(arr)
    names = [None if v is None else enum.get(v) for v in distinct.to_pylist()]
    return pc.take(pa.array(names, pa.string()), pc.index_in(arr, value_set=distinct))


def for_csv(table: pa.Table, inst: Instrument) -> pa.Table:
    """The table as the CSV carries it (``flatten_arrays``), with each channel's units in its
    header (``batt_v [V]``) and an enum channel's labels beside its raw values
    (``mode__label``): a CSV read in a spreadsheet has no profile to look them up in."""
    table = flatten_arrays(table)
    fields = {f.name: f for f in inst.profile.channel_fields}
    units = {f.name: f.units for f in fields.values()} | {
        d.name: d.units for d in inst.profile.derived_channels
    }
    columns, names = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        m = _ELEMENT.match(name)
        base = m[1] if m else name
        unit = units.get(base)
        columns.append(col)
        names.append(f"{name} [{unit}]" if unit else name)
        field = fields.get(base)
        enum = field.enumeration if field is not None else None
        if enum is not None and pa.types.is_integer(col.type):
            columns.append(_labels(col, enum))
            names.append(f"{name}__label")
    return pa.table(columns, names=names)


def export(
    history: History,
    inst: Instrument,
    channels: list[str],
    start_ns: int,
    stop_ns: int,
    fmt: Format,
    first: pa.Table | None = None,
    raw: bool = False,
) -> Iterator[bytes]:
    """The file's bytes, slice by slice. ``first`` is the first slice already read (the route
    reads it before answering, so a store error is a 503 and not a cut-off download); ``raw``
    adds each field's ``{channel}__raw`` column (``History.query``)."""
    sink = _Sink()
    writer: pq.ParquetWriter | ipc.RecordBatchStreamWriter | pcsv.CSVWriter | None = None
    try:
        for k, (lo, hi) in enumerate(slices(inst, start_ns, stop_ns)):
            if k == 0 and first is not None:
                table = first
            else:
                with reading(f"export of {inst.id}"):
                    table = history.query(inst.id, channels, lo, hi, raw=raw)
            if fmt == "csv":
                table = for_csv(table, inst)
            with reading(f"export of {inst.id}"):
                if writer is None:
                    writer = _writer(fmt, sink, table.schema)
                writer.write_table(table)
            chunk = sink.take()
            if chunk:
                yield chunk
        with reading(f"export of {inst.id}"):
            if writer is None:  # empty window: a valid empty file with the columns
                schema = history.query(inst.id, channels, start_ns, stop_ns, raw=raw).schema
                if fmt == "csv":
                    schema = for_csv(schema.empty_table(), inst).schema
                writer = _writer(fmt, sink, schema)
            writer.close()
            writer = None
        chunk = sink.take()
        if chunk:
            yield chunk
    except Exception:
        # Headers are sent: the client sees a cut-off file; say why in the log.
        log.exception("export of %s [%d, %d) failed", inst.id, start_ns, stop_ns)
        raise
    finally:
        if writer is not None:
            with contextlib.suppress(pa.ArrowException):
                writer.close()


def _writer(
    fmt: Format, sink: _Sink, schema: pa.Schema
) -> pq.ParquetWriter | ipc.RecordBatchStreamWriter | pcsv.CSVWriter:
    out = pa.PythonFile(sink, mode="w")  # type: ignore[arg-type]
    if fmt == "parquet":
        return pq.ParquetWriter(out, schema, compression="zstd")
    if fmt == "arrow":
        return ipc.new_stream(out, schema)
    return pcsv.CSVWriter(out, schema)
