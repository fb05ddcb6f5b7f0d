"""`ilrs-ops broker-config`: the generated passwords and ACLs, enforced by a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from pathlib import Path

import aiomqtt
import pytest
from typer.testing import CliRunner

from ilrs_ops.broker_config import (
    COMMANDER,
    CONSOLE,
    INGEST,
    REPLAY,
    acl_text,
    broker_users,
    hash_password,
    read_credentials,
    write_broker_config,
)
from ilrs_ops.cli import app
from ilrs_ops.console import ConsoleSettings, StationState, follow
from ilrs_ops.errors import IlrsError
from ilrs_ops.profiles import Catalog
from tests.conftest import MOSQUITTO_EXE, start_mosquitto

ROOT = "ilrs"
QUIET_S = 0.7  # how long a subscriber waits to show that nothing arrives

needs_mosquitto = pytest.mark.skipif(
    not os.access(MOSQUITTO_EXE, os.X_OK), reason="mosquitto is not installed on this machine"
)


# ------------------------------------------------------------------ the files


def test_users_and_acl_follow_the_profiles(station: Catalog) -> None:
    users = {u.name: u for u in broker_users(station, ROOT)}
    assert set(users) == {INGEST, CONSOLE, REPLAY, COMMANDER} | set(station.instruments)
    for inst in station:
        u = users[inst.id]
        tc = f"{ROOT}/tc/{inst.profile.partner}/{inst.id}"
        assert u.read == ((tc,) if inst.profile.commands else ())  # only its own commands
        assert u.write == (f"{ROOT}/tm/{inst.profile.partner}/{inst.id}",)
    assert any(users[i.id].read for i in station) and not all(users[i.id].read for i in station)
    # Only the commanding service writes commands; it reads what it verifies them against.
    writers = [u.name for u in users.values() if any("/tc/" in t for t in u.write)]
    assert writers == [COMMANDER] and users[COMMANDER].write == ("ilrs/tc/#",)
    assert set(users[COMMANDER].read) == {"ilrs/status/#", "ilrs/events/#", "ilrs/metrics/#"}
    assert users[INGEST].read == ("ilrs/tm/#",)
    assert set(users[INGEST].write) == {"ilrs/status/#", "ilrs/events/#", "ilrs/metrics/#"}
    assert set(users[CONSOLE].read) == {*users[INGEST].write, "ilrs-replay/#"}
    assert users[CONSOLE].write == ("ilrs-replay/#",)  # replays started in the console
    assert users[REPLAY].read == users[REPLAY].write == ("ilrs-replay/#",)
    text = acl_text(users.values())
    assert "pattern" not in text and "\ntopic" not in text.split("user ", 1)[0]  # no anon grants
    assert text.count("\nuser ") + text.startswith("user ") == len(users)


def test_files_modes_and_credentials(station: Catalog, tmp_path: Path) -> None:
    cfg = write_broker_config(station, tmp_path / "b", root=ROOT, port=1883)
    creds = read_credentials(cfg.credentials)
    assert creds == cfg.passwords
    assert len(creds) == len(station) + 4 and len(set(creds.values())) == len(creds)
    assert stat.S_IMODE(cfg.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE((cfg.folder / "passwords").stat().st_mode) == 0o600
    hashed = (cfg.folder / "passwords").read_text()
    for user, password in creds.items():
        assert f"{user}:$7$" in hashed and password not in hashed
    conf = cfg.conf.read_text()
    assert "allow_anonymous false" in conf and "persistence true" in conf
    assert f"password_file {cfg.folder.absolute()}/passwords" in conf
    # Regenerating keeps the passwords of users that remain.
    again = write_broker_config(station, tmp_path / "b", root=ROOT)
    assert again.passwords == creds


def test_python_hash_matches_mosquitto_format() -> None:
    h = hash_password("secret", salt=bytes(12))
    kind, iterations, salt, digest = h.split("$")[1:]
    assert (kind, iterations, salt) == ("7", "101", "AAAAAAAAAAAAAAAA")
    assert len(digest) == 88  # base64 of 64 octets


def test_reserved_and_bad_names_are_refused(station: Catalog) -> None:
    with pytest.raises(IlrsError, match="topic root"):
        broker_users(station, "ilrs/#")
    with pytest.raises(IlrsError, match="topic root"):
        broker_users(station, "")


def test_cli_writes_the_files_and_prints_no_secret(tmp_path: Path) -> None:
    profiles = Path(__file__).parents[1] / "hardware_profiles"
    res = CliRunner().invoke(
        app, ["broker-config", "--out", str(tmp_path / "b"), "--profiles", str(profiles)]
    )
    assert res.exit_code == 0, res.output
    creds = read_credentials(tmp_path / "b" / "credentials.env")
    assert all(p not in res.output for p in creds.values())
    assert {"passwords", "acl", "mosquitto.conf", "credentials.env"} <= {
        p.name for p in (tmp_path / "b").iterdir()
    }


# ------------------------------------------------------------------ a real broker


@contextlib.contextmanager
def _mosquitto(station: Catalog, folder: Path, port: int, **kw):
    """A private Mosquitto run with the generated config; yields its BrokerConfig."""
    # run_as root: a root Mosquitto would otherwise drop to user mosquitto, which cannot read
    # the 0600 passwords file the test (root) wrote; harmless when the tests run as non-root.
    cfg = write_broker_config(
        station, folder, root=ROOT, port=port, bind="127.0.0.1", run_as="root", **kw
    )
    log = folder / "mosquitto.log"
    proc = start_mosquitto(cfg.conf, port, log)
    try:
        yield cfg
    finally:
        proc.terminate()
        proc.wait(5)
    assert all(p not in log.read_text() for p in cfg.passwords.values())


@pytest.fixture
def acl_broker(station: Catalog, tmp_path: Path, free_port: int):
    """Mosquitto with the station's generated config; yields (port, passwords)."""
    with _mosquitto(station, tmp_path / "broker", free_port) as cfg:
        assert cfg.hashed_by == "mosquitto_passwd"
        yield free_port, cfg.passwords


