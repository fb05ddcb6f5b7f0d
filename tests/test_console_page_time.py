# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""The time conductor (issue 13) in real headless Chromium on a real uvicorn, over a store with
an old stretch of rover telemetry (two hours ago) and a recent one, and one event in each: a
typed UTC range puts the page in ARCHIVE, visibly; the history plot's axis, the instrument's
events, the event log, the packet inspector, the audit log and the trend all show that window;
the URL carries it through navigation and a reload; a live event does not enter it; the key r
(and the Realtime button) goes back. A bad typed time is refused inline, by name. A dashboard
shows the archive window (plot) and its last value, marked ARCHIVE, and is live again in
realtime; the channel chosen in an instrument's page is in its URL. Screenshots of both states
(1440x900) go to test-artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyarrow as pa
import pytest

from ilrs_ops.console import create_token
from ilrs_ops.profiles import load_catalog
from ilrs_ops.replay import Recorder, import_packets
from ilrs_ops.schemas import EVENTS
from ilrs_ops.store import Store
from tests.conftest import ROOT
from tests.test_console_page import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CHROMIUM,
    browser,
    login,
    only_local,
    page,
)
from tests.test_console_replay import NS, A, packets, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
expect = sync_api.expect

# The history plot's window as drawn: its first and last x (s) are the window's ends.
ENDS = (
    "() => { const d = document.querySelector('#hist-plot')._plot.data[0];"
    " return [d[0], d.at(-1)]; }"
)
DASH = "\u2013"  # between a window's ends, as the page writes it
FRAMES = "() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))"


@dataclass
class Site:
    url: str
    token: str
    old_s: float  # the old stretch's first packet (60 s of them)
    recent_s: float  # the recent stretch's first packet


def typed(sec: float) -> str:
    """A UTC time as an operator types it: 2026-12-04 00:10:00."""
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S")


def shown(start: float, stop: float) -> str:
    """A window as the time bar writes it: the second date only when the day changes."""
    a, b = typed(start), typed(stop)
    return f"{a} {DASH} {b[11:] if a[:10] == b[:10] else b} UTC"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """sup-rover-1: 60 s of packets two hours ago and 60 s ending 30 s ago; a gap event marked
    "old marker" in the old stretch and one marked "recent marker" in the recent one."""
    tmp = tmp_path_factory.mktemp("page_time")
    catalog = load_catalog([ROOT / "hardware_profiles"])
    now = time.time_ns() // NS * NS
    old, recent = now - 7200 * NS, now - 90 * NS
    file = tmp / "rover.bin"
    file.write_bytes(b"".join(packets(catalog, A, 60, old, seed=1) +
                              packets(catalog, A, 60, recent, seed=2)))  # fmt: skip
    data = tmp / "data"
    with Store(data) as store:
        recorder = Recorder(store, catalog)
        import_packets(file, recorder, catalog.by_apid)
        recorder.close()
        marks = ((old + 30 * NS, "old marker"), (recent + 30 * NS, "recent marker"))
        rows = [{"time": t, "kind": "gap", "channel": None, "from_state": None, "to_state": None,
                 "value": 1.0, "detail": text} for t, text in marks]  # fmt: skip
        store.append_events(A, pa.Table.from_pylist(rows, schema=EVENTS))
    tokens = tmp / "tokens.yaml"
    token = create_token(tokens, "desk", "operator")
    with serving(data, tokens, f"test/page_time-{tmp.name}") as (url, _):
        yield Site(url, token, old / NS, recent / NS)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"time-{name}.png"))


def wait_window(page: Any, start_s: float, stop_s: float) -> None:
    """Until the history plot is drawn over [start_s, stop_s)."""
    page.wait_for_function(
        f"() => {{ const b = document.querySelector('#hist-plot'); if (!b._plot) return false;"
        f" const d = b._plot.data[0]; return Math.abs(d[0] - {start_s}) < 2 &&"
        f" Math.abs(d.at(-1) - {stop_s}) < 2; }}",
        timeout=15_000,
    )


