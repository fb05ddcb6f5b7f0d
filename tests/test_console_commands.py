"""Commanding through the console on a real uvicorn and the real Mosquitto: definitions per
role, a command sent, acknowledged and executed with its stages live on the WebSocket, the
two-person rule for hazardous commands, refusals named, and nothing under a replay's root.

The module is a stand-in on the broker: it takes the rover's TC topic, reads each packet with
the TC codec and answers with a retained status document, as ingest would publish it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from websockets.sync.client import connect

from ilrs_ops import wire
from ilrs_ops.commanding import Telecommands
from ilrs_ops.console import create_token
from ilrs_ops.profiles import load_catalog
from tests.conftest import MOSQUITTO, ROOT
from tests.test_console import role_tokens
from tests.test_console_replay import NS, import_recording, packets, serving

ROVER = "sup-rover-1"


class StandIn:
    """The rover's command handling and its status document, on the broker, in a thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.profile = load_catalog(ROOT / "hardware_profiles").instruments[ROVER].profile
        self.tc = Telecommands(self.profile)
        self.values: dict[str, Any] = dict(
            mode="SAFE", batt_v=28.0, cmd_accepted=0, cmd_rejected=0, cmd_last_seq=0,
            cmd_error="NONE",
        )  # fmt: skip
        self.topics: list[str] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def status(self) -> bytes:
        doc = {"instrument": ROVER, "partner": "suparco", "health": "nominal",
               "updated": time.time(), "last_recv": time.time(), "expected_period_s": 1.0,
               "packets": 1, "bytes": 69, "rejects": {},
               "values": {k: {"value": v, "state": 0} for k, v in self.values.items()}}  # fmt: skip
        return json.dumps(doc).encode()

    async def _run(self) -> None:
        status = wire.topic(self.root, wire.STATUS, "suparco", ROVER)
        async with aiomqtt.Client(*MOSQUITTO) as client:
            await client.subscribe(f"{self.root}/tc/#", qos=1)
            await client.subscribe(f"{self.root}-replay/#", qos=1)
            await client.publish(status, self.status(), qos=1, retain=True)
            self.ready.set()
            async for message in client.messages:
                self.topics.append(str(message.topic))
                if str(message.topic) != wire.topic(self.root, wire.TC, "suparco", ROVER):
                    continue
                read = self.tc.read(bytes(message.payload))  # type: ignore[arg-type]
                self.values["cmd_last_seq"] = read.seq
                if read.reason != wire.TC_NONE:
                    self.values["cmd_rejected"] += 1
                    self.values["cmd_error"] = read.reason
                else:
                    self.values["cmd_accepted"] += 1
                    self.values["cmd_error"] = "NONE"
                    if read.command is not None and read.command.name == "set_mode":
                        self.values["mode"] = read.args["mode"]  # type: ignore[index]
                await client.publish(status, self.status(), qos=1, retain=True)

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(10), "the stand-in module did not reach the broker"


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("commands")
    root = f"test/test_console_commands-{os.getpid()}"
    module = StandIn(root)
    module.start()
    tokens_file = tmp / "tokens.yaml"
    tokens = role_tokens(tokens_file)
    tokens["operator_2"] = create_token(tokens_file, "desk-2", "operator")
    data = tmp / "data"
    data.mkdir()
    catalog = load_catalog(ROOT / "hardware_profiles")
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(data, catalog, "rover", [packets(catalog, ROVER, 120, t0, seed=3)])
    with serving(data, tokens_file, root) as (url, app):
        deadline = time.monotonic() + 10
        while ROVER not in app.state.console.state.status:  # the retained status came in
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=10) as http:
            yield {"url": url, "http": http, "tokens": tokens, "module": module, "data": data}


