"""docker-compose.yml without a Docker engine: the Compose Specification schema, the checks that
matter to this station, and the deploy/ pieces (broker config, entry point, health check) run
for real against a private Mosquitto."""

from __future__ import annotations

import contextlib
import copy
import importlib.resources
import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest
from ruamel.yaml import YAML

from ilrs_ops.broker_config import (
    COMMANDER,
    CONSOLE,
    INGEST,
    SERVICE_USERS,
    write_broker_config,
)
from ilrs_ops.profiles import Catalog
from ilrs_ops.settings import Settings
from ilrs_ops.sources import ack, make_client
from tests.conftest import MOSQUITTO_EXE, start_mosquitto
from tests.test_broker_config import received

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"

needs_mosquitto = pytest.mark.skipif(
    not os.access(MOSQUITTO_EXE, os.X_OK), reason="mosquitto is not installed on this machine"
)


def compose_schema() -> dict:
    """The Compose Specification schema as check-jsonschema vendors it (Apache-2.0, see its
    vendor/licenses/LICENSE.compose-spec): the file of `--builtin-schema vendor.compose-spec`."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def load_compose(path: Path = COMPOSE) -> dict:
    return YAML(typ="safe").load(path.read_text())


def schema_errors(doc: dict) -> list[str]:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


# ------------------------------------------------------------------ our own checks


def _command(svc: dict) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd and cmd.index(name) + 1 < len(cmd) else None


def _mounts(svc: dict) -> list[dict]:
    """Volumes in long form: {type, source, target, read_only}."""
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out.append({"read_only": False, **v})
            continue
        parts = v.split(":")
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        ro = len(parts) > 2 and "ro" in parts[2].split(",")
        out.append({"type": kind, "source": source, "target": target, "read_only": ro})
    return out


def _env(svc: dict) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def _without(svc: dict, key: str) -> dict[str, str]:
    """The service's environment without ``key`` (a copy: anchors share one mapping)."""
    return {k: v for k, v in _env(svc).items() if k != key}


def _conf_lines(path: Path) -> list[list[str]]:
    lines = (ln.split("#", 1)[0].split() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln]


def _listeners(conf: list[list[str]]) -> dict[int, dict[str, str]]:
    """Per-listener settings of a Mosquitto config (per_listener_settings true)."""
    out: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for words in conf:
        if words[0] == "listener":
            current = out.setdefault(int(words[1]), {})
        elif current is not None and words[0] in {"allow_anonymous", "password_file", "acl_file"}:
            current[words[0]] = words[1]
    return out


def _writes_telecommands(acl: list[list[str]]) -> bool:
    """Whether Mosquitto ACL lines grant writing a ``.../tc/...`` topic (``topic X`` is both)."""
    for words in acl:
        if words[0] != "topic" or len(words) < 2:
            continue
        access, topic = (words[1], words[2]) if len(words) > 2 else ("readwrite", words[1])
        if access in ("write", "readwrite") and "/tc/" in topic:
            return True
    return False


