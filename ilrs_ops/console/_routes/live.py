"""WebSocket of live updates: status changes and events, scoped like every other read.

Token: ``?token=...`` or the ``Sec-WebSocket-Protocol`` header as ``bearer, <token>`` (browsers
cannot set Authorization on a WebSocket). The first message is a snapshot of the tiles; then
``{"type": "status", ...}`` and ``{"type": "event", ...}`` as they come (and, for operators,
``{"type": "replay", "replay": {...}}`` as replays progress), and when the catalog changes (a
profile uploaded: an instrument added or changed) ``{"type": "catalog", "status": [...]}``, the
tiles afresh, as in the snapshot. Refusals accept and then close
with a code, so a browser can tell why: 4401 no/unknown token, 4403 not allowed, 4404 unknown
instrument, 4429 too many failed authentications from this address (the reason ends in
``retry-after: <s>``), 4008 the client fell behind (its queue filled) and was dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect

from ilrs_ops.console._data import Access, split_list
from ilrs_ops.console._deps import ConsoleDep, client_address
from ilrs_ops.console._errors import TooManyRequestsError
from ilrs_ops.console._state import Subscriber

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_TOO_MANY = 4429
SEND_TIMEOUT_S = 10.0
SUBPROTOCOL = "bearer"


def _token_from_protocols(header: str | None) -> str | None:
    items = [p.strip() for p in (header or "").split(",") if p.strip()]
    if SUBPROTOCOL in items:
        k = items.index(SUBPROTOCOL)
        if k + 1 < len(items):
            return items[k + 1]
    return None


@router.websocket("/api/live")
async def live(
    ws: WebSocket,
    console: ConsoleDep,
    instruments: Annotated[str | None, Query()] = None,
    token: Annotated[str | None, Query()] = None,
) -> None:
    header_token = _token_from_protocols(ws.headers.get("sec-websocket-protocol"))
    await ws.accept(subprotocol=SUBPROTOCOL if header_token else None)
    given = token or header_token
    try:
        principal = console.authenticate(given, client_address(ws)) if given else None
    except TooManyRequestsError as exc:
        reason = f"too many failed authentications; retry-after: {exc.retry_after}"
        await ws.close(CLOSE_TOO_MANY, reason)  # a close reason holds 123 bytes at most
        return
    if principal is None:
        await ws.close(CLOSE_UNAUTHORIZED, "no token or unknown token")
        return
    wanted = split_list(instruments)
    if wanted is not None:
        for iid in wanted:
            inst = console.catalog.instruments.get(iid)
            if inst is None:
                await ws.close(CLOSE_NOT_FOUND, f"unknown instrument {iid!r}")
                return
            if not principal.can_see_tile(inst.profile.partner):
                await ws.close(CLOSE_FORBIDDEN, f"{principal.name!r} may not see {iid!r}")
                return
    access = console.access(principal)
    sub = console.state.subscribe(access.accepts(set(wanted) if wanted else None))
    try:
        await _serve(ws, lambda: console.access(principal), sub, wanted)
    except WebSocketDisconnect:
        pass
    finally:
        console.state.unsubscribe(sub)


def _tiles(access: Access, wanted: list[str] | None) -> list[dict[str, Any]]:
    tiles = []
    for inst in access.catalog:
        if wanted is None or inst.id in wanted:
            tile = access.tile(inst)
            if tile is not None:
                tiles.append(tile)
    return tiles


async def _serve(
    ws: WebSocket, make_access: Callable[[], Access], sub: Subscriber, wanted: list[str] | None
) -> None:
    """Send the snapshot, then the updates; ``make_access`` gives the principal's view of the
    catalog in force: an Access holds one catalog, so a new catalog takes a new one."""
    access = make_access()
    await ws.send_json({"type": "snapshot", "status": _tiles(access, wanted)})
    gone = asyncio.create_task(_until_disconnect(ws))
    dropped = asyncio.create_task(sub.dropped.wait())
    try:
        while True:
            get = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({get, gone, dropped}, return_when=asyncio.FIRST_COMPLETED)
            if dropped in done or gone in done:
                get.cancel()
                if dropped in done and gone not in done:
                    await _close(ws, CLOSE_TOO_SLOW, "too slow: fell behind the live updates")
                return
            update = get.result()
            if update.kind == "catalog":
                access = make_access()
                message: dict[str, Any] | None = {
                    "type": "catalog",
                    "status": _tiles(access, wanted),
                }
            else:
                message = access.render(update)
            if message is None:
                continue
            try:
                await asyncio.wait_for(ws.send_json(message), SEND_TIMEOUT_S)
            except TimeoutError:
                sub.dropped.set()
    finally:
        for task in (gone, dropped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task


async def _until_disconnect(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason), SEND_TIMEOUT_S)
