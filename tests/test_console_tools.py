# ruff: noqa: F811  (pytest fixtures imported from test_console)
"""The event log's filters on GET /api/events (partner with instrument, kind and window) and
parameter search (GET /api/search) on a real uvicorn, with every role: a partner finds and
reads only its own instruments, a viewer finds nothing and reads no events, bad values are
400s naming the parameter."""

from __future__ import annotations

import httpx
import pytest

from tests.test_console import (  # noqa: F401 (fixtures)
    ROLES,
    A,
    B,
    Running,
    console,
    http,
)


def test_events_filter_by_partner_and_stay_scoped(console: Running, http: httpx.Client) -> None:
    op = console.headers("operator")
    start = {"start": console.start_ns}
    every = http.get("/api/events", headers=op, params=start).json()["events"]
    assert {e["instrument"] for e in every} == {A, B}
    only = http.get("/api/events", headers=op, params=start | {"partner": "suparco"})
    assert only.status_code == 200, only.text
    assert {e["partner"] for e in only.json()["events"]} == {"suparco"}
    both = http.get("/api/events", headers=op, params=start | {"partner": "suparco,cnsa"})
    assert len(both.json()["events"]) == len(every)
    kinds = http.get("/api/events", headers=op, params=start | {"kind": "limit",
                     "partner": "cnsa"}).json()["events"]  # fmt: skip
    assert kinds and {(e["kind"], e["instrument"]) for e in kinds} == {("limit", B)}
    # A partner asking for another partner's events gets none, not theirs.
    pa_ = console.headers("partner_a")
    other = http.get("/api/events", headers=pa_, params=start | {"partner": "cnsa"})
    assert other.status_code == 200 and other.json()["events"] == []
    own = http.get("/api/events", headers=pa_, params=start | {"partner": "suparco"}).json()
    assert own["events"] and {e["instrument"] for e in own["events"]} == {A}
    # A window before the data: nothing.
    early = {"start": console.start_ns - 7200 * 10**9, "stop": console.start_ns}
    assert http.get("/api/events", headers=op, params=early).json()["events"] == []
    viewer = http.get("/api/events", headers=console.headers("viewer"), params={"partner": "cnsa"})
    assert viewer.status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "parameter", "says"),
    [
        ("/api/events", {"partner": "atlantis"}, "partner", "atlantis"),
        ("/api/events", {"partner": "suparco,atlantis", "kind": "limit"}, "partner", "atlantis"),
        ("/api/search", {"q": "   "}, "q", "a word"),
        ("/api/search", {"q": "batt", "limit": 0}, "limit", "limit"),
        ("/api/search", {"q": "batt", "limit": 501}, "limit", "limit"),
        ("/api/search", {"q": "x" * 201}, "q", "200"),
        ("/api/search", {}, "q", "q"),
    ],
)
def test_bad_filter_values_name_the_parameter(console, http, path, params, parameter, says):
    r = http.get(path, headers=console.headers("operator"), params=params)
    assert r.status_code in (400, 422), r.text
    assert says in r.text
    if r.status_code == 400:
        assert r.json()["parameter"] == parameter
    else:  # FastAPI's own validation: the location names it
        assert any(d["loc"][-1] == parameter for d in r.json()["detail"])


@pytest.mark.parametrize("role", ROLES)
def test_search_finds_only_what_the_role_may_read(console, http, role):
    r = http.get("/api/search", headers=console.headers(role), params={"q": "batt_v"})
    if role == "anonymous":
        assert r.status_code == 401
        return
    assert r.status_code == 200, r.text
    found = {h["instrument"] for h in r.json()["results"]}
    if role == "viewer":
        assert found == set()
    elif role == "partner_a":
        assert A in found and all(console.catalog.instruments[i].profile.partner == "suparco"
                                  for i in found)  # fmt: skip
    elif role == "partner_b":
        assert A not in found
    else:
        assert A in found and B in found


def test_search_by_name_description_and_units(console, http):
    op = console.headers("operator")
    by_name = http.get("/api/search", headers=op, params={"q": "BATT_V"}).json()
    first = by_name["results"][0]
    assert first["channel"] == "batt_v"  # an exact name ranks first
    assert first["units"] == "V" and first["partner"]
    by_desc = http.get("/api/search", headers=op, params={"q": "lander local"}).json()
    assert by_desc["results"], "every word is matched, each anywhere in the channel's text"
    assert all("lander" in (h["description"] or "") for h in by_desc["results"])
    by_units = http.get("/api/search", headers=op, params={"q": "degC"}).json()["results"]
    assert by_units and all((h["units"] or "").lower() == "degc" or "degc" in
                            h["channel"].lower() + (h["description"] or "").lower()
                            for h in by_units)  # fmt: skip
    assert len({h["instrument"] for h in by_units}) > 3
    few = http.get("/api/search", headers=op, params={"q": "degC", "limit": 2}).json()
    assert len(few["results"]) == 2 and few["truncated"] and few["total"] == len(by_units)
    none = http.get("/api/search", headers=op, params={"q": "no-such-thing-anywhere"}).json()
    assert none["results"] == [] and none["total"] == 0
