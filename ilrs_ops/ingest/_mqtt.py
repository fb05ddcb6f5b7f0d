"""The MQTT side of ingest, and the one place that reaches inside aiomqtt.

aiomqtt (2.5) has no public manual acknowledgement, and ingest must hold each PUBACK back until
the message is durable in the WAL. The underlying paho client has one: ``manual_ack_set`` and
``ack``. Both are used only here; tests/test_ingest_mqtt.py fails if aiomqtt changes under us.
"""

from __future__ import annotations

import socket
from typing import Literal

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

#: Unacknowledged QoS 1 messages the broker may send us (MQTT 5 Receive Maximum): the window
#: for group commit, and the bound on messages held in memory.
RECEIVE_MAXIMUM = 5000
#: How long the broker keeps our session (and messages for it) while we are away: a week.
SESSION_EXPIRY_S = 7 * 24 * 3600

Protocol = Literal["v5", "v311"]


def make_client(
    host: str,
    port: int,
    *,
    client_id: str,
    protocol: Protocol = "v5",
    receive_maximum: int = RECEIVE_MAXIMUM,
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
        client = aiomqtt.Client(
            host,
            port,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            socket_options=nodelay,
        )
    else:
        client = aiomqtt.Client(
            host,
            port,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            socket_options=nodelay,
        )
    client._client.manual_ack_set(True)  # private: see the module docstring
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of a QoS 1 message: the broker may now forget it."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)  # private: see the module docstring
