# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""The links and ingest view (#/links) in real headless Chromium against `ilrs-ops up` with
dropouts and gaps: reached from the header, one row per instrument and per ingest lane, the
counters move and agree with /metrics (bracketed by two scrapes), the rates agree with the
counters' increase, a silent instrument is marked, APIDs are hex and times UTC with seconds,
focus and scroll survive the live refresh; a partner sees only its own instruments and lanes
and no shard totals; a viewer has no Links link and gets the API's refusal. Screenshots at
1440x900 go to test-artifacts/ (always, for review)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ilrs_ops.console import create_token
from tests.test_console_page import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CHROMIUM,
    HEALTH_COLOURS,
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

#: Dropouts (20 s of silence each) make an instrument stale now and then; gaps and duplicates
#: give the gap and reject columns something to count.
FAULTS = "limit=0.005,dropout=0.03,gap=0.02,duplicate=0.02"
LIVE_MS = 30_000
PACKETS = re.compile(r'^ilrs_instrument_packets_total\{instrument="([^"]+)",[^}]*\} (\d+)$', re.M)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running_up(tmp_path_factory.mktemp("page-links"), "--fault", FAULTS) as running:
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"links-{name}.png"))


def scrape(up: Up) -> dict[str, int]:
    """Packets per instrument from /metrics."""
    r = httpx.get(f"{up.url}/metrics", headers={"Authorization": f"Bearer {up.token}"}, timeout=10)
    r.raise_for_status()
    return {iid: int(n) for iid, n in PACKETS.findall(r.text)}


def rows(page: Any, body: str) -> list[dict[str, Any]]:
    """Each row of ``#{body}`` as its data attributes and cell texts."""
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"#{body} tr",
        "rs => rs.map(r => ({...r.dataset, cells: [...r.children].map(c => c.innerText)}))",
    )


def fresh(page: Any, times: int = 1) -> None:
    """Wait for ``times`` new answers of the API painted (the view polls every 2 s)."""
    for _ in range(times):
        was = page.get_attribute("#ln-summary", "data-updated")
        page.wait_for_function(
            "was => document.querySelector('#ln-summary').dataset.updated !== was",
            arg=was, timeout=10_000,
        )  # fmt: skip


