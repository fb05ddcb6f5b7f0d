# ruff: noqa: F811  (pytest fixtures imported from test_console)
"""Dashboards on a real uvicorn (GET/POST /api/dashboards, GET/PUT/DELETE
/api/dashboards/{id}): create, read, replace and delete with every role; a partner makes and
sees only dashboards of its own instruments, a viewer sees shared ones and changes none; an
unknown instrument or channel is a 422 naming the widget's field and the known names; a save
against a stale version is a 409; every change is in the audit trail; files on disk are JSON."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

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


def board(name: str, *insts: str, visibility: str = "shared") -> dict[str, Any]:
    """A dashboard body: a value and a plot widget per instrument, and an alarm list."""
    channels = {A: "batt_v", B: "batt_v"}
    widgets: list[dict[str, Any]] = []
    for k, iid in enumerate(insts):
        widgets.append({"kind": "value", "instrument": iid, "channel": channels[iid],
                        "x": 0, "y": 3 * k, "w": 3, "h": 2})  # fmt: skip
        widgets.append({"kind": "plot", "instrument": iid, "channel": channels[iid],
                        "x": 3, "y": 3 * k, "w": 6, "h": 3})  # fmt: skip
    widgets.append({"kind": "alarms", "x": 9, "y": 0, "w": 3, "h": 4})
    return {"name": name, "visibility": visibility, "widgets": widgets}


def make(http: httpx.Client, console: Running, role: str, body: dict[str, Any]) -> dict:
    r = http.post("/api/dashboards", headers=console.headers(role), json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_crud_round_trip_is_durable_and_audited(console: Running, http: httpx.Client) -> None:
    op = console.headers("operator")
    made = make(http, console, "operator", board("Power", A, B))
    assert made["version"] == 1 and made["owner"] == "desk" and len(made["widgets"]) == 5
    path = console.data / "dashboards" / f"{made['id']}.json"
    assert json.loads(path.read_text())["name"] == "Power"  # stored as JSON in the data folder
    got = http.get(f"/api/dashboards/{made['id']}", headers=op).json()
    assert got == made
    listed = http.get("/api/dashboards", headers=op).json()["dashboards"]
    entry = next(d for d in listed if d["id"] == made["id"])
    assert entry["widgets"] == 5 and entry["instruments"] == sorted({A, B})

    body = board("Power bus", A) | {"version": 1}
    r = http.put(f"/api/dashboards/{made['id']}", headers=op, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["name"] == "Power bus"
    assert len(http.get(f"/api/dashboards/{made['id']}", headers=op).json()["widgets"]) == 3

    r = http.delete(f"/api/dashboards/{made['id']}", headers=op, params={"version": 2})
    assert r.status_code == 200, r.text
    assert http.get(f"/api/dashboards/{made['id']}", headers=op).status_code == 404
    assert not path.exists()

    trail = http.get("/api/audit", headers=op, params={"kind": "dashboard"}).json()["actions"]
    mine = [a for a in trail if a["detail"]["dashboard"] == made["id"]]
    actions = [(a["instrument"], a["detail"]["action"]) for a in mine]
    assert sorted(actions) == sorted(
        [(A, "create"), (B, "create"), (A, "update"), (B, "update"), (A, "delete")]
    )
    assert {a["who"] for a in mine} == {"desk"}


def test_a_stale_version_is_a_409(console: Running, http: httpx.Client) -> None:
    op = console.headers("operator")
    made = make(http, console, "operator", board("Rover", A))
    url = f"/api/dashboards/{made['id']}"
    assert http.put(url, headers=op, json=board("first", A) | {"version": 1}).status_code == 200
    late = http.put(url, headers=op, json=board("second", A) | {"version": 1})
    assert late.status_code == 409, late.text
    assert late.json()["parameter"] == "version" and "version 2" in late.json()["detail"]
    assert http.get(url, headers=op).json()["name"] == "first"  # the first save stands
    assert http.delete(url, headers=op, params={"version": 1}).status_code == 409
    no_version = http.put(url, headers=op, json=board("third", A))
    assert no_version.status_code == 422 and no_version.json()["parameter"] == "version"
    assert http.delete(url, headers=op, params={"version": 2}).status_code == 200


def test_concurrent_saves_of_one_version_keep_exactly_one(console: Running) -> None:
    op = console.headers("operator")
    with httpx.Client(base_url=console.url, timeout=10) as http:
        made = make(http, console, "operator", board("Race", A))
    url = f"/api/dashboards/{made['id']}"

    def save(k: int) -> int:
        with httpx.Client(base_url=console.url, timeout=10) as c:
            return c.put(url, headers=op, json=board(f"writer {k}", A) | {"version": 1}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(save, range(8)))
    assert codes == [200] + [409] * 7
    with httpx.Client(base_url=console.url, timeout=10) as http:
        assert http.get(url, headers=op).json()["version"] == 2
        assert http.delete(url, headers=op).status_code == 200


@pytest.mark.parametrize(
    ("widget", "parameter", "says"),
    [
        ({"kind": "value", "instrument": "atlantis", "channel": "x"}, "widgets.0.instrument",
         "sup-rover-1"),
        ({"kind": "plot", "instrument": A, "channel": "warp"}, "widgets.0.channel", "batt_v"),
    ],
)  # fmt: skip
def test_unknown_instrument_or_channel_is_a_422_naming_it(
    console: Running, http: httpx.Client, widget: dict, parameter: str, says: str
) -> None:
    r = http.post("/api/dashboards", headers=console.headers("operator"),
                  json={"name": "bad", "widgets": [widget]})  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["parameter"] == parameter
    assert says in r.json()["detail"] and parameter.replace(".0.", "[0].") in r.json()["detail"]


@pytest.mark.parametrize(
    ("widget", "field"),
    [
        ({"kind": "gauge", "instrument": A, "channel": "batt_v"}, "kind"),
        ({"kind": "value", "instrument": A}, "a value widget names an instrument and a channel"),
        ({"kind": "plot", "instrument": A, "channel": "batt_v", "x": 10, "w": 4}, "x + w"),
        ({"kind": "value", "instrument": A, "channel": "batt_v", "h": 0}, "h"),
        ({"kind": "alarms", "channel": "batt_v"}, "takes no channel"),
    ],
)
def test_bad_widgets_are_422s_that_say_what(console, http, widget, field) -> None:
    r = http.post("/api/dashboards", headers=console.headers("operator"),
                  json={"name": "bad", "widgets": [widget]})  # fmt: skip
    assert r.status_code == 422, r.text
    assert field in r.text


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_and_changes_what_it_may(console, http, role) -> None:
    ops = make(http, console, "operator", board("Station", A, B))
    ours = make(http, console, "operator", board("Rover only", A))
    hidden = make(http, console, "operator", board("Mine", A, visibility="private"))
    h = console.headers(role)
    r = http.get("/api/dashboards", headers=h)
    if role == "anonymous":
        assert r.status_code == 401
        assert http.post("/api/dashboards", json=board("x", A)).status_code == 401
        return
    seen = {d["id"] for d in r.json()["dashboards"]}
    expect = {
        "operator": {ops["id"], ours["id"], hidden["id"]},
        "viewer": {ops["id"], ours["id"]},
        "partner_a": {ours["id"]},  # suparco reads A only
        "partner_b": set(),  # cnsa reads B, not A
    }[role]
    assert seen & {ops["id"], ours["id"], hidden["id"]} == expect
    for b in (ops, ours, hidden):
        code = http.get(f"/api/dashboards/{b['id']}", headers=h).status_code
        assert code == (200 if b["id"] in expect else 404)

    own = board("Own", A) if role != "partner_b" else board("Own", B)
    r = http.post("/api/dashboards", headers=h, json=own)
    if role == "viewer":
        assert r.status_code == 403
        assert http.put(f"/api/dashboards/{ours['id']}", headers=h,
                        json=board("v", A) | {"version": 1}).status_code == 403  # fmt: skip
        return
    assert r.status_code == 201, r.text
    mine = r.json()
    if role.startswith("partner"):
        other = board("Other", B) if role == "partner_a" else board("Other", A)
        refused = http.post("/api/dashboards", headers=h, json=other)
        assert refused.status_code == 403, refused.text
        # another's dashboard, even one it sees, is not its to change
        if role == "partner_a":
            r = http.put(f"/api/dashboards/{ours['id']}", headers=h,
                         json=board("taken", A) | {"version": 1})  # fmt: skip
            assert r.status_code == 403
            assert http.delete(f"/api/dashboards/{ours['id']}", headers=h).status_code == 403
        else:  # one it does not see is not there at all: 404, not 403
            r = http.put(f"/api/dashboards/{ours['id']}", headers=h,
                         json=board("taken", B) | {"version": 1})  # fmt: skip
            assert r.status_code == 404
            assert http.delete(f"/api/dashboards/{ours['id']}", headers=h).status_code == 404
    r = http.put(f"/api/dashboards/{mine['id']}", headers=h,
                 json=own | {"name": "Own 2", "version": 1})  # fmt: skip
    assert r.status_code == 200, r.text
    assert http.delete(f"/api/dashboards/{mine['id']}", headers=h).status_code == 200
    op = console.headers("operator")
    for b in (ops, ours, hidden):
        http.delete(f"/api/dashboards/{b['id']}", headers=op)


def test_an_id_that_cannot_be_a_file_is_a_404(console: Running, http: httpx.Client) -> None:
    r = http.get("/api/dashboards/..%2F..%2Ftokens", headers=console.headers("operator"))
    assert r.status_code == 404
