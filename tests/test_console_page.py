"""The console web page in real headless Chromium (Debian's, driven by Playwright for Python)
against `ilrs-ops up` with limit faults: a tile per instrument, a limit excursion turns its tile
red and raises an alarm in the list within 2 s of the status saying critical, Ack clears a
latched alarm and acknowledges an active one, Shelve shelves (a refusal reads as a message), the
detail plots show data, a partner token sees only its own instruments and alarms, a viewer gets
no alarm buttons, the header's items are whole at 1440 and 1920 px, and the page makes no
request outside the console. Screenshots of a failed test go to test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ilrs_ops.console import create_token
from ilrs_ops.profiles import Catalog
from tests.conftest import ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
FAULTS = "limit=0.03"  # per packet: at ~1 packet/s per instrument, excursions within seconds
RED_WITHIN_MS = 2000
HEALTH_COLOURS = {  # console.css
    "nominal": "rgb(46, 157, 79)",
    "warning": "rgb(217, 154, 0)",
    "critical": "rgb(211, 48, 47)",
    "stale": "rgb(138, 99, 184)",
    "offline": "rgb(61, 67, 76)",
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Up:
    url: str
    token: str
    data: Path
    broker_port: int

    def status(self, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        r = httpx.get(f"{self.url}/api/status", headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_up(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Up]:
    """`ilrs-ops up` on free ports with ``args`` (and ``env`` added to the environment); URL
    and token read from its stderr; stopped with SIGINT on exit."""
    broker_port = free_port()
    env = os.environ | {"ILRS_EMBEDDED_PORT": str(broker_port)} | (env or {})
    cmd = [sys.executable, "-m", "ilrs_ops", "up", "--data", str(tmp / "data"),
           "--http-port", str(free_port()), *args]  # fmt: skip
    with (tmp / "up.err").open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 90
        m = None
        while m is None:
            assert proc.poll() is None, (tmp / "up.err").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "ilrs-ops up printed no console URL in 90 s"
            time.sleep(0.2)
            text = (tmp / "up.err").read_text(errors="replace")
            m = re.search(r"console: (\S+)/\s+operator token: (\S+)", text)
        yield Up(m[1], m[2], tmp / "data", broker_port)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`ilrs-ops up` with limit faults."""
    with running_up(tmp_path_factory.mktemp("page"), "--fault", FAULTS) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; every request it makes is recorded; a screenshot when the test fails."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    p = context.new_page()
    p.requests = []  # type: ignore[attr-defined]
    p.errors = []  # type: ignore[attr-defined]
    p.on("request", lambda r: p.requests.append(r.url))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    failed_before = request.session.testsfailed
    try:
        yield p
    finally:
        if request.session.testsfailed > failed_before:  # the call phase is reported by now
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
            with contextlib.suppress(Exception):
                p.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()


def login(page: Any, url: str, token: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#token", state="visible")
    page.focus("#token")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_selector(".tile", timeout=15_000)


def tile_ids(page: Any) -> set[str]:
    return set(page.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.instrument)"))


def only_local(page: Any, url: str) -> None:
    outside = [u for u in page.requests if not u.startswith((url, "data:"))]
    assert not outside, outside
    assert not page.errors, page.errors


# Records each tile's health as it changes, with the wall clock (ms), in window.healthLog.
WATCH_HEALTH = """() => {
  window.healthLog = [];
  const note = (t) => window.healthLog.push([t.dataset.instrument, t.dataset.health, Date.now()]);
  document.querySelectorAll('.tile').forEach(note);
  new MutationObserver((ms) => {
    for (const m of ms) {
      if (m.type === 'attributes') note(m.target);
      for (const n of m.addedNodes || []) if (n.querySelectorAll) n.querySelectorAll('.tile').forEach(note);
    }
  }).observe(document.querySelector('#partners'),
             {subtree: true, childList: true, attributes: true, attributeFilter: ['data-health']});
}"""  # noqa: E501

# Records each alarm row as it appears or changes state, in window.alarmLog:
# [instrument, channel, state, since (ISO), ms].
WATCH_ALARMS = """() => {
  window.alarmLog = [];
  const note = (r) => window.alarmLog.push(
    [r.dataset.instrument, r.dataset.channel, r.dataset.state, r.dataset.since, Date.now()]);
  document.querySelectorAll('#alarm-list tr').forEach(note);
  new MutationObserver((ms) => {
    for (const m of ms) {
      if (m.type === 'attributes') note(m.target);
      for (const n of m.addedNodes || []) if (n.tagName === 'TR') note(n);
    }
  }).observe(document.querySelector('#alarm-list'),
             {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});
}"""

# The newest row in a state (since within the last `fresh_s`), as [key, since], or null.
FRESH_ROW = """([state, fresh_s]) => {
  const rows = [...document.querySelectorAll(`#alarm-list tr[data-state="${state}"]`)]
    .filter(r => r.querySelector('button[data-act="ack"]'))
    .filter(r => fresh_s === null || Date.parse(r.dataset.since) > Date.now() - fresh_s * 1000)
    .sort((a, b) => Date.parse(b.dataset.since) - Date.parse(a.dataset.since));
  return rows.length ? [rows[0].dataset.key, rows[0].dataset.since] : null;
}"""


def alarms_api(up: Up, token: str | None = None) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token or up.token}"}
    r = httpx.get(f"{up.url}/api/alarms", headers=headers, timeout=10)
    r.raise_for_status()
    return {f"{a['instrument']}/{a['channel']}": a for a in r.json()["alarms"]}