def open_rover(page: Any, site: Site) -> None:
    login(page, site.url, site.token)
    page.click(f'.tile[data-instrument="{A}"]')
    page.select_option("#channel", "batt_v")
    page.wait_for_function(
        "() => Number(document.querySelector('#hist-plot').dataset.points) > 0", timeout=15_000
    )


def test_an_archive_range_drives_every_view_and_the_url_and_r_goes_back(
    page: Any, site: Site
) -> None:
    open_rover(page, site)
    mode = page.locator("#tb-mode")
    expect(mode).to_have_text("REALTIME · last 1 h")
    expect(mode).to_have_attribute("data-mode", "realtime")
    expect(page.locator("#events")).to_contain_text("recent marker")
    shot(page, "realtime")

    start, stop = site.old_s - 300, site.old_s + 600
    page.fill("#tb-start", typed(start))
    page.fill("#tb-stop", typed(stop))
    page.click("#tb-apply")
    expect(mode).to_have_attribute("data-mode", "archive")
    expect(mode).to_have_text(f"ARCHIVE · {shown(start, stop)}")
    expect(page.locator("body")).to_have_attribute("data-time", "archive")
    # the history plot: its axis is the typed window, and the old samples are in it
    wait_window(page, start, stop)
    x0, x1 = page.evaluate(ENDS)
    assert (x0, x1) == (start, stop)
    assert int(page.get_attribute("#hist-plot", "data-points") or 0) >= 50
    # the instrument's events: the window's, not the recent ones
    expect(page.locator("#events-title")).to_have_text("Events in the window")
    expect(page.locator("#events")).to_contain_text("old marker")
    expect(page.locator("#events")).not_to_contain_text("recent marker")
    expect(page.locator("#live-title")).to_have_text("Live (paused: archive)")
    hash_ = page.evaluate("location.hash")
    assert hash_.startswith(f"#/i/{A}/batt_v?start=") and "&stop=" in hash_
    shot(page, "archive")

    # another view keeps the window, in its own URL too: the event log shows the old event only
    page.click("#nav-events")
    expect(page.locator("#eventlog")).to_be_visible()
    assert "start=" in page.evaluate("location.hash")
    expect(page.locator("#ev-mode")).to_have_text("ARCHIVE")
    expect(page.locator("#ev-list")).to_contain_text("old marker")
    expect(page.locator("#ev-list")).not_to_contain_text("recent marker")
    # a live event (as the WebSocket hands it over) does not move the archive window
    page.evaluate("""(iid) => window.dispatchEvent(new CustomEvent("ilrs:event", {detail: {
        kind: "gap", instrument: iid, partner: "suparco", channel: "", detail: "live marker",
        time_ns: Date.now() * 1e6}}))""", A)  # fmt: skip
    page.evaluate(FRAMES)  # painted (the log paints on a frame)
    expect(page.locator("#ev-list")).not_to_contain_text("live marker")
    shot(page, "archive-eventlog")

    # a reload: the same window, from the URL alone
    page.reload()
    page.wait_for_selector(".tile", state="attached", timeout=15_000)
    expect(mode).to_have_text(f"ARCHIVE · {shown(start, stop)}")
    expect(page.locator("#ev-list")).to_contain_text("old marker")
    expect(page.locator("#ev-list")).not_to_contain_text("recent marker")

    # the packet inspector asks for the same window
    with page.expect_request(lambda r: f"/api/instruments/{A}/packets?" in r.url) as asked:
        page.goto(f"{site.url}/#/packets/{A}")
    q = parse_qs(urlsplit(asked.value.url).query)
    assert (q["start"], q["stop"]) == ([str(int(start * NS))], [str(int(stop * NS))])
    assert "start=" in page.evaluate("location.hash")
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "archive")
    # and the audit log
    with page.expect_request(lambda r: "/api/audit?" in r.url) as asked:
        page.goto(f"{site.url}/#/audit")
    q = parse_qs(urlsplit(asked.value.url).query)
    assert (q["start"], q["stop"]) == ([str(int(start * NS))], [str(int(stop * NS))])
    # the trend draws the same window
    page.click("#nav-trend")
    page.fill("#tr-add", f"{A}/batt_v")
    page.click("#tr-add-ok")
    page.wait_for_function(
        "() => { const b = document.querySelector('#tr-plot');"
        " return b.dataset.state === 'ready' && b._trend.series.length === 1; }",
        timeout=15_000,
    )
    trend = page.evaluate("() => document.querySelector('#tr-plot')._trend")
    assert (trend["start_ns"], trend["stop_ns"]) == (start * NS, stop * NS)
    assert "p=sup-rover-1/batt_v&start=" in page.evaluate("location.hash")

    # one key back to realtime (focus outside any text field)
    page.locator("#trend-title").focus()
    page.keyboard.press("r")
    expect(mode).to_have_text("REALTIME · last 1 h")
    expect(page.locator("body")).to_have_attribute("data-time", "realtime")
    assert "start=" not in page.evaluate("location.hash")
    assert "p=sup-rover-1/batt_v" in page.evaluate("location.hash")
    page.wait_for_function(
        "() => Date.now() * 1e6 - document.querySelector('#tr-plot')._trend.stop_ns < 60e9",
        timeout=15_000,
    )
    page.click("#nav-events")
    expect(page.locator("#ev-mode")).to_have_text("LIVE")
    expect(page.locator("#ev-list")).to_contain_text("recent marker")
    only_local(page, site.url)
    assert not page.errors  # type: ignore[attr-defined]


