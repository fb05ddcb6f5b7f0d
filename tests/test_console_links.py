# ruff: noqa: F811  (pytest fixtures imported from test_console)
"""GET /api/links (the links and ingest view) on a real uvicorn fed by the real Mosquitto:
each role gets what it may (a partner its own instruments and lanes, operators the shards,
viewers a 403), rates come from the counters the ingestors publish, a stale shard or a
silent instrument is marked, bad parameters are 4xx naming them. The rate arithmetic itself
(windows, held values, resets) is tested on ``Counters`` at the end."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ilrs_ops.console._rates import Counters
from ilrs_ops.wire import InstrumentStatus
from tests.test_console import (  # noqa: F401 (fixtures)
    ROLES,
    A,
    B,
    Running,
    console,
    http,
    publish,
)


def status(console: Running, iid: str, packets: int, age_s: float = 0.0, **more: int) -> tuple:
    """A live (not retained) status document of ``iid``, its last packet ``age_s`` ago."""
    inst = console.catalog.instruments[iid]
    st = InstrumentStatus(inst, last_recv_s=time.time() - age_s, last_time_ns=time.time_ns())
    st.packets, st.bytes, st.rejects = packets, packets * 40, {"duplicate": 2, "bad_crc": 1}
    for k, v in more.items():
        setattr(st, k, v)
    p = inst.profile
    return f"{console.root}/status/{p.partner}/{iid}", st.to_json(), False


def metrics(console: Running, **lane: object) -> tuple:
    """A live metrics document of shard 0, taken now, with lane A (``lane`` overrides)."""
    doc = {
        "shard": "0/1", "connected": lane.pop("connected", True), "unacked": 5,
        "receive_maximum": 5000, "read_paused": False, "read_pauses": 0,
        "updated": lane.pop("updated", time.time()), "rejects": {"duplicate": 4},
        "lanes": {A: {"queue": 3, "lag_s": 0.02, "behind_s": 0.5, "commit_s": 0.001,
                      "messages": 10, "batches": 2, "seals": 1, "store_errors": 0,
                      "store_failing": False} | lane,
                  "_unknown": {"queue": 0, "messages": 1}},
    }  # fmt: skip
    return f"{console.root}/metrics/ingest/0", json.dumps(doc).encode(), False


def links(http: httpx.Client, console: Running, role: str = "operator", **params: object):
    return http.get("/api/links", headers=console.headers(role), params=params)


def wait_for(http, console, check, role: str = "operator", **params: object) -> dict:
    """The view once ``check(view)`` holds (the console takes MQTT messages asynchronously)."""
    deadline = time.monotonic() + 10
    while True:
        r = links(http, console, role, **params)
        assert r.status_code == 200, r.text
        doc = r.json()
        if check(doc) or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


def row(doc: dict, iid: str) -> dict:
    return next(i for i in doc["instruments"] if i["instrument"] == iid)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_what_it_may(console: Running, http: httpx.Client, role: str) -> None:
    publish([status(console, A, 400), status(console, B, 400), metrics(console)])
    r = links(http, console, role)
    if role in ("anonymous", "viewer"):
        assert r.status_code == {"anonymous": 401, "viewer": 403}[role]
        if role == "viewer":
            assert "viewers see station status only" in r.json()["detail"]
        return
    doc = wait_for(http, console, lambda d: d["lanes"] or role == "partner_b", role)
    ids = {i["instrument"] for i in doc["instruments"]}
    lanes = {(lane["shard"], lane["lane"]) for lane in doc["lanes"]}
    if role == "operator":
        assert ids == set(console.catalog.instruments)
        assert lanes == {("0", A), ("0", "_unknown")}
        assert [s["shard"] for s in doc["shards"]] == ["0"]
        assert doc["shards"][0]["unacked"] == 5 and doc["shards"][0]["rejects"] == {"duplicate": 4}
    else:
        own = "suparco" if role == "partner_a" else "cnsa"
        assert ids == {i.id for i in console.catalog if i.profile.partner == own}
        assert lanes == ({("0", A)} if own == "suparco" else set())  # never another's lane
        assert doc["shards"] is None  # shard totals mix every partner's traffic
    never = [i for i in doc["instruments"] if i["instrument"] not in (A, B)]
    assert never or role == "partner_a"  # suparco has one instrument
    assert all(i["silent"] == "offline" and i["packets"] == 0 for i in never)
    assert all(i["packets_per_s"] is None for i in never)


def test_counters_ages_and_apids_are_the_ingestors(console: Running, http: httpx.Client) -> None:
    publish([status(console, A, 500, age_s=0.5, gaps=3, missing=7), metrics(console)])
    doc = wait_for(http, console, lambda d: row(d, A)["packets"] == 500)
    a = row(doc, A)
    inst = console.catalog.instruments[A]
    assert a["apid"] == inst.profile.apid and a["partner"] == "suparco"
    assert (a["packets"], a["bytes"], a["gaps"], a["missing"]) == (500, 20000, 3, 7)
    assert a["rejects"] == {"bad_crc": 1, "duplicate": 2} and a["rejects_total"] == 3
    assert 0.4 < a["last_packet_age_s"] < 3 and a["silent"] is None
    assert a["last_recv_time"].endswith("Z") and a["shard"] == "0"
    lane = next(x for x in doc["lanes"] if x["lane"] == A)
    assert (lane["queue"], lane["lag_s"], lane["messages"], lane["state"]) == (3, 0.02, 10, "ok")
    assert lane["instrument"] == A
    unknown = next(x for x in doc["lanes"] if x["lane"] == "_unknown")
    assert unknown["instrument"] is None
    # /metrics says the same counters.
    text = http.get("/metrics", headers=console.headers("operator")).text
    assert f'ilrs_instrument_gaps_total{{instrument="{A}",partner="suparco"}} 3' in text
    assert f'ilrs_instrument_missing_packets_total{{instrument="{A}",partner="suparco"}} 7' in text
    # An instrument silent for more than three periods is marked stale, for thirty offline.
    period = inst.profile.expected_period_s
    publish([status(console, A, 500, age_s=5 * period)])
    assert wait_for(http, console, lambda d: row(d, A)["silent"] == "stale")
    publish([status(console, A, 500, age_s=40 * period)])
    doc = wait_for(http, console, lambda d: row(d, A)["silent"] == "offline")
    assert row(doc, A)["health"] == "offline"


@pytest.mark.parametrize(
    ("change", "state"),
    [
        ({"updated": time.time() - 60}, "stale"),  # its ingestor stopped publishing
        ({"connected": False}, "disconnected"),
        ({"store_failing": True, "store_errors": 4}, "store_failing"),
        ({}, "ok"),
    ],
)
def test_a_lane_is_marked_by_its_shard(console: Running, http: httpx.Client, change, state):
    publish([metrics(console, **change)])
    doc = wait_for(http, console, lambda d: any(x["state"] == state for x in d["lanes"]))
    lane = next(x for x in doc["lanes"] if x["lane"] == A)
    assert lane["state"] == state, lane
    assert doc["shards"][0]["state"] == {"store_failing": "ok"}.get(state, state)
    if state == "stale":
        assert lane["age_s"] > doc["shard_stale_after_s"]


def test_rates_come_from_the_counters(console: Running, http: httpx.Client) -> None:
    """Status documents 0.1 s apart, each 10 packets on: about 100 packets/s over the last 2 s
    (and 4000 bytes/s); a lane's messages counter likewise; then nothing: the rate falls to 0."""
    step, n = 0.1, 30
    began = time.monotonic()
    for k in range(n):
        publish([status(console, B, 10_000 + 10 * k)])
        if k % 5 == 0:
            publish([metrics(console, messages=1000 + 10 * k)])
        time.sleep(step)
    interval = (time.monotonic() - began) / n
    doc = links(http, console, window=2).json()
    b = row(doc, B)
    want = 10 / interval
    assert 0.65 * want < b["packets_per_s"] < 1.35 * want, (b["packets_per_s"], want)
    assert b["bytes_per_s"] == pytest.approx(40 * b["packets_per_s"])
    lane = next(x for x in doc["lanes"] if x["lane"] == A)
    assert 0.5 * want < lane["messages_per_s"] < 1.5 * want, (lane["messages_per_s"], want)
    time.sleep(2.2)  # the counter holds: no packets in the last 2 s
    assert row(links(http, console, window=2).json(), B)["packets_per_s"] == 0.0