def row(page: Any, key: str, since: str) -> Any:
    return page.locator(f'#alarm-list tr[data-key="{key}"][data-since="{since}"]')


def test_tiles_and_a_limit_excursion_turns_its_tile_red(
    page: Any, up: Up, station: Catalog
) -> None:
    page.goto(up.url + "/")
    page.fill("#token", "not-a-token")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#login-error")).to_contain_text("Unknown token")
    login(page, up.url, up.token)
    sync_api.expect(page.locator("#who")).to_have_text("operator · operator")  # up's token
    sync_api.expect(page.locator("#sim")).to_have_text(  # `up` says its station is simulated
        "SIMULATED STATION · demo faults injected: limit=0.03 per packet"
    )
    # the header clock: UTC, and lunar day/night with the next terminator from the simulator
    sync_api.expect(page.locator("#clock-utc")).to_have_text(
        re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
    )
    lunar = page.locator("#clock-lunar")
    sync_api.expect(lunar).to_have_text(
        re.compile(r"^lunar (day|night) · (sunset|sunrise) in \d+ min \d{2} s$")
    )
    clock = httpx.get(f"{up.url}/api/clock", headers={"Authorization": f"Bearer {up.token}"},
                      timeout=10).json()  # fmt: skip
    text = lunar.inner_text()
    assert ("day" if clock["lunar"]["day"] else "night") in text or clock["lunar"]["in_s"] < 3
    page.screenshot(path="/tmp/console-overview-clock.png")
    sync_api.expect(page.locator(".tile")).to_have_count(len(station.instruments))
    assert tile_ids(page) == set(station.instruments)
    partners = page.eval_on_selector_all(".partner", "ps => ps.map(p => p.dataset.partner)")
    assert partners == sorted({i.profile.partner for i in station})
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    page.evaluate(WATCH_HEALTH)
    page.evaluate(WATCH_ALARMS)

    deadline = time.monotonic() + 90
    before: dict[str, str] = {}
    before_ms = 0.0
    turned: tuple[str, float, float] | None = None
    while turned is None:  # until the API says an instrument has just turned critical
        assert time.monotonic() < deadline, "no limit excursion made any instrument critical"
        polled_ms = time.time() * 1000
        now = {t["instrument"]: t["health"] for p in up.status()["partners"]
               for t in p["instruments"]}  # fmt: skip
        seen_ms = time.time() * 1000
        for iid, health in now.items():
            if health == "critical" and before.get(iid, "critical") != "critical":
                turned = (iid, before_ms, seen_ms)
                break
        before, before_ms = now, polled_ms
        time.sleep(0.1)
    iid, was_not_ms, seen_ms = turned
    page.wait_for_timeout(RED_WITHIN_MS + 200)
    log = page.evaluate("window.healthLog")
    red = [ms for i, h, ms in log if i == iid and h == "critical" and ms >= was_not_ms - 1000]
    assert red, f"{iid} turned critical in /api/status but its tile did not turn red: {log}"
    assert min(red) <= seen_ms + RED_WITHIN_MS, (iid, seen_ms, log)
    alog = page.evaluate("window.alarmLog")
    raised = [ms for i, _c, st, _s, ms in alog
              if i == iid and st == "active" and ms >= was_not_ms - 1000]  # fmt: skip
    assert raised, f"{iid} turned critical but no active alarm showed in the list: {alog}"
    assert min(raised) <= seen_ms + RED_WITHIN_MS, (iid, seen_ms, alog)
    sev = page.locator(f'#alarm-list tr[data-instrument="{iid}"][data-state="active"] .sev')
    assert "rgb(" in sev.first.evaluate("e => getComputedStyle(e).backgroundColor")
    colours = page.eval_on_selector_all(
        ".tile", "ts => ts.map(t => [t.dataset.health, getComputedStyle(t).borderLeftColor])"
    )
    for health, colour in colours:
        assert colour == HEALTH_COLOURS[health], (health, colour)
    only_local(page, up.url)


