# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""Commanding on the web page, in real headless Chromium against `ilrs-ops up` (its simulator
executes the commands), on its embedded broker and on Mosquitto: a form generated from the
definitions sends a command whose stages reach completed live; a hazardous command shows its
exact packet before it is requested, its requester cannot approve it, a second operator does
and it completes; a viewer gets the history and no form. Screenshots go to test-artifacts/
(always, for review)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ilrs_ops.console import create_token
from tests.test_console_page import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CHROMIUM,
    Up,
    browser,
    login,
    only_local,
    page,
    running_up,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")

DONE_MS = 30_000  # acknowledgement and execution at ~1 packet/s, with margin for a loaded CI


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """The station on its embedded broker."""
    with running_up(tmp_path_factory.mktemp("page-commands")) as running:
        yield running


@pytest.fixture(scope="module")
def up_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """The station on Mosquitto, under a topic root of its own."""
    root = f"test/page-commands-{os.getpid()}"
    tmp = tmp_path_factory.mktemp("page-commands-mosquitto")
    with running_up(tmp, "--broker", "127.0.0.1:1883", env={"ILRS_ROOT": root}) as running:
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"commands-{name}.png"), full_page=True)


def open_instrument(page: Any, iid: str) -> None:
    page.evaluate(f"location.hash = '#/i/{iid}'")
    page.wait_for_selector("#cmd-panel:not([hidden])", timeout=15_000)


def newest_state(page: Any, state: str, timeout: int = DONE_MS) -> None:
    page.wait_for_selector(f"#cmd-inst-list li:first-child .state.{state}", timeout=timeout)


@pytest.mark.parametrize("broker", ["up", "up_mosquitto"])
def test_a_command_from_the_form_completes_live(
    page: Any, broker: str, request: pytest.FixtureRequest
) -> None:
    up: Up = request.getfixturevalue(broker)
    login(page, up.url, up.token)
    open_instrument(page, "sup-rover-1")
    names = page.eval_on_selector_all("#cmd-name option", "os => os.map(o => o.value)")
    assert names == ["set_mode", "drive", "safe"]
    # an enum argument is a select of its labels
    labels = page.eval_on_selector_all("#arg-mode option", "os => os.map(o => o.value)")
    assert labels == ["CHARGE", "DRIVE", "HIBERNATE", "SAFE", "SCIENCE"]
    page.select_option("#arg-mode", "SCIENCE")
    page.click("#cmd-send")
    newest_state(page, "completed")
    text = page.inner_text("#cmd-inst-list li:first-child")
    assert "set_mode mode=SCIENCE" in text and "operator" in text
    # a number argument carries its range and units
    page.select_option("#cmd-name", "drive")
    assert page.get_attribute("#arg-distance", "max") == "50"
    assert "(m)" in page.inner_text("label[for=arg-distance]")
    shot(page, "form")
    page.goto(up.url + "/")  # the overview's history has it too
    page.wait_for_selector("#cmd-list tr .state.completed", timeout=15_000)
    only_local(page, up.url)


def test_a_hazardous_command_needs_a_second_operator(browser: Any, page: Any, up: Up) -> None:
    second = create_token(up.data / "up-tokens.yaml", "desk-2", "operator")
    login(page, up.url, up.token)
    open_instrument(page, "cnsa-seismometer")
    page.select_option("#cmd-name", "clamp")
    assert page.inner_text("#cmd-send") == "Review and request…"
    page.click("#cmd-send")
    page.wait_for_selector("#confirm-dialog[open]")
    shown = page.inner_text("#confirm-packet")
    hex_octets = re.findall(r"\b[0-9a-f]{2}\b", shown.split("\n")[0])
    assert len(hex_octets) >= 9  # header, opcode, CRC
    # the same packet the API previews (same next sequence count)
    r = httpx.post(f"{up.url}/api/commands/preview", timeout=10,
                   json={"instrument": "cnsa-seismometer", "command": "clamp"},
                   headers={"Authorization": f"Bearer {up.token}"})  # fmt: skip
    assert "".join(hex_octets) == r.json()["packet"]
    shot(page, "confirm")
    page.click("#confirm-ok")
    newest_state(page, "queued", 15_000)
    page.goto(up.url + "/")
    row = page.locator("#approval-list tr").first
    row.wait_for(timeout=15_000)
    assert row.locator("button[data-act=approve]").get_attribute("aria-disabled") == "true"
    shot(page, "queue")
    # the second operator approves in a tab of their own
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    other = context.new_page()
    try:
        login(other, up.url, second)
        approve = other.locator("#approval-list tr button[data-act=approve]").first
        approve.wait_for(timeout=15_000)
        assert approve.get_attribute("aria-disabled") is None
        approve.click()
        other.wait_for_selector("#cmd-list tr .state.completed", timeout=DONE_MS)
    finally:
        context.close()
    # the requester's page follows live: approved, sent, completed
    page.wait_for_function(
        """() => [...document.querySelectorAll('#cmd-list tr')].some(r =>
             r.textContent.includes('clamp') && r.querySelector('.state.completed'))""",
        timeout=DONE_MS,
    )
    rows = page.eval_on_selector_all("#cmd-list tr", "rs => rs.map(r => r.textContent)")
    text = next(t for t in rows if "clamp" in t)
    assert "approved" in text and "received" in text
    shot(page, "history")


def test_a_viewer_sees_the_history_and_no_form(page: Any, up: Up) -> None:
    viewer = create_token(up.data / "up-tokens.yaml", "wall", "viewer")
    login(page, up.url, viewer)
    page.wait_for_selector("#commands:not([hidden])")
    page.evaluate("location.hash = '#/i/sup-rover-1'")
    page.wait_for_selector("#detail:not([hidden])")
    page.wait_for_timeout(500)
    assert page.is_hidden("#cmd-panel")
