"""Prometheus metrics (operators only): rates come from the counters, as Prometheus does."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses
from ilrs_ops.console._metrics import render

router = APIRouter(tags=["metrics"], responses=responses(401, 403, 429))


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(access: AccessDep) -> PlainTextResponse:
    """Per-instrument packets, bytes, rejects by reason, health; per ingest lane queue depth,
    lag, commits; the console's WebSocket clients and drops. Text format 0.0.4."""
    access.require_operator("/metrics")
    health = {}
    for inst in access.catalog:
        tile = access.tile(inst)
        if tile is not None:
            health[inst.id] = tile["health"]
    text = render(access.state, access.catalog, health)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
