"""Links and ingest: per instrument rates, last packet age, gaps, rejects; per lane lag,
queue depth and store errors, as the ingestors publish them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses
from ilrs_ops.console._links import Links

router = APIRouter(prefix="/api", tags=["links"], responses=responses(400, 401, 403, 404, 429))


@router.get("/links", response_model=Links)
async def links(
    access: AccessDep,
    instrument: Annotated[
        str | None, Query(description="comma-separated ids; all the caller may read if omitted")
    ] = None,
    partner: Annotated[
        str | None, Query(description="comma-separated partner ids; all if omitted")
    ] = None,
    window: Annotated[
        float, Query(description="seconds, 2..300: rates are the counters' increase over it")
    ] = 10.0,
) -> Links:
    """Per instrument: packets/s and bytes/s (from the ingest counters, as Prometheus' rate),
    last packet age, gaps, rejects by reason; per ingest lane: queue depth, lag, commit time,
    messages/s, store errors, and whether its shard's metrics are stale. A partner sees its own
    instruments and their lanes; shard totals are for operators; viewers get a 403."""
    return access.links(instrument, partner, window)
