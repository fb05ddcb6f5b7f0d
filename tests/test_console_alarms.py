"""Alarms on a real uvicorn over a store written by the real pipelines (with simulated limit
excursions) and live limit events through the real Mosquitto: the lifecycle through every
state, the rebuild after a restart, who may act, the audit trail."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import uvicorn
from websockets.sync.client import ClientConnection, connect

from ilrs_ops.console import AlarmBook, ConsoleSettings, create_app
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.schemas import EVENTS
from ilrs_ops.sim import Faults
from tests.conftest import MOSQUITTO, ROOT
from tests.test_console import publish, role_tokens
from tests.test_store import ingest, make_batches

NS = 1_000_000_000
A, B = "sup-rover-1", "cnsa-eps"  # partner A: suparco, partner B: cnsa
ROLES = ("anonymous", "viewer", "partner_a", "partner_b", "operator")


@dataclass
class Site:
    """A store, a profiles folder and tokens: what a console runs over (several times)."""

    tmp: Path
    root: str
    catalog: Catalog
    tokens: dict[str, str | None]

    @property
    def settings(self) -> ConsoleSettings:
        return ConsoleSettings(
            broker_host=MOSQUITTO[0], broker_port=MOSQUITTO[1], root=self.root,
            data=self.tmp / "data", profiles=self.tmp / "profiles",
            tokens=self.tmp / "tokens.yaml",
        )  # fmt: skip

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}


def make_site(tmp: Path, name: str, excursions: bool = True) -> Site:
    shutil.copytree(ROOT / "hardware_profiles", tmp / "profiles")
    catalog = load_catalog([tmp / "profiles"])
    start_ns = (time.time_ns() // NS - 1200) // 60 * 60 * NS
    with History.at(tmp / "data", catalog) as store:
        for k, iid in enumerate((A, B)):
            batches = make_batches(
                catalog.instruments[iid], 10, per_batch=40, start_ns=start_ns, seed=k + 3,
                faults=Faults(limit=0.03, limit_s=3.0) if excursions else None,
            )  # fmt: skip
            ingest(store, catalog.instruments[iid], batches, seal_every=4)  # 2 batches in WAL
    tokens_file = tmp / "tokens.yaml"
    tokens = role_tokens(tokens_file)
    return Site(tmp, f"test/{name}-{os.getpid()}", catalog, tokens)


@contextlib.contextmanager
def serve(site: Site) -> Iterator[tuple[httpx.Client, Any]]:
    """A console app on a real uvicorn (any free port), followed until it has the broker."""
    app = create_app(site.settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not (server.started and app.state.console.state.connected):
        assert time.monotonic() < deadline, "console did not start or reach the broker"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, app
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def limits(site: Site, instrument: str, channel: str, *states: int) -> None:
    """What an ingestor does with limit transitions: into the store (durable), then published.
    ``states``: the limit states one after another (the first is where it comes from); the
    transitions get the wall clock's time, as live packets would."""
    partner = site.catalog.instruments[instrument].profile.partner
    t = time.time_ns()
    docs = [
        {"time_ns": t + k, "kind": "limit", "channel": channel, "from_state": frm,
         "to_state": to, "value": 40.0 + to, "detail": None}
        for k, (frm, to) in enumerate(itertools.pairwise(states))
    ]  # fmt: skip
    rows = [{**{k: v for k, v in d.items() if k != "time_ns"}, "time": d["time_ns"]} for d in docs]
    with History.at(site.tmp / "data", site.catalog) as store:
        store.store.append_events(instrument, pa.Table.from_pylist(rows, schema=EVENTS))
    topic = f"{site.root}/events/{partner}/{instrument}"
    publish([(topic, json.dumps({**d, "instrument": instrument}).encode(), False) for d in docs])


def alarms(http: httpx.Client, site: Site, role: str = "operator", **params: str) -> list[dict]:
    r = http.get("/api/alarms", headers=site.headers(role), params=params)
    assert r.status_code == 200, r.text
    return r.json()["alarms"]


def alarm_of(http: httpx.Client, site: Site, instrument: str, channel: str) -> dict | None:
    found = [
        a for a in alarms(http, site) if (a["instrument"], a["channel"]) == (instrument, channel)
    ]
    return found[0] if found else None