def test_presets_span_the_window_the_archive_button_holds_it_and_back_goes_back(
    page: Any, site: Site
) -> None:
    open_rover(page, site)
    page.click('#tb-presets button[data-range="900"]')
    expect(page.locator("#tb-mode")).to_have_text("REALTIME · last 15 min")
    expect(page.locator('#tb-presets button[data-range="900"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    assert page.evaluate("location.hash").endswith("?range=900")
    now = time.time()
    wait_window(page, now - 900, now)
    # hold the window shown now: archive, 15 min wide; the Realtime button goes back
    page.click("#tb-archive")
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "archive")
    expect(page.locator("#tb-realtime")).to_have_attribute("aria-pressed", "false")
    state = page.evaluate("window.ilrsTime.state()")
    assert state["stop"] - state["start"] == 900 * NS
    page.click("#tb-realtime")
    expect(page.locator("#tb-mode")).to_have_text("REALTIME · last 15 min")
    assert page.evaluate("location.hash").endswith("?range=900")
    # the browser's Back goes through the windows chosen, back to the default one
    page.go_back()
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "archive")
    page.go_back()
    expect(page.locator("#tb-mode")).to_have_text("REALTIME · last 15 min")
    page.go_back()
    expect(page.locator("#tb-mode")).to_have_text("REALTIME · last 1 h")
    assert page.evaluate("location.hash") == f"#/i/{A}/batt_v"  # the channel chosen


def test_a_bad_typed_time_is_named_inline(page: Any, site: Site) -> None:
    open_rover(page, site)
    before = page.evaluate("location.hash")
    page.fill("#tb-start", "yesterday")
    page.click("#tb-apply")
    msg = page.locator("#tb-msg")
    expect(msg).to_have_text(
        "From: “yesterday” is not a UTC time; write it as 2026-12-04 00:10:00 (UTC)"
    )
    expect(page.locator("#tb-start")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#tb-start")).to_be_focused()
    shot(page, "bad-time")
    page.fill("#tb-start", typed(site.old_s))
    page.fill("#tb-stop", typed(site.old_s - 60))
    page.keyboard.press("Enter")
    expect(msg).to_have_text("To must be after From: the window is [From, To)")
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "realtime")
    assert page.evaluate("location.hash") == before
    # r typed into a field is text, not the realtime key
    page.fill("#tb-stop", "")
    page.focus("#tb-stop")
    page.keyboard.press("r")
    expect(page.locator("#tb-stop")).to_have_value("r")


