"""The app factory: ``create_app(settings)`` builds a FastAPI app; nothing is global at import."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import watchfiles
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ilrs_ops.commanding import Commander, RefusedError, Uplink
from ilrs_ops.console._alarms import ALARM_DAYS, AlarmBook, on_event, rebuild
from ilrs_ops.console._auth import (
    SERVER_LOGGERS,
    FailedLogins,
    RedactTokens,
    TokenEntry,
    Tokens,
    hash_token,
)
from ilrs_ops.console._dashboards import DashboardBook
from ilrs_ops.console._deps import Console
from ilrs_ops.console._errors import AccessError, TooManyRequestsError
from ilrs_ops.console._limits import BodyLimit
from ilrs_ops.console._live import follow
from ilrs_ops.console._replays import ReplayManager
from ilrs_ops.console._routes import ROUTERS
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState, Update
from ilrs_ops.errors import ProfileError, StoreError
from ilrs_ops.history import History
from ilrs_ops.profiles import CatalogOwner, load_catalog
from ilrs_ops.store import Store

log = logging.getLogger(__name__)


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console app. Loads profiles and tokens now (ProfileError / ConsoleError when they
    are wrong, before any server starts); follows the broker while the app runs.

    In dev mode without a tokens file an operator token is made: ``app.state.dev_token``,
    logged once at start. Anonymous callers get ``/healthz``, the page (login box), the API docs
    ``/docs`` (Swagger UI, vendored: no CDN) and ``/openapi.json`` (the API's description,
    no data), nothing else: the docs' Authorize button takes a bearer token for their calls.
    Refusals (AccessError) get their status; any other exception is a bug: a logged 500
    ``internal error``."""
    catalogs = CatalogOwner(load_catalog([settings.profiles]))
    dev_token: str | None = None
    if settings.tokens is not None:
        tokens = Tokens.load(settings.tokens, dev=settings.dev)
    else:
        dev_token = secrets.token_urlsafe(32)
        tokens = Tokens([TokenEntry(name="dev", role="operator", sha256=hash_token(dev_token))])
    state = StationState(settings.root, settings.ws_queue, settings.events_kept)
    store = Store(settings.data, settings.archive)
    history = History(store, catalogs)
    logins = FailedLogins(settings.auth_failures, settings.auth_window_s)
    console = Console(settings, catalogs, store, history, state, tokens, logins)
    alarms = AlarmBook()
    state.listeners.append(functools.partial(on_event, alarms, console))
    replays = ReplayManager(settings, catalogs, state)
    commander = Commander(
        store,
        catalogs,
        state.status.get,
        root=settings.root,  # the live root only: replays never get a command
        notify=lambda rec: state.publish(
            Update("command", rec.instrument, rec.partner, rec.json())
        ),
    )
    state.listeners.append(
        lambda u: commander.on_status(u.instrument) if u.kind == "status" else None
    )
    uplink = Uplink(settings.broker_host, settings.broker_port, **settings.commander_login)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact = RedactTokens()
        for name in SERVER_LOGGERS:  # the server logs paths with their query: ?token=
            logging.getLogger(name).addFilter(redact)
        if dev_token is not None:
            log.warning("dev mode: operator token (shown once): %s", dev_token)
        loop = asyncio.get_running_loop()

        def catalog_changed(_new: object) -> None:  # called in the thread that replaced it
            loop.call_soon_threadsafe(state.publish, Update("catalog", "", "", {}))

        stop_following_catalog = catalogs.subscribe(catalog_changed)
        try:
            n = await asyncio.to_thread(
                rebuild, alarms, history, console.catalog, ALARM_DAYS, time.time_ns()
            )
            log.info("alarm state rebuilt from %d events of the store", n)
        except StoreError as exc:
            log.error("alarm state not rebuilt, the store cannot be read: %s", exc)
        try:
            n = await asyncio.to_thread(commander.rebuild)
            log.info("command history rebuilt from %d stages of the store", n)
        except StoreError as exc:
            log.error("command history not rebuilt, the store cannot be read: %s", exc)
        commander.start(uplink.publish)
        closing = threading.Event()
        warming = asyncio.create_task(warm(history, closing))
        tasks = [
            asyncio.create_task(
                follow(state, settings.broker_host, settings.broker_port, **settings.broker_login)
            ),
            asyncio.create_task(uplink.run()),
        ]
        if settings.tokens is not None:
            tasks.append(asyncio.create_task(watch_tokens(console, settings.tokens)))
        if settings.profiles.is_dir():
            tasks.append(asyncio.create_task(watch_profiles(catalogs, settings.profiles)))
        try:
            yield
        finally:
            closing.set()
            stop_following_catalog()
            await replays.close()  # stopped replays seal what they took
            await commander.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await warming  # its thread reads the store: done, or stopped after one instrument
            store.close()
            for name in SERVER_LOGGERS:
                logging.getLogger(name).removeFilter(redact)

    app = FastAPI(
        title="ilrs-ops console",
        description="Operations console of the ILRS ground segment. Windows are [start, stop).",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = console
    app.state.dev_token = dev_token
    app.state.alarms = alarms
    app.state.replays = replays
    app.state.commander = commander
    app.state.dashboards = DashboardBook(settings.data / "dashboards")
    app.add_exception_handler(AccessError, _access_error)  # type: ignore[arg-type]
    app.add_exception_handler(RefusedError, _access_error)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit)
    app.add_middleware(InternalErrors)  # outermost of ours: it sees what no handler took
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    return app


