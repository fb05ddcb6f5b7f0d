"""A stopping MQTT client stops: a cancel survives aiomqtt's disconnect failing as MqttError,
which a reconnect loop (simulator, ingest, console, uplink) would otherwise take for a
dropped connection and retry for ever (`ilrs-ops up` then hung on Ctrl-C)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ilrs_ops import wire
from ilrs_ops.profiles import Catalog
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


async def test_an_ingestor_stops_when_its_metrics_publish_is_cut_short(
    rover: Catalog, topic_root: str, tmp_path: Path
) -> None:
    """aiomqtt can answer the cancel of a publish in flight with MqttError. The metrics loop
    took that for a failed publish and ran on, so the ingestor's exit waited for ever (seen
    when a stop came while the 2 s metrics publish was on its way)."""
    from ilrs_ops.ingest import IngestConfig, Ingestor, _ingestor
    from ilrs_ops.store import Store

    in_flight = asyncio.Event()

    metrics = wire.metrics_topic(topic_root, 0)

    async def publish(topic: str, *args: object, **kwargs: object) -> None:
        if topic != metrics:
            return  # status and events: taken at once
        in_flight.set()
        try:
            await asyncio.Event().wait()  # never acknowledged
        except asyncio.CancelledError:
            raise aiomqtt.MqttError("publish cut short") from None

    config = IngestConfig(root=topic_root, client_id=f"{topic_root}-ingest".replace("/", "-"))
    with Store(tmp_path) as store:
        ingestor = Ingestor(catalog=rover, store=store, config=config)
        await ingestor.__aenter__()
        await asyncio.wait_for(ingestor.ready(), 30)
        assert ingestor._client is not None
        ingestor._client.publish = publish  # type: ignore[method-assign]
        await asyncio.wait_for(in_flight.wait(), 3 * _ingestor.METRICS_INTERVAL_S)
        stop = asyncio.create_task(ingestor.__aexit__(None, None, None))
        done, _ = await asyncio.wait({stop}, timeout=30)  # not wait_for: its cancel would hang
        assert stop in done, "the ingestor did not stop: its metrics loop took the cancel"


async def test_a_simulator_stops_when_a_publish_is_cut_short(
    rover: Catalog, topic_root: str
) -> None:
    """A module's publish cut short by the stop came back as MqttError, which the module
    took for a lost packet and ran on: `Simulator.run` never ended (a test of the simulator's
    commands hung so in its teardown)."""
    from ilrs_ops.sim import Simulator

    host, port = MOSQUITTO
    sim = Simulator(rover, host=host, port=port, root=topic_root, seed=1)
    in_flight = asyncio.Event()

    async def publish(*args: object, **kwargs: object) -> None:
        in_flight.set()
        try:
            await asyncio.Event().wait()  # never acknowledged
        except asyncio.CancelledError:
            raise aiomqtt.MqttError("publish cut short") from None

    run = asyncio.create_task(sim.run(None))
    async with asyncio.timeout(30):
        while sim._client is None:
            await asyncio.sleep(0.01)
    sim._client.publish = publish  # type: ignore[method-assign]
    async with asyncio.timeout(30):
        await in_flight.wait()
    run.cancel()
    done, _ = await asyncio.wait({run}, timeout=30)  # not wait_for: its cancel would hang
    assert run in done, "the simulator did not stop: a module took the cancel for a lost packet"
    assert run.cancelled()
