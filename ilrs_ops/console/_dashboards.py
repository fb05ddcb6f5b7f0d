"""Dashboards: named layouts of parameter widgets (value readout, plot, alarm list) on a
12-column grid, kept as one JSON file each under ``{data}/dashboards/`` (atomic writes), and
who may see or change them. Each save bumps ``version``; a save against an older version is a
409, so two operators editing the same dashboard cannot silently undo each other.

Scoping follows the console's roles: operators see and change every dashboard; partners see a
dashboard only when they may read every instrument on it, and make or change only their own of
their own instruments; viewers see every shared dashboard (their widgets show status only, as
the tiles do) and change none. ``private`` dashboards are seen by their owner (and operators).

Errors (AccessError, see ``_errors``): ``DashboardConflictError`` 409 (a save against a stale
version), ``DashboardInputError`` 422 (a widget's unknown instrument or channel, no version).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ilrs_ops.console._auth import Principal
from ilrs_ops.console._errors import AccessError, ForbiddenError, NotFoundError
from ilrs_ops.errors import InputError
from ilrs_ops.files import fsync_dir, write_atomic
from ilrs_ops.profiles import Catalog

log = logging.getLogger(__name__)

GRID_COLUMNS = 12
MAX_ROWS = 100
MAX_WIDGETS = 48
_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
LOCK_FILE = ".lock"  # a dot file: not a dashboard

WidgetKind = Literal["value", "plot", "alarms"]
Visibility = Literal["shared", "private"]


class DashboardConflictError(AccessError):
    """409: the dashboard changed since the version the client edited."""

    status = 409


class DashboardInputError(AccessError):
    """422: a widget names an instrument or channel that does not exist (named in
    ``parameter``, with the known ones in the message)."""

    status = 422


class Widget(BaseModel):
    """One widget: what it shows and where on the grid (x, y: top-left cell; w, h: cells)."""

    model_config = ConfigDict(extra="forbid")

    kind: WidgetKind
    instrument: str | None = Field(None, max_length=80, description="value/plot: required")
    channel: str | None = Field(None, max_length=80, description="value/plot: required")
    title: str = Field("", max_length=80)
    x: int = Field(0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(0, ge=0, lt=MAX_ROWS)
    w: int = Field(3, ge=1, le=GRID_COLUMNS)
    h: int = Field(2, ge=1, le=12)

    @model_validator(mode="after")
    def _fits(self) -> Widget:
        if self.x + self.w > GRID_COLUMNS:
            raise InputError(f"x + w = {self.x + self.w}: the grid is {GRID_COLUMNS} columns wide")
        if self.kind in ("value", "plot") and not (self.instrument and self.channel):
            raise InputError(f"a {self.kind} widget names an instrument and a channel")
        if self.kind == "alarms" and self.channel:
            raise InputError("an alarms widget takes no channel (optionally an instrument)")
        return self


class DashboardIn(BaseModel):
    """What a client sends to create or replace a dashboard (PUT: with ``version``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    visibility: Visibility = "shared"
    widgets: list[Widget] = Field(default_factory=list, max_length=MAX_WIDGETS)
    version: int | None = Field(None, description="PUT: the version edited (409 when stale)")


class Dashboard(BaseModel):
    """A stored dashboard."""

    id: str
    name: str
    owner: str
    owner_role: str
    owner_partner: str | None
    visibility: Visibility
    version: int
    created_ns: int
    updated_ns: int
    updated_by: str
    widgets: list[Widget]

    def instruments(self) -> set[str]:
        return {w.instrument for w in self.widgets if w.instrument}


def check_widgets(widgets: list[Widget], catalog: Catalog, principal: Principal) -> None:
    """Every instrument and channel exists (DashboardInputError naming the widget's field and
    the known names) and the principal may read it (ForbiddenError): a partner makes
    dashboards only of its own instruments; viewers read no values, so make none."""
    known = sorted(catalog.instruments)
    for k, w in enumerate(widgets):
        if w.instrument is None:
            continue
        inst = catalog.instruments.get(w.instrument)
        if inst is None:
            raise DashboardInputError(
                f"widgets[{k}].instrument: unknown instrument {w.instrument!r}; "
                f"the instruments: {known}",
                f"widgets.{k}.instrument",
            )
        if not principal.can_read(inst):
            raise ForbiddenError(
                f"widgets[{k}].instrument: {principal.role} {principal.name!r} may not read "
                f"{w.instrument!r}"
            )
        if w.channel is not None and w.channel not in inst.channels:
            raise DashboardInputError(
                f"widgets[{k}].channel: unknown channel {w.channel!r} of {inst.id}; "
                f"its channels: {list(inst.channels)}",
                f"widgets.{k}.channel",
            )


def may_see(principal: Principal, board: Dashboard, catalog: Catalog) -> bool:
    """Operators see all; others a shared (or their own) dashboard, partners only when they
    may read every instrument on it (an instrument gone from the catalog counts as unread)."""
    if principal.is_operator:
        return True
    if board.visibility == "private" and board.owner != principal.name:
        return False
    if principal.role == "viewer":
        return True
    insts = [catalog.instruments.get(i) for i in board.instruments()]
    return all(i is not None and principal.can_read(i) for i in insts)


def may_change(principal: Principal, board: Dashboard | None) -> None:
    """Operators change any dashboard; partners make theirs and change their own; viewers
    none (ForbiddenError)."""
    if principal.is_operator:
        return
    if principal.role == "viewer":
        raise ForbiddenError(f"viewers see dashboards only; {principal.name!r} is a viewer")
    if board is not None and board.owner != principal.name:
        raise ForbiddenError(
            f"dashboard {board.id!r} is {board.owner!r}'s; a partner changes its own only"
        )


class DashboardBook:
    """The dashboards of one console, one JSON file each in ``folder``. The version check and
    the write happen under a lock: a thread lock, and a lock file (``flock``) for other
    console processes on the same data folder; files are replaced atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.folder / LOCK_FILE, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _path(self, board_id: str) -> Path:
        if not _ID.match(board_id):
            raise NotFoundError(f"no dashboard {board_id!r}", "id")
        return self.folder / f"{board_id}.json"

    def all(self) -> list[Dashboard]:
        """Every stored dashboard, by name (a file that does not parse is skipped, logged)."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                out.append(Dashboard.model_validate_json(path.read_bytes()))
            except (OSError, ValueError) as exc:  # said, not dropped without a word
                log.warning("dashboard file %s is skipped: it does not read (%s)", path, exc)
        return sorted(out, key=lambda b: (b.name.lower(), b.id))

    def get(self, board_id: str) -> Dashboard:
        path = self._path(board_id)
        try:
            return Dashboard.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"no dashboard {board_id!r}", "id") from None

    def _write(self, board: Dashboard) -> None:
        text = json.dumps(board.model_dump(mode="json"), indent=1, sort_keys=True)
        write_atomic(self._path(board.id), lambda f: f.write(text.encode()), mode=0o644)

    def create(self, body: DashboardIn, principal: Principal) -> Dashboard:
        now = time.time_ns()
        with self._locked():
            board_id = secrets.token_urlsafe(6).replace("_", "x").replace("-", "y")
            board = Dashboard(
                id=board_id, name=body.name, owner=principal.name, owner_role=principal.role,
                owner_partner=principal.partner, visibility=body.visibility, version=1,
                created_ns=now, updated_ns=now, updated_by=principal.name, widgets=body.widgets,
            )  # fmt: skip
            self._write(board)
        return board

    def replace(
        self, board_id: str, body: DashboardIn, principal: Principal, catalog: Catalog
    ) -> tuple[Dashboard, Dashboard]:
        """The dashboard before and after; 409 when ``body.version`` is not the stored one."""
        if body.version is None:
            raise DashboardInputError(
                "version: send the version you edited (GET gives it)", "version"
            )
        with self._locked():
            old = self._to_change(board_id, body.version, principal, catalog)
            new = old.model_copy(
                update={"name": body.name, "visibility": body.visibility,
                        "widgets": body.widgets, "version": old.version + 1,
                        "updated_ns": time.time_ns(), "updated_by": principal.name}
            )  # fmt: skip
            self._write(new)
        return old, new

    def delete(
        self, board_id: str, version: int | None, principal: Principal, catalog: Catalog
    ) -> Dashboard:
        with self._locked():
            old = self._to_change(board_id, version, principal, catalog)
            self._path(board_id).unlink()
            fsync_dir(self.folder)
        return old

    def _to_change(
        self, board_id: str, version: int | None, principal: Principal, catalog: Catalog
    ) -> Dashboard:
        """The stored dashboard that ``principal`` may change, at ``version`` (None: any);
        404 when it may not see it (unseen is unknown, not 403), 409 on another version."""
        old = self.get(board_id)
        if not may_see(principal, old, catalog):
            raise NotFoundError(f"no dashboard {board_id!r}", "id")
        may_change(principal, old)
        if version is not None and version != old.version:
            raise DashboardConflictError(
                f"dashboard {board_id!r} is at version {old.version}, you edited {version}: "
                "reload it and make your change again",
                "version",
            )
        return old


def summary(board: Dashboard) -> dict[str, Any]:
    """A list entry: no widgets, their count and instruments."""
    doc = board.model_dump(mode="json", exclude={"widgets"})
    doc["widgets"] = len(board.widgets)
    doc["instruments"] = sorted(board.instruments())
    return doc
