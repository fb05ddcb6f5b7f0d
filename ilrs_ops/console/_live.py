"""The console's MQTT subscriber: ingest status, events and metrics into the StationState.

A plain client (clean session, no manual ack): the status topics are retained, so a fresh
connection gets the current picture at once; events missed while disconnected are in the store.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from ilrs_ops.console._state import StationState
from ilrs_ops.sources import open_client

log = logging.getLogger(__name__)

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


async def follow(
    state: StationState,
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Feed ``state`` from the broker until cancelled, reconnecting with backoff."""
    failures = 0
    while True:
        try:
            async with open_client(host, port, username=username, password=password) as client:
                for topic in state.topics:
                    await client.subscribe(topic, qos=1)
                state.connected = True
                failures = 0
                log.info("console following %s/... on %s:%d", state.root, host, port)
                async for message in client.messages:
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray):
                        payload = str(payload or "").encode()
                    state.apply(str(message.topic), bytes(payload))
        except aiomqtt.MqttError as exc:
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            if state.connected or failures == 1:
                log.warning("broker %s:%d: %s; retrying in %.1f s", host, port, exc, delay)
            state.connected = False
            await asyncio.sleep(delay)
        finally:
            state.connected = False