def problems(doc: dict, base: Path = ROOT) -> list[str]:
    """What is wrong with a compose document for this station (empty: nothing)."""
    out: list[str] = []
    services: dict[str, dict] = doc.get("services", {})
    volumes = set(doc.get("volumes") or {})

    # Restart and health: every long-running service comes back and says how it is.
    for name, svc in services.items():
        restart = svc.get("restart")
        if restart == "no":
            waited = any(
                (other.get("depends_on") or {}).get(name, {}).get("condition")
                == "service_completed_successfully"
                for other in services.values()
                if isinstance(other.get("depends_on"), dict)
            )
            if not waited:
                out.append(f"{name}: one-shot service nobody waits for to complete")
            continue
        if restart not in {"always", "unless-stopped", "on-failure"}:
            out.append(f"{name}: long-running service without a restart policy")
        hc = svc.get("healthcheck") or {}
        if not hc.get("test") or hc.get("disable"):
            out.append(f"{name}: long-running service without a health check")
        deps = svc.get("depends_on") or {}
        for dep in deps:
            if dep not in services:
                out.append(f"{name}: depends on unknown service {dep}")

    # Volumes: named ones are declared, bind sources are in the repository (or made by a
    # documented step and refused when missing rather than silently created as folders).
    for name, svc in services.items():
        for m in _mounts(svc):
            if m["type"] == "volume" and m["source"] not in volumes:
                out.append(f"{name}: volume {m['source']} is not declared")
            made_by_a_step = (m.get("bind") or {}).get("create_host_path") is False
            if m["type"] == "bind" and not (base / m["source"]).exists() and not made_by_a_step:
                out.append(f"{name}: bind source {m['source']} does not exist")

    # Ingest shards: i/N for i = 0..N-1, each exactly once, one N, one store.
    shards = []
    for name, svc in services.items():
        cmd = _command(svc)
        if cmd[:1] == ["ingest"]:
            shard = _option(cmd, "--shard") or "0/1"
            i, n = (int(x) for x in shard.split("/"))
            shards.append((i, n, name, _option(cmd, "--data")))
    if not shards:
        out.append("no ingest service")
    counts = {n for _, n, _, _ in shards}
    if len(counts) > 1:
        out.append(f"ingest shards disagree on N: {sorted(counts)}")
    elif shards:
        (n,) = counts
        got = sorted(i for i, _, _, _ in shards)
        if got != list(range(n)):
            out.append(f"ingest shards {got} do not cover 0..{n - 1} exactly once")
    # One station archive: shards on separate data volumes (hosts) meet in one S3 archive.
    data_volumes, archives = set(), set()
    for _, _, name, data in shards:
        data_volumes |= {
            m["source"] for m in _mounts(services[name]) if m["target"] == (data or "/data")
        }
        archives.add(
            _option(_command(services[name]), "--archive")
            or _env(services[name]).get("ILRS_ARCHIVE")
        )
    if len(archives) > 1:
        out.append(f"ingest shards seal into different archives: {sorted(map(str, archives))}")
    elif len(data_volumes) > 1 and not str(next(iter(archives))).startswith("s3://"):
        out.append(f"ingest shards write to different stores: {sorted(data_volumes)}")
    if len(data_volumes) < len(shards) and len(data_volumes) > 1:
        out.append(f"ingest shards share some data volumes, not all: {sorted(data_volumes)}")
    for name, svc in services.items():  # the console reads what the shards seal
        if _command(svc)[:1] == ["console"] and archives:
            mine = _option(_command(svc), "--archive") or _env(svc).get("ILRS_ARCHIVE")
            if mine not in archives:
                out.append(f"{name}: reads the archive {mine}, the shards seal into {archives}")

    # The broker: generated users and ACLs, authenticated public listener, persistence.
    # (broker-config may run under a shell, to hand the files to the broker's user.)
    broker_cfg = next(
        (n for n, s in services.items() if "broker-config" in " ".join(_command(s)).split()), ""
    )
    mq = services.get("mosquitto")
    if not broker_cfg or mq is None:
        out.append("no broker-config service generating the users and ACLs, or no mosquitto")
        return out
    gen_out = _option(" ".join(_command(services[broker_cfg])).split(), "--out") or ""
    gen_volume = next(
        (m["source"] for m in _mounts(services[broker_cfg]) if m["target"] == gen_out), None
    )
    if gen_volume is None:
        out.append(f"{broker_cfg}: --out {gen_out!r} is not a mounted volume")
    dep = (mq.get("depends_on") or {}).get(broker_cfg, {})
    if dep.get("condition") != "service_completed_successfully":
        out.append(f"mosquitto does not wait for {broker_cfg} to complete")
    mq_mounts = {m["target"]: m for m in _mounts(mq)}
    conf_path = _option(_command(mq), "-c") or "/mosquitto/config/mosquitto.conf"
    conf_mount = mq_mounts.get(conf_path)
    if conf_mount is None or conf_mount["type"] != "bind":
        out.append(f"mosquitto: its config {conf_path} is not mounted from the repository")
        return out
    conf = _conf_lines(base / conf_mount["source"])
    settings = {w[0]: w[1] for w in conf if len(w) > 1}
    listeners = _listeners(conf)

    def mounted_volume(path: str) -> str | None:
        for target, m in mq_mounts.items():
            if m["type"] == "volume" and path.startswith(target.rstrip("/") + "/"):
                return m["source"]
        return None

    def mounted_bind(path: str) -> bool:
        m = mq_mounts.get(path)
        return m is not None and m["type"] == "bind" and (base / m["source"]).exists()

    if settings.get("persistence") != "true":
        out.append("mosquitto: persistence is off")
    loc = settings.get("persistence_location", "/mosquitto/data/")
    persist = mounted_volume(loc)
    if persist is None or persist == gen_volume:
        out.append(f"mosquitto: persistence {loc} is not on a volume of its own")
    elif any(m["read_only"] for m in mq_mounts.values() if m["source"] == persist):
        out.append("mosquitto: its persistence volume is read-only")
    published = set()
    for p in mq.get("ports", []):
        spec = str(p["target"]) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1]
        published.add(int(spec.split("/")[0]))
    if not listeners:
        out.append("mosquitto: no listener in its config")
    for port, opts in listeners.items():
        if opts.get("allow_anonymous") == "true":
            if port in published:
                out.append(f"mosquitto: anonymous listener {port} is published")
            acl = opts.get("acl_file")
            if not acl or not mounted_bind(acl):
                out.append(f"mosquitto: anonymous listener {port} has no ACL from the repo")
                continue
            # Only the commander may write telecommands: never an anonymous client.
            if _writes_telecommands(_conf_lines(base / mq_mounts[acl]["source"])):
                out.append(f"mosquitto: anonymous listener {port} may write telecommands")
            continue
        for key in ("password_file", "acl_file"):
            if mounted_volume(opts.get(key, "")) != gen_volume or gen_volume is None:
                out.append(f"mosquitto: listener {port} {key} is not the generated one")
    if 1883 not in published:
        out.append("mosquitto: 1883 is not published for the instruments")

    # ilrs-ops services reach a listener of this broker; on an authenticated one they log in
    # as a generated service user, its credentials file mounted.
    for name, svc in services.items():
        env = _env(svc)
        user = env.get("ILRS_BROKER_USER")
        if name in (broker_cfg, "mosquitto") or "build" not in svc:
            continue  # not an ilrs-ops service (the broker, the object store)
        host, _, port = env.get("ILRS_BROKER", "").partition(":")
        if host != "mosquitto" or not port.isdigit() or int(port) not in listeners:
            out.append(f"{name}: ILRS_BROKER is not a listener of the mosquitto service")
            continue
        if listeners[int(port)].get("allow_anonymous") == "true":
            if user is not None:
                out.append(f"{name}: logs in on the anonymous listener {port}")
            continue
        if user is None:
            out.append(f"{name}: no MQTT user (ILRS_BROKER_USER)")
            continue
        if user not in SERVICE_USERS:
            out.append(f"{name}: {user!r} is not a generated service user")
        creds = env.get("ILRS_BROKER_CREDENTIALS", "")
        if not any(
            m["source"] == gen_volume and creds.startswith(m["target"].rstrip("/") + "/")
            for m in _mounts(svc)
        ):
            out.append(f"{name}: credentials {creds!r} are not on the generated volume")
        if _command(svc)[:1] == ["ingest"] and user != INGEST:
            out.append(f"{name}: ingest logs in as {user!r}")
        if env.get("ILRS_COMMANDER_USER") not in (None, COMMANDER):
            out.append(f"{name}: commands as {env['ILRS_COMMANDER_USER']!r}, not {COMMANDER}")

    # The console: tokens file required (never --dev), mounted where it is read.
    console = next((s for s in services.values() if _command(s)[:1] == ["console"]), None)
    if console is None:
        out.append("no console service")
    else:
        cmd = _command(console)
        tokens = _option(cmd, "--tokens")
        if "--dev" in cmd or tokens is None:
            out.append("console: runs without a tokens file")
        elif tokens not in {m["target"] for m in _mounts(console)}:
            out.append(f"console: tokens file {tokens} is not mounted")
        if _env(console).get("ILRS_BROKER_USER") not in (None, CONSOLE):
            out.append("console: logs in as another service's user")
        if _env(console).get("ILRS_COMMANDER_USER") != COMMANDER:
            out.append("console: hosts commanding without the commander login")
    return out


