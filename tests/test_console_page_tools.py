# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""The station-wide event log (#/events) and the header's parameter search in real headless
Chromium against `ilrs-ops up` with limit faults: limit transitions, an operator's ack and a
command's stages appear live without a reload, the partner, instrument, kind and window
filters narrow the log (a past window is an archive, marked so), a partner's log and search
hold only its instruments, a viewer's log holds commands only; a search by name, units or
description opens the instrument page on the chosen channel, by mouse or keyboard.
Screenshots go to test-artifacts/ (always, for review)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ilrs_ops.console import create_token
from tests.test_console_page import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CHROMIUM,
    FAULTS,
    Up,
    browser,
    login,
    only_local,
    page,
    running_up,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
expect = sync_api.expect

LIVE_MS = 30_000


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running_up(tmp_path_factory.mktemp("page-tools"), "--fault", FAULTS) as running:
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"tools-{name}.png"))


def column(page: Any, attr: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#ev-list tr", f"rs => rs.map(r => r.children[{attr}].innerText)"
    )


def open_log(page: Any) -> None:
    page.click("#nav-events")
    expect(page.locator("#eventlog")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#ev-mode")).to_have_text("LIVE")


def test_event_log_is_live_and_filters(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    open_log(page)
    page.wait_for_selector('#ev-list tr[data-kind="limit"]', timeout=LIVE_MS)
    # New limit transitions arrive without a reload, newest first.
    page.evaluate("window.seenKeys = [...document.querySelectorAll('#ev-list tr')]"
                  ".map(r => r.dataset.key)")  # fmt: skip
    page.wait_for_function(
        "[...document.querySelectorAll('#ev-list tr[data-kind=limit]')]"
        ".some(r => !window.seenKeys.includes(r.dataset.key))",
        timeout=LIVE_MS,
    )
    times = column(page, "0")
    assert times == sorted(times, reverse=True)

    # An operator's action and a command's stages, live.
    h = {"Authorization": f"Bearer {up.token}"}
    alarm = httpx.get(f"{up.url}/api/alarms", headers=h, timeout=10).json()["alarms"][0]
    r = httpx.post(f"{up.url}/api/alarms/{alarm['instrument']}/{alarm['channel']}/ack",
                   headers=h, json={"reason": "seen from the log test"}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    ack = page.locator('#ev-list tr[data-kind="ack"]').first
    expect(ack).to_contain_text("seen from the log test", timeout=LIVE_MS)
    expect(ack).to_contain_text(alarm["instrument"])
    r = httpx.post(f"{up.url}/api/commands", headers=h, timeout=10,
                   json={"instrument": "sup-rover-1", "command": "set_mode",
                         "args": {"mode": "SCIENCE"}})  # fmt: skip
    assert r.status_code == 201, r.text
    cmd = page.locator(f'#ev-list tr[data-key="c/{r.json()["id"]}"]')
    expect(cmd).to_have_attribute("data-state", "completed", timeout=LIVE_MS)
    expect(cmd).to_contain_text("set_mode mode=SCIENCE by operator")
    shot(page, "eventlog-live")

    # Partner filter: only its rows; the instrument list follows it.
    page.select_option("#ev-partner", "suparco")
    expect(page.locator("#ev-list tr").first).to_be_visible()
    page.wait_for_timeout(500)
    assert set(column(page, "1")) == {"suparco"}
    options = page.eval_on_selector_all("#ev-instrument option", "os => os.map(o => o.value)")
    assert options == ["", "sup-rover-1"]
    # Kind filter: commands only.
    for kind in page.eval_on_selector_all("#ev-kinds input", "bs => bs.map(b => b.value)"):
        if kind != "command" and page.is_visible(f"#ev-kind-{kind}"):
            page.uncheck(f"#ev-kind-{kind}")
    page.wait_for_timeout(500)
    assert set(column(page, "3")) == {"command"}
    shot(page, "eventlog-filtered")
    # A window in the past is an archive: nothing there, nothing new arrives.
    page.select_option("#ev-partner", "")
    page.fill("#tb-start", "2020-01-01T00:00:00Z")  # the time bar (timebar.js)
    page.fill("#tb-stop", "2020-01-02T00:00:00")
    page.click("#tb-apply")
    expect(page.locator("#ev-mode")).to_have_text("ARCHIVE")
    expect(page.locator("#ev-empty")).to_be_visible()
    page.fill("#tb-stop", "yesterday")
    page.click("#tb-apply")
    expect(page.locator("#tb-msg")).to_contain_text("not a UTC time")
    # A row's instrument opens its page; the header's title goes back to the overview.
    page.click("#tb-realtime")
    expect(page.locator("#ev-mode")).to_have_text("LIVE")
    page.locator("#ev-list tr a").first.click()
    expect(page.locator("#detail")).to_be_visible()
    page.click("#home")
    expect(page.locator("#overview")).to_be_visible()
    only_local(page, up.url)


def test_a_partner_log_and_search_hold_its_own_only(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "suparco-log", "partner", "suparco")
    login(page, up.url, token)
    open_log(page)
    page.wait_for_timeout(4000)  # live events of other partners must not arrive
    partners = set(column(page, "1"))
    assert partners <= {"suparco"}, partners
    page.fill("#search", "temp")
    page.wait_for_selector("#search-results li[role=option]")
    found = page.eval_on_selector_all("#search-results li[role=option]",
                                      "os => os.map(o => o.dataset.instrument)")  # fmt: skip
    assert found and set(found) == {"sup-rover-1"}
    only_local(page, up.url)


def test_a_viewer_log_holds_commands_only(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "wall-log", "viewer")
    h = {"Authorization": f"Bearer {up.token}"}
    body = {"instrument": "sup-rover-1", "command": "safe"}
    httpx.post(f"{up.url}/api/commands", headers=h, timeout=10, json=body).raise_for_status()
    login(page, up.url, token)
    open_log(page)
    page.wait_for_selector('#ev-list tr[data-kind="command"]', timeout=LIVE_MS)
    page.wait_for_timeout(2000)
    assert set(column(page, "3")) == {"command"}
    expect(page.locator("#ev-count")).to_contain_text("viewers: commands only")
    assert page.locator("#ev-kind-replay").is_hidden()
    page.fill("#search", "batt")
    expect(page.locator("#search-results")).to_contain_text("Viewers read no parameters")
    only_local(page, up.url)


def test_search_opens_the_instrument_on_the_channel(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    logout = page.locator("#logout").bounding_box()  # the header still fits at 1440 px
    assert logout and logout["x"] + logout["width"] <= 1440 - 8, logout
    page.keyboard.press("/")  # the shortcut focuses the box
    page.keyboard.type("batt_v")
    first = page.locator("#search-results li[role=option]").first
    expect(first).to_have_attribute("data-channel", "batt_v")
    expect(first).to_contain_text("[V]")
    shot(page, "search")
    page.keyboard.press("ArrowDown")
    expect(first).to_have_attribute("aria-selected", "true")
    inst = first.get_attribute("data-instrument")
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    assert page.evaluate("location.hash") == f"#/i/{inst}/batt_v"
    expect(page.locator("#channel")).to_have_value("batt_v")
    expect(page.locator("#search-results")).to_be_hidden()

    # By description, with the mouse, from an instrument page to another.
    page.fill("#search", "lander local")
    hit = page.locator("#search-results li[role=option]").first
    expect(hit).to_contain_text("lander")
    want = (hit.get_attribute("data-instrument"), hit.get_attribute("data-channel"))
    hit.click()
    expect(page.locator("#channel")).to_have_value(want[1])
    expect(page.locator("#detail-title")).to_contain_text(want[0])
    # Nothing found says so; Escape clears.
    page.fill("#search", "no-such-parameter-anywhere")
    expect(page.locator("#search-results")).to_contain_text("Nothing matches")
    page.keyboard.press("Escape")
    expect(page.locator("#search-results")).to_be_hidden()
    expect(page.locator("#detail")).to_be_visible()  # Escape in the box does not leave the page
    only_local(page, up.url)


def test_a_live_window_drops_what_leaves_it(page: Any, up: Up) -> None:
    """ "Last 15 min" slides: a row that falls out of the window leaves the log on its own,
    and one already older never enters it (the page's event as the WebSocket hands it over)."""
    login(page, up.url, up.token)
    open_log(page)
    page.click('#tb-presets button[data-range="900"]')  # the time bar (timebar.js)
    expect(page.locator("#ev-mode")).to_have_text("LIVE")
    expect(page.locator("#ev-count")).to_contain_text("entr")  # loaded (a load resets rows)
    inject = """([iid, age_s]) => window.dispatchEvent(new CustomEvent("ilrs:event", {detail: {
        kind: "gap", instrument: iid, partner: "cnsa", channel: "", missing: 1,
        time_ns: (Date.now() - age_s * 1000) * 1e6}}))"""
    page.evaluate(inject, ["cnsa-eps", 902])  # already out of the window
    page.evaluate(inject, ["cnsa-thermal", 897])  # leaves it in about 3 s
    row = page.locator('#ev-list tr[data-key^="e/cnsa-thermal/"][data-kind="gap"]')
    expect(row).to_have_count(1, timeout=5_000)
    expect(page.locator('#ev-list tr[data-key^="e/cnsa-eps/"][data-kind="gap"]')).to_have_count(0)
    expect(row).to_have_count(0, timeout=15_000)


def test_a_live_event_during_a_load_is_kept(page: Any, up: Up) -> None:
    """A load (a filter applied) replaces the rows with the store's answer; an event that comes
    live while that answer is on its way stays (before, the reset dropped it)."""
    login(page, up.url, up.token)
    open_log(page)
    expect(page.locator("#ev-count")).to_contain_text("entr")
    page.evaluate("""() => { const plain = window.fetch; window.answered = 0;
        window.fetch = async (url, opts) => { const r = await plain(url, opts);
          if (String(url).startsWith("/api/events")) {
            await new Promise(s => setTimeout(s, 1500)); window.answered += 1; }
          return r; }; }""")  # the store's answer takes 1.5 s from now on, and is counted
    page.click('#tb-presets button[data-range="900"]')  # a new window: a load
    expect(page.locator("#ev-count")).to_have_text("loading…")
    page.evaluate("""() => window.dispatchEvent(new CustomEvent("ilrs:event", {detail: {
        kind: "gap", instrument: "cnsa-radon", partner: "cnsa", channel: "", missing: 3,
        time_ns: Date.now() * 1e6}}))""")
    page.wait_for_function("window.answered >= 1", timeout=10_000)
    expect(page.locator("#ev-count")).not_to_have_text("loading…")  # the answer is shown
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 100)))")
    row = page.locator('#ev-list tr[data-key^="e/cnsa-radon/"][data-kind="gap"]')
    expect(row).to_have_count(1)
