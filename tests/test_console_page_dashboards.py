# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""Dashboards (#/dashboards) in real headless Chromium against `ilrs-ops up`: an operator
makes one from the nav with the keyboard-usable editor (a value, a plot and an alarm list,
moved and resized with buttons), saves it, sees live values and alarms arrive in it, and its
shareable URL loaded again shows the same layout; a partner's list holds only dashboards of its own
instruments and another's URL says there is none; a viewer's widgets show status only.
Screenshots go to test-artifacts/ (always, for review)."""

from __future__ import annotations

import re
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
LAYOUT = """() => [...document.querySelectorAll('#db-grid .dw')].map(w => [w.dataset.kind,
  w.dataset.instrument, w.dataset.channel, w.style.gridColumn, w.style.gridRow])"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running_up(tmp_path_factory.mktemp("page-dashboards"), "--fault", FAULTS) as running:
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboards-{name}.png"))


def add(page: Any, kind: str, param: str, *, refused: bool = False) -> None:
    """Add a widget from the editor's form, by keyboard; wait until it is drawn."""
    n = page.locator("#db-grid .dw").count()
    page.select_option("#db-kind", kind)
    page.fill("#db-param", param)
    page.press("#db-param", "Enter")  # the form's submit: no mouse needed
    if not refused:
        expect(page.locator("#db-grid .dw")).to_have_count(n + 1)