def as_(station: dict[str, Any], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {station['tokens'][role]}"}


def until(station: dict[str, Any], id: str, role: str = "operator") -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        doc = station["http"].get(f"/api/commands/{id}", headers=as_(station, role)).json()
        if doc["final"] or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def test_definitions_follow_the_roles(station: dict[str, Any]) -> None:
    http = station["http"]
    r = http.get(f"/api/instruments/{ROVER}/commands", headers=as_(station, "partner_a"))
    assert r.status_code == 200
    drive = next(c for c in r.json()["commands"] if c["name"] == "drive")
    assert drive["hazardous"] and drive["pre"] == ["mode == DRIVE", "batt_v > 26.0"]
    distance = drive["arguments"][0]
    assert (distance["units"], distance["range"]) == ("m", [0.1, 50.0])
    mode = next(c for c in r.json()["commands"] if c["name"] == "set_mode")["arguments"][0]
    assert mode["enum"] == ["CHARGE", "DRIVE", "HIBERNATE", "SAFE", "SCIENCE"]
    for role, status in (("partner_b", 403), ("anonymous", 401)):
        headers = as_(station, role) if station["tokens"][role] else {}
        assert http.get(f"/api/instruments/{ROVER}/commands", headers=headers).status_code == status
    assert (
        http.get("/api/instruments/nope/commands", headers=as_(station, "operator")).status_code
        == 404
    )


def test_a_command_is_sent_verified_and_live_on_the_websocket(station: dict[str, Any]) -> None:
    http, module = station["http"], station["module"]
    base = station["url"].replace("http", "ws", 1) + "/api/live?token="
    with (
        connect(base + station["tokens"]["viewer"]) as ws,
        connect(base + station["tokens"]["partner_b"]) as other,
    ):
        assert json.loads(other.recv())["type"] == "snapshot"
        assert json.loads(ws.recv())["type"] == "snapshot"
        body = {"instrument": ROVER, "command": "set_mode", "args": {"mode": "SCIENCE"}}
        r = http.post("/api/commands", json=body, headers=as_(station, "partner_a"))
        assert r.status_code == 201, r.text  # a new command
        id = r.json()["id"]
        doc = until(station, id)
        assert doc["state"] == "completed", doc
        assert [s["stage"] for s in doc["stages"]] == ["requested", "sent", "received",
                                                       "executed", "completed"]  # fmt: skip
        seen = []
        deadline = time.monotonic() + 10
        while "completed" not in seen and time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=10))
            if msg["type"] == "command" and msg["command"]["id"] == id:
                seen.append(msg["command"]["state"])
        # the other partner's socket carried none of it
        for message in _drain(other):
            assert message["type"] != "command", message
    assert seen[-1] == "completed" and "sent" in seen
    assert module.values["mode"] == "SCIENCE"
    assert doc["requested_by"] == "suparco-ops"
    # the viewer sees the history; the other partner does not
    assert id in [
        c["id"]
        for c in http.get("/api/commands", headers=as_(station, "viewer")).json()["commands"]
    ]
    assert http.get("/api/commands", headers=as_(station, "partner_b")).json()["commands"] == []
    assert http.get(f"/api/commands/{id}", headers=as_(station, "partner_b")).status_code == 404
    # sent under the live root only: nothing reached a replay root
    assert not [t for t in module.topics if "-replay/" in t]
    # the commands table is Parquet in the store, readable without us
    duckdb = pytest.importorskip("duckdb")
    files = str(Path(station["data"]) / "commands" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"select stage from read_parquet('{files}') where id = '{id}' order by time"
    ).fetchall()
    assert [s for (s,) in rows] == ["requested", "sent", "received", "executed", "completed"]


def test_hazardous_commands_need_a_second_operator(station: dict[str, Any]) -> None:
    http = station["http"]
    body = {"instrument": ROVER, "command": "set_mode", "args": {"mode": "DRIVE"}}
    assert (
        until(
            station,
            http.post("/api/commands", json=body, headers=as_(station, "operator")).json()["id"],
        )["state"]
        == "completed"
    )
    body = {"instrument": ROVER, "command": "drive", "args": {"distance": 3.0}, "id": "drive-1"}
    r = http.post("/api/commands", json=body, headers=as_(station, "operator"))
    assert r.status_code == 201 and (r.json()["state"], r.json()["waiting"]) == (
        "queued",
        "approval",
    )
    again = http.post("/api/commands", json=body, headers=as_(station, "operator"))
    assert again.status_code == 200, again.text  # the same command, not a new one
    assert (
        again.json()["id"] == "drive-1" and again.json()["requested_ns"] == r.json()["requested_ns"]
    )
    for role, status in (("operator", 403), ("partner_a", 403), ("viewer", 403)):
        assert (
            http.post("/api/commands/drive-1/approve", headers=as_(station, role)).status_code
            == status
        )
    r = http.post("/api/commands/drive-1/approve", headers=as_(station, "operator_2"))
    assert r.status_code == 200 and r.json()["approved_by"] == "desk-2"
    doc = until(station, "drive-1")
    assert doc["state"] == "completed" and doc["packet"] is not None
    assert (
        http.post("/api/commands/drive-1/cancel", headers=as_(station, "operator")).status_code
        == 409
    )


def test_refusals_say_what_and_where(station: dict[str, Any]) -> None:
    http = station["http"]
    cases = [
        (
            {"instrument": ROVER, "command": "drive", "args": {"distance": 99}},
            "partner_a",
            422,
            "distance",
        ),
        ({"instrument": ROVER, "command": "warp"}, "operator", 422, "command"),
        ({"instrument": "nope", "command": "safe"}, "operator", 422, "instrument"),
        ({"instrument": ROVER, "command": "safe"}, "partner_b", 403, None),
        ({"instrument": ROVER, "command": "safe"}, "viewer", 403, None),
    ]
    for body, role, status, parameter in cases:
        r = http.post("/api/commands", json=body, headers=as_(station, role))
        assert r.status_code == status, (body, r.text)
        assert r.json().get("parameter") == parameter and r.json()["detail"]
    station["module"].values["mode"] = "SAFE"
    body = {"instrument": ROVER, "command": "set_mode", "args": {"mode": "SAFE"}}
    until(
        station,
        http.post("/api/commands", json=body, headers=as_(station, "operator")).json()["id"],
    )
    body = {"instrument": ROVER, "command": "drive", "args": {"distance": 1}}
    r = http.post("/api/commands", json=body, headers=as_(station, "partner_a"))
    assert r.status_code == 409 and "mode == DRIVE does not hold (it is SAFE)" in r.json()["detail"]
    r = http.get("/api/commands?state=flying", headers=as_(station, "operator"))
    assert r.status_code == 400 and r.json()["parameter"] == "state"


