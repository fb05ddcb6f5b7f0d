"""The app factory: ``create_app(settings)`` builds a FastAPI app; nothing is global at import."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ilrs_ops.console._alarms import ALARM_DAYS, AlarmBook, on_event, rebuild
from ilrs_ops.console._auth import TokenEntry, Tokens, hash_token
from ilrs_ops.console._deps import Console
from ilrs_ops.console._errors import AccessError
from ilrs_ops.console._live import follow
from ilrs_ops.console._routes import ROUTERS
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState
from ilrs_ops.errors import StoreError
from ilrs_ops.profiles import load_catalog
from ilrs_ops.store import Store

log = logging.getLogger(__name__)


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console app. Loads profiles and tokens now (ProfileError / ConsoleError when they
    are wrong, before any server starts); follows the broker while the app runs.

    In dev mode without a tokens file an operator token is made: ``app.state.dev_token``,
    logged once at start."""
    catalog = load_catalog([settings.profiles])
    dev_token: str | None = None
    if settings.tokens is not None:
        tokens = Tokens.load(settings.tokens)
    else:
        dev_token = secrets.token_urlsafe(32)
        tokens = Tokens([TokenEntry(name="dev", role="operator", sha256=hash_token(dev_token))])
    state = StationState(settings.root, settings.ws_queue, settings.events_kept)
    store = Store(settings.data, catalog)
    console = Console(settings, catalog, store, state, tokens)
    alarms = AlarmBook()
    state.listeners.append(functools.partial(on_event, alarms, console))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dev_token is not None:
            log.warning("dev mode: operator token (shown once): %s", dev_token)
        try:
            n = await asyncio.to_thread(
                rebuild, alarms, store, console.catalog, ALARM_DAYS, time.time_ns()
            )
            log.info("alarm state rebuilt from %d events of the store", n)
        except StoreError as exc:
            log.error("alarm state not rebuilt, the store cannot be read: %s", exc)
        task = asyncio.create_task(follow(state, settings.broker_host, settings.broker_port))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            store.close()

    app = FastAPI(
        title="ilrs-ops console",
        description="Operations console of the ILRS ground segment. Windows are [start, stop).",
        lifespan=lifespan,
    )
    app.state.console = console
    app.state.dev_token = dev_token
    app.state.alarms = alarms
    app.add_exception_handler(AccessError, _access_error)  # type: ignore[arg-type]
    for router in ROUTERS:
        app.include_router(router)
    return app


async def _access_error(request: Request, exc: AccessError) -> JSONResponse:
    body: dict[str, object] = {"detail": str(exc)}
    if exc.parameter is not None:
        body["parameter"] = exc.parameter
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(body, status_code=exc.status, headers=headers)
