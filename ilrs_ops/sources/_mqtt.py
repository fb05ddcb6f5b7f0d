"""The live broker as a source: the MQTT client of ingest, and the one place that reaches
inside aiomqtt.

aiomqtt (2.5) has no public manual acknowledgement, and ingest must hold each PUBACK back until
the message is durable in the WAL. The underlying paho client has one: ``manual_ack_set`` and
``ack``. Both are used only here; tests/test_ingest_mqtt.py fails if aiomqtt changes under us.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, Literal

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ilrs_ops.errors import InputError

#: Unacknowledged QoS 1 messages the broker may send us (MQTT 5 Receive Maximum): the window
#: for group commit, and the bound on messages held in memory.
RECEIVE_MAXIMUM = 5000
#: How long the broker keeps our session (and messages for it) while we are away: a week.
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Messages held (received, not yet acknowledged) at which ingest stops reading the socket, and
#: the level at which it reads again. Above the window: a broker that keeps to the Receive
#: Maximum never gets us there; Mosquitto 2.0.11 does not once acknowledgements flow (tested).
HOLD_HIGH = 2 * RECEIVE_MAXIMUM
HOLD_LOW = RECEIVE_MAXIMUM

Protocol = Literal["v5", "v311"]

log = logging.getLogger(__name__)


def make_client(
    host: str,
    port: int,
    *,
    client_id: str,
    protocol: Protocol = "v5",
    receive_maximum: int = RECEIVE_MAXIMUM,
    username: str | None = None,
    password: str | None = None,
) -> aiomqtt.Client:
    """A client with a persistent session whose QoS 1 messages we acknowledge ourselves.

    MQTT 5 (Mosquitto, EMQX, HiveMQ) lets us ask for a large in-flight window; MQTT 3.1.1 (the
    embedded amqtt broker) leaves it to the broker (Mosquitto's default is 20).
    """
    # Small messages go out at once: with Nagle on, an event publish waits behind our own
    # PUBACKs for the peer's delayed ACK (~30 ms measured by bench/bench_console.py).
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    if protocol == "v5":
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = receive_maximum
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        session: dict[str, Any] = {
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": False,
            "properties": props,
        }
    else:
        session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
    client = aiomqtt.Client(
        host,
        port,
        identifier=client_id,
        username=username,
        password=password,
        socket_options=nodelay,
        **session,
    )
    client._client.manual_ack_set(True)  # private: see the module docstring
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of a QoS 1 message: the broker may now forget it."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)  # private: see the module docstring


class ReadGate:
    """Client-side flow control for a broker that sends past the window: ``update(held)`` stops
    reading the client's socket at ``high`` held messages and reads again at ``low``.

    While paused, what the broker sends waits in the kernel's buffers and then at the broker,
    which is where a backlog belongs; our PUBACKs and PINGREQs still go out. A pause longer
    than the keepalive ends the connection (no PINGRESP is read); the broker then resends what
    was not acknowledged, and the processing drops the copies. The pause takes the socket's
    reader off the event loop and puts the same one back (asyncio's selector loop, as aiomqtt
    registers it); where that is not possible the gate logs it once and stays open.
    """

    def __init__(
        self, client: aiomqtt.Client, *, high: int = HOLD_HIGH, low: int = HOLD_LOW
    ) -> None:
        if not 0 <= low < high:
            raise InputError(f"need 0 <= low < high, not low={low}, high={high}")
        self.client, self.high, self.low = client, high, low
        self.paused = False
        self.pauses = 0
        self._fd = -1
        self._reader: tuple[Callable[..., object], tuple[object, ...]] | None = None
        self._broken = False

    def update(self, held: int) -> None:
        if not self.paused and held >= self.high:
            self._pause()
        elif self.paused and held <= self.low:
            self._resume()

    def _pause(self) -> None:
        if self._broken:
            return
        sock = self.client._client.socket()  # private: see the module docstring
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        try:
            reader = loop._selector.get_key(fd).data[0]  # type: ignore[attr-defined]
        except (AttributeError, KeyError, TypeError, IndexError) as exc:
            self._broken = True
            log.warning("ingest cannot pause reading the broker (%r): held messages may grow", exc)
            return
        if reader is None:
            return
        # Taken before remove_reader, which cancels the handle (and clears its callback).
        self._fd, self._reader = fd, (reader._callback, reader._args or ())
        loop.remove_reader(fd)
        self.paused = True
        self.pauses += 1

    def _resume(self) -> None:
        self.paused = False
        reader, self._reader = self._reader, None
        sock = self.client._client.socket()
        if reader is None or sock is None or sock.fileno() != self._fd:
            return  # that connection is gone, and its reader with it
        callback, args = reader
        asyncio.get_running_loop().add_reader(self._fd, callback, *args)