def comparable(listing: list[dict]) -> list[dict]:
    return sorted(
        ({k: a[k] for k in ("instrument", "channel", "state", "underlying", "severity",
                            "limit_state", "since_ns", "acked_by", "shelved_until_ns")}
         for a in listing),
        key=lambda a: (a["instrument"], a["channel"]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("alarms"), "test_console_alarms")


def test_rebuilt_from_the_stores_excursions(site: Site):
    """The simulated excursions' limit events fold into alarms at start, like a direct fold."""
    expected = AlarmBook()
    with History.at(site.tmp / "data", site.catalog) as store:
        from ilrs_ops.console import rebuild

        n = rebuild(expected, store, site.catalog, 7, time.time_ns())
    assert n > 0, "the simulated excursions made no limit events"
    now = time.time_ns()
    want = {(a.instrument, a.channel): a.state_at(now) for a in expected.alarms()}
    want = {k: v for k, v in want.items() if v is not None}
    assert want, "no alarm left standing by the excursions"
    with serve(site) as (http, _):
        got = {(a["instrument"], a["channel"]): a["state"] for a in alarms(http, site)}
    assert got == want
    assert set(got.values()) <= {"active", "latched"}


def test_lifecycle_restart_access_and_audit(site: Site):
    with serve(site) as (http, _):
        standing = {(a["instrument"], a["channel"]) for a in alarms(http, site)}
        channel = next(c for c in site.catalog.instruments[A].channels if (A, c) not in standing)
        base = f"/api/alarms/{A}/{channel}"
        op = site.headers("operator")

        # Nothing to acknowledge yet: 409; unknown channel: 404.
        assert http.post(base + "/ack", headers=op, json={}).status_code == 409
        assert http.post(f"/api/alarms/{A}/nope/ack", headers=op, json={}).status_code == 404

        # Out of limits: active, severity red.
        limits(site, A, channel, 0, 2)
        a = wait_for(lambda: alarm_of(http, site, A, channel), "the alarm")
        assert (a["state"], a["severity"], a["partner"]) == ("active", "red", "suparco")
        assert [x["channel"] for x in alarms(http, site, state="active", instrument=A)].count(
            channel
        ) == 1
        assert all(x["state"] == "latched" for x in alarms(http, site, state="latched"))

        # Who may act: partner B and the viewer not (403), anonymous 401; partner A may.
        for role, status in (("partner_b", 403), ("viewer", 403), ("anonymous", 401)):
            r = http.post(base + "/ack", headers=site.headers(role), json={"reason": "x"})
            assert r.status_code == status, (role, r.text)
            r = http.post(base + "/shelve", headers=site.headers(role),
                          json={"until": str(time.time_ns() + 60 * NS), "reason": "x"})  # fmt: skip
            assert r.status_code == status, (role, r.text)
        r = http.post(base + "/ack", headers=site.headers("partner_a"), json={"reason": "seen"})
        assert r.status_code == 200, r.text
        assert r.json()["alarm"]["state"] == "acknowledged"
        assert r.json()["event"]["detail"]["who"] == "suparco-ops"
        assert alarm_of(http, site, A, channel)["acked_by"] == "suparco-ops"

        # Back in limits after the ack: cleared, gone from the list.
        limits(site, A, channel, 2, 0)
        wait_for(lambda: alarm_of(http, site, A, channel) is None, "the alarm to clear")

        # Yellow, then red (severity: the worst since the last ack), back in limits unacked:
        # latched at red.
        limits(site, A, channel, 0, 1)
        a = wait_for(lambda: alarm_of(http, site, A, channel), "a new alarm")
        assert (a["state"], a["severity"]) == ("active", "yellow")
        limits(site, A, channel, 1, 2, 0)
        a = wait_for(
            lambda: (x := alarm_of(http, site, A, channel)) and x["state"] == "latched" and x,
            "the latch",
        )
        assert (a["severity"], a["limit_state"]) == ("red", "nominal")

        # Shelved until a time: hidden as shelved, back to latched when the time passes.
        r = http.post(base + "/shelve", headers=op, json={"until": "yesterday", "reason": "r"})
        assert r.status_code == 400
        r = http.post(base + "/shelve", headers=op,
                      json={"until": str(time.time_ns() - NS), "reason": "r"})  # fmt: skip
        assert r.status_code == 400
        until = time.time_ns() + int(1.5 * NS)
        r = http.post(base + "/shelve", headers=op, json={"until": str(until), "reason": "flaky"})
        assert r.status_code == 200, r.text
        a = alarm_of(http, site, A, channel)
        assert (a["state"], a["underlying"], a["shelved_until_ns"]) == ("shelved", "latched", until)
        assert a not in alarms(http, site, state="active,latched")
        wait_for(
            lambda: alarm_of(http, site, A, channel)["state"] == "latched", "the shelf to expire"
        )

        # Shelved for an hour, unshelved early: latched again; a second unshelve is a 409.
        hour = {"until": str(time.time_ns() + 3600 * NS), "reason": "storm"}
        r = http.post(base + "/shelve", headers=op, json=hour)
        assert r.status_code == 200 and r.json()["alarm"]["state"] == "shelved"
        r = http.post(base + "/unshelve", headers=op, json={"reason": "over"})
        assert r.status_code == 200 and r.json()["alarm"]["state"] == "latched"
        assert http.post(base + "/unshelve", headers=op).status_code == 409

        # Out of limits again, shelved for an hour: what a restart must give back.
        limits(site, A, channel, 0, 1)
        wait_for(lambda: alarm_of(http, site, A, channel)["limit_state"] == "yellow", "yellow")
        hour = {"until": str(time.time_ns() + 3600 * NS), "reason": "storm"}
        r = http.post(base + "/shelve", headers=op, json=hour)
        assert r.status_code == 200

        # Scoping of the list: partner A only A, partner B only B, viewer all without values.
        mine = alarms(http, site, "partner_a")
        assert mine and {x["instrument"] for x in mine} == {A}
        assert {x["instrument"] for x in alarms(http, site, "partner_b")} <= {B}
        seen = alarms(http, site, "viewer")
        assert {x["instrument"] for x in seen} == {x["instrument"] for x in alarms(http, site)}
        assert all(x["value"] is None for x in seen)
        assert http.get("/api/alarms").status_code == 401
        r = http.get("/api/alarms", headers=site.headers("partner_b"), params={"instrument": A})
        assert r.status_code == 403
        assert http.get("/api/alarms", headers=op, params={"state": "bogus"}).status_code == 400

        # Audit: operators see every action with who; others 403.
        r = http.get("/api/audit", headers=op)
        assert r.status_code == 200, r.text
        actions = [x for x in r.json()["actions"] if x["channel"] == channel]
        assert [(x["kind"], x["who"]) for x in actions] == [
            ("ack", "suparco-ops"), ("shelve", "desk"), ("shelve", "desk"),
            ("unshelve", "desk"), ("shelve", "desk"),
        ]  # fmt: skip
        assert actions[0]["role"] == "partner" and actions[0]["detail"]["reason"] == "seen"
        for role in ("partner_a", "viewer", "anonymous"):
            assert http.get("/api/audit", headers=site.headers(role)).status_code in (401, 403)

        # The actions are events in the store, readable through /api/events too.
        r = http.get("/api/events", headers=op, params={"instrument": A, "kind": "ack,unshelve"})
        assert r.status_code == 200 and len(r.json()["events"]) == 2
        before = comparable(alarms(http, site))

    # A new app over the same store: the same alarm state.
    with serve(site) as (http, _):
        after = comparable(alarms(http, site))
    assert after == before
    mine = next(a for a in after if a["channel"] == channel)
    assert (mine["state"], mine["underlying"], mine["severity"]) == ("shelved", "active", "red")


def test_actions_and_limit_changes_reach_websocket_clients(tmp_path: Path):
    site = make_site(tmp_path, "test_console_alarms_ws", excursions=False)
    with serve(site) as (http, _):
        url = str(http.base_url).rstrip("/").replace("http", "ws", 1) + "/api/live?token="
        with (
            connect(url + str(site.tokens["operator"])) as op_ws,
            connect(url + str(site.tokens["partner_b"])) as b_ws,
        ):
            assert json.loads(op_ws.recv(5))["type"] == "snapshot"
            assert json.loads(b_ws.recv(5))["type"] == "snapshot"
            limits(site, A, "batt_v", 0, 2)
            got = _next_event(op_ws, "limit")
            assert got["alarm"]["state"] == "active" and got["alarm"]["severity"] == "red"
            r = http.post(f"/api/alarms/{A}/batt_v/ack", headers=site.headers("operator"),
                          json={"reason": "on it"})  # fmt: skip
            assert r.status_code == 200, r.text
            got = _next_event(op_ws, "ack")
            assert got["alarm"]["state"] == "acknowledged" and got["detail"]["who"] == "desk"
            # Partner B sees nothing of A's alarm (its own instruments' events only).
            with pytest.raises(TimeoutError):
                while True:
                    msg = json.loads(b_ws.recv(0.5))
                    assert msg["type"] != "event", msg


def _next_event(ws: ClientConnection, kind: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        msg = json.loads(ws.recv(max(0.01, deadline - time.monotonic())))
        if msg["type"] == "event" and msg["event"]["kind"] == kind:
            return msg["event"]


def test_an_alarm_keeps_the_value_that_tripped_it() -> None:
    """The list shows what tripped an alarm beside the present value: ``trip_value`` is the
    value of the transition that raised it or made it worse, not of the last transition."""
    book = AlarmBook()

    def limit(t: int, to: int, value: float) -> None:
        book.apply(A, {"time_ns": t, "kind": "limit", "channel": "batt_v", "to_state": to,
                       "value": value})  # fmt: skip

    limit(1, 1, 33.5)  # yellow: raised
    limit(2, 2, 35.0)  # red: worse
    limit(3, 1, 33.2)  # better, still out
    alarm = book.get(A, "batt_v")
    assert alarm is not None
    doc = alarm.json(4, "suparco")
    assert (doc["trip_value"], doc["trip_ns"], doc["value"]) == (35.0, 2, 33.2)
    limit(5, 0, 28.0)  # back in limits: latched, still says what tripped it
    assert alarm.json(6, "suparco")["trip_value"] == 35.0
    book.apply(A, {"time_ns": 7, "kind": "ack", "channel": "batt_v", "detail": "{}"})
    assert alarm.json(8, "suparco")["trip_value"] is None  # cleared
