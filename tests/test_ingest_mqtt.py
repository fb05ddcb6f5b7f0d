"""The manual-ack adapter against the real Mosquitto: fails if aiomqtt or paho change under it.

What ingest relies on: a PUBACK is held back until we call ``ack``; what we never acknowledged
comes back to the persistent session after a reconnect; what we did acknowledge does not; and
with MQTT 5 the broker lets many messages be in flight unacknowledged (the group-commit window).
And the other way: status and events the ingest publishes many at once keep their order.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from ilrs_ops.sources import ReadGate, ack, make_client
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


async def consume_with_group_acks(
    client: aiomqtt.Client, n: int, gate: ReadGate | None, group: int = 25
) -> tuple[list[int], int, int]:
    """Take ``n`` messages, acknowledging them ``group`` at a time after a short "fsync", as
    ingest does; returns the payload numbers, the most messages ever held unacknowledged, and
    the most that arrived during one "fsync" (while nobody told the gate: its slack)."""
    got: list[int] = []
    pending: list[aiomqtt.Message] = []
    held = most = burst = 0

    def check() -> None:
        nonlocal most
        most = max(most, held + len(client.messages))
        if gate is not None:
            gate.update(held + len(client.messages))

    async with asyncio.timeout(60):
        async for m in client.messages:
            got.append(int.from_bytes(bytes(m.payload), "big"))
            pending.append(m)
            held += 1
            check()
            if len(pending) >= group or len(got) == n:
                queued = len(client.messages)
                await asyncio.sleep(0.005)
                burst = max(burst, len(client.messages) - queued)
                for p in pending:
                    ack(client, p)
                held -= len(pending)
                pending.clear()
                check()
            if len(got) == n:
                break
    return got, most, burst


async def flood(broker: tuple[str, int], topic: str, n: int) -> None:
    async with aiomqtt.Client(*broker) as pub:
        pub.pending_calls_threshold = 10_000
        async with asyncio.TaskGroup() as tg:
            for i in range(n):
                tg.create_task(pub.publish(topic, i.to_bytes(4, "big"), qos=1))


async def test_read_gate_bounds_held_messages_when_the_broker_oversends(
    private_broker: tuple[str, int],
) -> None:
    """Mosquitto 2.0.11 sends past our Receive Maximum once acknowledgements flow; the gate stops
    reading the socket at ``high`` held messages and resumes at ``low``, and nothing is lost.
    The gate hears of held messages when the consumer takes one; what the socket delivers while
    the consumer is away (its "fsync") is read before the gate can stop it, so the bound is
    ``high`` plus the larger of the window and that burst, measured in the same run."""
    n, window, high, low = 4000, 100, 200, 100
    seen = {}
    for name, gated in (("open", False), ("gated", True)):
        topic = f"gate/{name}"
        client = make_client(*private_broker, client_id=f"gate-{name}", receive_maximum=window)
        async with client:
            await client.subscribe(topic, qos=1)
            gate = ReadGate(client, high=high, low=low) if gated else None
            publisher = asyncio.create_task(flood(private_broker, topic, n))
            got, most, burst = await consume_with_group_acks(client, n, gate)
            await publisher
            assert sorted(got) == list(range(n)), f"{name}: lost or repeated messages"
            seen[name] = (most, gate.pauses if gate else 0, burst)
    print("held at most (open, gated), pauses, burst:", seen)
    most, pauses, burst = seen["gated"]
    slack = max(window, burst)
    assert most <= high + slack, f"held {most} messages with the gate at {high} (+{slack})"
    if seen["open"][0] > high + window:  # the broker oversends here: the gate had to act
        assert pauses > 0


async def test_read_gate_refuses_a_bad_band() -> None:
    client = make_client(*MOSQUITTO, client_id="gate-band")
    with pytest.raises(ValueError, match="low < high"):
        ReadGate(client, high=10, low=10)


async def test_status_and_events_in_flight_together_arrive_in_order(topic_root: str) -> None:
    """The ingest publishes a round of status or a batch of events all in flight at once
    (not one PUBACK after another); a subscriber still gets them in the order given, each
    once, and the count says how many the broker took."""
    from ilrs_ops.ingest._ingestor import _publish_all

    topic = f"{topic_root}/events/acme/x"
    n = 300
    async with (
        aiomqtt.Client(*MOSQUITTO) as sub,
        aiomqtt.Client(*MOSQUITTO) as pub,
    ):
        pub.pending_calls_threshold = n
        await sub.subscribe(topic, qos=1)
        messages = [(topic, f"{i}".encode(), False) for i in range(n)]
        assert await _publish_all(pub, messages) == n
        got: list[int] = []
        async with asyncio.timeout(20):
            async for message in sub.messages:
                got.append(int(bytes(message.payload)))  # type: ignore[arg-type]
                if len(got) == n:
                    break
    assert got == list(range(n))
    assert await _publish_all(pub, []) == 0


async def test_a_publish_round_on_a_lost_connection_counts_nothing_and_raises_nothing(
    topic_root: str,
) -> None:
    from ilrs_ops.ingest._ingestor import _publish_all

    async with aiomqtt.Client(*MOSQUITTO) as pub:
        pass
    assert await _publish_all(pub, [(f"{topic_root}/s", b"x", True)] * 3) == 0
