"""Run the console in the current event loop (for ``ilrs-ops up``) or as a process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from ilrs_ops.console._app import create_app
from ilrs_ops.console._settings import ConsoleSettings

log = logging.getLogger(__name__)


async def serve(
    settings: ConsoleSettings,
    started: asyncio.Future[str] | None = None,
    *,
    capture_signals: bool = False,
) -> None:
    """Serve until cancelled, then shut down gracefully (lifespan included). ``started`` gets
    the console's URL once the port is open. Signals are left to the caller (``ilrs-ops up``
    cancels its tasks on Ctrl-C) unless ``capture_signals``. Uses the sans-I/O WebSocket
    implementation: uvicorn's legacy one warns with websockets >= 14."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ws="websockets-sansio",
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    if not capture_signals:
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                break  # could not start: the await below raises why (or returns)
            await asyncio.sleep(0.02)
        else:
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"http://{settings.http_host}:{port}"
            log.info("console on %s/ (API docs: %s/docs)", url, url)
            if started is not None and not started.done():
                started.set_result(url)
        await asyncio.shield(task)
    finally:
        server.should_exit = True
        if not task.done():
            await task
