"""The embedded broker (`ilrs-ops up` without --broker) keeps its log readable: a subscriber
that acknowledges later than amqtt's fixed 5 s gets one warning that says the delivery stands,
not a traceback per message."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
import pytest

from ilrs_ops import broker
from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.sources import ack, make_client, open_client
from tests.test_up import free_port


async def test_a_late_acknowledgement_is_one_warning_and_the_message_arrives(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker.LATE_ACKS, "late", 0)
    port = free_port()
    v311 = aiomqtt.ProtocolVersion.V311
    with caplog.at_level(logging.WARNING):
        async with (
            EmbeddedBroker(port=port),
            # the ingest's client: it acknowledges once a message is durable
            make_client("127.0.0.1", port, client_id="late", protocol="v311") as slow,
            aiomqtt.Client("127.0.0.1", port, protocol=v311) as pub,
        ):
            await slow.subscribe("late/#", qos=1)
            for i in range(2):
                await pub.publish(f"late/{i}", b"x", qos=1)
            got = []
            async with asyncio.timeout(10):
                async for message in slow.messages:
                    got.append(message)
                    if len(got) == 2:
                        break
            await asyncio.sleep(5.5)  # past amqtt's PUBACK wait
            for message in got:
                ack(slow, message)
            await asyncio.sleep(0.5)  # the broker reads the late acks
    assert [str(m.topic) for m in got] == ["late/0", "late/1"]
    assert broker.LATE_ACKS.late == 2
    amqtt_said = [r for r in caplog.records if r.name.startswith("amqtt") and "PUBACK" in r.msg]
    assert amqtt_said == []
    ours = [r.getMessage() for r in caplog.records if r.name == "ilrs_ops.broker"]
    assert len(ours) == 1 and "acknowledged later" in ours[0], ours


async def test_an_mqtt5_client_refused_is_one_line_of_ours_not_the_brokers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The embedded broker speaks 3.1.1: a client of ours that tries 5 first falls back and
    says so once; amqtt's two warnings for the refused connection are not shown."""
    port = free_port()
    with caplog.at_level(logging.WARNING):
        async with EmbeddedBroker(port=port), open_client("127.0.0.1", port) as c:
            await c.subscribe("x/#", qos=1)
    warned = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [w for w in warned if w[0].startswith("amqtt")], warned
    assert [m for n, m in warned if "refused MQTT 5" in m], warned