def test_an_operator_builds_a_live_dashboard_that_its_url_shows_again(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.click("#nav-dashboards")
    expect(page.locator("#db-list-view")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    page.fill("#db-new-name", "Rover power")
    page.press("#db-new-name", "Enter")
    expect(page.locator("#db-editor")).to_be_visible()  # a new dashboard opens in edit mode
    expect(page.locator("#db-name")).to_have_text("Rover power")
    assert page.url.split("#")[1].startswith("/dashboards/")

    add(page, "value", "sup-rover-1/batt_v")
    add(page, "plot", "sup-rover-1/batt_v")
    add(page, "value", "cnsa-eps/batt_v")
    add(page, "alarms", "")
    add(page, "value", "sup-rover-1/warp_drive", refused=True)  # said at once, with the names
    expect(page.locator("#db-view-msg")).to_contain_text("has no channel warp_drive")
    expect(page.locator("#db-grid .dw")).to_have_count(4)
    # Arranged with the keyboard: the alarm list wider, the second value taller.
    page.locator('#db-grid .dw[data-kind="alarms"] button[data-act="wider"]').focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # the focus stays on the same button after the redraw
    page.locator('#db-grid .dw[data-index="2"] button[data-act="taller"]').press("Enter")
    page.locator('#db-grid .dw[data-index="3"] button[data-act="down"]').press("Enter")
    assert page.evaluate(LAYOUT) == [
        ["value", "sup-rover-1", "batt_v", "1 / span 3", "1 / span 2"],
        ["plot", "sup-rover-1", "batt_v", "4 / span 6", "1 / span 3"],
        ["value", "cnsa-eps", "batt_v", "10 / span 3", "1 / span 3"],
        ["alarms", "", "", "1 / span 6", "5 / span 3"],
    ]
    expect(page.locator("#db-grid .dw[data-overlap]")).to_have_count(0)
    expect(page.locator("#db-grid .dw-plot")).to_have_attribute("data-points", re.compile(r"\d"))
    shot(page, "edit")
    page.click("#db-save")
    expect(page.locator("#db-meta")).to_contain_text("version 2")
    expect(page.locator("#db-editor")).to_be_hidden()

    # Live: the value readout shows volts, and the plot gains points without a reload.
    value = page.locator('#db-grid .dw[data-kind="value"][data-instrument="sup-rover-1"]')
    expect(value).to_have_attribute("data-value", re.compile(r"\d V$"), timeout=LIVE_MS)
    box = '#db-grid .dw[data-kind="plot"] .dw-plot'
    page.wait_for_function(f"Number(document.querySelector('{box}').dataset.points) > 0",
                           timeout=LIVE_MS)  # fmt: skip
    seen = int(page.get_attribute(box, "data-points") or "0")
    page.wait_for_function(
        f"Number(document.querySelector('{box}').dataset.points) > {seen}", timeout=LIVE_MS
    )
    # The alarm list (all instruments) fills as the injected limit faults trip.
    tripped = page.locator('#db-grid .dw[data-kind="alarms"] li[data-severity]')
    expect(tripped.first).to_be_visible(timeout=LIVE_MS)
    layout = page.evaluate(LAYOUT)
    shot(page, "live")

    # The URL is the share link: loaded again, the same layout.
    page.reload()
    expect(page.locator("#db-name")).to_have_text("Rover power", timeout=LIVE_MS)
    expect(page.locator("#db-grid .dw")).to_have_count(4)
    assert page.evaluate(LAYOUT) == layout
    expect(value).to_have_attribute("data-value", re.compile(r"\d V$"), timeout=LIVE_MS)
    # and the list has it
    page.click("#db-back")
    expect(page.locator("#db-list tr", has_text="Rover power")).to_be_visible()
    shot(page, "list")
    only_local(page, up.url)


def test_a_partner_sees_only_its_own_and_a_viewer_status_only(browser: Any, up: Up) -> None:
    h = {"Authorization": f"Bearer {up.token}"}

    def make(name: str, iid: str) -> str:
        body = {"name": name, "widgets": [
            {"kind": "value", "instrument": iid, "channel": "batt_v", "x": 0, "y": 0, "w": 3},
            {"kind": "plot", "instrument": iid, "channel": "batt_v", "x": 3, "y": 0, "w": 6,
             "h": 3}]}  # fmt: skip
        r = httpx.post(f"{up.url}/api/dashboards", headers=h, json=body, timeout=10)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    rover = make("Rover only", "sup-rover-1")
    eps = make("EPS only", "cnsa-eps")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        token = create_token(up.data / "up-tokens.yaml", "suparco-dash", "partner", "suparco")
        login(page, up.url, token)
        page.click("#nav-dashboards")
        expect(page.locator(f'#db-list tr[data-id="{rover}"]')).to_be_visible()
        expect(page.locator(f'#db-list tr[data-id="{eps}"]')).to_have_count(0)
        names = page.eval_on_selector_all("#db-list tr", "rs => rs.map(r => r.dataset.id)")
        listed = httpx.get(f"{up.url}/api/dashboards", headers=h, timeout=10).json()
        shows = {d["id"]: set(d["instruments"]) for d in listed["dashboards"]}
        assert names and all(shows[n] <= {"sup-rover-1"} for n in names), (names, shows)
        shot(page, "partner-list")
        page.goto(f"{up.url}/#/dashboards/{eps}")
        expect(page.locator("#db-view-msg")).to_contain_text("No such dashboard")
        page.goto(f"{up.url}/#/dashboards/{rover}")
        value = page.locator('#db-grid .dw[data-kind="value"]')
        expect(value).to_have_attribute("data-value", re.compile(r"\d V$"),
                                        timeout=LIVE_MS)  # fmt: skip
        page.close()

        page = context.new_page()
        token = create_token(up.data / "up-tokens.yaml", "wall-dash", "viewer")
        login(page, up.url, token)
        page.goto(f"{up.url}/#/dashboards/{eps}")
        value = page.locator('#db-grid .dw[data-kind="value"]')
        expect(value.locator(".dw-value")).to_have_text("status only")
        expect(value).to_have_attribute("data-health", re.compile(r"^\w+$"))
        plot = page.locator('#db-grid .dw[data-kind="plot"]')
        expect(plot.locator(".dw-value")).to_have_text("status only")
        expect(page.locator("#db-edit")).to_be_hidden()
        expect(page.locator("#db-new")).to_be_hidden()
        shot(page, "viewer")
    finally:
        context.close()
