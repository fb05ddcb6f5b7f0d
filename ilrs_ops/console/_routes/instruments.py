"""One instrument: profile summary, telemetry history, streamed export.

Store reads run in the threadpool (sync handlers): they read files."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ilrs_ops.console._data import reading, window
from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import BadRequestError, responses
from ilrs_ops.console._export import MAX_EXPORT_NS, MEDIA_TYPES, SUFFIXES, export, slices, stamp

router = APIRouter(
    prefix="/api/instruments",
    tags=["instruments"],
    responses=responses(400, 401, 403, 404, 429, 503),
)

Channels = Annotated[
    str | None, Query(description="comma-separated channel names; all when omitted")
]
Start = Annotated[
    str | None, Query(description="window start, inclusive: ISO-8601 or ns; default stop - 1 h")
]
Stop = Annotated[
    str | None, Query(description="window stop, exclusive: ISO-8601 or ns; default now")
]


@router.get("/{instrument_id}")
def instrument_detail(instrument_id: str, access: AccessDep) -> dict[str, Any]:
    """Profile summary (channels with units, enums and limits), store counters, status and
    the events of the last 24 h (at most 50)."""
    return access.detail(instrument_id)


@router.get("/{instrument_id}/telemetry")
def telemetry(
    instrument_id: str,
    access: AccessDep,
    channels: Channels = None,
    start: Start = None,
    stop: Stop = None,
    max_points: Annotated[
        int | None, Query(description="1..10000 buckets of min/max/mean/count over the window")
    ] = None,
) -> dict[str, Any]:
    """Telemetry over [start, stop) as JSON columns (``time`` in ns). Without ``max_points``
    the samples (with ``{channel}__state``); with it, that many equal buckets, each with
    ``{channel}__count``, ``__min``, ``__max``, ``__mean``."""
    return access.telemetry(instrument_id, channels, start, stop, max_points)


@router.get(
    "/{instrument_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the file, streamed",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES.values()
            },
        }
    },
)
def export_telemetry(
    instrument_id: str,
    access: AccessDep,
    format: Literal["parquet", "arrow", "csv"] = "parquet",
    channels: Channels = None,
    start: Start = None,
    stop: Stop = None,
    raw: Annotated[
        bool,
        Query(description="also each field's {channel}__raw: the value as the packet carried it"),
    ] = False,
) -> StreamingResponse:
    """The samples of [start, stop) as a streamed Parquet file, Arrow IPC stream or CSV (array
    channels as one column per element; units in the CSV header, enum labels beside raw
    values), read and written a time slice at a time. The file is named by instrument and
    window: ``sup-rover-1_20261203T170000Z_20261203T180000Z.csv``."""
    inst = access.instrument(instrument_id)
    names = access.channels(inst, channels)
    start_ns, stop_ns = window(start, stop)
    if stop_ns - start_ns > MAX_EXPORT_NS:
        raise BadRequestError(
            f"export window of {(stop_ns - start_ns) / 86_400e9:.0f} days: at most "
            f"{MAX_EXPORT_NS // 86_400_000_000_000} days per export; move start or stop",
            "start",
        )
    lo, hi = next(slices(inst, start_ns, stop_ns))
    with reading(f"export of {inst.id}"):  # the first slice now: a store error is a 503
        first = access.history.query(inst.id, names, lo, hi, raw=raw)
    filename = f"{inst.id}_{stamp(start_ns)}_{stamp(stop_ns)}.{SUFFIXES[format]}"
    return StreamingResponse(
        export(access.history, inst, names, start_ns, stop_ns, format, first, raw),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
