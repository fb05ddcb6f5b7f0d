"""The Replays panel of the console page in real headless Chromium (Debian's, via Playwright):
an operator starts a replay from the keyboard and sees its progress bar move and reach the end,
pauses, resumes and stops one; a partner token gets no panel. Console on a real uvicorn and
the machine's Mosquitto, recordings imported from simulator packets; and under `ilrs-ops up`
(the embedded MQTT 3.1.1 broker) a replay goes through too, while one whose broker cannot be
reached says so in its row and leaves no recording."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ilrs_ops.console import create_token
from ilrs_ops.profiles import load_catalog
from tests.conftest import ROOT
from tests.test_console_page import (  # noqa: F401 (fixtures)
    CHROMIUM,
    Up,
    browser,
    free_port,
    login,
    only_local,
    page,
    up,
)
from tests.test_console_replay import NS, A, import_recording, packets, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"
)

MOVING = """() => {
  const p = document.querySelector('#replay-list tr progress');
  return p !== null && p.value > 0 && p.value < p.max;
}"""


@dataclass
class Console:
    url: str
    data: Path
    operator: str
    partner: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("page_replay")
    catalog = load_catalog([ROOT / "hardware_profiles"])
    data = tmp / "data"
    data.mkdir()
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(data, catalog, "rover", [packets(catalog, A, 40, t0, seed=3)])
    tokens = tmp / "tokens.yaml"
    operator = create_token(tokens, "desk", "operator")
    partner = create_token(tokens, "suparco-ops", "partner", "suparco")
    root = f"test/test_console_page_replay-{tmp.name}"
    with serving(data, tokens, root) as (url, _):
        yield Console(url, data, operator, partner)


def newest(tab: Any) -> Any:
    """The newest replay's row (the list is newest first)."""
    return tab.locator("#replay-list tr").first


def test_an_operator_starts_a_replay_and_sees_it_through(
    page: Any,  # noqa: F811 (the fixture imported above)
    console: Console,
) -> None:
    login(page, console.url, console.operator)
    sync_api.expect(page.locator("#replays")).to_be_visible()
    row = page.locator('#recording-list tr[data-name="rover"]')
    sync_api.expect(row).to_have_attribute("data-kind", "imported")
    sync_api.expect(row.locator("td").nth(3)).to_have_text("40")
    page.select_option("#replay-speed", "10")  # 39 s of packets: about 4 s
    row.locator('button[data-act="start"]').focus()  # keyboard only
    page.keyboard.press("Enter")
    sync_api.expect(newest(page)).to_have_attribute("data-state", "running")
    sync_api.expect(page.locator("#replay-msg")).to_contain_text("Replaying rover into replay-")
    page.wait_for_function(MOVING, timeout=15_000)  # the bar moves with the live messages
    sync_api.expect(newest(page)).to_have_attribute("data-state", "finished", timeout=30_000)
    bar = newest(page).locator("progress")
    assert bar.evaluate("p => [p.value, p.max]") == [40, 40]
    sync_api.expect(newest(page)).to_contain_text("40 / 40 messages")
    target = newest(page).locator(".name").inner_text().split("→ ")[1]
    new = page.locator(f'#recording-list tr[data-name="{target}"]')
    sync_api.expect(new).to_have_attribute("data-kind", "replayed")
    sync_api.expect(new.locator("td").nth(3)).to_have_text("40")

    # at real time: pause, resume and stop from the keyboard; focus stays on the buttons
    page.select_option("#replay-speed", "1")
    row.locator('button[data-act="start"]').focus()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#replay-list tr")).to_have_count(2)
    running = newest(page)
    sync_api.expect(running).to_have_attribute("data-state", "running")
    running.locator('button[data-act="pause"]').focus()
    page.keyboard.press("Enter")
    sync_api.expect(running).to_have_attribute("data-state", "paused")
    assert page.evaluate("document.activeElement.dataset.act") == "resume"
    page.keyboard.press("Enter")
    sync_api.expect(running).to_have_attribute("data-state", "running")
    running.locator('button[data-act="stop"]').focus()
    page.keyboard.press("Enter")
    sync_api.expect(running).to_have_attribute("data-state", "stopped", timeout=30_000)
    sent, total = running.locator("progress").evaluate("p => [p.value, p.max]")
    assert sent < total == 40
    assert running.locator("button").count() == 0
    only_local(page, console.url)


def test_a_partner_gets_no_replay_panel(
    page: Any,  # noqa: F811
    console: Console,
) -> None:
    login(page, console.url, console.partner)
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    page.wait_for_timeout(1000)
    sync_api.expect(page.locator("#replays")).to_be_hidden()
    assert page.locator("#recording-list tr").count() == 0
    r = httpx.get(
        f"{console.url}/api/replays",
        headers={"Authorization": f"Bearer {console.partner}"},
        timeout=10,
    )
    assert r.status_code == 403
    only_local(page, console.url)


def test_a_replay_under_up_goes_through_the_embedded_broker(
    page: Any,  # noqa: F811
    up: Up,  # noqa: F811
) -> None:
    catalog = load_catalog([ROOT / "hardware_profiles"])
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(up.data, catalog, "rover", [packets(catalog, A, 20, t0, seed=5)])
    login(page, up.url, up.token)
    row = page.locator('#recording-list tr[data-name="rover"]')
    sync_api.expect(row.locator("td").nth(3)).to_have_text("20", timeout=15_000)
    page.select_option("#replay-speed", "10")
    row.locator('button[data-act="start"]').click()
    sync_api.expect(newest(page)).to_have_attribute("data-state", "finished", timeout=60_000)
    sync_api.expect(newest(page)).to_contain_text("20 / 20 messages")
    only_local(page, up.url)


def test_a_replay_that_cannot_reach_its_broker_says_so(
    page: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ilrs_ops.replay import _replay

    monkeypatch.setattr(_replay, "CONNECT_S", 2.0)
    catalog = load_catalog([ROOT / "hardware_profiles"])
    data = tmp_path / "data"
    data.mkdir()
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(data, catalog, "rover", [packets(catalog, A, 5, t0, seed=3)])
    tokens = tmp_path / "tokens.yaml"
    operator = create_token(tokens, "desk", "operator")
    dead = ("127.0.0.1", free_port())  # nothing listens there
    with serving(data, tokens, "test/unreachable", broker=dead, wait_for_broker=False) as (url, _):
        login(page, url, operator)
        row = page.locator('#recording-list tr[data-name="rover"]')
        row.locator('button[data-act="start"]').click()
        sync_api.expect(newest(page)).to_have_attribute("data-state", "failed", timeout=30_000)
        sync_api.expect(newest(page).locator(".info")).to_contain_text(
            f"cannot connect to the MQTT broker {dead[0]}:{dead[1]}"
        )
        page.screenshot(path="/tmp/replay-failed.png")
    names = sorted(p.name for p in (data / "recordings").iterdir())
    assert names == ["rover"], names  # the failed replay left no empty recording
