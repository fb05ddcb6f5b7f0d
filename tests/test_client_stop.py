"""A stopping MQTT client stops: a cancel survives aiomqtt's disconnect failing as MqttError,
which a reconnect loop (simulator, ingest, console, uplink) would otherwise take for a
dropped connection and retry for ever (`ilrs-ops up` then hung on Ctrl-C)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import pytest

from ilrs_ops.sources import connect
from tests.conftest import MOSQUITTO


class _FailingExit(aiomqtt.Client):
    """A real client whose disconnect then fails, as aiomqtt's does when the DISCONNECT is not
    acknowledged within its timeout or the socket resets under it."""

    async def __aexit__(self, *exc: Any) -> None:
        await super().__aexit__(*exc)
        raise aiomqtt.MqttError("Operation timed out")


async def test_a_cancel_is_not_lost_to_an_mqtt_error_on_disconnect() -> None:
    host, port = MOSQUITTO
    connected = asyncio.Event()
    retries = 0

    async def reconnect_loop() -> None:
        nonlocal retries
        while retries < 2:  # bounded, so that a failing run ends rather than hangs
            try:
                async with connect(host, port, lambda v: _FailingExit(host, port), "v5"):
                    connected.set()
                    await asyncio.sleep(3600)
            except aiomqtt.MqttError:
                retries += 1
                await asyncio.sleep(0.05)

    task = asyncio.create_task(reconnect_loop())
    async with asyncio.timeout(10):
        await connected.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await task
    assert retries == 0


async def test_an_mqtt_error_while_not_stopping_still_reaches_the_caller() -> None:
    """The fix keeps a cancel only: a failing disconnect on a normal exit is still an error."""
    host, port = MOSQUITTO
    with pytest.raises(aiomqtt.MqttError, match="timed out"):
        async with connect(host, port, lambda v: _FailingExit(host, port), "v5"):
            pass