async def warm(history: History, closing: threading.Event) -> None:
    """Warm the telemetry reads in the background once the console serves (History.warm). Not
    cancelled at shutdown but told to stop (``closing``): its thread would go on reading."""
    t0 = time.perf_counter()
    n = await asyncio.to_thread(history.warm, closing.is_set)
    log.info("telemetry reads warmed on %d instruments in %.2f s", n, time.perf_counter() - t0)


async def watch_tokens(console: Console, path: Path) -> None:
    """Reload the tokens file whenever it changes (``ilrs-ops token`` adds one to a running
    console). The folder is watched, not the file: the file is replaced by a rename."""
    path = path.absolute()

    def ours(_change: watchfiles.Change, changed: str) -> bool:
        return Path(changed).name == path.name

    changes = watchfiles.awatch(
        path.parent, watch_filter=ours, debounce=200, step=50, recursive=False
    )
    async for _ in changes:
        await asyncio.to_thread(console.reload_tokens)


async def watch_profiles(catalogs: CatalogOwner, folder: Path) -> None:
    """Load the profiles again whenever a file in ``folder`` changes, as ingest does, so a
    profile dropped into the folder (not uploaded) reaches the console and the open pages
    too; a folder that does not load keeps the catalog in force, with its errors logged."""
    async for _ in watchfiles.awatch(folder, debounce=500):
        try:
            catalog = await asyncio.to_thread(load_catalog, [folder])
        except ProfileError as exc:
            for problem in exc.problems:
                log.error("profile refused, the version in force stays: %s", problem)
            continue
        current = catalogs.current
        if {i.id: i.profile for i in catalog} != {i.id: i.profile for i in current}:
            catalogs.replace(catalog)  # an upload has put this one in force already
            log.info("profiles reloaded from %s: %d instruments", folder, len(catalog))


async def _access_error(request: Request, exc: AccessError | RefusedError) -> JSONResponse:
    body: dict[str, object] = {"detail": str(exc)}
    if exc.parameter is not None:
        body["parameter"] = exc.parameter
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, status_code=exc.status, headers=headers)


class InternalErrors:
    """ASGI middleware: an exception no handler took is a bug, answered with a 500
    ``{"detail": "internal error"}`` (nothing of the inside told) and logged once with its
    traceback. Unlike an ``Exception`` handler it does not raise again, so the server neither
    logs it twice nor drops the keep-alive connection. Once a response has started (a streamed
    export) no answer can be given: the exception goes on, and the server logs it and cuts the
    connection (the client must not take a cut-off file for a whole one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:
                raise
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            response = JSONResponse({"detail": "internal error"}, status_code=500)
            await response(scope, receive, send)
