"""The packet inspector: recent raw and quarantined packets with their decoded fields.

Decoding runs in the threadpool (sync handlers): it reads the store and runs the Processor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses
from ilrs_ops.console._packets import MAX_PACKETS, PacketKind, packets, unknown_packets

router = APIRouter(
    prefix="/api", tags=["packets"], responses=responses(400, 401, 403, 404, 429, 503)
)

Limit = Annotated[
    int, Query(ge=1, le=MAX_PACKETS, description=f"the newest this many (1..{MAX_PACKETS})")
]
Start = Annotated[
    str | None, Query(description="window start, inclusive: ISO-8601 or ns; default stop - 1 h")
]
Stop = Annotated[
    str | None, Query(description="window stop, exclusive: ISO-8601 or ns; default now")
]


@router.get("/instruments/{instrument_id}/packets")
def instrument_packets(
    instrument_id: str,
    access: AccessDep,
    kind: Annotated[
        PacketKind,
        Query(description="raw (accepted), quarantine (rejected, with reason) or all"),
    ] = "all",
    limit: Limit = 50,
    start: Start = None,
    stop: Stop = None,
    reason: Annotated[
        str | None, Query(description="comma-separated quarantine reasons (ilrs_ops.wire)")
    ] = None,
) -> dict[str, Any]:
    """The newest packets of [start, stop), newest first by receive time: each with its hex
    octets, primary header, decoded fields (raw and engineering value, units, limit state, bit
    offset, width and spans, the octets it touches) and, when quarantined, reason and detail.
    A packet that cannot be decoded has ``decode_error`` and no fields."""
    return packets(access, instrument_id, kind, limit, start, stop, reason)


@router.get("/packets/unknown")
def unknown_topic_packets(
    access: AccessDep, limit: Limit = 50, start: Start = None, stop: Stop = None
) -> dict[str, Any]:
    """Operators: messages on telemetry topics of no instrument, newest first (hex, topic,
    the header of the first packet)."""
    return unknown_packets(access, limit, start, stop)
