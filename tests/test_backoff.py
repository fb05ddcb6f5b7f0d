"""Reconnect backoff: growing delays up to a ceiling, back to quick after a success."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from ilrs_ops import backoff
from ilrs_ops.backoff import STEPS_S, Backoff


async def test_delays_grow_cap_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(backoff.asyncio, "sleep", fake_sleep)
    b = Backoff()
    log = logging.getLogger("test")
    for _ in range(len(STEPS_S) + 2):
        await b.wait(log, "down")
    b.reset()
    await b.wait(log, "down again")
    assert slept == [*STEPS_S, STEPS_S[-1], STEPS_S[-1], STEPS_S[0]]


async def test_silent_wait_logs_nothing_and_counts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def fake_sleep(s: float) -> None:
        pass

    monkeypatch.setattr(backoff.asyncio, "sleep", fake_sleep)
    b = Backoff()
    with caplog.at_level(logging.DEBUG):
        await b.wait()
        await b.wait()
    assert b.attempt == 2 and caplog.records == []


async def test_a_task_being_cancelled_does_not_wait_to_retry() -> None:
    """A cancel a library swallowed (aiomqtt's disconnect can raise MqttError over it) must
    still stop the retry loop: Backoff.wait raises CancelledError in a cancelling task."""
    retried: list[int] = []

    async def client_loop() -> None:
        b = Backoff()
        while True:
            with contextlib.suppress(asyncio.CancelledError):  # as a library that eats it
                await asyncio.sleep(3600)
            retried.append(b.attempt)
            await b.wait()

    task = asyncio.create_task(client_loop())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert retried == [0]
