"""Parameter search: channels of every instrument the token may read, by name, description
or units (the header's search box; a result opens the instrument page on that channel)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ilrs_ops.console._deps import AccessDep
from ilrs_ops.console._errors import responses

router = APIRouter(prefix="/api", tags=["search"], responses=responses(400, 401, 429))


@router.get("/search")
def search(
    access: AccessDep,
    q: Annotated[
        str, Query(max_length=200, description="words, each in the name, description or units")
    ],
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many results")] = 50,
) -> dict[str, Any]:
    """Channels matching ``q``, best first; viewers read no channels, so find none."""
    return access.search(q, limit)
