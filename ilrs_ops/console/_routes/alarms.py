"""Alarms: the list, and the operators' ack, shelve and unshelve (audited, event-sourced).

Who may do what: operators everything; a partner lists and acts on its own instruments' alarms
only; a viewer may list every alarm (without values: viewers see status, not data) and may not
act. An action is written into the store as an event first (durable), then folded into the
alarm state and pushed to WebSocket clients as an ``event`` message carrying ``alarm``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from ilrs_ops.console._alarms import (
    ALARM_STATES,
    AlarmBook,
    ConflictError,
    listing,
)
from ilrs_ops.console._audit import AUDIT_KINDS, parse_detail, record
from ilrs_ops.console._auth import Principal
from ilrs_ops.console._data import NS, iso, parse_time, reading, split_list
from ilrs_ops.console._deps import ConsoleDep, PrincipalDep
from ilrs_ops.console._errors import BadRequestError, ForbiddenError, NotFoundError, responses
from ilrs_ops.console._state import Update
from ilrs_ops.profiles import Instrument

router = APIRouter(
    prefix="/api/alarms",
    tags=["alarms"],
    responses=responses(400, 401, 403, 404, 409, 413, 429, 503),
)

MAX_SHELVE_NS = 30 * 86_400 * NS
MAX_REASON = 1000


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=MAX_REASON, description="why (kept in the audit trail)")


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: str = Field(
        min_length=1, description="ISO-8601 (UTC when naive) or ns; in the future, <= 30 days"
    )
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="why it is shelved")


def book_of(conn: HTTPConnection) -> AlarmBook:
    return conn.app.state.alarms  # type: ignore[no-any-return]


@router.get("")
def list_alarms(
    conn: HTTPConnection,
    console: ConsoleDep,
    principal: PrincipalDep,
    state: Annotated[
        str | None, Query(description="comma-separated: active, acknowledged, latched, shelved")
    ] = None,
    instrument: Annotated[str | None, Query(description="comma-separated instrument ids")] = None,
) -> dict[str, Any]:
    """Alarms not cleared, newest change first. Cleared alarms (in limits and acknowledged)
    are not listed."""
    states = split_list(state)
    if states is not None and (bad := [s for s in states if s not in ALARM_STATES]):
        raise BadRequestError(f"state: unknown {bad}; use some of {list(ALARM_STATES)}", "state")
    ids = split_list(instrument)
    catalog = console.catalog
    for iid in ids or []:
        inst = catalog.instruments.get(iid)
        if inst is None:
            raise NotFoundError(f"unknown instrument {iid!r}", "instrument")
        if not principal.can_see_tile(inst.profile.partner):
            raise ForbiddenError(f"{principal.role} {principal.name!r} may not see {iid!r}")

    def partner_of(iid: str) -> str | None:
        inst = catalog.instruments.get(iid)
        return inst.profile.partner if inst is not None else None

    def visible(iid: str) -> bool:
        partner = partner_of(iid)
        return partner is not None and principal.can_see_tile(partner)

    now = time.time_ns()
    alarms = listing(book_of(conn), now, partner_of, visible, states, ids)
    if principal.role == "viewer":
        for a in alarms:
            a["value"] = a["trip_value"] = None
    return {"now_ns": now, "alarms": alarms}


def _target(console: ConsoleDep, principal: Principal, instrument: str, channel: str) -> Instrument:
    inst = console.catalog.instruments.get(instrument)
    if inst is None:
        raise NotFoundError(f"unknown instrument {instrument!r}", "instrument")
    if not principal.can_read(inst):
        raise ForbiddenError(
            f"{principal.role} {principal.name!r} may not act on alarms of {instrument!r}"
        )
    if channel not in inst.channels:
        raise NotFoundError(f"{instrument} has no channel {channel!r}", "channel")
    return inst


async def _act(
    conn: HTTPConnection,
    console: ConsoleDep,
    principal: Principal,
    inst: Instrument,
    kind: str,
    channel: str,
    detail: dict[str, Any],
) -> dict[str, Any]:
    row = await asyncio.to_thread(record, console.store, principal, inst.id, kind, channel, detail)
    book = book_of(conn)
    alarm = book.apply(inst.id, row)
    now = time.time_ns()
    alarm_json = alarm.json(now, inst.profile.partner) if alarm is not None else None
    message = {**row, "partner": inst.profile.partner, "alarm": alarm_json}
    console.state.publish(Update("event", inst.id, inst.profile.partner, message))
    return {"event": row, "alarm": alarm_json}


@router.post("/{instrument}/{channel}/ack")
async def ack(
    conn: HTTPConnection,
    console: ConsoleDep,
    principal: PrincipalDep,
    instrument: str,
    channel: str,
    body: AckBody | None = None,
) -> dict[str, Any]:
    """Acknowledge an active or latched alarm: active -> acknowledged, latched -> cleared.
    409 when there is nothing to acknowledge."""
    inst = _target(console, principal, instrument, channel)
    alarm = book_of(conn).get(inst.id, channel)
    under = alarm.underlying() if alarm is not None else None
    if under not in ("active", "latched"):
        raise ConflictError(
            f"{instrument}/{channel}: nothing to acknowledge "
            f"({under or 'no alarm'}); only active and latched alarms are acknowledged"
        )
    reason = body.reason if body is not None else ""
    return await _act(conn, console, principal, inst, "ack", channel, {"reason": reason})


@router.post("/{instrument}/{channel}/shelve")
async def shelve(
    conn: HTTPConnection,
    console: ConsoleDep,
    principal: PrincipalDep,
    instrument: str,
    channel: str,
    body: ShelveBody,
) -> dict[str, Any]:
    """Shelve a channel's alarm until a time (at most 30 days ahead): hidden from the active
    list as ``shelved``; it shows again in its underlying state when the time passes."""
    inst = _target(console, principal, instrument, channel)
    until = parse_time(body.until, "until")
    now = time.time_ns()
    if until is None:  # "" reads as "not given"; here a time is needed
        raise BadRequestError("until: give a time (ISO-8601 or ns)", "until")
    if until <= now:
        raise BadRequestError(f"until={body.until!r} is not in the future", "until")
    if until - now > MAX_SHELVE_NS:
        raise BadRequestError(f"until={body.until!r}: shelve for 30 days at most", "until")
    detail = {"reason": body.reason, "until_ns": until}
    return await _act(conn, console, principal, inst, "shelve", channel, detail)


@router.post("/{instrument}/{channel}/unshelve")
async def unshelve(
    conn: HTTPConnection,
    console: ConsoleDep,
    principal: PrincipalDep,
    instrument: str,
    channel: str,
    body: AckBody | None = None,
) -> dict[str, Any]:
    """End a shelf early. 409 when the channel is not shelved."""
    inst = _target(console, principal, instrument, channel)
    alarm = book_of(conn).get(inst.id, channel)
    now = time.time_ns()
    if alarm is None or alarm.shelved_until_ns is None or alarm.shelved_until_ns <= now:
        raise ConflictError(f"{instrument}/{channel} is not shelved")
    reason = body.reason if body is not None else ""
    return await _act(conn, console, principal, inst, "unshelve", channel, {"reason": reason})


audit_router = APIRouter(
    prefix="/api", tags=["audit"], responses=responses(400, 401, 403, 404, 429, 503)
)


@audit_router.get("/audit")
def audit(
    console: ConsoleDep,
    principal: PrincipalDep,
    instrument: Annotated[str | None, Query(description="comma-separated instrument ids")] = None,
    start: Annotated[str | None, Query(description="inclusive; default stop - 7 days")] = None,
    stop: Annotated[str | None, Query(description="exclusive; ISO-8601 or ns; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="newest this many")] = 1000,
    kind: Annotated[
        str | None, Query(description=f"comma-separated actions: {', '.join(AUDIT_KINDS)}")
    ] = None,
    who: Annotated[str | None, Query(description="comma-separated token names")] = None,
) -> dict[str, Any]:
    """Operators only: every state-changing action (ack, shelve, unshelve, profile upload)
    with who, role, what and when, oldest first, from the store. ``truncated`` says older
    actions were left out: ask again with ``stop`` at the oldest ``time_ns`` for the page
    before."""
    if not principal.is_operator:
        raise ForbiddenError(f"the audit trail is for operators; {principal.name!r} is a "
                             f"{principal.role}")  # fmt: skip
    actions = split_list(kind)
    for k in actions or []:
        if k not in AUDIT_KINDS:
            raise BadRequestError(f"unknown action {k!r}: use {', '.join(AUDIT_KINDS)}", "kind")
    names = split_list(who)
    stop_ns = parse_time(stop, "stop") or time.time_ns() + 1
    start_ns = parse_time(start, "start")
    start_ns = stop_ns - 7 * 86_400 * NS if start_ns is None else start_ns
    if start_ns >= stop_ns:
        raise BadRequestError("start must be before stop: the window is [start, stop)", "start")
    catalog = console.catalog
    ids = split_list(instrument)
    for iid in ids or []:
        if iid not in catalog.instruments:
            raise NotFoundError(f"unknown instrument {iid!r}", "instrument")
    rows: list[dict[str, Any]] = []
    for inst in catalog:
        if ids is not None and inst.id not in ids:
            continue
        with reading(f"audit of {inst.id}"):
            table = console.history.events(inst.id, start_ns, stop_ns, actions or AUDIT_KINDS)
        times = table.column("time").cast(pa.int64()).to_pylist()
        kinds = table.column("kind").to_pylist()
        channels = table.column("channel").to_pylist()
        details = table.column("detail").to_pylist()
        for k, t in enumerate(times):
            detail = parse_detail(details[k])
            if names is not None and detail.get("who") not in names:
                continue
            rows.append({
                "time_ns": t, "time": iso(t), "kind": kinds[k], "instrument": inst.id,
                "partner": inst.profile.partner, "channel": channels[k],
                "who": detail.get("who"), "role": detail.get("role"), "detail": detail,
            })  # fmt: skip
    rows.sort(key=lambda r: r["time_ns"])
    return {"start_ns": start_ns, "stop_ns": stop_ns, "truncated": len(rows) > limit,
            "actions": rows[-limit:]}  # fmt: skip
