"""The console's MQTT follower against a Mosquitto of the test's own that dies and comes back:
it reconnects with backoff and refills its state from the retained status; health ages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from ilrs_ops.console import StationState, follow
from ilrs_ops.wire import aged_health
from tests.conftest import start_mosquitto


def start_plain_mosquitto(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    return start_mosquitto(conf, port, tmp / "mosquitto.log")


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def retain(port: int, topic: str, doc: dict) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, json.dumps(doc).encode(), qos=1, retain=True)


async def test_follower_reconnects_and_refills_from_retained(tmp_path: Path, free_port: int):
    state = StationState("t")
    proc = start_plain_mosquitto(tmp_path, free_port)
    task = asyncio.create_task(follow(state, "127.0.0.1", free_port))
    try:
        await retain(free_port, "t/status/p/i", {"health": "nominal"})
        await until(lambda: state.status.get("i", {}).get("health") == "nominal")
        assert state.connected
        proc.terminate()
        proc.wait(5)
        await until(lambda: not state.connected)
        proc = start_plain_mosquitto(tmp_path, free_port)  # a fresh broker: no retained messages
        await until(lambda: state.connected)
        await retain(free_port, "t/status/p/i", {"health": "critical"})
        await until(lambda: state.status["i"]["health"] == "critical")
        await retain(free_port, "t/metrics/ingest/0", {"lanes": {}})
        await until(lambda: "0" in state.metrics)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        proc.terminate()
        proc.wait(5)
    assert not state.connected


def test_health_ages_when_the_ingestor_goes_quiet() -> None:
    # A retained "nominal" from a dead ingestor must not stay green.
    assert aged_health("nominal", 100.0, 1.0, 100.5) == "nominal"
    assert aged_health("critical", 100.0, 1.0, 104.0) == "stale"
    assert aged_health("nominal", 100.0, 1.0, 131.0) == "offline"
    assert aged_health(None, None, 1.0, 100.0) == "offline"


async def test_serve_in_the_loop_and_stop_gracefully(tmp_path: Path) -> None:
    import httpx

    from ilrs_ops.console import ConsoleSettings, serve
    from tests.conftest import MOSQUITTO, ROOT

    settings = ConsoleSettings(
        dev=True, http_port=0, profiles=ROOT / "hardware_profiles", data=tmp_path,
        broker_host=MOSQUITTO[0], broker_port=MOSQUITTO[1], root="test/serve",
    )  # fmt: skip
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, started))
    url = await asyncio.wait_for(started, 10)
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        assert (await client.get("/api/status")).status_code == 401
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert task.done()