# ------------------------------------------------------------------ the file as it is


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert schema_errors(load_compose()) == []


def test_compose_file_passes_the_station_checks() -> None:
    assert problems(load_compose()) == []


def test_dockerfile_ships_the_entry_point_and_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for name in ("ilrs-entrypoint", "mqtt_connected.py"):
        assert f"COPY deploy/{name} " in text
        assert (DEPLOY / name).exists()
    assert "ENTRYPOINT" in text and "ilrs-entrypoint" in text.split("ENTRYPOINT", 1)[1]


# ------------------------------------------------------------------ broken copies must fail


def _broken(edit) -> dict:
    doc = copy.deepcopy(load_compose())
    edit(doc)
    return doc


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["services"]["ingest-0"].update(restrat="always"),  # a typo
        lambda d: d["services"]["mosquitto"]["depends_on"]["broker-config"].update(
            condition="service_done"
        ),
        lambda d: d["services"]["console"]["healthcheck"].update(intervall="10s"),
        lambda d: d.update(volumes=["station-data"]),
    ],
    ids=["typo", "bad-condition", "healthcheck-typo", "volumes-as-list"],
)
def test_schema_refuses_broken_copies(edit) -> None:
    assert schema_errors(_broken(edit))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["services"].pop("ingest-1"), "do not cover 0..1"),
        (
            lambda d: d["services"]["ingest-1"].update(command=["ingest", "--shard", "0/2"]),
            "do not cover 0..1",
        ),
        (
            lambda d: d["services"]["ingest-1"].update(
                environment={**d["services"]["ingest-1"]["environment"], "ILRS_ARCHIVE": "s3://b/x"}
            ),
            "different archives",
        ),
        (
            lambda d: [
                d["services"][n].update(environment=_without(d["services"][n], "ILRS_ARCHIVE"))
                for n in ("ingest-0", "ingest-1", "console")
            ],
            "different stores",
        ),
        (
            lambda d: d["services"]["console"]["environment"].update(ILRS_ARCHIVE="s3://x/y"),
            "console: reads the archive",
        ),
        (lambda d: d["services"]["ingest-1"].pop("healthcheck"), "without a health check"),
        (lambda d: d["services"]["console"].pop("restart"), "without a restart policy"),
        (lambda d: d["volumes"].pop("mosquitto-data"), "not declared"),
        (lambda d: d["services"]["mosquitto"].pop("depends_on"), "does not wait"),
        (lambda d: d["services"].pop("broker-config"), "no broker-config"),
        (lambda d: d["services"]["mosquitto"]["ports"].append("1884:1884"), "is published"),
        (lambda d: d["services"]["console"].update(command=["console", "--dev"]), "tokens"),
        (lambda d: d["services"]["ingest-0"]["environment"].pop("ILRS_BROKER_USER"), "no MQTT"),
        (
            lambda d: d["services"]["simulator"]["environment"].update(
                ILRS_BROKER="mosquitto:1883"
            ),
            "simulator: no MQTT user",
        ),
        (
            lambda d: d["services"]["ingest-1"]["environment"].update(ILRS_BROKER="broker:1883"),
            "not a listener",
        ),
        (
            lambda d: d["services"]["console"]["environment"].pop("ILRS_COMMANDER_USER"),
            "without the commander login",
        ),
        (
            lambda d: d["services"]["console"]["environment"].update(ILRS_COMMANDER_USER=CONSOLE),
            "commands as 'console'",
        ),
    ],
    ids=[
        "missing-shard",
        "duplicate-shard",
        "shards-in-two-archives",
        "shards-apart-without-archive",
        "console-reads-another-archive",
        "no-healthcheck",
        "no-restart",
        "undeclared-volume",
        "broker-before-config",
        "no-broker-config",
        "anonymous-published",
        "console-dev",
        "no-user",
        "simulator-on-the-public-listener",
        "unknown-broker",
        "no-commander-login",
        "console-commands-as-itself",
    ],
)
def test_station_checks_refuse_broken_copies(edit, expected: str) -> None:
    found = problems(_broken(edit))
    assert any(expected in p for p in found), found