@pytest.mark.parametrize(
    ("role", "params", "status", "names"),
    [
        ("operator", {"window": 0}, 400, "window"),
        ("operator", {"window": 1.5}, 400, "window"),
        ("operator", {"window": 301}, 400, "window"),
        ("operator", {"window": "nan"}, 400, "window"),
        ("operator", {"window": "soon"}, 422, "window"),
        ("operator", {"partner": "atlantis"}, 400, "partner"),
        ("operator", {"instrument": "no-such-thing"}, 404, "id"),
        ("partner_a", {"instrument": B}, 403, None),
    ],
)
def test_bad_parameters_are_named(console, http, role, params, status, names) -> None:
    r = links(http, console, role, **params)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["parameter"] == names
        assert "use 2..300 s" in r.text or "atlantis" in r.text
    elif status == 422:
        assert any(d["loc"][-1] == names for d in r.json()["detail"])


def test_filters_narrow_the_view(console: Running, http: httpx.Client) -> None:
    publish([metrics(console)])
    doc = links(http, console, partner="cnsa").json()
    assert {i["partner"] for i in doc["instruments"]} == {"cnsa"}
    assert doc["lanes"] == []  # lane A is suparco's; the unknown lane only when unfiltered
    doc = links(http, console, instrument=f"{A},{B}").json()
    assert [i["instrument"] for i in doc["instruments"]] == [B, A]  # by partner, then id
    assert [x["lane"] for x in doc["lanes"]] == [A]


