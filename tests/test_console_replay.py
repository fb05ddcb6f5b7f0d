"""Replays from the console on a real uvicorn and the real Mosquitto: recordings imported from
simulator packets, replayed through the API into new recordings whose raw packets are the
source's byte for byte; pause holds, resume goes on, stop keeps what was sent; operators only;
bad input named; progress live on the WebSocket; nothing reaches the live root."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import uvicorn
from websockets.sync.client import connect

from ilrs_ops.console import ConsoleSettings, create_app, create_token
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import Recorder, create_recording, import_packets, read_recording
from ilrs_ops.sim import Environment, Module
from tests.conftest import MOSQUITTO, ROOT
from tests.test_console import role_tokens
from tests.test_console_live import start_plain_mosquitto

NS = 1_000_000_000
A, B = "sup-rover-1", "cnsa-eps"  # partners suparco and cnsa, one packet a second each
ALL = (0, 2**62)
ROLES = ("anonymous", "viewer", "partner_a", "partner_b", "operator")


@dataclass
class Running:
    url: str
    root: str
    data: Path
    catalog: Catalog
    tokens: dict[str, str | None]
    app: Any

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def ws_url(self, role: str) -> str:
        return self.url.replace("http", "ws", 1) + f"/api/live?token={self.tokens[role]}"


def packets(catalog: Catalog, iid: str, n: int, start_ns: int, seed: int) -> list[bytes]:
    inst = catalog.instruments[iid]
    module = Module(inst, Environment(epoch_ns=start_ns), seed=seed, start_ns=start_ns)
    return module.next_batch(n).packets


def import_recording(data: Path, catalog: Catalog, name: str, streams: list[list[bytes]]) -> None:
    """Streams interleaved packet by packet into one file, imported as recording ``name``."""
    file = data / f"{name}.bin"
    longest = max(len(s) for s in streams)
    file.write_bytes(b"".join(s[k] for k in range(longest) for s in streams if k < len(s)))
    rec = create_recording(data, name, "imported", str(file))
    with History.at(rec.path, catalog) as store:
        recorder = Recorder(store.store, catalog)
        import_packets(file, recorder, catalog.by_apid)
    rec.finish(sorted(recorder.packets), recorder.packets, recorder.rejects)


@contextlib.contextmanager
def serving(
    data: Path,
    tokens_file: Path,
    root: str,
    broker: tuple[str, int] = MOSQUITTO,
    profiles: Path = ROOT / "hardware_profiles",
    *,
    wait_for_broker: bool = True,
) -> Iterator[tuple[str, Any]]:
    """The console app on a real uvicorn in a thread: (URL, app); shut down on exit."""
    settings = ConsoleSettings(
        broker_host=broker[0], broker_port=broker[1], root=root, data=data,
        profiles=profiles, tokens=tokens_file,
    )  # fmt: skip
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not (server.started and (app.state.console.state.connected or not wait_for_broker)):
            assert time.monotonic() < deadline, "console did not start or reach the broker"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "the console did not shut down"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("replay")
    root = f"test/test_console_replay-{os.getpid()}"
    catalog = load_catalog([ROOT / "hardware_profiles"])
    data = tmp / "data"
    data.mkdir()
    t0 = (time.time_ns() // NS - 3600) * NS
    a = packets(catalog, A, 200, t0, seed=1)
    b = packets(catalog, B, 200, t0 + NS // 2, seed=2)  # half a second after A: no ties
    import_recording(data, catalog, "both", [a, b])  # 200 s of two partners' packets
    import_recording(data, catalog, "rover", [a[:50]])  # 49 s of suparco's rover only
    tokens_file = tmp / "tokens.yaml"
    tokens = role_tokens(tokens_file)
    with serving(data, tokens_file, root) as (url, app):
        yield Running(url, root, data, catalog, tokens, app)


@pytest.fixture(scope="module")
def http(console: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        yield client


def start(http: httpx.Client, console: Running, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/api/replays", json=body, headers=console.headers("operator"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def poll(
    http: httpx.Client, console: Running, replay_id: str, until: Callable[[dict], bool],
    seconds: float = 30.0,
) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + seconds
    while True:
        doc = http.get(f"/api/replays/{replay_id}", headers=console.headers("operator")).json()
        if until(doc):
            return doc  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"replay never got there: {doc}"
        time.sleep(0.05)


def raw_packets(path: Path, catalog: Catalog) -> dict[str, list[tuple[int, bytes]]]:
    """(packet time, bytes) of every sealed raw packet, per instrument, in stored order."""
    out = {}
    with History.at(path, catalog) as store:
        for iid in (A, B):
            rows = []
            for batch in store.raw_batches(iid, *ALL):
                t = batch.column("time").cast("int64").to_pylist()
                rows += list(zip(t, batch.column("data").to_pylist(), strict=True))
            out[iid] = rows
    return out


async def watch(root: str, seen: list[str]) -> None:
    """Everything published under the live root (retained messages are not publications)."""
    async with aiomqtt.Client(*MOSQUITTO) as client:
        await client.subscribe(f"{root}/#", qos=1)
        async for message in client.messages:
            if not message.retain:
                seen.append(str(message.topic))


# ---------------------------------------------------------------------- replays end to end


async def test_a_max_speed_replay_copies_the_recording_and_never_touches_live(
    console: Running,
) -> None:
    seen: list[str] = []
    watcher = asyncio.create_task(watch(console.root, seen))
    await asyncio.sleep(0.3)  # subscribed
    h = console.headers("operator")
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as http:
        r = await http.post("/api/replays", json={"recording": "both", "to": "copy"}, headers=h)
        assert r.status_code == 201, r.text
        replay = r.json()
        assert replay["state"] == "running" and replay["speed"] == "max"
        assert replay["to"] == "copy" and replay["total"] == 400
        assert replay["topic_root"] == f"{console.root}-replay/copy"
        deadline = time.monotonic() + 60
        while replay["state"] not in ("finished", "stopped", "failed"):
            assert time.monotonic() < deadline, replay
            await asyncio.sleep(0.05)
            replay = (await http.get(f"/api/replays/{replay['id']}", headers=h)).json()
        listed = (await http.get("/api/recordings", headers=h)).json()["recordings"]
    await asyncio.sleep(0.3)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    assert replay["state"] == "finished", replay
    assert replay["sent"] == replay["total"] == replay["packets"] == 400
    assert replay["finished"] is not None and replay["error"] is None

    source, copy = console.data / "recordings" / "both", console.data / "recordings" / "copy"
    want, got = raw_packets(source, console.catalog), raw_packets(copy, console.catalog)
    assert [len(want[i]) for i in (A, B)] == [200, 200]
    assert got == want  # every packet, byte for byte, at its time, in order

    rec = read_recording(copy)
    assert (rec.origin, rec.packets) == ("replayed", {A: 200, B: 200})
    assert rec.extra["topic_root"] == f"{console.root}-replay/copy" and rec.extra["by"] == "desk"
    row = next(x for x in listed if x["name"] == "copy")
    assert (row["kind"], row["packets"], row["writing"]) == ("replayed", 400, False)

    # Replayed telemetry went under {root}-replay/copy only: the live root heard nothing, and
    # the console's live state (tiles, events, alarms) holds nothing of it.
    assert seen == []
    state = console.app.state.console.state
    assert state.status == {} and list(state.events) == [] and state.messages == 0
    alarms = httpx.get(f"{console.url}/api/alarms", headers=h, timeout=10).json()["alarms"]
    assert alarms == []


def test_pause_holds_resume_goes_on_stop_keeps_what_was_sent(
    http: httpx.Client, console: Running
) -> None:
    h = console.headers("operator")
    replay = start(http, console, {"recording": "both", "speed": 1, "to": "paced"})
    rid = replay["id"]
    assert replay["speed"] == 1.0
    poll(http, console, rid, lambda d: d["sent"] >= 3, 15)  # 2 messages a second

    # while it runs: the target is taken and its recording may not be replayed yet
    again = http.post("/api/replays", json={"recording": "both", "to": "paced"}, headers=h)
    assert again.status_code == 409 and again.json()["parameter"] == "to"
    busy = http.post("/api/replays", json={"recording": "paced"}, headers=h)
    assert busy.status_code == 409 and "being written" in busy.json()["detail"]
    assert http.post(f"/api/replays/{rid}/resume", headers=h).status_code == 409

    r = http.post(f"/api/replays/{rid}/pause", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert http.post(f"/api/replays/{rid}/pause", headers=h).status_code == 409
    time.sleep(1.2)  # a message already waiting for its time may still go out
    held = http.get(f"/api/replays/{rid}", headers=h).json()
    time.sleep(1.5)
    later = http.get(f"/api/replays/{rid}", headers=h).json()
    assert later["state"] == "paused" and later["sent"] == held["sent"]  # the timeline stood

    r = http.post(f"/api/replays/{rid}/resume", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "running"
    poll(http, console, rid, lambda d: d["sent"] >= held["sent"] + 2, 10)
    r = http.post(f"/api/replays/{rid}/stop", headers=h)
    assert r.status_code == 200 and r.json()["state"] in ("stopping", "stopped")
    done = poll(http, console, rid, lambda d: d["state"] != "stopping", 30)
    assert done["state"] == "stopped" and done["error"] is None
    assert 5 <= done["sent"] < done["total"] == 400
    assert done["packets"] == done["sent"]  # every message sent was ingested and sealed
    assert http.post(f"/api/replays/{rid}/stop", headers=h).status_code == 409

    # what the stopped replay took is the source's first packets of each instrument
    want = raw_packets(console.data / "recordings" / "both", console.catalog)
    got = raw_packets(console.data / "recordings" / "paced", console.catalog)
    assert sum(len(v) for v in got.values()) == done["sent"]
    for iid in (A, B):
        assert got[iid] == want[iid][: len(got[iid])], iid
    rec = read_recording(console.data / "recordings" / "paced")
    assert rec.extra["stopped"] is True and rec.extra["speed"] == 1.0


def test_progress_goes_live_to_operators_only_a_few_times_a_second(
    http: httpx.Client, console: Running
) -> None:
    conns = {role: connect(console.ws_url(role)) for role in ("operator", "partner_a", "viewer")}
    try:
        for ws in conns.values():
            assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        t0 = time.monotonic()
        replay = start(http, console, {"recording": "rover", "speed": 10})  # 49 s at 10x
        assert replay["to"].startswith("replay-")
        progress: list[dict] = []
        deadline = time.monotonic() + 30
        while not progress or progress[-1]["state"] != "finished":
            assert time.monotonic() < deadline, progress[-3:]
            msg = json.loads(conns["operator"].recv(timeout=10))
            if msg["type"] == "replay" and msg["replay"]["id"] == replay["id"]:
                progress.append(msg["replay"])
        seconds = time.monotonic() - t0
        others = {}
        for role in ("partner_a", "viewer"):
            msgs = []
            with contextlib.suppress(TimeoutError):
                while True:
                    msgs.append(json.loads(conns[role].recv(timeout=0.5)))
            others[role] = [m for m in msgs if m["type"] == "replay"]
    finally:
        for ws in conns.values():
            ws.close()
    assert others == {"partner_a": [], "viewer": []}
    assert 4 < seconds < 20, seconds
    sent = [p["sent"] for p in progress]
    assert sent == sorted(sent) and sent[-1] == progress[-1]["total"] == 50
    assert any(0 < s < 50 for s in sent)  # progress on the way, not just start and end
    assert len(progress) <= seconds / 0.25 + 4  # at most about four a second
    assert progress[-1]["packets"] == 50


# ---------------------------------------------------------------------- who may, what is refused


@pytest.mark.parametrize("role", ROLES)
def test_recordings_and_replays_by_role(http: httpx.Client, console: Running, role: str) -> None:
    h = console.headers(role)
    r = http.get("/api/recordings", headers=h)
    want = {"anonymous": 401, "viewer": 403}.get(role, 200)
    assert r.status_code == want, r.text
    if want == 200:
        recs = {x["name"]: x for x in r.json()["recordings"]}
        if role == "operator":
            assert {"both", "rover"} <= recs.keys()
            assert recs["both"]["source"].endswith("/both.bin")
        else:  # a partner sees only recordings of its own instruments (and no server paths)
            own = {"partner_a": [A], "partner_b": [B]}[role]
            assert all(x["instruments"] == own for x in recs.values()), recs
            assert ("rover" in recs) == (role == "partner_a") and "both" not in recs
            assert all("/" not in x["source"] for x in recs.values())
    if role == "anonymous":
        assert r.headers["www-authenticate"] == "Bearer"
    if role == "operator":
        return
    code = 401 if role == "anonymous" else 403
    body = {"recording": "rover", "speed": "max", "to": f"by-{role}"}
    assert http.post("/api/replays", json=body, headers=h).status_code == code
    assert http.post("/api/replays", json={"x": 1}, headers=h).status_code == code  # before 422
    assert http.get("/api/replays", headers=h).status_code == code
    for path in ("", "/pause", "/resume", "/stop"):
        method = http.get if not path else http.post
        assert method(f"/api/replays/someid{path}", headers=h).status_code == code
    assert not (console.data / "recordings" / f"by-{role}").exists()


@pytest.mark.parametrize(
    ("body", "status", "parameter"),
    [
        ({"recording": "nope"}, 404, "recording"),
        ({"recording": "../both"}, 422, "recording"),
        ({"recording": "Both"}, 422, "recording"),
        ({"recording": "rover", "to": "../../escape"}, 422, "to"),
        ({"recording": "rover", "to": "/tmp/x"}, 422, "to"),
        ({"recording": "rover", "to": ".hidden"}, 422, "to"),
        ({"recording": "rover", "to": ""}, 422, "to"),
        ({"recording": "rover", "to": "both"}, 409, "to"),
        ({"recording": "rover", "speed": 0}, 422, None),
        ({"recording": "rover", "speed": -1}, 422, None),
        ({"recording": "rover", "speed": "fast"}, 422, None),
        ({"recording": "rover", "speed": "10"}, 422, None),
        ({"recording": "rover", "speed": True}, 422, None),
        ({"recording": "rover", "speed": 1e9}, 422, None),
        ({"recording": "rover", "speed": None}, 422, None),
        ({"recording": "rover", "bundle": 3}, 422, None),
        ({}, 422, None),
    ],
)
def test_bad_starts_are_named(
    http: httpx.Client, console: Running, body: dict, status: int, parameter: str | None
) -> None:
    before = sorted(p.name for p in (console.data / "recordings").iterdir())
    r = http.post("/api/replays", json=body, headers=console.headers("operator"))
    assert r.status_code == status, r.text
    if parameter is not None:
        assert r.json()["parameter"] == parameter
    assert sorted(p.name for p in (console.data / "recordings").iterdir()) == before
    assert not (console.data.parent / "escape").exists()


def test_unknown_replay_is_404(http: httpx.Client, console: Running) -> None:
    h = console.headers("operator")
    assert http.get("/api/replays/nope", headers=h).status_code == 404
    assert http.post("/api/replays/nope/pause", headers=h).status_code == 404


def test_shutdown_stops_a_running_replay_and_seals_what_it_took(
    console: Running, tmp_path: Path, topic_root: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(console.data / "recordings" / "rover", data / "recordings" / "rover")
    tokens_file = tmp_path / "tokens.yaml"
    token = create_token(tokens_file, "desk", "operator")
    h = {"Authorization": f"Bearer {token}"}
    with serving(data, tokens_file, topic_root) as (url, _):
        r = httpx.post(f"{url}/api/replays", json={"recording": "rover", "speed": 1, "to": "cut"},
                       headers=h, timeout=10)  # fmt: skip
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 15
        while httpx.get(f"{url}/api/replays", headers=h).json()["replays"][0]["sent"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    rec = read_recording(data / "recordings" / "cut")
    assert rec.extra["stopped"] is True and "error" not in rec.extra
    got = raw_packets(rec.path, console.catalog)
    want = raw_packets(data / "recordings" / "rover", console.catalog)
    assert 2 <= rec.packets[A] == len(got[A]) < 50
    assert got[A] == want[A][: len(got[A])]


def test_a_replay_whose_broker_is_gone_can_still_be_stopped(
    console: Running, tmp_path: Path, free_port: int
) -> None:
    data = tmp_path / "data"
    shutil.copytree(console.data / "recordings" / "rover", data / "recordings" / "rover")
    tokens_file = tmp_path / "tokens.yaml"
    h = {"Authorization": f"Bearer {create_token(tokens_file, 'desk', 'operator')}"}
    broker = start_plain_mosquitto(tmp_path, free_port)
    try:
        with serving(data, tokens_file, "gone", ("127.0.0.1", free_port)) as (url, _):
            broker.terminate()
            broker.wait(5)
            r = httpx.post(f"{url}/api/replays", json={"recording": "rover", "to": "nowhere"},
                           headers=h, timeout=10)  # fmt: skip
            assert r.status_code == 201, r.text
            rid = r.json()["id"]
            time.sleep(1.0)  # the replay's ingestor keeps trying to connect
            doc = httpx.get(f"{url}/api/replays/{rid}", headers=h).json()
            assert (doc["state"], doc["sent"]) == ("running", 0)
            assert httpx.post(f"{url}/api/replays/{rid}/stop", headers=h).status_code == 200
            deadline = time.monotonic() + 15
            while doc["state"] == "stopping" or doc["state"] == "running":
                assert time.monotonic() < deadline, doc
                time.sleep(0.05)
                doc = httpx.get(f"{url}/api/replays/{rid}", headers=h).json()
            assert (doc["state"], doc["sent"], doc["packets"]) == ("stopped", 0, 0), doc
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait()
    rec = read_recording(data / "recordings" / "nowhere")
    assert rec.extra["stopped"] is True and rec.packets == {}