def test_station_checks_read_the_broker_config(tmp_path: Path) -> None:
    """Persistence off or anonymous access on the public listener is caught in the file."""
    (tmp_path / "deploy").mkdir()
    for f in DEPLOY.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / "deploy" / f.name)
    (tmp_path / "deploy" / "tokens.yaml").touch()
    conf = tmp_path / "deploy" / "mosquitto.conf"
    text = conf.read_text()
    assert problems(load_compose(), base=tmp_path) == []
    conf.write_text(text.replace("persistence true", "persistence false"))
    assert "mosquitto: persistence is off" in problems(load_compose(), base=tmp_path)
    conf.write_text(text.replace("allow_anonymous false", "allow_anonymous true"))
    assert any("1883 is published" in p for p in problems(load_compose(), base=tmp_path))
    conf.write_text(text)
    acl = tmp_path / "deploy" / "simulator.acl"
    acl.write_text(acl.read_text().replace("topic read ilrs/tc/#", "topic readwrite ilrs/tc/#"))
    assert "mosquitto: anonymous listener 1884 may write telecommands" in problems(
        load_compose(), base=tmp_path
    )


# ------------------------------------------------------------------ deploy/ pieces, for real


def _health_module() -> Any:
    spec = importlib.util.spec_from_file_location("mqtt_connected", DEPLOY / "mqtt_connected.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_health_check_sees_an_established_connection(free_port: int) -> None:
    health = _health_module()
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port))
        server.listen()
        assert not health.connected(free_port)
        with socket.create_connection(("127.0.0.1", free_port)) as client:
            peer, _ = server.accept()
            with peer:
                assert health.connected(free_port)
                assert client.getsockname()  # the client side is the one to remote port
    script = [sys.executable, str(DEPLOY / "mqtt_connected.py")]
    assert subprocess.run([*script, str(free_port)], check=False).returncode == 1