def test_openapi_documents_the_route(console: Running, http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    op = spec["paths"]["/api/links"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"instrument", "partner", "window"}
    assert {"200", "400", "403", "404"} <= set(op["responses"])
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/Links")
    assert "packets_per_s" in spec["components"]["schemas"]["InstrumentLink"]["properties"]


# ---------------------------------------------------------------------- the rate arithmetic


def test_a_rate_is_the_increase_over_the_window() -> None:
    c = Counters()
    key = ("instrument", "x", "packets")
    assert c.rate(key, 100.0, 10) is None  # never seen
    c.observe(key, 100.0, 50)
    assert c.rate(key, 100.5, 10) is None  # too short to tell
    for t in range(101, 111):
        c.observe(key, float(t), 50 + 5 * (t - 100))  # 5 per second
    assert c.rate(key, 110.0, 10) == pytest.approx(5.0)
    assert c.rate(key, 110.0, 4) == pytest.approx(5.0)
    # Nothing new: the counter holds its value, the rate falls as the window moves on.
    assert c.rate(key, 115.0, 10) == pytest.approx(25 / 10)
    assert c.rate(key, 121.0, 10) == 0.0
    # A reset (an ingestor restarted): the new count is the increase, not a negative one.
    c.observe(key, 122.0, 3)
    assert c.rate(key, 122.0, 10) == pytest.approx(3 / 10)
    # Not a number: ignored; forget drops the series.
    c.observe(key, 123.0, "lots")
    c.observe(key, 123.0, True)
    assert c.rate(key, 123.0, 10) == pytest.approx(3 / 10)
    c.forget(lambda k: k[1] == "x")
    assert c.rate(key, 123.0, 10) is None


def test_old_samples_are_let_go_but_the_base_stays() -> None:
    c = Counters(keep_s=30.0)
    key = ("lane", "0", "a", "messages")
    for t in range(0, 100):
        c.observe(key, float(t), t)
    assert len(c._series[key]) == 31  # the horizon's base and the 30 s after it
    assert c.rate(key, 99.0, 30) == pytest.approx(1.0)
