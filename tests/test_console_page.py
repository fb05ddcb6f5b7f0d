"""The console web page in real headless Chromium (Debian's, driven by Playwright for Python)
against `ilrs-ops up` with limit faults: a tile per instrument, a limit excursion turns its tile
red within 2 s of the status saying critical, the detail plots show data, a partner token sees
only its own instruments, and the page makes no request outside the console. Screenshots of a
failed test go to test-artifacts/."""

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


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`ilrs-ops up` with limit faults on free ports; URL and token read from its stderr."""
    tmp = tmp_path_factory.mktemp("page")
    broker_port = free_port()
    env = os.environ | {"ILRS_EMBEDDED_PORT": str(broker_port)}
    cmd = [sys.executable, "-m", "ilrs_ops", "up", "--data", str(tmp / "data"),
           "--http-port", str(free_port()), "--fault", FAULTS]  # fmt: skip
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


def test_tiles_and_a_limit_excursion_turns_its_tile_red(
    page: Any, up: Up, station: Catalog
) -> None:
    page.goto(up.url + "/")
    page.fill("#token", "not-a-token")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#login-error")).to_contain_text("Unknown token")
    login(page, up.url, up.token)
    sync_api.expect(page.locator(".tile")).to_have_count(len(station.instruments))
    assert tile_ids(page) == set(station.instruments)
    partners = page.eval_on_selector_all(".partner", "ps => ps.map(p => p.dataset.partner)")
    assert partners == sorted({i.profile.partner for i in station})
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    page.evaluate(WATCH_HEALTH)

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
    colours = page.eval_on_selector_all(
        ".tile", "ts => ts.map(t => [t.dataset.health, getComputedStyle(t).borderLeftColor])"
    )
    for health, colour in colours:
        assert colour == HEALTH_COLOURS[health], (health, colour)
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
    page.click('#ranges button[data-range="3600"]')
    sync_api.expect(page.locator('#ranges button[data-range="3600"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    sync_api.expect(page.locator("#hist-info")).to_contain_text("buckets of 6.0 s")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#overview")).to_be_visible()
    assert page.evaluate("document.activeElement.dataset.instrument") == iid
    only_local(page, up.url)


def test_a_partner_token_sees_only_its_own_instruments(
    page: Any, up: Up, station: Catalog, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.yaml"
    partner_token = create_token(tokens, "suparco-ops", "partner", "suparco")
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
        page.wait_for_timeout(3000)  # live updates of other partners must not add tiles
        assert tile_ids(page) == own
        assert page.eval_on_selector_all(".partner", "ps => ps.map(p => p.dataset.partner)") == [
            "suparco"
        ]
        other = next(i.id for i in station if i.profile.partner != "suparco")
        page.goto(f"{url}/#/i/{other}")  # not reachable by hand either: the API refuses
        sync_api.expect(page.locator("#detail-meta")).to_contain_text("403")
        only_local(page, url)
    finally:
        _stop(proc)