@needs_mosquitto
async def test_mosquitto_accepts_the_python_hashes(
    station: Catalog, tmp_path: Path, free_port: int
) -> None:
    with _mosquitto(station, tmp_path / "b", free_port, mosquitto_passwd=False) as cfg:
        assert cfg.hashed_by == "python"
        async with _client(free_port, cfg.passwords, INGEST) as ingest:
            await ingest.subscribe(f"{ROOT}/tm/#", qos=1)
        with pytest.raises(aiomqtt.MqttError):
            async with _client(free_port, {CONSOLE: "wrong"}, CONSOLE):
                pass


def _client(port: int, creds: dict[str, str], user: str | None, **kw) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=creds.get(user) if user else None,
        protocol=aiomqtt.ProtocolVersion.V5,
        **kw,
    )


async def received(sub: aiomqtt.Client, wait_s: float = QUIET_S) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            async for msg in sub.messages:
                got.append(msg)
    return got


def _puback_reasons(client: aiomqtt.Client) -> list:
    """The PUBACK reason codes the client receives from now on. aiomqtt does not expose them,
    so this wraps its paho client's on_publish callback (a test-only peek at a private)."""
    paho = client._client
    inner = paho.on_publish
    codes: list = []

    def on_publish(c, userdata, mid, reason_code, properties) -> None:
        codes.append(reason_code)
        inner(c, userdata, mid, reason_code, properties)

    paho.on_publish = on_publish
    return codes


def _two(station: Catalog) -> tuple:
    a, b = sorted(station, key=lambda i: i.id)[:2]
    return a, b


