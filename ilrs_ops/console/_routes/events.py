"""Events from the store: limit transitions, gaps, rejects, detector triggers, acks..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses

router = APIRouter(
    prefix="/api", tags=["events"], responses=responses(400, 401, 403, 404, 429, 503)
)


@router.get("/events")
def list_events(
    access: AccessDep,
    instrument: Annotated[
        str | None, Query(description="comma-separated ids; all the caller may read if omitted")
    ] = None,
    partner: Annotated[
        str | None, Query(description="comma-separated partner ids; all if omitted")
    ] = None,
    kind: Annotated[
        str | None, Query(description="comma-separated: limit, gap, reject, detector, ...")
    ] = None,
    start: Annotated[str | None, Query(description="inclusive; ISO-8601 or ns")] = None,
    stop: Annotated[str | None, Query(description="exclusive; ISO-8601 or ns")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="newest this many")] = 1000,
) -> dict[str, Any]:
    """Events with time in [start, stop) (default: the last hour), oldest first."""
    return access.events(instrument, kind, start, stop, limit, partner)