def cli(station: dict[str, Any], role: str, *words: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "ilrs-ops"
    env = {**os.environ, "ILRS_TOKEN": station["tokens"][role] or "", "COLUMNS": "200"}
    return subprocess.run(
        [str(exe), *words, "--console", station["url"]],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_the_command_line_sends_waits_lists_and_shows_history(station: dict[str, Any]) -> None:
    done = cli(station, "partner_a", "command", ROVER, "set_mode", "mode=CHARGE", "--wait")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "sup-rover-1 set_mode mode=CHARGE" in lines[0]
    stages = [line.split()[1] for line in lines[1:]]
    assert stages == ["requested", "sent", "received", "executed", "completed"]
    assert station["module"].values["mode"] == "CHARGE"
    bad = cli(station, "partner_a", "command", ROVER, "drive", "distance=500", "--wait")
    assert bad.returncode == 2 and "distance" in bad.stderr and "outside [0.1, 50]" in bad.stderr
    word = cli(station, "partner_a", "command", ROVER, "set_mode", "CHARGE")
    assert word.returncode == 2 and "name=value" in word.stderr
    other = cli(station, "partner_b", "command", ROVER, "safe")
    assert other.returncode == 2 and "403" in other.stderr
    listed = cli(station, "partner_a", "commands", "list", ROVER)
    assert listed.returncode == 0 and "drive" in listed.stdout and "0x10" in listed.stdout
    history = cli(station, "viewer", "commands", "history", "--instrument", ROVER)
    assert history.returncode == 0 and "CHARGE" in history.stdout and "completed" in history.stdout


def _drain(ws: Any, quiet_s: float = 0.5) -> list[dict[str, Any]]:
    """The messages a socket has, until it is quiet for ``quiet_s``."""
    out = []
    while True:
        try:
            out.append(json.loads(ws.recv(timeout=quiet_s)))
        except TimeoutError:
            return out


def test_commands_during_a_replay_go_to_the_live_module_only(station: dict[str, Any]) -> None:
    http, module = station["http"], station["module"]
    r = http.post("/api/replays", json={"recording": "rover", "speed": 1, "to": "rover-again"},
                  headers=as_(station, "operator"))  # fmt: skip
    assert r.status_code == 201, r.text
    replay = r.json()["id"]
    try:
        deadline = time.monotonic() + 15
        while not [t for t in module.topics if "-replay/" in t]:  # the replay is on the air
            assert time.monotonic() < deadline, "no replayed telemetry reached the broker"
            time.sleep(0.05)
        body = {"instrument": ROVER, "command": "set_mode", "args": {"mode": "HIBERNATE"}}
        r = http.post("/api/commands", json=body, headers=as_(station, "operator"))
        assert until(station, r.json()["id"])["state"] == "completed"
        replayed = [t for t in module.topics if "-replay/" in t]
        assert replayed and all("/tm/" in t for t in replayed), set(replayed)
        assert module.topics.count(wire.topic(module.root, wire.TC, "suparco", ROVER)) >= 1
    finally:
        http.post(f"/api/replays/{replay}/stop", headers=as_(station, "operator"))


def test_the_history_takes_a_window_since_stop(station: dict[str, Any]) -> None:
    """The console's archive window: the commands requested in [since, stop); a stop that is
    not a time, or not after since, is refused by name."""
    http = station["http"]
    body = {"instrument": ROVER, "command": "set_mode", "args": {"mode": "SAFE"}}
    r = http.post("/api/commands", json=body, headers=as_(station, "operator"))
    assert r.status_code == 201, r.text
    cmd = until(station, r.json()["id"])
    at = cmd["requested_ns"]
    h = as_(station, "operator")

    def ids(**q: Any) -> list[str]:
        r = http.get("/api/commands", params=q, headers=h)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["commands"]]

    assert cmd["id"] in ids(since=at, stop=at + 1)  # since inclusive
    assert cmd["id"] not in ids(since=at - 10**9, stop=at)  # stop exclusive
    assert cmd["id"] in ids(stop=at + 1)
    for q, detail in (
        ({"stop": "yesterday"}, "stop='yesterday' is not a time"),
        ({"since": str(at), "stop": str(at)}, "must be before stop"),
    ):
        r = http.get("/api/commands", params=q, headers=h)
        assert r.status_code == 400, r.text
        assert r.json()["parameter"] == "stop" and detail in r.json()["detail"]