def test_a_dashboard_follows_the_time_bar_into_the_archive_and_back(page: Any, site: Site) -> None:
    """A dashboard's plot shows the archive window from the store and its value widget the
    last value in it, both marked ARCHIVE, still under live status; a window without data says
    so; back in realtime the widgets are live again."""
    h = {"Authorization": f"Bearer {site.token}"}
    widgets = [
        {"kind": "value", "instrument": A, "channel": "batt_v", "x": 0, "y": 0, "w": 3},
        {"kind": "plot", "instrument": A, "channel": "batt_v", "x": 3, "y": 0, "w": 6, "h": 3},
        {"kind": "alarms", "x": 9, "y": 0, "w": 3, "h": 3},
    ]
    r = httpx.post(f"{site.url}/api/dashboards", headers=h, timeout=10,
                   json={"name": "Rover archive", "widgets": widgets})  # fmt: skip
    assert r.status_code == 201, r.text
    board = r.json()["id"]
    start, stop = site.old_s - 300, site.old_s + 600
    q = {"channels": "batt_v", "start": str(int(start * NS)), "stop": str(int(stop * NS))}
    cols = httpx.get(f"{site.url}/api/instruments/{A}/telemetry", headers=h, params=q,
                     timeout=10).json()["columns"]  # fmt: skip
    last_ns, last_v = cols["time"][-1], cols["batt_v"][-1]

    login(page, site.url, site.token)
    iso = lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    page.goto(f"{site.url}/#/dashboards/{board}?start={iso(start)}&stop={iso(stop)}")
    expect(page.locator("#db-name")).to_have_text("Rover archive")
    value = page.locator('#db-grid .dw[data-kind="value"]')
    plot = page.locator('#db-grid .dw[data-kind="plot"]')
    for w in (value, plot):
        expect(w).to_have_attribute("data-mode", "archive")
        expect(w.locator(".dw-mode")).to_have_text("archive")
    expect(page.locator('#db-grid .dw[data-kind="alarms"] .dw-mode')).to_have_text("now")
    # the value: the window's last sample, with its time
    expect(value).to_have_attribute("data-value", f"{last_v:.5g} V")
    stamp = datetime.fromtimestamp(last_ns / NS, UTC).strftime("%Y-%m-%d %H:%M:%S")
    expect(value.locator(".dw-at")).to_have_text(f"last in the window · {stamp}Z")
    # the plot: the window's samples on an axis that is the window
    box = '#db-grid .dw[data-kind="plot"] .dw-plot'
    page.wait_for_function(f"() => document.querySelector('{box}')?._plot !== undefined")
    assert int(page.get_attribute(box, "data-points") or 0) >= 50
    ends = page.evaluate(f"() => {{ const d = document.querySelector('{box}')._plot.data[0];"
                         " return [d[0], d.at(-1)]; }")  # fmt: skip
    assert ends == [start, stop]
    expect(plot.locator(".dw-plot")).to_have_attribute(
        "aria-label", f"Archive plot of {A} / batt_v"
    )
    # live status does not move an archive value
    live = """(v) => window.dispatchEvent(new CustomEvent("ilrs:status", {detail: {
        instrument: "sup-rover-1", health: "nominal", last_packet_time_ns: Date.now() * 1e6,
        values: {batt_v: {value: v, units: "V", state: 0}}}}))"""
    page.evaluate(live, 12.5)
    page.evaluate(FRAMES)
    expect(value).to_have_attribute("data-value", f"{last_v:.5g} V")
    shot(page, "dashboard-archive")
    # the link (archive window and all) loaded again: the same, with the plot drawn although
    # the live link's first snapshot comes while the dashboard loads
    page.reload()
    expect(value).to_have_attribute("data-value", f"{last_v:.5g} V", timeout=15_000)
    page.wait_for_function(
        f"() => Number(document.querySelector('{box}')?.dataset.points) >= 50", timeout=15_000
    )

    # a window without data: said plainly, an empty plot over the window
    empty = (site.old_s - 3000, site.old_s - 2000)
    page.fill("#tb-start", typed(empty[0]))
    page.fill("#tb-stop", typed(empty[1]))
    page.click("#tb-apply")
    expect(value.locator(".dw-at")).to_have_text("no value in the window")
    expect(value.locator(".dw-value")).to_have_text("none")
    expect(value).not_to_have_attribute("data-value", re.compile("."))
    expect(page.locator(box)).to_have_attribute("data-points", "0")
    shot(page, "dashboard-archive-empty")

    # back to realtime: live again, and live status moves the value
    page.locator("#db-name").focus()
    with (
        page.expect_response(lambda r: r.url.endswith("/api/status")),
        page.expect_response(lambda r: r.url.endswith("/api/alarms")),
    ):
        page.keyboard.press("r")  # the widgets drawn anew with the status now: then a live one
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "realtime")
    for w in (value, plot):
        expect(w).to_have_attribute("data-mode", "live")
        expect(w.locator(".dw-mode")).to_have_count(0)
    expect(plot.locator(".dw-plot")).to_have_attribute("aria-label", f"Live plot of {A} / batt_v")
    page.evaluate(FRAMES)
    page.evaluate(live, 12.5)
    expect(value).to_have_attribute("data-value", "12.5 V")
    only_local(page, site.url)


