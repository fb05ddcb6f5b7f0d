"""Recordings and their replays: list recordings; start, pause, resume and stop a replay.

Who may do what: operators everything. A partner lists the recordings whose instruments are
all its own (a recording may hold other partners' data, so one with any other instrument is
not listed) and may not replay. A viewer sees no recordings (they are data) and no replays.

A replay publishes the recording, in packet-time order at ``speed`` times real time (or
``max``), under ``{root}-replay/{to}`` on the console's broker, never under the live root, so
live status and alarms never see it; an ingestor in the console writes it into the new
recording ``to``. Progress goes to operators' WebSockets as ``{"type": "replay", ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from ilrs_ops.console._auth import Principal
from ilrs_ops.console._deps import PrincipalDep
from ilrs_ops.console._errors import ErrorBody, ForbiddenError, ValidationBody, responses
from ilrs_ops.console._replays import ReplayManager

#: 422 is FastAPI's validation error, or ours (a bad name, nothing to replay) with an ErrorBody.
INPUT_422: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody | ValidationBody,
        "description": "a body FastAPI refuses, or a name or recording that cannot be replayed",
    }
}

router = APIRouter(
    prefix="/api", tags=["replays"], responses=responses(400, 401, 403, 404, 409, 429) | INPUT_422
)

MAX_SPEED = 1e6

Speed = Annotated[float, Field(gt=0, le=MAX_SPEED, allow_inf_nan=False, strict=True)]


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: str = Field(min_length=1, max_length=200, description="recording to replay")
    speed: Literal["max"] | Speed = Field(
        "max", description="times real time (1, 10, any number > 0), or max: as fast as possible"
    )
    to: str | None = Field(
        None, max_length=200, description="new recording to replay into [replay-TIME]"
    )


def manager(conn: HTTPConnection) -> ReplayManager:
    return conn.app.state.replays  # type: ignore[no-any-return]


def operator(principal: PrincipalDep) -> Principal:
    """The principal, if an operator (403 before any body is looked at)."""
    if not principal.is_operator:
        raise ForbiddenError(f"replays are for operators; {principal.name!r} is a {principal.role}")
    return principal


OperatorDep = Annotated[Principal, Depends(operator)]


@router.get("/recordings")
async def list_recordings(conn: HTTPConnection, principal: PrincipalDep) -> dict[str, Any]:
    """Recordings, newest first: name, kind (imported, recorded, replayed), source, created,
    instruments, packets (in all and per instrument), rejects, the replayed window [start,
    stop) if any, and whether a replay is writing it now. Operators see all; a partner those
    whose instruments are all its own; viewers none (403)."""
    if principal.role == "viewer":
        raise ForbiddenError(f"recordings are data; {principal.name!r} is a viewer")
    return {"recordings": await manager(conn).recordings(principal)}


@router.get("/replays")
async def list_replays(conn: HTTPConnection, principal: OperatorDep) -> dict[str, Any]:
    """Replays of this console run, newest first: state (running, paused, stopping,
    finished, stopped, failed), sent and total messages, speed, started, finished, error."""
    return {"replays": manager(conn).listing()}


@router.post("/replays", status_code=201)
async def start_replay(
    conn: HTTPConnection, principal: OperatorDep, body: StartBody
) -> dict[str, Any]:
    """Start a replay of ``recording`` into the new recording ``to``. 404 unknown recording,
    422 a bad name or speed or nothing to replay, 409 ``to`` exists or is being written."""
    speed = None if body.speed == "max" else float(body.speed)
    replay = await manager(conn).start(principal, body.recording, speed, body.to)
    return replay.to_json()


@router.get("/replays/{replay_id}")
async def get_replay(conn: HTTPConnection, principal: OperatorDep, replay_id: str) -> dict:
    """One replay (as in the list)."""
    return manager(conn).get(replay_id).to_json()


@router.post("/replays/{replay_id}/pause")
async def pause_replay(conn: HTTPConnection, principal: OperatorDep, replay_id: str) -> dict:
    """Pause a running replay: its timeline stands still until resumed (409 if not running)."""
    return manager(conn).act(principal, replay_id, "pause").to_json()


@router.post("/replays/{replay_id}/resume")
async def resume_replay(conn: HTTPConnection, principal: OperatorDep, replay_id: str) -> dict:
    """Resume a paused replay where it was, at its speed (409 if not paused)."""
    return manager(conn).act(principal, replay_id, "resume").to_json()


@router.post("/replays/{replay_id}/stop")
async def stop_replay(conn: HTTPConnection, principal: OperatorDep, replay_id: str) -> dict:
    """Stop a running or paused replay: what was sent is ingested and sealed into its
    recording (state stopping, then stopped); 409 if it is over already."""
    return manager(conn).act(principal, replay_id, "stop").to_json()
