"""The uplink: the commanding service's own MQTT client, the only one allowed to publish on
``{root}/tc/#`` (the broker's ACLs say so). Reconnects with backoff; a publish while the broker
is away fails at once with CommandLinkError, so the command is marked failed, never left hanging.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from ilrs_ops.backoff import Backoff
from ilrs_ops.errors import IlrsError
from ilrs_ops.sources import open_client

log = logging.getLogger(__name__)

#: Seconds a QoS 1 publish may wait for the broker's PUBACK.
PUBLISH_TIMEOUT_S = 10.0


class CommandLinkError(IlrsError):
    """The broker did not take a telecommand (not connected, or no PUBACK in time)."""


class Uplink:
    """Publishes telecommands (QoS 1, not retained) while ``run`` keeps the connection."""

    def __init__(
        self, host: str, port: int, username: str | None = None, password: str | None = None
    ) -> None:
        self.host, self.port = host, port
        self._login = {"username": username, "password": password}
        self._client: aiomqtt.Client | None = None
        self.published = 0

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def run(self) -> None:
        """Stay connected until cancelled."""
        backoff = Backoff()
        while True:
            try:
                async with open_client(self.host, self.port, **self._login) as client:
                    self._client = client
                    backoff.reset()
                    log.info("uplink connected to %s:%d", self.host, self.port)
                    async for _ in client.messages:  # subscribed to nothing: waits for a drop
                        pass
            except aiomqtt.MqttError as exc:
                self._client = None
                await backoff.wait(log, f"uplink {self.host}:{self.port}: {exc}")
            finally:
                self._client = None

    async def publish(self, topic: str, packet: bytes) -> None:
        client = self._client
        if client is None:
            raise CommandLinkError(f"not connected to the broker {self.host}:{self.port}")
        try:
            await asyncio.wait_for(client.publish(topic, packet, qos=1), PUBLISH_TIMEOUT_S)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise CommandLinkError(f"the broker did not take it: {exc or 'timed out'}") from exc
        self.published += 1
