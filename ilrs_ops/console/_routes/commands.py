"""Telecommands: definitions, requests, approvals, queues and the command history.

Who may do what: operators everything, but a hazardous command they ask for waits for another
operator's approval. A partner commands its own instruments (a hazardous one waits for an
operator) and sees their history. A viewer sees the history of every instrument, without the
arguments marked sensitive, and commands nothing. Every stage goes to WebSockets as
``{"type": "command", "command": {...}}`` and into the ``commands`` table of the store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from ilrs_ops import wire
from ilrs_ops.commanding import Commander, Record, describe, value_range
from ilrs_ops.console._auth import Principal
from ilrs_ops.console._data import parse_time
from ilrs_ops.console._deps import PrincipalDep
from ilrs_ops.console._errors import BadRequestError, ErrorBody, ValidationBody, responses
from ilrs_ops.profiles import Command, Profile

#: 422 is FastAPI's validation error, or ours (an argument the command does not take).
INPUT_422: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody | ValidationBody,
        "description": "a body FastAPI refuses, or an argument the command does not take "
        "(``parameter`` names it)",
    }
}

router = APIRouter(
    prefix="/api", tags=["commands"], responses=responses(400, 401, 403, 404, 409, 429) | INPUT_422
)

STATES = (*wire.COMMAND_STAGES, "open")


def commander(conn: HTTPConnection) -> Commander:
    return conn.app.state.commander  # type: ignore[no-any-return]


CommanderDep = Annotated[Commander, Depends(commander)]


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: str = Field(min_length=1, max_length=200)
    command: str = Field(min_length=1, max_length=200)
    args: dict[str, float | int | str] = Field({}, description="engineering values or labels")
    id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="request id: the same id again is the same command [a new one]",
    )


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


def _show(principal: Principal, rec: Record) -> dict[str, Any]:
    return rec.json(show_args=principal.role != "viewer")


def definition(p: Profile, c: Command) -> dict[str, Any]:
    """A command as the page's form and the CLI need it."""
    args = []
    for a in c.arguments:
        lo, hi = value_range(a)
        args.append(
            {
                "name": a.name,
                "type": a.type,
                "units": a.units,
                "description": a.description,
                "enum": sorted(set(a.enum.values())) if a.enum else None,
                "range": None if a.enum else [lo, hi],
                "default": a.default,
                "sensitive": a.sensitive,
                "summary": describe(a),
            }
        )
    v = c.verify
    return {
        "name": c.name,
        "description": c.description,
        "opcode": c.opcode,
        "hazardous": c.hazardous,
        "arguments": args,
        "pre": [str(p) for p in c.pre],
        "verify": {
            "received_s": p.received_s(c),
            "executed": [str(e) for e in v.executed],
            "executed_s": v.executed_s,
        },
    }


@router.get("/instruments/{instrument}/commands")
def definitions(instrument: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    """The commands of an instrument: arguments with types, ranges, units and enums."""
    defs = cmd.definitions(principal, instrument)
    p = cmd.catalogs.current.instruments[instrument].profile
    return {
        "instrument": instrument,
        "queue": cmd.queue(instrument) if principal.role != "viewer" else None,
        "commands": [definition(p, c) for c in defs],
    }


@router.post(
    "/commands",
    status_code=201,
    responses={200: {"description": "A request id sent before: that command, not a new one"}},
)
async def submit(
    body: CommandBody, principal: PrincipalDep, cmd: CommanderDep, response: Response
) -> dict[str, Any]:
    """Ask for a command: checked, then sent, or queued (hazardous: for approval; a held
    queue: until released). 201 with a new command; 200 with the earlier one when its request
    id comes again (nothing is sent twice). 409 when a pre-send condition does not hold in live
    telemetry."""
    rec, new = await cmd.request(principal, body.instrument, body.command, body.args, body.id)
    if not new:
        response.status_code = 200
    return _show(principal, rec)


@router.post("/commands/preview")
def preview(body: CommandBody, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    """The packet a request would be, in hex, with its checked arguments and raw counts; sends
    nothing (the page's confirmation of a hazardous command shows it)."""
    return cmd.preview(principal, body.instrument, body.command, body.args)


@router.get("/commands")
def history(
    principal: PrincipalDep,
    cmd: CommanderDep,
    instrument: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(description="a stage, or open: not final")] = None,
    since: Annotated[str | None, Query(description="requested at or after (UTC ISO or ns)")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    stop: Annotated[
        str | None, Query(description="requested before, exclusive (UTC ISO or ns)")
    ] = None,
) -> dict[str, Any]:
    """The command history (last 30 days; older stages stay in the store), newest first;
    with ``since`` and ``stop``, the commands requested in [since, stop)."""
    if state is not None and state not in STATES:
        raise BadRequestError(f"state {state!r} is not one of {', '.join(STATES)}", "state")
    since_ns = parse_time(since, "since")
    stop_ns = parse_time(stop, "stop")
    if since_ns is not None and stop_ns is not None and since_ns >= stop_ns:
        raise BadRequestError(
            f"since ({since_ns}) must be before stop ({stop_ns}): the window is [since, stop)",
            "stop",
        )
    records = cmd.history(principal, instrument, state, since_ns, limit, stop_ns)
    return {"commands": [_show(principal, r) for r in records]}


@router.get("/commands/{id}")
def one(id: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    return _show(principal, cmd.get(principal, id))


@router.post("/commands/{id}/approve")
async def approve(id: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    """A second operator approves a hazardous command (not the one who asked for it)."""
    return _show(principal, await cmd.approve(principal, id))


@router.post("/commands/{id}/reject")
async def reject(
    id: str, principal: PrincipalDep, cmd: CommanderDep, body: RejectBody | None = None
) -> dict[str, Any]:
    return _show(principal, await cmd.reject(principal, id, body.reason if body else ""))


@router.post("/commands/{id}/cancel")
async def cancel(id: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    """Withdraw a command not yet sent (its requester, or an operator)."""
    return _show(principal, await cmd.cancel(principal, id))


@router.get("/queues/{instrument}")
def queue(instrument: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    cmd.definitions(principal, instrument)  # 403/404 as for its commands
    return cmd.queue(instrument)


@router.post("/queues/{instrument}/hold")
async def hold(instrument: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    """Hold an instrument's queue: nothing more is sent until it is released (operators)."""
    return await cmd.hold(principal, instrument)


@router.post("/queues/{instrument}/release")
async def release(instrument: str, principal: PrincipalDep, cmd: CommanderDep) -> dict[str, Any]:
    return await cmd.hold(principal, instrument, held=False)