def test_settings_take_the_broker_login_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ILRS_BROKER_USER", INGEST)
    monkeypatch.setenv("ILRS_BROKER_PASSWORD", "s3cret")
    s = Settings()
    assert s.broker_user == INGEST
    assert s.broker_password is not None and s.broker_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def _entrypoint(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/ilrs-entrypoint with a stand-in `ilrs-ops` that prints what it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "ilrs-ops"
    stub.write_text(
        '#!/bin/sh\necho "args=$*"\necho "password=${ILRS_BROKER_PASSWORD:-}"\n'
        'echo "commander=${ILRS_COMMANDER_PASSWORD:-}"\n'
    )
    stub.chmod(0o755)
    full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(
        ["/bin/sh", str(DEPLOY / "ilrs-entrypoint"), "ingest", "--shard", "1/2"],
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )


def test_entry_point_exports_the_users_password(station: Catalog, tmp_path: Path) -> None:
    cfg = write_broker_config(station, tmp_path / "broker", mosquitto_passwd=False)
    creds = str(cfg.credentials)
    done = _entrypoint(tmp_path, {"ILRS_BROKER_USER": INGEST, "ILRS_BROKER_CREDENTIALS": creds})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "args=ingest --shard 1/2",
        f"password={cfg.passwords[INGEST]}",
        "commander=",
    ]
    # Without a user the entry point is plain ilrs-ops.
    done = _entrypoint(tmp_path, {})
    assert done.stdout.splitlines() == ["args=ingest --shard 1/2", "password=", "commander="]
    # A console that hosts commanding gets the commander's password as a second login.
    both = {"ILRS_BROKER_USER": CONSOLE, "ILRS_COMMANDER_USER": COMMANDER}
    done = _entrypoint(tmp_path, {**both, "ILRS_BROKER_CREDENTIALS": creds})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        f"password={cfg.passwords[CONSOLE]}",
        f"commander={cfg.passwords[COMMANDER]}",
    ]
    done = _entrypoint(
        tmp_path, {**both, "ILRS_COMMANDER_USER": "nobody", "ILRS_BROKER_CREDENTIALS": creds}
    )
    assert done.returncode == 2 and "no MQTT user 'nobody'" in done.stderr
    assert not any(p in done.stderr + done.stdout for p in cfg.passwords.values())
    # An unknown user or a missing file stops the service, naming the problem, no secret.
    done = _entrypoint(tmp_path, {"ILRS_BROKER_USER": "nobody", "ILRS_BROKER_CREDENTIALS": creds})
    assert done.returncode == 2 and "no MQTT user 'nobody'" in done.stderr
    assert not any(p in done.stderr + done.stdout for p in cfg.passwords.values())
    missing = str(tmp_path / "missing.env")
    done = _entrypoint(tmp_path, {"ILRS_BROKER_USER": INGEST, "ILRS_BROKER_CREDENTIALS": missing})
    assert done.returncode == 2 and "run the broker-config service" in done.stderr


