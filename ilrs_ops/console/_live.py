"""The console's MQTT subscriber: ingest status, events and metrics into the StationState.

A plain client (clean session, no manual ack): the status topics are retained, so a fresh
connection gets the current picture at once; events missed while disconnected are in the store.
"""

from __future__ import annotations

import logging

import aiomqtt

from ilrs_ops.backoff import Backoff
from ilrs_ops.console._state import StationState
from ilrs_ops.sources import open_client

log = logging.getLogger(__name__)


async def follow(
    state: StationState,
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Feed ``state`` from the broker until cancelled, reconnecting with backoff."""
    backoff = Backoff()
    while True:
        try:
            async with open_client(host, port, username=username, password=password) as client:
                for topic in state.topics:
                    await client.subscribe(topic, qos=1)
                state.connected = True
                backoff.reset()
                log.info("console following %s/... on %s:%d", state.root, host, port)
                async for message in client.messages:
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray):
                        payload = str(payload or "").encode()
                    state.apply(str(message.topic), bytes(payload))
        except aiomqtt.MqttError as exc:
            # Said once per outage (when it was connected, or at the first try), not per retry.
            said = state.connected or backoff.attempt == 0
            state.connected = False
            await backoff.wait(log if said else None, f"broker {host}:{port}: {exc}")
        finally:
            state.connected = False
