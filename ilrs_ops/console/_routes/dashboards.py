"""Dashboards: list, read, create, replace (with the version edited: 409 when stale) and
delete named widget layouts; every change is audited (a ``dashboard`` event of each instrument
on it, before and after). Who sees and changes what: ``_dashboards``."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import HTTPConnection

from ilrs_ops import wire
from ilrs_ops.console._audit import record
from ilrs_ops.console._auth import Principal
from ilrs_ops.console._dashboards import (
    Dashboard,
    DashboardBook,
    DashboardIn,
    check_widgets,
    may_change,
    may_see,
    summary,
)
from ilrs_ops.console._deps import ConsoleDep, PrincipalDep
from ilrs_ops.console._errors import ErrorBody, NotFoundError, ValidationBody, responses
from ilrs_ops.store import Store

audit_log = logging.getLogger("ilrs_ops.console.audit")

INPUT_422: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody | ValidationBody,
        "description": "a body FastAPI refuses, or a widget's unknown instrument or channel",
    }
}

router = APIRouter(
    prefix="/api",
    tags=["dashboards"],
    responses=responses(400, 401, 403, 404, 409, 429, 503) | INPUT_422,
)


def get_book(conn: HTTPConnection) -> DashboardBook:
    return conn.app.state.dashboards  # type: ignore[no-any-return]


BookDep = Annotated[DashboardBook, Depends(get_book)]


def _audit(
    store: Store, principal: Principal, action: str, old: Dashboard | None, new: Dashboard | None
) -> None:
    """One ``dashboard`` event per instrument the dashboard shows (before or after), so each
    instrument's trail says which views were made of it; always the audit log line."""
    board = new or old
    assert board is not None
    insts = sorted((old.instruments() if old else set()) | (new.instruments() if new else set()))
    detail = {"action": action, "dashboard": board.id, "name": board.name,
              "version": board.version, "widgets": len(board.widgets)}  # fmt: skip
    for iid in insts:
        record(store, principal, iid, wire.DASHBOARD, None, detail)
    if not insts:  # a dashboard of alarm lists only: the audit log line is its record
        audit_log.info("audit: %s (%s) dashboard: %s", principal.name, principal.role, detail)


@router.get("/dashboards")
def list_dashboards(console: ConsoleDep, principal: PrincipalDep, book: BookDep) -> dict[str, Any]:
    """The dashboards the caller may see, by name (without their widgets)."""
    catalog = console.catalog
    boards = [summary(b) for b in book.all() if may_see(principal, b, catalog)]
    return {"dashboards": boards}


@router.get("/dashboards/{board_id}")
def get_dashboard(
    console: ConsoleDep, principal: PrincipalDep, book: BookDep, board_id: str
) -> Dashboard:
    """One dashboard with its widgets (404 when the caller may not see it: not told apart)."""
    board = book.get(board_id)
    if not may_see(principal, board, console.catalog):
        raise NotFoundError(f"no dashboard {board_id!r}", "id")
    return board


@router.post("/dashboards", status_code=201)
async def create_dashboard(
    console: ConsoleDep, principal: PrincipalDep, book: BookDep, body: DashboardIn
) -> Dashboard:
    """A new dashboard owned by the caller (operators and partners; a partner's widgets name
    its own instruments only)."""
    may_change(principal, None)
    check_widgets(body.widgets, console.catalog, principal)
    board = await asyncio.to_thread(book.create, body, principal)
    await asyncio.to_thread(_audit, console.store, principal, "create", None, board)
    return board


@router.put("/dashboards/{board_id}")
async def replace_dashboard(
    console: ConsoleDep, principal: PrincipalDep, book: BookDep, board_id: str, body: DashboardIn
) -> Dashboard:
    """Replace name, visibility and widgets; ``version`` must be the one read (else 409)."""
    may_change(principal, None)
    check_widgets(body.widgets, console.catalog, principal)
    old, new = await asyncio.to_thread(book.replace, board_id, body, principal, console.catalog)
    await asyncio.to_thread(_audit, console.store, principal, "update", old, new)
    return new


@router.delete("/dashboards/{board_id}")
async def delete_dashboard(
    console: ConsoleDep,
    principal: PrincipalDep,
    book: BookDep,
    board_id: str,
    version: Annotated[int | None, Query(description="the version read (409 when stale)")] = None,
) -> dict[str, Any]:
    """Delete a dashboard (its owner, or an operator)."""
    may_change(principal, None)
    old = await asyncio.to_thread(book.delete, board_id, version, principal, console.catalog)
    await asyncio.to_thread(_audit, console.store, principal, "delete", old, None)
    return {"deleted": old.id, "version": old.version}
