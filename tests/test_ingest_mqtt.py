"""The manual-ack adapter against the real Mosquitto: fails if aiomqtt or paho change under it.

What ingest relies on: a PUBACK is held back until we call ``ack``; what we never acknowledged
comes back to the persistent session after a reconnect; what we did acknowledge does not; and
with MQTT 5 the broker lets many messages be in flight unacknowledged (the group-commit window).
"""

from __future__ import annotations

import asyncio

import aiomqtt

from ilrs_ops.ingest._mqtt import ack, make_client
from tests.conftest import MOSQUITTO


async def receive(client: aiomqtt.Client, n: int, timeout: float = 10.0) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []

    async def read() -> None:
        async for m in client.messages:
            got.append(m)
            if len(got) == n:
                return

    task = asyncio.create_task(read())
    await asyncio.wait([task], timeout=timeout)
    task.cancel()
    return got


async def drain(client: aiomqtt.Client, quiet: float = 1.0) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []

    async def read() -> None:
        async for m in client.messages:
            got.append(m)

    task = asyncio.create_task(read())
    last = -1
    while len(got) != last:
        last = len(got)
        await asyncio.sleep(quiet)
    task.cancel()
    return got


async def forget_session(client_id: str) -> None:
    async with aiomqtt.Client(
        *MOSQUITTO, identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True
    ):
        pass


async def publish(topic: str, n: int) -> None:
    async with aiomqtt.Client(*MOSQUITTO) as pub:
        for i in range(n):
            await pub.publish(topic, i.to_bytes(4, "big"), qos=1)


async def test_unacknowledged_messages_come_back_and_acknowledged_ones_do_not(
    topic_root: str,
) -> None:
    client_id = f"{topic_root}-ingest".replace("/", "-")
    topic = f"{topic_root}/tm/acme/x"
    await forget_session(client_id)
    async with make_client(*MOSQUITTO, client_id=client_id) as client:
        await client.subscribe(topic, qos=1)
        await publish(topic, 10)
        first = await receive(client, 10)
        assert [int.from_bytes(bytes(m.payload), "big") for m in first] == list(range(10))
        for m in first[:6]:
            ack(client, m)
        await asyncio.sleep(0.3)  # let the PUBACKs leave before we disconnect
    async with make_client(*MOSQUITTO, client_id=client_id) as client:
        again = await drain(client)
        for m in again:
            ack(client, m)
    assert sorted(int.from_bytes(bytes(m.payload), "big") for m in again) == [6, 7, 8, 9]
    await forget_session(client_id)


async def test_mqtt5_window_lets_many_messages_wait_for_their_ack(topic_root: str) -> None:
    client_id = f"{topic_root}-window".replace("/", "-")
    topic = f"{topic_root}/tm/acme/y"
    await forget_session(client_id)
    async with make_client(*MOSQUITTO, client_id=client_id) as client:
        await client.subscribe(topic, qos=1)
        await publish(topic, 500)
        got = await receive(client, 500)
        assert len(got) == 500  # all in flight at once, none acknowledged yet
        for m in got:
            ack(client, m)
    await forget_session(client_id)


async def test_adapter_reaches_paho_manual_ack() -> None:
    client = make_client(*MOSQUITTO, client_id="adapter-check")
    assert client._client._manual_ack is True  # private on purpose: the thing under test
