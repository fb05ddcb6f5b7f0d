"""Who the caller is: the token's name, role and partner, and what that role may see; plus
what the page must say about the station itself (a simulated one says so)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from ilrs_ops.console._deps import ConsoleDep, PrincipalDep
from ilrs_ops.console._errors import responses

router = APIRouter(prefix="/api", tags=["status"], responses=responses(401, 429))

SEES = {
    "operator": "every instrument's status, data and alarms; may act on alarms and replays",
    "partner": "its own partner's instruments only: status, data, alarms",
    "viewer": "station status only: health, alarm states, last packet age; no values",
}


class Me(BaseModel):
    name: str
    role: Literal["operator", "partner", "viewer"]
    partner: str | None
    sees: str
    simulation: str | None  # what is simulated (ilrs-ops up), None for a real station


@router.get("/me")
async def me(console: ConsoleDep, principal: PrincipalDep) -> Me:
    """The caller's identity: the name, role and partner of its token, in words what the role
    may see, and ``simulation``: set when the station is simulated (``ilrs-ops up``)."""
    return Me(
        name=principal.name,
        role=principal.role,
        partner=principal.partner,
        sees=SEES[principal.role],
        simulation=console.settings.simulation,
    )