@contextlib.contextmanager
def _deploy_broker(station: Catalog, tmp_path: Path, port: int, sim_port: int):
    """Mosquitto run with deploy/mosquitto.conf, its paths and ports moved into tmp_path."""
    gen = tmp_path / "generated"
    cfg = write_broker_config(station, gen)
    (tmp_path / "data").mkdir()
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = (
        conf.replace("/mosquitto/generated/", f"{gen}/")
        .replace("/etc/ilrs/", f"{DEPLOY}/")
        .replace("/mosquitto/data/", f"{tmp_path / 'data'}/")
        .replace("listener 1883", f"listener {port} 127.0.0.1")
        .replace("listener 1884", f"listener {sim_port} 127.0.0.1")
    )
    # As in tests/test_broker_config.py: a root Mosquitto would drop to a user that cannot
    # read the 0600 files the test wrote (in the compose file broker-config chowns them).
    conf += "user root\n"
    path = tmp_path / "mosquitto.conf"
    path.write_text(conf)
    proc = start_mosquitto(path, sim_port, tmp_path / "mosquitto.log")
    try:
        yield cfg
    finally:
        proc.terminate()
        proc.wait(5)


def _healthcheck_command(port: int, credentials: Path) -> str:
    """The mosquitto service's health check as the container's shell would run it."""
    test = load_compose()["services"]["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return (
        test[1]
        .replace("$$", "$")
        .replace("/mosquitto/generated/credentials.env", str(credentials))
        .replace("-p 1883", f"-p {port}")
    )


@needs_mosquitto
async def test_deploy_broker_config_works_with_real_mosquitto(
    station: Catalog, tmp_path: Path, free_port: int
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sim_port = int(s.getsockname()[1])
    with _deploy_broker(station, tmp_path, free_port, sim_port) as cfg:
        # The broker's health check passes; with a wrong password it fails.
        ok = subprocess.run(
            ["/bin/sh", "-c", _healthcheck_command(free_port, cfg.credentials)],
            capture_output=True,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        bad = tmp_path / "bad.env"
        bad.write_text("ILRS_MQTT_CONSOLE=console:wrong\n")
        fails = subprocess.run(
            ["/bin/sh", "-c", _healthcheck_command(free_port, bad)],
            capture_output=True,
            check=False,
        )
        assert fails.returncode != 0

        def client(port: int, user: str | None = None) -> aiomqtt.Client:
            return aiomqtt.Client(
                "127.0.0.1",
                port,
                username=user,
                password=cfg.passwords[user] if user else None,
                protocol=aiomqtt.ProtocolVersion.V5,
            )

        # Anonymous clients are refused on the public listener.
        with pytest.raises(aiomqtt.MqttError):
            async with client(free_port):
                pass
        inst = sorted(station, key=lambda i: i.id)[0]
        # Ingest logs in through its own MQTT adapter, with the credentials it is given.
        ingest_client = make_client(
            "127.0.0.1",
            free_port,
            client_id="test-compose-ingest",
            username=INGEST,
            password=cfg.passwords[INGEST],
        )
        async with (
            ingest_client as ingest,
            client(free_port, CONSOLE) as console,
            client(sim_port) as sim,
        ):
            await ingest.subscribe("ilrs/tm/#", qos=1)
            await console.subscribe("ilrs/status/#", qos=1)
            await sim.subscribe("ilrs/#", qos=1)
            # The simulator's listener carries telemetry to ingest...
            await sim.publish(inst.topic("ilrs"), b"\x00" * 8, qos=1)
            got = await received(ingest)
            assert [str(m.topic) for m in got] == [inst.topic("ilrs")]
            for m in got:
                ack(ingest, m)
            # ...but may neither forge status nor read anything.
            await sim.publish(f"ilrs/status/{inst.profile.partner}/{inst.id}", b"forged", qos=1)
            await ingest.publish(f"ilrs/status/{inst.profile.partner}/{inst.id}", b"ok", qos=1)
            assert [m.payload for m in await received(console)] == [b"ok"]
            assert await received(sim) == []
        # Telecommands: the commander writes them, the simulator's listener hears them, and
        # neither the simulator nor the console may write one.
        tc = f"ilrs/tc/{inst.profile.partner}/{inst.id}"
        async with (
            client(free_port, COMMANDER) as commander,
            client(free_port, CONSOLE) as console,
            client(sim_port) as sim,
        ):
            await sim.subscribe(tc, qos=1)
            await commander.publish(tc, b"cmd", qos=1)
            assert [m.payload for m in await received(sim)] == [b"cmd"]
            await sim.publish(tc, b"forged-by-sim", qos=1)
            await console.publish(tc, b"forged-by-console", qos=1)
            assert await received(sim) == []
