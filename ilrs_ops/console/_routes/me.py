"""Who the caller is: the token's name, role and partner, and what that role may see; plus
what the page must say about the station itself (a simulated one says so), and its clock."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from ilrs_ops.console._data import iso
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


class Lunar(BaseModel):
    day: bool  # lunar day at the station (the sun above the horizon)
    next: Literal["sunset", "sunrise"]
    next_ns: int  # when the next terminator passes the station (UTC ns)
    next_at: str
    in_s: float  # seconds from now


class Clock(BaseModel):
    now_ns: int
    utc: str
    lunar: Lunar | None  # None: no environment model (a real station without one)


@router.get("/clock")
async def clock(console: ConsoleDep, _principal: PrincipalDep) -> Clock:
    """UTC now and, where the console knows the station's environment model (the simulator's,
    under ``ilrs-ops up``), lunar day or night at the station and the next terminator."""
    now = time.time_ns()
    s = console.settings
    lunar = None
    if s.sim_epoch_ns is not None:
        from ilrs_ops.sim import Environment  # the simulator's own model, not a copy of it

        env = Environment(epoch_ns=s.sim_epoch_ns, time_scale=s.sim_time_scale)
        day, nxt, at = env.terminator(now)
        lunar = Lunar(day=day, next=nxt, next_ns=at, next_at=iso(at) or "", in_s=(at - now) / 1e9)
    return Clock(now_ns=now, utc=iso(now) or "", lunar=lunar)