@needs_mosquitto
async def test_instrument_publishes_only_to_its_own_topic(acl_broker, station: Catalog) -> None:
    port, creds = acl_broker
    a, b = _two(station)
    async with (
        _client(port, creds, INGEST) as ingest,
        _client(port, creds, a.id) as pub,
    ):
        granted = await ingest.subscribe(f"{ROOT}/tm/#", qos=1)
        assert [int(getattr(g, "value", g)) for g in granted] == [1]
        acks = _puback_reasons(pub)
        await pub.publish(a.topic(ROOT), b"own", qos=1)
        got = await received(ingest)
        assert [(str(m.topic), m.payload) for m in got] == [(a.topic(ROOT), b"own")]

        # B's topic, and any other topic: dropped by Mosquitto (MQTT 5 QoS 1: PUBACK says so).
        await pub.publish(b.topic(ROOT), b"forged", qos=1)
        assert [int(rc.value) for rc in acks] == [0x00, 0x87]  # Success, Not authorized
        await pub.publish(b.topic(ROOT), b"forged0", qos=0)
        await pub.publish(f"{ROOT}/tm/{a.profile.partner}/{a.id}/sub", b"x", qos=1)
        await pub.publish(f"{ROOT}/status/{a.profile.partner}/{a.id}", b"x", qos=1)
        assert await received(ingest) == []


@needs_mosquitto
async def test_instrument_cannot_read_anything(acl_broker, station: Catalog) -> None:
    port, creds = acl_broker
    a, b = _two(station)
    async with (
        _client(port, creds, a.id) as spy,
        _client(port, creds, b.id) as other,
        _client(port, creds, INGEST) as ingest,
    ):
        granted = await spy.subscribe("#", qos=1)
        code = int(getattr(granted[0], "value", granted[0]))
        # Mosquitto 2.0 grants the filter but delivers nothing the ACL does not allow to read;
        # later versions refuse it (0x80 / 0x87). Either way nothing may arrive.
        assert code in (0, 1, 0x80, 0x87)
        await spy.subscribe(a.topic(ROOT), qos=1)
        await other.publish(b.topic(ROOT), b"b-data", qos=1)
        await ingest.publish(f"{ROOT}/status/x/y", b"status", qos=1)
        await spy.publish(a.topic(ROOT), b"own", qos=1)  # not even its own topic comes back
        assert await received(spy) == []


@needs_mosquitto
@pytest.mark.parametrize("who", ["wrong-password", "anonymous", "unknown-user"])
async def test_bad_logins_are_refused(acl_broker, station: Catalog, who: str) -> None:
    port, creds = acl_broker
    a, _ = _two(station)
    user, password = {
        "wrong-password": (a.id, creds[a.id] + "x"),
        "anonymous": (None, None),
        "unknown-user": ("mallory", creds[a.id]),
    }[who]
    client = aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password, protocol=aiomqtt.ProtocolVersion.V5
    )
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


@needs_mosquitto
async def test_console_reads_status_but_cannot_publish_it(acl_broker) -> None:
    port, creds = acl_broker
    topic = f"{ROOT}/status/cnsa/cnsa-eps"
    async with (
        _client(port, creds, CONSOLE) as console,
        _client(port, creds, INGEST) as ingest,
    ):
        await console.subscribe(f"{ROOT}/status/#", qos=1)
        await ingest.publish(topic, b"from-ingest", qos=1)
        assert [m.payload for m in await received(console)] == [b"from-ingest"]
        await console.publish(topic, b"forged", qos=1)
        await console.publish(f"{ROOT}/tm/cnsa/cnsa-eps", b"forged", qos=1)
        assert await received(console) == []


@needs_mosquitto
async def test_replay_user_stays_under_the_replay_root(acl_broker) -> None:
    port, creds = acl_broker
    async with (
        _client(port, creds, REPLAY) as replay,
        _client(port, creds, INGEST) as ingest,
    ):
        await replay.subscribe(f"{ROOT}-replay/#", qos=1)
        await ingest.subscribe(f"{ROOT}/tm/#", qos=1)
        await replay.publish(f"{ROOT}-replay/run1/tm/cnsa/cnsa-eps", b"r", qos=1)
        await replay.publish(f"{ROOT}/tm/cnsa/cnsa-eps", b"live", qos=1)
        assert [m.payload for m in await received(replay)] == [b"r"]
        assert await received(ingest, 0.2) == []