def test_ack_clears_a_latched_alarm_and_acknowledges_an_active_one(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    # latched: the excursion is over (back in limits) but nobody acknowledged it
    handle = page.wait_for_function(FRESH_ROW, arg=["latched", None], timeout=60_000)
    key, since = handle.json_value()
    api = alarms_api(up)[key]
    assert (api["state"], api["limit_state"], api["since"]) == ("latched", "nominal", since)
    page.focus(f'#alarm-list tr[data-key="{key}"] button[data-act="ack"]')  # keyboard only
    page.keyboard.press("Enter")
    sync_api.expect(row(page, key, since)).to_have_count(0)  # cleared: gone from the list
    sync_api.expect(page.locator("#alarm-msg")).to_contain_text("cleared")
    still = alarms_api(up).get(key)
    assert still is None or still["since"] != since, still

    # active: acknowledged, stays listed until the channel is back in limits. An excursion
    # lasts 5 s; one that ends between seeing it and the ack clears instead: try another.
    for _ in range(5):
        handle = page.wait_for_function(FRESH_ROW, arg=["active", 2.5], timeout=60_000)
        key, since = handle.json_value()
        page.focus(f'#alarm-list tr[data-key="{key}"] button[data-act="ack"]')
        page.keyboard.press("Enter")
        page.wait_for_function(
            """([key, since]) => {
              const r = document.querySelector(
                `#alarm-list tr[data-key="${key}"][data-since="${since}"]`);
              return !r || r.dataset.state === 'acknowledged';
            }""",
            arg=[key, since],
            timeout=5000,
        )
        if row(page, key, since).count():
            break
    else:
        pytest.fail("no active alarm could be acknowledged before its excursion ended")
    sync_api.expect(page.locator("#alarm-msg")).to_contain_text("now acknowledged")
    assert not row(page, key, since).locator('button[data-act="ack"]').count()
    api = alarms_api(up).get(key)
    assert api is None or api["state"] == "acknowledged" or api["since"] != since, api
    only_local(page, up.url)


def test_shelve_form_and_a_refusal(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    handle = page.wait_for_function(FRESH_ROW, arg=["latched", None], timeout=60_000)
    key, since = handle.json_value()
    page.focus(f'#alarm-list tr[data-key="{key}"] button[data-act="shelve"]')
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#shelve-dialog")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "shelve-reason"
    page.keyboard.press("Escape")  # cancel: nothing shelved, focus back on the button
    sync_api.expect(page.locator("#shelve-dialog")).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.act") == "shelve"
    # A live update re-renders the list while the dialog is open (new rows, the opener gone):
    # focus still comes back to this alarm's Shelve button, not the row's first (Ack) button.
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#shelve-dialog")).to_be_visible()
    page.evaluate(
        '(key) => { const r = document.querySelector(`#alarm-list tr[data-key="${key}"]`);'
        " r.replaceWith(r.cloneNode(true)); }",
        key,
    )
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#shelve-dialog")).to_be_hidden()
    # The dialog's close event, which moves focus, comes a task after the dialog is hidden
    # (until then the browser has put focus on the body, the opener being gone): wait for it.
    where = ("[document.activeElement.dataset.act,"
             " document.activeElement.closest('tr')?.dataset.key]")  # fmt: skip
    with contextlib.suppress(sync_api.TimeoutError):
        page.wait_for_function(f"(key) => {where}.join() === ['shelve', key].join()", arg=key,
                               timeout=5_000)  # fmt: skip
    assert page.evaluate(where) == ["shelve", key]

    # a refusal (as the API gives a token that may not act) is a message, not a broken page
    page.route(
        "**/api/alarms/*/*/shelve",
        lambda route: route.fulfill(
            status=403, content_type="application/json", body='{"detail": "not yours"}'
        ),
    )
    page.keyboard.press("Enter")
    page.keyboard.type("flapping sensor")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#shelve-error")).to_contain_text("Not allowed: not yours")
    sync_api.expect(page.locator("#alarm-msg")).to_contain_text("Not allowed")
    page.unroute("**/api/alarms/*/*/shelve")

    page.check('#shelve-form input[name="until"][value="3600"]')  # +1 h
    page.click("#shelve-ok")
    sync_api.expect(page.locator("#shelve-dialog")).to_be_hidden()
    sync_api.expect(row(page, key, since)).to_have_attribute("data-state", "shelved")
    api = alarms_api(up)[key]
    assert api["state"] == "shelved" and api["shelve_reason"] == "flapping sensor"
    assert 3500 <= api["shelved_until_ns"] / 1e9 - time.time() <= 3700
    page.click(f'#alarm-list tr[data-key="{key}"] button[data-act="unshelve"]')
    sync_api.expect(row(page, key, since)).not_to_have_attribute("data-state", "shelved")
    only_local(page, up.url)


def test_an_alarm_opens_its_channel_and_shows_what_tripped_it(page: Any, up: Up) -> None:
    """Issue 13, defect 4: the alarm list shows the value that tripped an alarm and the value
    now; clicking the alarm opens its instrument on the channel in alarm."""
    login(page, up.url, up.token)
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    handle = page.wait_for_function(FRESH_ROW, arg=["latched", None], timeout=60_000)
    key, since = handle.json_value()
    iid, channel = key.split("/", 1)
    api = alarms_api(up)[key]
    assert api["trip_value"] is not None, api
    r = row(page, key, since)
    trip = r.locator("td.trip").inner_text()
    assert trip != "—" and float(trip.split()[0]) == pytest.approx(api["trip_value"], rel=1e-3)
    sync_api.expect(r.locator("td.now")).not_to_have_text("—")  # the tile's live value
    # the default channel of the detail is another one: the alarm's must be asked for
    r.locator("td.nw a").first.click()
    sync_api.expect(page.locator("#detail-title")).to_contain_text(iid)
    sync_api.expect(page.locator("#channel")).to_have_value(channel)
    page.wait_for_selector("#live-plot canvas", timeout=15_000)
    assert "/" + channel in page.evaluate("location.hash")
    page.screenshot(path="/tmp/console-alarm-channel.png")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#overview")).to_be_visible()
    page.screenshot(path="/tmp/console-alarm-values.png")
    only_local(page, up.url)


def test_detail_shows_values_live_and_history_plots(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    iid = "sup-rover-1"
    page.focus(f'.tile[data-instrument="{iid}"]')  # tiles are buttons: keyboard opens them
    page.keyboard.press("Enter")
    page.wait_for_selector("#live-plot canvas", timeout=15_000)
    sync_api.expect(page.locator("#detail-title")).to_contain_text(iid)
    sync_api.expect(page.locator('#values tr[data-channel="batt_v"] td').nth(1)).to_have_text("V")
    assert page.locator("#channel").input_value()  # a channel with limits is selected
    page.wait_for_function(
        "() => Number(document.querySelector('#live-plot').dataset.points) > 2", timeout=15_000
    )
    before = int(page.get_attribute("#live-plot", "data-points") or 0)
    page.wait_for_function(
        f"() => Number(document.querySelector('#live-plot').dataset.points) > {before}",
        timeout=10_000,
    )  # the live plot follows the WebSocket
    page.wait_for_function(
        "() => Number(document.querySelector('#hist-plot').dataset.points) > 0", timeout=15_000
    )
    # limit lines are series of the plots: batt_v has yellow and red on both sides
    assert page.locator("#live-plot .u-legend .u-series").count() == 1 + 1 + 4
    page.select_option("#channel", "motor_i")  # an array channel: mean, min, max
    page.wait_for_function(
        "() => document.querySelectorAll('#live-plot .u-legend .u-series').length === 1 + 3 + 2",
        timeout=15_000,
    )
    page.click('#tb-presets button[data-range="3600"]')  # the time bar (timebar.js)
    sync_api.expect(page.locator('#tb-presets button[data-range="3600"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    # a young station: its samples themselves (over RAW_MAX samples: buckets of 6.0 s)
    sync_api.expect(page.locator("#hist-info")).to_have_text(
        re.compile(r"^(\d+ samples|\d+ buckets of 6\.0 s) from ")
    )
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#overview")).to_be_visible()
    assert page.evaluate("document.activeElement.dataset.instrument") == iid
    only_local(page, up.url)


# The x tick labels uPlot drew on the canvas (uPlot keeps them on the axis as _values).
TICKS = "(sel) => document.querySelector(sel)._plot.axes[0]._values"
ISO_HOVER = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$")
TICK = re.compile(r"^(\d{4}-\d{2}-\d{2}\n)?\d{2}:\d{2}:\d{2}(\.\d{3})?$")


def test_plot_times_are_utc_iso_with_seconds_and_apids_hex(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    iid = "sup-rover-1"  # APID 0x2a1 in its profile
    page.click(f'.tile[data-instrument="{iid}"]')
    sync_api.expect(page.locator("#detail-meta")).to_contain_text("APID 0x2a1")
    page.wait_for_function(
        "() => Number(document.querySelector('#hist-plot').dataset.points) > 0", timeout=15_000
    )
    for sel in ("#live-plot", "#hist-plot"):
        ticks = page.evaluate(TICKS, sel)
        assert ticks and all(TICK.match(t) for t in ticks), (sel, ticks)
        assert "\n" in ticks[0], ticks  # the first tick says the day too
    over = page.locator("#hist-plot .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    hover = page.locator("#hist-plot .u-legend .u-series").first.locator(".u-value")
    sync_api.expect(hover).to_have_text(ISO_HOVER)
    page.screenshot(path="/tmp/console-detail-utc.png")
    only_local(page, up.url)


# The header's items as drawn: [id, scrollWidth, clientWidth, left, right, top, bottom].
HEADER = """() => [...document.querySelectorAll('header.bar > *')]
  .filter(e => e.offsetParent !== null && !e.classList.contains('skip'))
  .map(e => { const r = e.getBoundingClientRect();
    return [e.id || e.tagName, e.scrollWidth, e.clientWidth,
      r.left, r.right, r.top, r.bottom]; })"""


def test_the_header_fits_without_clipping_at_1440_and_1920(browser: Any, up: Up) -> None:
    """At 1440x900 and 1920x1080 every header item is whole: who is logged in and the
    simulation badge are not cut off (scrollWidth <= clientWidth), nothing overlaps or runs
    past the window's edge, and Log out is on screen."""
    token = create_token(up.data / "up-tokens.yaml", "suparco-night-shift", "partner", "suparco")
    for (w, h), who, name in (
        ((1440, 900), up.token, "operator · operator"),
        ((1440, 900), token, "suparco-night-shift · partner of suparco"),
        ((1920, 1080), up.token, "operator · operator"),
    ):
        context = browser.new_context(viewport={"width": w, "height": h})
        try:
            page = context.new_page()
            login(page, up.url, who)
            sync_api.expect(page.locator("#who")).to_have_text(name)
            sync_api.expect(page.locator("#sim")).to_be_visible()
            sync_api.expect(page.locator("#clock-lunar")).to_be_visible()
            sync_api.expect(page.locator("#logout")).to_be_in_viewport()
            items = page.evaluate(HEADER)
            ids = [i[0] for i in items]
            assert {"who", "sim", "clock", "logout", "nav"} <= set(ids), ids
            for id_, scroll, client, left, right, _, _ in items:
                assert scroll <= client, f"{w} px, {name}: #{id_} clipped ({scroll} > {client})"
                assert left >= 0 and right <= w, f"{w} px: #{id_} runs off [{left}, {right}]"
            for i, a in enumerate(items):
                for b in items[i + 1 :]:
                    apart = a[4] <= b[3] or b[4] <= a[3] or a[6] <= b[5] or b[6] <= a[5]
                    assert apart, f"{w} px, {name}: #{a[0]} overlaps #{b[0]}"
            for sel in ("#who", "#sim"):
                clip = page.eval_on_selector(sel, "e => [e.scrollWidth, e.clientWidth]")
                assert clip[0] <= clip[1], (w, sel, clip)
            ARTIFACTS.mkdir(exist_ok=True)
            kind = "partner" if who != up.token else "operator"
            page.screenshot(path=str(ARTIFACTS / f"header-{w}-{kind}.png"))
        finally:
            context.close()


def test_api_docs_offline_with_an_authorize_button(page: Any, up: Up) -> None:
    """/docs is Swagger UI from the console's own files (no CDN, so every request stays
    local): public, its schema public, its calls refused without the token and answered with
    it once given to Authorize."""
    page.goto(up.url + "/docs")
    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("ilrs-ops console")
    status = page.locator("#operations-status-station_status_api_status_get")
    status.locator(".opblock-summary").click()
    status.get_by_role("button", name="Try it out").click()
    status.get_by_role("button", name="Execute").click()
    code = status.locator(".live-responses-table .response .response-col_status").first
    sync_api.expect(code).to_have_text("401")
    page.get_by_role("button", name="Authorize").first.click()
    page.fill("#auth-bearer-value", up.token)  # the HTTPBearer scheme of the schema
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    status.get_by_role("button", name="Execute").click()
    sync_api.expect(code).to_have_text("200")
    page.screenshot(path="/tmp/console-docs.png")
    only_local(page, up.url)


def test_a_partner_token_sees_only_its_own_instruments(
    page: Any, up: Up, station: Catalog, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.yaml"
    partner_token = create_token(tokens, "suparco-ops", "partner", "suparco")
    viewer_token = create_token(tokens, "wall", "viewer")
    port = free_port()
    cmd = [sys.executable, "-m", "ilrs_ops", "console", "--tokens", str(tokens),
           "--data", str(up.data), "--broker", f"127.0.0.1:{up.broker_port}",
           "--http-port", str(port)]  # fmt: skip
    with (tmp_path / "console.err").open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "console.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the second console did not come up"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).json()["broker_connected"]:
                    break
            time.sleep(0.2)
        own = {i.id for i in station if i.profile.partner == "suparco"}
        login(page, url, partner_token)
        sync_api.expect(page.locator("#conn")).to_have_text("live")
        sync_api.expect(page.locator("#who")).to_have_text("suparco-ops · partner of suparco")
        page.wait_for_timeout(3000)  # live updates of other partners must not add tiles
        assert tile_ids(page) == own
        assert page.eval_on_selector_all(".partner", "ps => ps.map(p => p.dataset.partner)") == [
            "suparco"
        ]
        listed = page.eval_on_selector_all(
            "#alarm-list tr", "rs => rs.map(r => r.dataset.instrument)"
        )
        assert set(listed) <= own, listed
        other = next(i.id for i in station if i.profile.partner != "suparco")
        page.goto(f"{url}/#/i/{other}")  # not reachable by hand either: the API refuses
        sync_api.expect(page.locator("#detail-meta")).to_contain_text("403")
        only_local(page, url)

        # a viewer sees every alarm but no action: the API would refuse them
        page.click("#logout")
        login(page, url, viewer_token)
        page.wait_for_selector("#alarm-list tr", timeout=30_000)
        assert page.locator("#alarm-list button").count() == 0
        assert page.locator("#alarm-list td.num").first.inner_text() == "—"  # no values
        sync_api.expect(page.locator("#who")).to_have_text("wall · viewer")
        page.screenshot(path="/tmp/console-viewer-overview.png")

        # a viewer's tile opens a status-only detail: health, alarms, last packet age; no
        # values, no plots, and no call of the data API (it would answer 403)
        alarmed = page.locator("#alarm-list tr").first.get_attribute("data-instrument")
        page.requests.clear()
        page.click(f'.tile[data-instrument="{alarmed}"]')
        sync_api.expect(page.locator("#status-only")).to_be_visible()
        sync_api.expect(page.locator("#detail-title")).to_contain_text(alarmed)
        sync_api.expect(page.locator("#detail-data")).to_be_hidden()
        sync_api.expect(page.locator('#status-list dd[data-item="age"]')).to_contain_text(" ago")
        health = page.locator('.tile[data-instrument="' + alarmed + '"]').get_attribute(
            "data-health"
        )
        sync_api.expect(page.locator('#status-list dd[data-item="health"]')).to_have_text(
            re.compile(r"^(nominal|warning|critical|stale|offline)$")
        )
        assert health
        assert page.locator("#status-alarms li[data-state]").count() >= 1
        assert "403" not in page.locator("#detail").inner_text()
        assert not [u for u in page.requests if "/api/instruments/" in u], page.requests
        page.screenshot(path="/tmp/console-viewer-detail.png")
        only_local(page, url)
    finally:
        _stop(proc)
