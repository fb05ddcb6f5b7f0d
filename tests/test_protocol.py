"""Every MQTT client finds the protocol its broker speaks: MQTT 5 with the machine's Mosquitto,
3.1.1 with the embedded amqtt broker (which refuses 5), said once in the log; a replay over the
embedded broker goes through with no --protocol; a replay that cannot reach its broker fails
with a message and leaves no empty recording behind."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from ilrs_ops import sources
from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.errors import BrokerError
from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.profiles import Catalog
from ilrs_ops.replay import _replay as replay_module
from ilrs_ops.replay import create_recording, recordings_dir, replay_into, replay_root
from ilrs_ops.sources import StoreSource, open_client
from ilrs_ops.store import Store
from tests.conftest import MOSQUITTO
from tests.test_console_replay import NS, A, import_recording, packets


@pytest.fixture(autouse=True)
def _forget_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test finds out afresh what its brokers speak."""
    monkeypatch.setattr(sources._mqtt, "_spoken", {})


def _fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused MQTT 5" in r.getMessage()]


async def test_clients_speak_5_to_mosquitto(caplog: pytest.LogCaptureFixture) -> None:
    async with open_client(*MOSQUITTO) as client:
        assert client._client._protocol == 5  # paho's MQTTv5
    assert not _fallbacks(caplog)


async def test_clients_fall_back_to_311_on_the_embedded_broker_and_say_so_once(
    free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ilrs_ops.sources")
    async with EmbeddedBroker(port=free_port):
        for _ in range(3):
            async with open_client("127.0.0.1", free_port) as client:
                assert client._client._protocol == 4  # paho's MQTTv311
        assert len(_fallbacks(caplog)) == 1, caplog.text
        assert f"127.0.0.1:{free_port}" in _fallbacks(caplog)[0]
        with pytest.raises(sources._mqtt.aiomqtt.MqttError):  # insisting on 5 still fails
            async with open_client("127.0.0.1", free_port, protocol="v5"):
                pass


async def test_ingest_with_no_protocol_given_subscribes_on_the_embedded_broker(
    rover: Catalog, free_port: int, tmp_path: Path, topic_root: str
) -> None:
    async with EmbeddedBroker(port=free_port):
        config = IngestConfig(host="127.0.0.1", port=free_port, root=topic_root)
        with Store(tmp_path) as store:
            async with Ingestor(catalog=rover, store=store, config=config) as ingestor:
                async with asyncio.timeout(15):
                    await ingestor.ready()
                assert ingestor.speaking == "v311"
                assert ingestor.metrics()["receive_maximum"] is None


async def _replay(data: Path, catalog: Catalog, port: int, name: str, **kw: object) -> Path:
    src = recordings_dir(data) / "rover"
    source = StoreSource(src, catalog, root=replay_root("test", name))
    rec = create_recording(data, name, "replayed", str(src))
    await replay_into(source, rec, catalog, host="127.0.0.1", port=port, speed=None, **kw)
    return rec.path


async def test_a_replay_over_the_embedded_broker_needs_no_protocol(
    station: Catalog, free_port: int, tmp_path: Path
) -> None:
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(tmp_path, station, "rover", [packets(station, A, 30, t0, seed=1)])
    async with EmbeddedBroker(port=free_port), asyncio.timeout(60):
        path = await _replay(tmp_path, station, free_port, "again")
    assert (path / "recording.json").is_file()
    assert any(path.glob("raw/**/*.parquet"))


async def test_a_replay_that_cannot_connect_fails_and_leaves_no_recording(
    station: Catalog, free_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "CONNECT_S", 1.0)
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(tmp_path, station, "rover", [packets(station, A, 5, t0, seed=1)])
    refused = rf"cannot connect to the MQTT broker 127.0.0.1:{free_port}"
    with pytest.raises(BrokerError, match=refused):
        async with asyncio.timeout(30):
            await _replay(tmp_path, station, free_port, "nowhere")
    assert not (recordings_dir(tmp_path) / "nowhere").exists()


async def test_an_interrupted_replay_leaves_no_empty_recording(
    station: Catalog, free_port: int, tmp_path: Path
) -> None:
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(tmp_path, station, "rover", [packets(station, A, 5, t0, seed=1)])
    task = asyncio.ensure_future(_replay(tmp_path, station, free_port, "cut"))
    await asyncio.sleep(1.0)  # no broker there: the replay waits to connect; Ctrl-C
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (recordings_dir(tmp_path) / "cut").exists()
