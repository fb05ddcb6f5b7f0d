"""Reconnect backoff shared by every MQTT client of ilrs-ops: quick first retries, then 10 s."""

from __future__ import annotations

import asyncio
import logging

__all__ = ["STEPS_S", "Backoff"]

STEPS_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Backoff:
    """``await backoff.wait(log, what)`` after a failure; ``reset()`` after a success.
    ``attempt`` counts the failures since. Without a logger the wait is silent, for callers
    that log an episode once rather than every retry."""

    def __init__(self) -> None:
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    async def wait(self, log: logging.Logger | None = None, what: str = "") -> None:
        """Sleep the next delay. In a task being cancelled, raise CancelledError instead: a
        library that turns a cancel into its own error (aiomqtt's disconnect can time out as
        MqttError) must not make a stopping client retry for ever."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        delay = STEPS_S[min(self.attempt, len(STEPS_S) - 1)]
        self.attempt += 1
        if log is not None:
            log.warning("%s; retry in %.1fs", what, delay)
        await asyncio.sleep(delay)
