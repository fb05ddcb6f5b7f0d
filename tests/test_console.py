"""The console on a real uvicorn, over a store written by the real pipelines and live state from
the real Mosquitto: every route and the WebSocket walked with every role, bad parameters,
streamed exports, metrics. Unit tests of tokens, settings and fan-out are at the end."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import uvicorn
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ilrs_ops.console import (
    Access,
    ConsoleError,
    ConsoleSettings,
    Principal,
    StationState,
    Tokens,
    UnavailableError,
    Update,
    _export,
    create_app,
    create_token,
)
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.sim import Faults
from ilrs_ops.wire import InstrumentStatus
from tests.conftest import MOSQUITTO, ROOT
from tests.test_store import ingest, make_batches

NS = 1_000_000_000
A, B = "sup-rover-1", "cnsa-eps"  # partner A: suparco, partner B: cnsa
ROLES = ("anonymous", "viewer", "partner_a", "partner_b", "operator")


@dataclass
class Running:
    url: str
    root: str
    tokens: dict[str, str | None]
    catalog: Catalog
    data: Path
    start_ns: int
    stop_ns: int
    app: object

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def ws_url(self, role: str, query: str = "") -> str:
        token = self.tokens[role]
        params = [p for p in (query, f"token={token}" if token else "") if p]
        return self.url.replace("http", "ws", 1) + "/api/live?" + "&".join(params)


def role_tokens(tokens_file: Path) -> dict[str, str | None]:
    """One token per role the access tests walk (made in ``tokens_file``), and no token."""
    return {
        "anonymous": None,
        "viewer": create_token(tokens_file, "wall", "viewer"),
        "partner_a": create_token(tokens_file, "suparco-ops", "partner", "suparco"),
        "partner_b": create_token(tokens_file, "cnsa-ops", "partner", "cnsa"),
        "operator": create_token(tokens_file, "desk", "operator"),
    }


def publish(messages: list[tuple[str, bytes, bool]]) -> None:
    async def go() -> None:
        async with aiomqtt.Client(*MOSQUITTO) as client:
            for topic, payload, retain in messages:
                await client.publish(topic, payload, qos=1, retain=retain)

    asyncio.run(go())


def event(instrument: str, partner: str, root: str, t_ns: int) -> tuple[str, bytes, bool]:
    doc = {"time_ns": t_ns, "kind": "limit", "channel": "batt_v", "from_state": 0,
           "to_state": 2, "value": 21.5, "detail": None, "instrument": instrument}  # fmt: skip
    return f"{root}/events/{partner}/{instrument}", json.dumps(doc).encode(), False


def status_doc(catalog: Catalog, instrument: str, packets: int) -> bytes:
    inst = catalog.instruments[instrument]
    st = InstrumentStatus(inst, last_recv_s=time.time(), last_time_ns=time.time_ns())
    st.latest = {name: 1.5 for name in inst.channels[:3]}
    st.states = {inst.channels[1]: 1}
    st.packets, st.bytes, st.rejects = packets, packets * 40, {"duplicate": 2}
    return st.to_json()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("console")
    root = f"test/test_console-{os.getpid()}"
    catalog = load_catalog([ROOT / "hardware_profiles"])
    start_ns = (time.time_ns() // NS - 1200) // 60 * 60 * NS
    with History.at(tmp / "data", catalog) as store:
        for k, iid in enumerate((A, B)):
            batches = make_batches(
                catalog.instruments[iid], 10, per_batch=40, start_ns=start_ns, seed=k + 3,
                faults=Faults(limit=0.03, limit_s=3.0),
            )  # fmt: skip
            ingest(store, catalog.instruments[iid], batches, seal_every=4)  # 2 batches in WAL
    tokens_file = tmp / "tokens.yaml"
    tokens = role_tokens(tokens_file)
    metrics = {"shard": "0/1", "connected": True, "rejects": {"duplicate": 4},
               "lanes": {A: {"queue": 3, "lag_s": 0.02, "commit_s": 0.001, "messages": 10,
                             "batches": 2, "seals": 1, "store_errors": 0}}}  # fmt: skip
    retained = [
        (f"{root}/status/suparco/{A}", status_doc(catalog, A, 400), True),
        (f"{root}/status/cnsa/{B}", status_doc(catalog, B, 400), True),
        (f"{root}/metrics/ingest/0", json.dumps(metrics).encode(), True),
    ]
    publish(retained)
    settings = ConsoleSettings(
        broker_host=MOSQUITTO[0], broker_port=MOSQUITTO[1], root=root, data=tmp / "data",
        profiles=ROOT / "hardware_profiles", tokens=tokens_file,
    )  # fmt: skip
    app = create_app(settings)

    async def flood(n: int) -> dict:  # a burst of updates within one turn of the server loop
        state = app.state.console.state
        for _ in range(n):
            state.publish(Update("status", A, "suparco", {}))
        return {"dropped": state.clients_dropped}

    app.add_api_route("/_test/flood", flood)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    state: StationState = app.state.console.state
    deadline = time.monotonic() + 15
    while not (server.started and len(state.status) == 2 and state.metrics):
        assert time.monotonic() < deadline, "console did not start or got no live state"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(
            f"http://127.0.0.1:{port}", root, tokens, catalog, tmp / "data", start_ns,
            start_ns + 400 * NS, app,
        )  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(10)
        publish([(t, b"", True) for t, _, _ in retained])  # leave no retained clutter


@pytest.fixture(scope="module")
def http(console: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        yield client


# ---------------------------------------------------------------------- every role, every route


def expected(role: str, instrument: str | None) -> int:
    """The HTTP status a role gets for a data route of ``instrument`` (None: station-wide)."""
    if role == "anonymous":
        return 401
    if role == "operator":
        return 200
    if role == "viewer":
        return 403
    own = A if role == "partner_a" else B
    return 200 if instrument in (own, None) else 403


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_it_may(console: Running, http: httpx.Client, role: str):
    h = console.headers(role)
    assert http.get("/healthz").status_code == 200

    # Who the token is (the page's header says it): name, role and partner, as the file has it.
    me = http.get("/api/me", headers=h)
    if role == "anonymous":
        assert me.status_code == 401
    else:
        assert me.status_code == 200, me.text
        want = {"viewer": ("wall", "viewer", None), "operator": ("desk", "operator", None),
                "partner_a": ("suparco-ops", "partner", "suparco"),
                "partner_b": ("cnsa-ops", "partner", "cnsa")}[role]  # fmt: skip
        doc = me.json()
        assert (doc["name"], doc["role"], doc["partner"]) == want
        assert doc["sees"] and doc["simulation"] is None  # a real station: nothing simulated

    # Station status: tiles for everyone with a token; values only where the data is theirs.
    r = http.get("/api/status", headers=h)
    if role == "anonymous":
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    else:
        assert r.status_code == 200, r.text
        tiles = {t["instrument"]: t for p in r.json()["partners"] for t in p["instruments"]}
        partners = {t["partner"] for t in tiles.values()}
        if role in ("viewer", "operator"):
            assert set(tiles) == set(console.catalog.instruments)
        else:
            own = "suparco" if role == "partner_a" else "cnsa"
            assert partners == {own}
            assert set(tiles) == {i.id for i in console.catalog if i.profile.partner == own}
        for iid, tile in tiles.items():
            if role == "viewer":
                assert tile["values"] is None
            if iid not in (A, B):
                assert tile["health"] == "offline" and tile["packets"] == 0
        heard = [i for i in (A, B) if i in tiles]
        assert heard
        for iid in heard:
            assert tiles[iid]["packets"] == 400
            assert tiles[iid]["health"] in ("warning", "stale", "offline")
            if role != "viewer":
                values = tiles[iid]["values"]
                assert values and all("units" in v and "state" in v for v in values.values())

    for iid in (A, B):
        want = expected(role, iid)
        assert http.get(f"/api/instruments/{iid}", headers=h).status_code == want
        tm = http.get(f"/api/instruments/{iid}/telemetry", headers=h,
                      params={"start": console.start_ns, "stop": console.stop_ns})  # fmt: skip
        assert tm.status_code == want, tm.text
        if want == 200:
            assert len(tm.json()["columns"]["time"]) > 300
        ex = http.get(f"/api/instruments/{iid}/export", headers=h,
                      params={"format": "csv", "start": console.start_ns})  # fmt: skip
        assert ex.status_code == want
        ev = http.get("/api/events", headers=h, params={"instrument": iid,
                      "start": console.start_ns})  # fmt: skip
        assert ev.status_code == want

    # Events without an instrument: what the role may read, nothing else.
    ev = http.get("/api/events", headers=h, params={"start": console.start_ns})
    assert ev.status_code == expected(role, None)
    if ev.status_code == 200:
        seen = {e["instrument"] for e in ev.json()["events"]}
        may = {"operator": {A, B}, "partner_a": {A}, "partner_b": {B}}[role]
        assert seen == may  # both have limit excursions, so both have events

    m = http.get("/metrics", headers=h)
    assert m.status_code == {"anonymous": 401, "operator": 200}.get(role, 403)


def recv_all(ws: ClientConnection, seconds: float) -> list[dict]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return out


def test_websocket_is_scoped_like_the_routes(console: Running) -> None:
    refusals = [
        (console.ws_url("anonymous"), 4401),
        (console.ws_url("partner_a", f"instruments={B}"), 4403),
        (console.ws_url("operator", "instruments=nope"), 4404),
    ]
    for url, code in refusals:
        with pytest.raises(ConnectionClosed) as closed, connect(url) as ws:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code

    roles = ("viewer", "partner_a", "partner_b", "operator")
    conns = {role: connect(console.ws_url(role)) for role in roles}
    # The token may come in the Sec-WebSocket-Protocol header instead (what browsers can do).
    conns["header"] = connect(
        console.ws_url("anonymous", f"instruments={A}"),
        subprotocols=["bearer", console.tokens["partner_a"]],  # type: ignore[list-item]
    )
    try:
        snapshots = {role: json.loads(ws.recv(timeout=5)) for role, ws in conns.items()}
        for role, snap in snapshots.items():
            assert snap["type"] == "snapshot"
            ids = {t["instrument"] for t in snap["status"]}
            if role in ("viewer", "operator"):
                assert ids == set(console.catalog.instruments)
            elif role == "header":
                assert ids == {A}
            else:
                own = "suparco" if role == "partner_a" else "cnsa"
                assert {t["partner"] for t in snap["status"]} == {own}
        now = time.time_ns()
        publish([
            (f"{console.root}/status/suparco/{A}", status_doc(console.catalog, A, 400), True),
            event(A, "suparco", console.root, now),
            event(B, "cnsa", console.root, now),
        ])  # fmt: skip
        time.sleep(1.0)  # all five receive meanwhile; then read what each got
        got = {role: recv_all(ws, 0.2) for role, ws in conns.items()}
    finally:
        for ws in conns.values():
            ws.close()

    def kinds(role: str) -> set[tuple[str, str]]:
        return {(m["type"], (m.get("status") or m.get("event"))["instrument"]) for m in got[role]}

    assert kinds("viewer") == {("status", A)}
    assert all(m["status"]["values"] is None for m in got["viewer"])
    assert kinds("partner_a") == {("status", A), ("event", A)}
    assert kinds("header") == {("status", A), ("event", A)}
    assert kinds("partner_b") == {("event", B)}
    assert kinds("operator") == {("status", A), ("event", A), ("event", B)}


def test_a_slow_websocket_client_is_dropped_with_a_close_code(console, http, monkeypatch):
    state = console.app.state.console.state  # type: ignore[attr-defined]
    monkeypatch.setattr(state, "ws_queue", 2)
    before = state.clients_dropped
    with (
        connect(console.ws_url("operator", f"instruments={A}")) as slow,
        connect(console.ws_url("partner_a")) as other,
    ):
        assert json.loads(slow.recv(timeout=5))["type"] == "snapshot"
        assert json.loads(other.recv(timeout=5))["type"] == "snapshot"
        assert http.get("/_test/flood", params={"n": 2}).json()["dropped"] == before
        assert len(recv_all(other, 0.5)) == 2  # kept up: still subscribed
        assert http.get("/_test/flood", params={"n": 50}).json()["dropped"] == before + 2
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                slow.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert state.clients_dropped == before + 2  # both fell 50 behind; nobody was waited for


# ---------------------------------------------------------------------- data and bad input


def test_telemetry_columns_and_buckets_match_the_store(console: Running, http: httpx.Client):
    h = console.headers("operator")
    window = {"start": console.start_ns, "stop": console.stop_ns}
    r = http.get(f"/api/instruments/{A}/telemetry", headers=h,
                 params={**window, "channels": "batt_v,wheel_temp"})  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    with History.at(console.data, console.catalog) as store:
        table = store.query(A, ["batt_v", "wheel_temp"], console.start_ns, console.stop_ns)
        buckets = store.query(A, ["batt_v"], console.start_ns, console.stop_ns, 40)
    assert doc["columns"]["time"] == table.column("time").cast(pa.int64()).to_pylist()
    assert doc["columns"]["batt_v"] == table.column("batt_v").to_pylist()
    assert doc["columns"]["wheel_temp"][0] == table.column("wheel_temp")[0].as_py()
    assert doc["units"]["batt_v"] == "V"

    iso = {"start": "T".join(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(
        console.start_ns // NS)).split()) + "Z", "stop": console.stop_ns}  # fmt: skip
    r = http.get(f"/api/instruments/{A}/telemetry", headers=h,
                 params={**iso, "channels": "batt_v", "max_points": 40})  # fmt: skip
    assert r.status_code == 200, r.text
    cols = r.json()["columns"]
    assert len(cols["time"]) == 40
    assert cols["batt_v__count"] == buckets.column("batt_v__count").to_pylist()
    assert cols["batt_v__mean"] == pytest.approx(buckets.column("batt_v__mean").to_pylist())

    detail = http.get(f"/api/instruments/{A}", headers=h).json()
    assert {c["name"] for c in detail["channels"]} == set(console.catalog.instruments[A].channels)
    batt = next(c for c in detail["channels"] if c["name"] == "batt_v")
    assert batt["units"] == "V" and batt["limits"]["red"]
    assert detail["counters"]["live_batches"] == 2


@pytest.mark.parametrize(
    ("path", "params", "status", "names"),
    [
        ("/api/instruments/nope/telemetry", {}, 404, "nope"),
        (f"/api/instruments/{A}/telemetry", {"channels": "batt_v,warp"}, 400, "channels"),
        (f"/api/instruments/{A}/telemetry", {"start": "20", "stop": "10"}, 400, "start"),
        (f"/api/instruments/{A}/telemetry", {"start": "yesterday"}, 400, "start"),
        (f"/api/instruments/{A}/telemetry", {"max_points": 0}, 400, "max_points"),
        (f"/api/instruments/{A}/telemetry", {"max_points": 10_001}, 400, "max_points"),
        (f"/api/instruments/{A}/telemetry", {"max_points": "many"}, 422, "max_points"),
        (f"/api/instruments/{A}/export", {"format": "xls"}, 422, "format"),
        (f"/api/instruments/{A}/export", {"channels": "warp"}, 400, "channels"),
        (f"/api/instruments/{A}/export", {"start": "0"}, 400, "days per export"),
        (f"/api/instruments/{A}/telemetry", {"start": str(2**64)}, 400, "start"),
        ("/api/events", {"kind": "party"}, 400, "kind"),
        ("/api/events", {"kind": ","}, 200, "events"),  # no kinds named: no filter (was a 503)
        ("/api/events", {"instrument": "nope"}, 404, "nope"),
        ("/api/events", {"start": "2030-01-01T00:00:00Z", "stop": "2020-01-01"}, 400, "start"),
    ],
)
def test_bad_parameters_are_named_never_500(console, http, path, params, status, names):
    r = http.get(path, headers=console.headers("operator"), params=params)
    assert r.status_code == status, r.text
    assert names in r.text


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_export_streams_slices_equal_to_the_query(console, http, monkeypatch, fmt):
    monkeypatch.setattr(_export, "MIN_SLICE_NS", 30 * NS)  # 400 s of data: 14 slices
    monkeypatch.setattr(_export, "CHUNK_ROWS", 10)
    params = {"format": fmt, "channels": "batt_v,wheel_temp", "start": console.start_ns,
              "stop": console.stop_ns}  # fmt: skip
    chunks = 0
    with http.stream("GET", f"/api/instruments/{A}/export", params=params,
                     headers=console.headers("operator")) as r:  # fmt: skip
        assert r.status_code == 200
        assert "attachment" in r.headers["content-disposition"]
        body = b""
        for chunk in r.iter_raw():
            body += chunk
            chunks += 1
    assert chunks > 1
    with History.at(console.data, console.catalog) as store:
        want = store.query(A, ["batt_v", "wheel_temp"], console.start_ns, console.stop_ns)
    if fmt == "parquet":
        got = pq.read_table(io.BytesIO(body))
    elif fmt == "arrow":
        got = ipc.open_stream(body).read_all()
    else:
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(rows) == want.num_rows
        assert [float(r["batt_v [V]"]) for r in rows] == want.column("batt_v").to_pylist()
        assert float(rows[0]["wheel_temp[5] [degC]"]) == want.column("wheel_temp")[0].as_py()[5]
        return
    assert got.equals(want)


def test_export_is_named_by_instrument_and_window_and_its_csv_says_labels_and_units(
    console, http
) -> None:
    """Issue 13: a downloaded file says what it holds; a CSV (read without the profile) has
    each channel's units in its header and an enum's label beside its raw value."""
    params = {"format": "csv", "channels": "mode,batt_v", "start": console.start_ns,
              "stop": console.stop_ns}  # fmt: skip
    r = http.get(f"/api/instruments/{A}/export", params=params, headers=console.headers("operator"))
    assert r.status_code == 200, r.text
    name = re.search(r'filename="([^"]+)"', r.headers["content-disposition"])[1]
    assert name == f"{A}_{_export.stamp(console.start_ns)}_{_export.stamp(console.stop_ns)}.csv"
    assert re.fullmatch(rf"{A}_\d{{8}}T\d{{6}}(\.\d+)?Z_\d{{8}}T\d{{6}}(\.\d+)?Z\.csv", name)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["time", "seq", "mode", "mode__label", "batt_v [V]", "batt_v__state"]
    with History.at(console.data, console.catalog) as store:
        want = store.query(A, ["mode"], console.start_ns, console.stop_ns)
    mode = next(f for f in console.catalog.instruments[A].profile.fields if f.name == "mode")
    enum = mode.enumeration
    assert [int(r["mode"]) for r in rows] == want.column("mode").to_pylist()
    assert [r["mode__label"] for r in rows] == [
        enum.get(v, "") for v in want.column("mode").to_pylist()
    ]
    assert {r["mode__label"] for r in rows} - {""}  # labels, not only blanks


def test_export_with_raw_values(console, http) -> None:
    params = {"format": "arrow", "channels": "batt_v,mode", "raw": "true",
              "start": console.start_ns, "stop": console.stop_ns}  # fmt: skip
    r = http.get(f"/api/instruments/{A}/export", params=params, headers=console.headers("operator"))
    assert r.status_code == 200, r.text
    got = ipc.open_stream(r.content).read_all()
    with History.at(console.data, console.catalog) as store:
        want = store.query(A, ["batt_v", "mode"], console.start_ns, console.stop_ns, raw=True)
    assert got.equals(want)
    assert {"batt_v__raw", "mode__raw"} <= set(got.column_names)
    assert pa.types.is_integer(got.schema.field("batt_v__raw").type)  # counts, not volts


def test_metrics_in_prometheus_text(console: Running, http: httpx.Client) -> None:
    r = http.get("/metrics", headers=console.headers("operator"))
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f'ilrs_instrument_packets_total{{instrument="{A}",partner="suparco"}} 400' in text
    assert f'ilrs_instrument_rejects_total{{instrument="{A}",reason="duplicate"}} 2' in text
    assert f'ilrs_ingest_queue_depth{{shard="0",lane="{A}"}} 3' in text
    assert 'ilrs_instrument_health{instrument="cnsa-relay"} 4' in text
    assert "ilrs_console_broker_connected 1" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_openapi_lists_the_routes(console: Running, http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]  # public, as /docs that reads it
    assert {"/healthz", "/api/status", "/api/events", "/metrics",
            "/api/instruments/{instrument_id}/telemetry"} <= set(paths)  # fmt: skip


# ---------------------------------------------------------------------- units


def test_settings_refuse_to_start_without_tokens_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no tokens file"):
        ConsoleSettings()
    settings = ConsoleSettings(
        tokens=tmp_path / "missing.yaml", profiles=ROOT / "hardware_profiles"
    )
    with pytest.raises(ConsoleError, match=r"missing\.yaml: cannot read"):
        create_app(settings)
    app = create_app(ConsoleSettings(dev=True, profiles=ROOT / "hardware_profiles",
                                     data=tmp_path))  # fmt: skip
    token = app.state.dev_token
    assert token and app.state.console.tokens.principal(token).role == "operator"


@pytest.mark.parametrize("name", ["tokens.yaml", "tokens.json"])
def test_tokens_file_keeps_hashes_only(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    t1 = create_token(path, "desk", "operator")
    t2 = create_token(path, "sup", "partner", "suparco")
    text = path.read_text()
    assert t1 not in text and t2 not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    tokens = Tokens.load(path)
    p = tokens.principal(t2)
    assert p is not None and (p.role, p.partner, p.name) == ("partner", "suparco", "sup")
    assert tokens.principal(t1 + "x") is None and tokens.principal("") is None
    with pytest.raises(ConsoleError, match="exists"):
        create_token(path, "desk", "viewer")
    with pytest.raises(ConsoleError, match="partner id"):
        create_token(path, "nobody", "partner")
    with pytest.raises(ConsoleError, match="takes no partner"):
        create_token(path, "v", "viewer", "cnsa")
    bad = {"tokens": [{"name": "x", "role": "admin", "sha256": "abc"}]}
    path.write_text(json.dumps(bad))  # JSON is YAML too
    with pytest.raises(ConsoleError, match="entry 1"):
        Tokens.load(path)


def test_store_errors_are_503_with_the_message(console: Running, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(console.data, tmp_path / "data")
    for f in (tmp_path / "data" / "telemetry").rglob("*.parquet"):
        f.write_bytes(b"PAR1 this is no parquet file")
    with History.at(tmp_path / "data", console.catalog) as store:
        access = Access(Principal("desk", "operator"), console.catalog, store,
                        StationState("r"))  # fmt: skip
        with pytest.raises(UnavailableError, match="store unavailable") as err:
            access.telemetry(A, "batt_v", str(console.start_ns), str(console.stop_ns), None)
    assert err.value.status == 503


async def test_a_slow_subscriber_is_dropped_and_counted_others_go_on() -> None:
    state = StationState("r", ws_queue=2)
    fast = state.subscribe(lambda u: True)
    slow = state.subscribe(lambda u: True)
    only_b = state.subscribe(lambda u: u.instrument == "b")
    got = []
    for k in range(5):
        state.apply("r/events/p/a", json.dumps({"k": k}).encode())
        got.append(fast.queue.get_nowait())
    assert [u.data["k"] for u in got] == list(range(5))
    assert slow.dropped.is_set() and slow.queue.qsize() == 2
    assert not fast.dropped.is_set() and not only_b.dropped.is_set()
    assert state.clients_dropped == 1 and state.subscribers == 2
    assert state.apply("r/status/p/b", b"not json") is None and state.bad_messages == 1
    update = state.apply("r/status/p/b", b'{"health": "nominal"}')
    assert update == Update("status", "b", "p", {"health": "nominal"})
    assert only_b.queue.get_nowait() == update
    state.apply("r/status/p/b", b"")  # retained status cleared
    assert "b" not in state.status