def test_the_channel_chosen_is_in_the_url_for_a_reload_and_back(page: Any, site: Site) -> None:
    """Choosing a channel in the detail replaces the URL's channel (keeping the time bar's
    window) without opening the instrument again; a reload opens the same channel; Back
    goes to where the detail was opened from."""
    open_rover(page, site)  # the tile, then batt_v chosen
    assert page.evaluate("location.hash") == f"#/i/{A}/batt_v"
    page.select_option("#channel", "motor_i")
    expect(page.locator("#channel")).to_have_value("motor_i")
    page.wait_for_function(f"location.hash === '#/i/{A}/motor_i'")
    asked = len(page.requests)  # type: ignore[attr-defined]
    page.select_option("#channel", "cpu_t")
    page.wait_for_function(f"location.hash === '#/i/{A}/cpu_t'")
    page.wait_for_function(
        "() => Number(document.querySelector('#hist-plot').dataset.points) > 0", timeout=15_000
    )
    again = [u for u in page.requests[asked:] if u.endswith(f"/api/instruments/{A}")]  # type: ignore[attr-defined]
    assert not again, again  # the detail was not opened anew, only the channel's data asked
    # in archive too, and the window stays in the URL
    start, stop = site.old_s - 300, site.old_s + 600
    page.fill("#tb-start", typed(start))
    page.fill("#tb-stop", typed(stop))
    page.click("#tb-apply")
    wait_window(page, start, stop)
    page.select_option("#channel", "batt_i")
    page.wait_for_function(f"location.hash.startsWith('#/i/{A}/batt_i?start=')")
    units = "() => document.querySelector('#hist-plot')._plot?.axes[1].label"
    page.wait_for_function(f"({units})() === 'A'", timeout=15_000)  # batt_i's history drawn
    wait_window(page, start, stop)
    shot(page, "channel-in-url")
    # a reload (or the link shared) opens the same channel over the same window
    page.reload()
    expect(page.locator("#channel")).to_have_value("batt_i", timeout=15_000)
    page.wait_for_function(f"({units})() === 'A'", timeout=15_000)
    wait_window(page, start, stop)
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "archive")
    # Back: out of the archive window, then the overview the tile was clicked on (channels
    # chosen made no history entries of their own)
    page.go_back()
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "realtime")
    page.go_back()
    expect(page.locator("#overview")).to_be_visible()
    assert page.evaluate("location.hash") in ("", "#/")
    assert not page.errors  # type: ignore[attr-defined]