def open_links(page: Any) -> None:
    page.click("#nav-links")
    expect(page.locator("#links")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#nav-links")).to_have_attribute("aria-current", "page")
    assert page.evaluate("location.hash") == "#/links"
    fresh(page)


def test_links_view_is_live_and_agrees_with_metrics(page: Any, up: Up) -> None:
    station = {t["instrument"]: t for p in up.status()["partners"] for t in p["instruments"]}
    login(page, up.url, up.token)
    open_links(page)
    # Every instrument and every lane (one per instrument, one for unknown topics), each once.
    expect(page.locator("#ln-inst-list tr")).to_have_count(len(station))
    expect(page.locator("#ln-lanes-list tr")).to_have_count(len(station) + 1)
    expect(page.locator("#ln-shards .chip")).to_contain_text("connected")
    # Rates appear once the console has seen the counters for a while.
    page.wait_for_function(
        "[...document.querySelectorAll('#ln-inst-list tr')]"
        ".filter(r => Number(r.dataset.packetsPerS) > 0).length >= 5",
        timeout=LIVE_MS,
    )

    # The counters move, and the page's lie between two /metrics scrapes around its answer.
    before = scrape(up)
    fresh(page, 2)  # the second answer was asked for after the scrape
    shown = {r["key"]: int(r["packets"]) for r in rows(page, "ln-inst-list")}
    after = scrape(up)
    assert set(shown) == set(station)
    for iid, n in shown.items():
        assert before[iid] <= n <= after[iid], (iid, before[iid], n, after[iid])
    assert sum(after.values()) > sum(before.values())
    assert sum(shown.values()) > sum(before.values()), "the page's counters did not move"

    # The rates are the counters' increase: the page's over its 10 s window against the
    # /metrics counters 10 s apart, for the whole station.
    t0, m0 = time.monotonic(), scrape(up)
    time.sleep(10)
    m1, t1 = scrape(up), time.monotonic()
    fresh(page)
    page_rate = sum(float(r.get("packetsPerS") or 0) for r in rows(page, "ln-inst-list"))
    counted = (sum(m1.values()) - sum(m0.values())) / (t1 - t0)
    assert abs(page_rate - counted) <= 0.25 * counted + 1.0, (page_rate, counted)

    # APIDs in hex as the profiles write them, times UTC with seconds.
    api = httpx.get(f"{up.url}/api/links", headers={"Authorization": f"Bearer {up.token}"},
                    timeout=10).json()  # fmt: skip
    apids = {i["instrument"]: i["apid"] for i in api["instruments"]}
    for r in rows(page, "ln-inst-list"):
        assert r["cells"][2] == f"0x{apids[r['key']]:03x}", r
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", r["cells"][6]), r
    for r in rows(page, "ln-lanes-list"):
        assert r["state"] == "ok", r  # one live ingestor: every lane fresh
    shot(page, "operator")

    # A dropout makes an instrument silent: its row says STALE and is marked in the stale colour.
    stale = page.locator('#ln-inst-list tr[data-silent="stale"]').first
    expect(stale).to_be_visible(timeout=60_000)
    expect(stale.locator("td.silent")).to_contain_text("STALE")
    colour = stale.evaluate("r => getComputedStyle(r).borderLeftColor")
    assert colour == HEALTH_COLOURS["stale"], colour
    shot(page, "operator-stale")

    # Focus and scroll stay where they were across refreshes.
    page.set_viewport_size({"width": 1440, "height": 500})  # so that the page scrolls
    link = page.locator("#ln-inst-list tr a").nth(3)
    link.focus()
    page.evaluate("window.scrollTo(0, 200)")
    name = link.inner_text()
    fresh(page, 2)
    assert page.evaluate("document.activeElement.textContent") == name
    assert page.evaluate("window.scrollY") == 200
    page.set_viewport_size({"width": 1440, "height": 900})
    # An instrument opens its page; the overview is a click away.
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#links")).to_be_hidden()
    page.click("#home")
    expect(page.locator("#overview")).to_be_visible()
    only_local(page, up.url)


def test_a_partner_sees_its_own_links_only(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "suparco-links", "partner", "suparco")
    login(page, up.url, token)
    open_links(page)
    own = [t["instrument"] for p in up.status(token)["partners"] for t in p["instruments"]]
    expect(page.locator("#ln-inst-list tr")).to_have_count(len(own))
    page.wait_for_function(
        "[...document.querySelectorAll('#ln-inst-list tr')].every(r => r.dataset.packetsPerS)",
        timeout=LIVE_MS,
    )
    fresh(page)
    assert {r["partner"] for r in rows(page, "ln-inst-list")} == {"suparco"}
    assert sorted(r["key"] for r in rows(page, "ln-inst-list")) == sorted(own)
    assert sorted(r["lane"] for r in rows(page, "ln-lanes-list")) == sorted(own)
    expect(page.locator("#ln-shards")).to_be_hidden()  # shard totals mix every partner's
    logout = page.locator("#logout").bounding_box()  # a long token name: the header still fits
    assert logout and logout["x"] + logout["width"] <= 1440 - 8, logout
    shot(page, "partner")
    only_local(page, up.url)


def test_a_viewer_has_no_links_view(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "wall-links", "viewer")
    login(page, up.url, token)
    expect(page.locator("#nav-events")).to_be_visible()
    expect(page.locator("#nav-links")).to_be_hidden()
    page.evaluate("location.hash = '#/links'")
    expect(page.locator("#ln-msg")).to_contain_text("viewers see station status only")
    expect(page.locator("#ln-inst-list tr")).to_have_count(0)
    only_local(page, up.url)
