"""The live broker as a source: the MQTT client of ingest, and the one place that reaches
inside aiomqtt.

aiomqtt (2.5) has no public manual acknowledgement, and ingest must hold each PUBACK back until
the message is durable in the WAL. The underlying paho client has one: ``manual_ack_set`` and
``ack``. Both are used only here; tests/test_ingest_mqtt.py fails if aiomqtt changes under us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
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

#: What a client speaks: ``auto`` tries MQTT 5 and falls back to 3.1.1 when the broker refuses
#: it (the embedded amqtt broker does); ``v5`` or ``v311`` insist.
Protocol = Literal["auto", "v5", "v311"]
Version = Literal["v5", "v311"]
PROTOCOLS: tuple[str, ...] = ("auto", "v5", "v311")
_VERSIONS = {"v5": aiomqtt.ProtocolVersion.V5, "v311": aiomqtt.ProtocolVersion.V311}
#: MQTT 5's CONNACK reason "Unsupported Protocol Version" (0x84); an MQTT 3.1.1 broker answers
#: a v5 CONNECT with return code 1, which paho reads as the same reason.
_UNSUPPORTED_VERSION = 0x84

log = logging.getLogger(__name__)

#: The version each broker (host, port) was found to speak in this process: every client after
#: the first goes straight to it, so the broker sees (and logs) one refused CONNECT, and we say
#: so once. A cache of facts about the outside, not configuration: a broker that starts
#: speaking MQTT 5 later is spoken 3.1.1 to until the process restarts (which still works).
_spoken: dict[tuple[str, int], Version] = {}


def refused_version(exc: BaseException) -> bool:
    """Whether ``exc`` is a broker refusing the protocol version of our CONNECT."""
    rc = getattr(exc, "rc", None)
    return isinstance(exc, aiomqtt.MqttCodeError) and (
        getattr(rc, "value", rc) in (_UNSUPPORTED_VERSION, 1)
    )


#: An MQTT 5 CONNECT with nothing in it: no properties, no login, an empty client id, clean
#: start. A 3.1.1 broker must refuse its version (CONNACK return code 1) and may just close.
_PROBE = bytes.fromhex("100d00044d5154540502003c000000")
_DISCONNECT = bytes.fromhex("e000")
PROBE_S = 5.0


async def probe(host: str, port: int, *, timeout: float = PROBE_S) -> Version | None:
    """The version a broker speaks, from its answer to a bare MQTT 5 CONNECT; None when it
    cannot be told (nothing listens, no answer in time). A real client's v5 CONNECT does not
    do: the embedded amqtt broker misreads its properties and waits, instead of refusing."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(_PROBE)
                await writer.drain()
                answer = await reader.read(4)
                if len(answer) == 4 and answer[0] == 0x20 and answer[3] == 0:
                    writer.write(_DISCONNECT)  # accepted (an auth refusal is 0x86/0x87: v5)
                    await writer.drain()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    if answer[:1] != b"\x20" or len(answer) < 4:
        return "v311"  # closed on us without a CONNACK: a broker that knows no MQTT 5
    return "v311" if answer[3] in (1, _UNSUPPORTED_VERSION) else "v5"


async def publish(
    client: aiomqtt.Client, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
) -> None:
    """``client.publish`` that keeps a cancel. aiomqtt can answer the cancel of a publish in
    flight with MqttError; a caller that takes MqttError for a failed publish and goes on
    (the simulator's modules, the ingest's metrics) then never stops."""
    try:
        await client.publish(topic, payload, qos=qos, retain=retain)
    except aiomqtt.MqttError:
        raise_if_stopping()
        raise
    raise_if_stopping()  # a cancel the library took in without a word


def raise_if_stopping() -> None:
    """CancelledError in a task being cancelled: where a library swallowed the cancel (or
    turned it into its own error), a loop of ours must still stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    make: Callable[[Version], aiomqtt.Client],
    protocol: Protocol = "auto",
) -> AsyncIterator[aiomqtt.Client]:
    """The client ``make(version)`` builds, connected, for the context's length. With
    ``auto``: what ``probe`` found this broker speaks (once per broker and process), MQTT 5
    when it could not tell, MQTT 3.1.1 when the broker refuses 5; a fallback is said once in
    the log per broker. MqttError when it cannot connect at all."""
    if protocol not in PROTOCOLS:
        raise InputError(f"MQTT protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    where = (host, port)
    if protocol == "auto" and where not in _spoken:
        found = await probe(host, port)
        if found == "v311":
            log.warning("MQTT broker %s:%d refused MQTT 5: speaking MQTT 3.1.1 to it", host, port)
        if found is not None:
            _spoken[where] = found
    version: Version = _spoken.get(where, "v5") if protocol == "auto" else protocol
    async with contextlib.AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(make(version))
        except aiomqtt.MqttCodeError as exc:
            if protocol != "auto" or version != "v5" or not refused_version(exc):
                raise
            if _spoken.get(where) != "v311":
                log.warning(
                    "MQTT broker %s:%d refused MQTT 5 (%s): speaking MQTT 3.1.1 to it",
                    host, port, exc.rc,
                )  # fmt: skip
            _spoken[where] = version = "v311"
            client = await stack.enter_async_context(make(version))
        if protocol == "auto":
            _spoken[where] = version
        try:
            yield client
        except asyncio.CancelledError:
            # Stopping. aiomqtt's disconnect can fail (a timeout, a reset) and raise MqttError
            # over the cancel; a caller that retries on MqttError would then never stop.
            with contextlib.suppress(aiomqtt.MqttError):
                await stack.aclose()
            raise


def open_client(
    host: str, port: int, *, protocol: Protocol = "auto", **options: Any
) -> contextlib.AbstractAsyncContextManager[aiomqtt.Client]:
    """A plain client (clean session, automatic acks), connected with ``connect``: the
    simulator, replays, the console and the monitor. ``options`` go to ``aiomqtt.Client``."""

    def make(version: Version) -> aiomqtt.Client:
        return aiomqtt.Client(host, port, protocol=_VERSIONS[version], **options)

    return connect(host, port, make, protocol)


def make_client(
    host: str,
    port: int,
    *,
    client_id: str,
    protocol: Version = "v5",
    receive_maximum: int = RECEIVE_MAXIMUM,
    username: str | None = None,
    password: str | None = None,
) -> aiomqtt.Client:
    """A client with a persistent session whose QoS 1 messages we acknowledge ourselves.

    MQTT 5 (Mosquitto, EMQX, HiveMQ) lets us ask for a large in-flight window; MQTT 3.1.1 (the
    embedded amqtt broker) leaves it to the broker (Mosquitto's default is 20). Connect it with
    ``connect`` to find which the broker speaks.
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