@needs_mosquitto
async def test_console_logs_in_follows_status_and_may_run_replays(acl_broker) -> None:
    """The console's own login (ILRS_CONSOLE_BROKER_USER/PASSWORD): its live follower gets the
    retained status, and it may publish and read under the replay root (console replays)."""
    port, creds = acl_broker
    settings = ConsoleSettings(
        broker_host="127.0.0.1",
        broker_port=port,
        root=ROOT,
        dev=True,
        broker_user=CONSOLE,
        broker_password=creds[CONSOLE],
    )
    assert creds[CONSOLE] not in repr(settings)
    state = StationState(ROOT)
    follower = asyncio.create_task(
        follow(state, settings.broker_host, settings.broker_port, **settings.broker_login)
    )
    try:
        async with _client(port, creds, INGEST) as ingest:
            doc = {"instrument": "cnsa-eps", "health": "nominal"}
            await ingest.publish(
                f"{ROOT}/status/cnsa/cnsa-eps", json.dumps(doc).encode(), qos=1, retain=True
            )
            async with asyncio.timeout(5):
                while "cnsa-eps" not in state.status:
                    await asyncio.sleep(0.05)
            assert state.connected and state.status["cnsa-eps"]["health"] == "nominal"
        login = settings.broker_login
        async with aiomqtt.Client("127.0.0.1", port, **login) as console:
            await console.subscribe(f"{ROOT}-replay/#", qos=1)
            await console.publish(f"{ROOT}-replay/r1/tm/cnsa/cnsa-eps", b"r", qos=1)
            assert [m.payload for m in await received(console)] == [b"r"]
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


def _commandable(station: Catalog) -> tuple:
    a, b = sorted((i for i in station if i.profile.commands), key=lambda i: i.id)[:2]
    return a, b


def _tc(inst) -> str:
    return f"{ROOT}/tc/{inst.profile.partner}/{inst.id}"


@needs_mosquitto
async def test_only_the_commander_publishes_commands(acl_broker, station: Catalog) -> None:
    port, creds = acl_broker
    a, b = _commandable(station)
    async with (
        _client(port, creds, a.id) as module,
        _client(port, creds, COMMANDER) as commander,
        _client(port, creds, CONSOLE) as console,
        _client(port, creds, INGEST) as ingest,
        _client(port, creds, b.id) as other,
    ):
        await module.subscribe(_tc(a), qos=1)
        acks = _puback_reasons(commander)
        await commander.publish(_tc(a), b"cmd", qos=1)
        assert [(str(m.topic), m.payload) for m in await received(module)] == [(_tc(a), b"cmd")]
        assert [int(rc.value) for rc in acks] == [0x00]
        # Nobody else may command it: not the console, not ingest, not another instrument,
        # not the module itself (Not authorized in the PUBACK; nothing arrives).
        for forger in (console, ingest, other, module):
            forged = _puback_reasons(forger)
            await forger.publish(_tc(a), b"forged", qos=1)
            assert [int(rc.value) for rc in forged] == [0x87]
        # The commander may not forge telemetry either.
        await commander.publish(a.topic(ROOT), b"forged-tm", qos=1)
        assert [int(rc.value) for rc in acks] == [0x00, 0x87]
        assert await received(module) == []


@needs_mosquitto
async def test_a_module_hears_only_its_own_commands(acl_broker, station: Catalog) -> None:
    port, creds = acl_broker
    a, b = _commandable(station)
    async with (
        _client(port, creds, a.id) as spy,
        _client(port, creds, b.id) as module_b,
        _client(port, creds, COMMANDER) as commander,
    ):
        granted = await spy.subscribe(_tc(b), qos=1)
        assert int(getattr(granted[0], "value", granted[0])) in (0, 1, 0x80, 0x87)
        await spy.subscribe(f"{ROOT}/tc/#", qos=1)
        await module_b.subscribe(_tc(b), qos=1)
        await commander.publish(_tc(b), b"for-b", qos=1)
        assert [m.payload for m in await received(module_b)] == [b"for-b"]
        assert await received(spy, 0.2) == []
