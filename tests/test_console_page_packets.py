# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""The packet inspector (#/packets) in real headless Chromium against `ilrs-ops up` with
corrupt and truncated packets: the header's Packets link opens it, recent packets of an
instrument list newest first, the chosen one shows as hex with offsets beside its fields,
hovering or focusing a field lights exactly its octets (whole and part), the arrow keys move
through the list, a quarantined packet shows its reason, the instrument page links to its
packets, a partner lists only its own instruments and a viewer is told why it sees none; in
realtime new packets come in without a reload (the packet shown, its focus and the rows in
sight kept), Pause holds them, and in archive the list stands still.
Screenshots go to test-artifacts/ (always, for review)."""

from __future__ import annotations

import time
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
expect = sync_api.expect

ROVER = "sup-rover-1"
FAULTS = "limit=0.01,corrupt=0.06,truncate=0.04"  # a rejected rover packet every ~10 s
WAIT_S = 60


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running_up(tmp_path_factory.mktemp("page-packets"), "--fault", FAULTS) as running:
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"packets-{name}.png"))


def lit(page: Any) -> dict[str, list[int]]:
    """The dump's octets lit whole (hl) and in part (part)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => ({
          hl: [...document.querySelectorAll('#pk-dump .o.hl')].map(o => +o.dataset.o),
          part: [...document.querySelectorAll('#pk-dump .o.part')].map(o => +o.dataset.o)})"""
    )


def wait_quarantined(up: Up) -> dict:
    """A quarantined rover packet, asked of the API until the simulator has made one."""
    h = {"Authorization": f"Bearer {up.token}"}
    deadline = time.monotonic() + WAIT_S
    while True:
        r = httpx.get(f"{up.url}/api/instruments/{ROVER}/packets", headers=h, timeout=10,
                      params={"kind": "quarantine"})  # fmt: skip
        assert r.status_code == 200, r.text
        if r.json()["packets"]:
            return r.json()["packets"][0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no quarantined {ROVER} packet in {WAIT_S} s"
        time.sleep(2)


def test_the_inspector_shows_packets_fields_and_their_octets(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.click("#nav-packets")
    expect(page.locator("#packets")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#nav-packets")).to_have_attribute("aria-current", "page")
    page.select_option("#pk-instrument", ROVER)
    page.select_option("#pk-kind", "raw")
    page.click("#pk-pause")  # held still: the rows' places are what this test checks
    page.wait_for_function(  # the rover's accepted packets are in (not an earlier list)
        """() => { const rs = [...document.querySelectorAll('#pk-rows tr')];
          return rs.length && document.querySelector('#pk-count').innerText !== 'loading…'
            && rs.every(r => r.children[1].innerText === '0x2a1' && r.dataset.kind === 'raw'); }""",
        timeout=15_000,
    )
    assert page.evaluate("location.hash") == f"#/packets/{ROVER}"
    # Newest first, in UTC with seconds; APIDs in hex; accepted only.
    cells = "ts => ts.map(t => t.innerText)"
    recv = page.eval_on_selector_all("#pk-rows tr td:first-child", cells)
    assert recv == sorted(recv, reverse=True) and recv[0].endswith("Z") and len(recv[0]) == 24
    assert set(page.eval_on_selector_all("#pk-rows tr td:nth-child(2)", cells)) == {"0x2a1"}
    assert set(page.eval_on_selector_all("#pk-rows tr td:nth-child(5)", cells)) == {"accepted"}
    # The first is selected: 69 octets in lines of 16 with hex offsets; its fields beside.
    expect(page.locator('#pk-rows tr[aria-selected="true"]')).to_have_count(1)
    expect(page.locator("#pk-dump .o")).to_have_count(69)
    offsets = page.eval_on_selector_all("#pk-dump .off", "os => os.map(o => o.innerText)")
    assert offsets == ["0x0000", "0x0010", "0x0020", "0x0030", "0x0040"]
    batt = page.locator('#pk-field-rows tr[data-name="batt_v"]')
    expect(batt).to_contain_text("V")
    # batt_v is u12 at bit 104: octet 13 whole, the high half of octet 14.
    batt.hover()
    assert lit(page) == {"hl": [13], "part": [14]}
    expect(batt).to_have_class("hl")
    # The little-endian odometer: octets 34..37. The dump's hex is the API's.
    page.locator('#pk-field-rows tr[data-name="odometer"]').hover()
    assert lit(page) == {"hl": [34, 35, 36, 37], "part": []}
    h = {"Authorization": f"Bearer {up.token}"}
    api = httpx.get(f"{up.url}/api/instruments/{ROVER}/packets", headers=h, timeout=10,
                    params={"kind": "raw", "limit": 50}).json()["packets"]  # fmt: skip
    shown = "".join(page.eval_on_selector_all("#pk-dump .o", "os => os.map(o => o.innerText)"))
    assert shown in [p["hex"] for p in api]
    # Hovering an octet lights the field in it.
    page.locator('#pk-dump .o[data-o="12"]').hover()
    expect(page.locator('#pk-field-rows tr[data-name="mode"]')).to_have_class("hl")
    page.locator('#pk-field-rows tr[data-name="wheel_temp"]').hover()
    assert lit(page) == {"hl": list(range(16, 28)), "part": []}
    shot(page, "accepted")
    # Keyboard: focus a field, its octets light; arrows move through the packets.
    page.mouse.move(5, 890)  # nothing under the mouse
    page.locator('#pk-field-rows tr[data-name="pos_x"]').focus()
    assert lit(page) == {"hl": list(range(43, 51)), "part": []}
    page.locator('#pk-rows tr[aria-selected="true"]').focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator('#pk-rows tr[data-i="1"]')).to_have_attribute("aria-selected", "true")
    assert page.evaluate("document.activeElement.dataset.i") == "1"
    page.keyboard.press("Home")
    expect(page.locator('#pk-rows tr[data-i="0"]')).to_have_attribute("aria-selected", "true")

    # A quarantined packet: its reason beside its octets.
    q = wait_quarantined(up)
    page.select_option("#pk-kind", "quarantine")
    row = page.locator('#pk-rows tr[data-kind="quarantine"]').first
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text(q["reason"])
    row.click()
    expect(page.locator("#pk-why")).to_contain_text("Quarantined as")
    expect(page.locator("#pk-title")).to_contain_text("quarantined")
    why = page.inner_text("#pk-why")
    assert any(r in why for r in ("bad_version", "truncated", "length_past_end", "bad_length"))
    n = page.eval_on_selector_all("#pk-dump .o", "os => os.length")
    octets = page.evaluate("+document.querySelector('#pk-rows tr[aria-selected=true]')"
                           ".children[3].innerText")  # fmt: skip
    assert n == octets == q["length"] or n == octets  # the newest may have come meanwhile
    page.select_option("#pk-kind", "all")
    page.wait_for_function(  # the list of all packets is in, not still the quarantined ones
        """() => document.querySelector('#pk-rows tr[data-kind="raw"]')
          && document.querySelector('#pk-count').innerText !== 'loading…'""",
        timeout=15_000,
    )
    expect(page.locator('#pk-rows tr[data-kind="quarantine"]').first).to_be_visible()
    page.locator('#pk-rows tr[data-kind="quarantine"]').first.click()
    page.locator('#pk-field-rows tr[data-name="version"]').hover()  # what the fault flipped
    assert lit(page) == {"hl": [], "part": [0]}
    shot(page, "quarantined")

    # The instrument page links to its packets.
    page.goto(f"{up.url}/#/i/{ROVER}")
    expect(page.locator("#detail")).to_be_visible()
    page.click("#detail-packets")
    expect(page.locator("#packets")).to_be_visible()
    expect(page.locator("#pk-instrument")).to_have_value(ROVER)
    page.click("#home")
    expect(page.locator("#overview")).to_be_visible()
    expect(page.locator("#packets")).to_be_hidden()
    only_local(page, up.url)


def test_a_partner_lists_its_own_and_a_viewer_is_told_why_not(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "suparco-packets", "partner", "suparco")
    login(page, up.url, token)
    page.click("#nav-packets")
    expect(page.locator("#pk-rows tr").first).to_be_visible(timeout=15_000)
    options = page.eval_on_selector_all("#pk-instrument option", "os => os.map(o => o.value)")
    assert options == [ROVER]  # no unknown-topic quarantine either: that is the operators'
    page.click("#logout")
    viewer = create_token(up.data / "up-tokens.yaml", "wall-packets", "viewer")
    login(page, up.url, viewer)
    page.click("#nav-packets")
    expect(page.locator("#pk-msg")).to_contain_text("Viewers see station status only")
    expect(page.locator("#pk-rows tr")).to_have_count(0)
    shot(page, "viewer")
    only_local(page, up.url)


NEWEST = "() => document.querySelector('#pk-rows tr td:first-child').innerText"
SHOWN = "() => document.querySelector('#pk-title').innerText + ' ' + document.querySelector('#pk-summary dd').innerText"  # noqa: E501


def test_in_realtime_new_packets_come_in_and_pause_holds_them(page: Any, up: Up) -> None:
    """Realtime: new packets appear at the top without a reload, while the packet shown, the
    focus on its row and the rows in sight stay; Pause holds the list, pressing it again
    follows once more; in archive the list stands still and says so."""
    login(page, up.url, up.token)
    page.goto(f"{up.url}/#/packets/{ROVER}")
    follow = page.locator("#pk-follow")
    expect(follow).to_have_text("following new packets")
    # a full list (the newest 50, more than fit: it scrolls), as on a station up for a while
    expect(page.locator("#pk-rows tr").nth(49)).to_be_attached(timeout=2 * WAIT_S * 1000)
    # the reader scrolls down and picks an older packet, from the keyboard
    page.locator('#pk-rows tr[data-i="12"]').click()  # selected and focused (the row may move)
    page.eval_on_selector(".pk-list", "s => { s.scrollTop = 120; }")
    shown = page.evaluate(SHOWN)
    place = page.evaluate("() => document.activeElement.getBoundingClientRect().top")
    newest = page.evaluate(NEWEST)
    page.wait_for_function(f"({NEWEST})() !== {newest!r}", timeout=WAIT_S * 1000)
    assert page.evaluate(SHOWN) == shown  # the same packet shown
    focused = page.evaluate("() => document.activeElement.getAttribute('aria-selected')")
    assert focused == "true"  # the focus on its row
    moved = page.evaluate("() => document.activeElement.getBoundingClientRect().top") - place
    assert abs(moved) < 2, moved  # and the rows in sight where they were
    clipped = page.eval_on_selector_all(  # the receive times are whole, to the ms
        "#pk-rows td", "ts => ts.filter(t => t.scrollWidth > t.clientWidth).map(t => t.innerText)"
    )
    assert not clipped, clipped
    shot(page, "following")

    # paused: nothing new comes, and no packets are asked for
    page.click("#pk-pause")
    expect(page.locator("#pk-pause")).to_have_attribute("aria-pressed", "true")
    expect(follow).to_have_text("paused: new packets are not shown")
    held = page.evaluate(NEWEST)
    asked = len(page.requests)  # type: ignore[attr-defined]
    page.wait_for_timeout(5000)  # ~5 rover packets
    assert page.evaluate(NEWEST) == held
    assert not [u for u in page.requests[asked:] if "/packets?" in u]  # type: ignore[attr-defined]
    shot(page, "paused")
    page.click("#pk-pause")
    expect(page.locator("#pk-pause")).to_have_attribute("aria-pressed", "false")
    page.wait_for_function(f"({NEWEST})() !== {held!r}", timeout=WAIT_S * 1000)
    assert page.evaluate(SHOWN) == shown

    # archive: the window's packets, standing still
    page.evaluate("performance.clearResourceTimings()")  # (a full buffer takes no more)
    page.click("#tb-archive")
    expect(follow).to_have_text("archive: the window's newest, standing still")
    expect(page.locator("#pk-pause")).to_be_hidden()
    page.wait_for_function(  # the archive window's own list has come (then it is drawn)
        """() => { const stop = `stop=${window.ilrsTime.state().stop}`;
          return performance.getEntriesByType('resource')
            .some(e => e.name.includes('/packets?') && e.name.includes(stop)); }"""
    )
    page.wait_for_timeout(200)
    held = page.evaluate(NEWEST)
    asked = len(page.requests)  # type: ignore[attr-defined]
    page.wait_for_timeout(4000)
    assert page.evaluate(NEWEST) == held
    assert not [u for u in page.requests[asked:] if "/packets?" in u]  # type: ignore[attr-defined]
    only_local(page, up.url)
