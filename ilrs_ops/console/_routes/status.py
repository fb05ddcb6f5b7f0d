"""Station status: partners -> instruments -> health tiles, live state merged with the catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses

router = APIRouter(prefix="/api", tags=["status"], responses=responses(401, 429))


@router.get("/status")
async def station_status(access: AccessDep) -> dict[str, Any]:
    """Every instrument the caller may see, grouped by partner: health (nominal, warning,
    critical, stale, offline), last packet time, counters, and (except for viewers) the latest
    values with units and limit states. Instruments never heard of are offline."""
    return access.status()
