# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""Issue 13, the operator's daily tools, in real headless Chromium against `ilrs-ops up` over a
copy of the profiles: a broken profile uploaded from the page shows its located problem at the
right line (a click puts the cursor there), the fixed one goes live as a new tile; a partner
cannot upload into another partner's folder and sees why; the audit log lists the uploads with
who; an export downloads a file whose content is the API's telemetry (read back with pyarrow).
Screenshots go to test-artifacts/ (always, for review)."""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from ilrs_ops.console import create_token
from tests.conftest import ROOT
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

ROVER = (ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml").read_text()
NEW = "sup-rover-7"
BROKEN_FIELD = "    type: u12\n"  # batt_v's type: the first u12 of the rover


def rover(instrument: str, apid: str, name: str) -> str:
    text = ROVER.replace("instrument: sup-rover-1", f"instrument: {instrument}")
    text = text.replace("apid: 0x2A1", f"apid: {apid}")
    return text.replace("name: SUPARCO rover housekeeping", f"name: {name}")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("page-screens")
    shutil.copytree(ROOT / "hardware_profiles", tmp / "profiles")
    with running_up(tmp, "--profiles", str(tmp / "profiles"), "--fault", "none") as running:
        running.profiles = tmp / "profiles"  # type: ignore[attr-defined]
        running.started = time.time()  # type: ignore[attr-defined]
        yield running


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"screens-{name}.png"))


def open_tool(page: Any, link: str, section: str) -> None:
    page.click("#nav-tools summary")
    page.click(link)
    expect(page.locator(section)).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#nav-tools")).not_to_have_attribute("open", "")  # closed on choice


def upload(page: Any, text: str) -> None:
    page.fill("#pf-text", text)
    page.click("#pf-upload")


def test_a_broken_profile_shows_where_then_the_fixed_one_goes_live(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    expect(page.locator("#conn")).to_have_text("live")
    open_tool(page, "#nav-profiles", "#profiles")
    expect(page.locator("#pf-title")).to_be_focused()
    logout = page.locator("#logout").bounding_box()  # one more header item: it still fits
    assert logout and logout["x"] + logout["width"] <= 1440 - 8, logout
    expect(page.locator('#pf-partner option[value="cnsa"]')).to_have_count(1)  # operators: all
    page.select_option("#pf-partner", "suparco")
    page.fill("#pf-instrument", NEW)

    good = rover(NEW, "0x2A7", "Seventh rover")
    broken = good.replace(BROKEN_FIELD, "    type: u77\n", 1)
    line = broken.splitlines().index("    type: u77") + 1
    upload(page, broken)
    problem = page.locator(f'#pf-problems .problem[data-line="{line}"]')
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text(f"line {line}")
    expect(problem).to_contain_text("u77")
    expect(page.locator(f'#pf-gutter b[data-line="{line}"]')).to_have_count(1)
    expect(page.locator("#pf-msg")).to_contain_text("Refused")
    assert not (up.profiles / "suparco" / f"{NEW}.yaml").exists()  # type: ignore[attr-defined]
    problem.click()  # the cursor goes to the line
    expect(page.locator("#pf-text")).to_be_focused()
    at = page.evaluate("document.querySelector('#pf-text').selectionStart")
    assert broken[:at].count("\n") == line - 1, (at, line)
    # The line's gutter mark is beside the editor's text in sight (the browser may still
    # scroll the caret into view after the click: wait for where it comes to rest).
    page.wait_for_function(
        """(line) => {
           const b = document.querySelector(`#pf-gutter b[data-line="${line}"]`);
           const e = document.querySelector('#pf-text').getBoundingClientRect();
           const top = b.getBoundingClientRect().top;
           return e.top <= top && top <= e.bottom; }""",
        arg=line,
        timeout=5_000,
    )
    shot(page, "profile-problem")

    upload(page, good)
    expect(page.locator("#pf-msg")).to_have_attribute("data-live", NEW, timeout=15_000)
    expect(page.locator("#pf-problems .problem")).to_have_count(0)
    shot(page, "profile-live")
    page.click("#pf-msg a")
    expect(page.locator("#detail-title")).to_contain_text(NEW)
    page.evaluate("location.hash = '#/'")
    expect(page.locator(f'.tile[data-instrument="{NEW}"] .name')).to_have_text("Seventh rover")

    # "load the current profile" gives the stored text back for editing
    open_tool(page, "#nav-profiles", "#profiles")
    page.fill("#pf-text", "")
    page.select_option("#pf-partner", "suparco")
    page.fill("#pf-instrument", "sup-rover-1")
    page.click("#pf-load")
    expect(page.locator("#pf-msg")).to_contain_text("Loaded the current profile")
    assert page.input_value("#pf-text") == ROVER
    only_local(page, up.url)


def test_a_partner_uploads_only_into_its_own_folder(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "suparco-desk", "partner", "suparco")
    login(page, up.url, token)
    open_tool(page, "#nav-profiles", "#profiles")
    expect(page.locator("#nav-audit")).to_be_hidden()  # operators only
    expect(page.locator("#pf-partner option")).to_have_count(1)
    expect(page.locator("#pf-partner option")).to_have_attribute("value", "suparco")
    expect(page.locator("#pf-partner")).to_be_disabled()

    # a profile of another partner's folder, from its own: the located refusal
    page.fill("#pf-instrument", "cnsa-probe")
    upload(page, rover("cnsa-probe", "0x2A8", "Probe").replace("partner: suparco", "partner: cnsa"))
    expect(page.locator("#pf-problems li")).to_contain_text("partner is 'cnsa'")
    expect(page.locator("#pf-msg")).to_contain_text("Refused")
    # a page made to ask for the other folder all the same: the API's 403, shown
    page.evaluate("""() => { const s = document.querySelector('#pf-partner');
      s.disabled = false; s.append(new Option('cnsa', 'cnsa')); s.value = 'cnsa'; }""")
    upload(page, rover("cnsa-probe", "0x2A8", "Probe").replace("partner: suparco", "partner: cnsa"))
    expect(page.locator("#pf-msg")).to_contain_text("403")
    expect(page.locator("#pf-msg")).to_contain_text("may not upload profiles of partner 'cnsa'")
    assert not list(up.profiles.glob("cnsa/*probe*"))  # type: ignore[attr-defined]
    shot(page, "profile-partner-refused")

    # its own folder: accepted
    page.evaluate("document.querySelector('#pf-partner').value = 'suparco'")
    page.fill("#pf-instrument", "sup-rover-8")
    upload(page, rover("sup-rover-8", "0x2A9", "Eighth rover"))
    expect(page.locator("#pf-msg")).to_have_attribute("data-live", "sup-rover-8", timeout=15_000)
    only_local(page, up.url)


def test_the_tools_menu_by_keyboard(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.focus("#nav-trend")  # the nav item before the menu
    page.keyboard.press("Tab")
    expect(page.locator("#nav-tools summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#nav-profiles")).to_be_visible()
    page.keyboard.press("Escape")  # closes, focus back on the menu
    expect(page.locator("#nav-profiles")).to_be_hidden()
    expect(page.locator("#nav-tools summary")).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(3):  # Profile upload, Audit log, Export
        page.keyboard.press("Tab")
    expect(page.locator("#nav-export")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#export")).to_be_visible()
    expect(page.locator("#ex-title")).to_be_focused()
    expect(page.locator("#nav-export")).to_have_attribute("aria-current", "page")
    only_local(page, up.url)


def test_a_viewer_has_no_tools(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "wall-screens", "viewer")
    login(page, up.url, token)
    expect(page.locator("#nav-events")).to_be_visible()
    expect(page.locator("#nav-tools")).to_be_hidden()
    page.evaluate("location.hash = '#/profiles'")
    expect(page.locator("#profiles .denied-msg")).to_have_text("Viewers see station status only.")
    expect(page.locator("#pf-text")).to_be_hidden()
    shot(page, "viewer")
    only_local(page, up.url)


def test_the_audit_log_lists_the_uploads_with_who(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    open_tool(page, "#nav-audit", "#audit")
    rows = page.locator("#au-list tr")
    expect(rows.first).to_be_visible()
    page.fill("#au-who", "suparco-desk")
    page.select_option("#au-kind", "profile")
    page.click("#au-apply")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-instrument", "sup-rover-8")
    expect(rows.first.locator("td").nth(1)).to_have_text("suparco-desk")
    expect(rows.first.locator("td").nth(2)).to_have_text("partner")
    expect(rows.first.locator("td").nth(6)).to_contain_text("new suparco/sup-rover-8.yaml")
    expect(rows.first.locator("td").nth(6)).to_contain_text("APID 0x2a9")
    stamp = rows.first.locator("td").first.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", stamp), stamp

    page.fill("#au-who", "")
    page.click("#au-apply")
    expect(page.locator("#au-list tr[data-instrument]")).to_have_count(2)
    got = page.eval_on_selector_all(
        "#au-list tr", "rs => rs.map(r => [r.dataset.instrument, r.dataset.who])"
    )
    assert got == [["sup-rover-8", "suparco-desk"], [NEW, "operator"]]  # newest first
    shot(page, "audit")
    only_local(page, up.url)


def late_scripts(page: Any, delay_s: float = 1.5) -> None:
    """Serve the views' scripts after the console's first answers, as a loaded server may."""

    def slow(route: Any) -> None:
        time.sleep(delay_s)
        route.continue_()

    page.route(re.compile(r"/static/(tools|dashboards)\.js$"), slow)


def test_a_reload_on_a_tool_opens_it_for_who_is_logged_in(page: Any, up: Up) -> None:
    """A tool opened before the session is known is judged again once it is: it said "for
    operators" to an operator when the route came first."""
    login(page, up.url, up.token)
    open_tool(page, "#nav-audit", "#audit")
    expect(page.locator("#au-count")).to_contain_text("action")  # loaded
    page.reload()
    expect(page.locator("#audit")).to_be_visible(timeout=30_000)  # a busy server starts slowly
    expect(page.locator("#au-count")).to_contain_text("action")
    # On a busy console the session's answer can come before the page's later scripts have
    # arrived (CI saw it): they must still hear who is logged in and which view is open.
    late_scripts(page)
    page.reload()
    expect(page.locator("#audit")).to_be_visible(timeout=30_000)
    expect(page.locator("#au-count")).to_contain_text("action")
    expect(page.locator("#audit .denied-msg")).to_be_empty()
    expect(page.locator("#audit")).not_to_have_class(re.compile("denied"))


def test_the_audit_log_pages_back(page: Any, up: Up) -> None:
    """More actions than a page: "Older" shows the ones before, none twice, none left out."""
    text = rover("sup-rover-8", "0x2A9", "Eighth rover")
    auth = {"Authorization": f"Bearer {up.token}"}
    for k in range(12):
        r = httpx.put(f"{up.url}/api/profiles/suparco/sup-rover-8", headers=auth, timeout=10,
                      content=f"# revision {k}\n{text}".encode())  # fmt: skip
        assert r.status_code == 200, r.text
    want = httpx.get(f"{up.url}/api/audit", headers=auth, params={"kind": "profile"}).json()
    want_times = [a["time_ns"] for a in reversed(want["actions"])]  # newest first
    assert len(want_times) == 14
    login(page, up.url, up.token)
    open_tool(page, "#nav-audit", "#audit")
    page.select_option("#au-kind", "profile")
    page.select_option("#au-limit", "10")
    page.click("#au-apply")
    rows = page.locator("#au-list tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#au-newer")).to_be_disabled()
    first = page.eval_on_selector_all("#au-list tr", "rs => rs.map(r => r.dataset.time)")
    page.click("#au-older")
    expect(page.locator("#au-page")).to_have_attribute("data-page", "1")
    expect(rows).to_have_count(4)
    expect(page.locator("#au-older")).to_be_disabled()
    expect(page.locator("#au-newer")).to_be_focused()  # the button pressed went away
    second = page.eval_on_selector_all("#au-list tr", "rs => rs.map(r => r.dataset.time)")
    assert [int(t) for t in first + second] == want_times
    shot(page, "audit-older")
    page.click("#au-newer")
    expect(rows).to_have_count(10)
    only_local(page, up.url)


def _ns(stamp: str) -> int:
    """The ns of a file name's UTC time (``20261203T170000.25Z``)."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    sec = int(datetime.strptime(whole, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp())
    return sec * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_downloads_the_api_data(page: Any, up: Up, tmp_path: Path, fmt: str) -> None:
    login(page, up.url, up.token)
    open_tool(page, "#nav-export", "#export")
    page.select_option("#ex-instrument", "sup-rover-1")
    expect(page.locator('#ex-chan-list input[value="mode"]')).to_be_checked()
    page.click("#ex-none")
    page.check('#ex-chan-list input[value="mode"]')
    page.check('#ex-chan-list input[value="batt_v"]')
    # a settled window: [now - 2 min, now - 20 s), typed to the second
    time.sleep(max(0.0, up.started + 35 - time.time()))  # type: ignore[attr-defined]
    now = time.time()
    start, stop = (datetime.fromtimestamp(now - s, UTC) for s in (120, 20))
    page.select_option("#ex-window", "custom")
    page.fill("#ex-start", start.strftime("%Y-%m-%d %H:%M:%S"))
    page.fill("#ex-stop", stop.strftime("%Y-%m-%d %H:%M:%S"))
    page.check(f'input[name="ex-format"][value="{fmt}"]')
    with page.expect_download() as info:
        page.click("#ex-go")
    download = info.value
    name = download.suggested_filename
    m = re.fullmatch(rf"sup-rover-1_(\d{{8}}T\d{{6}}Z)_(\d{{8}}T\d{{6}}Z)\.{fmt}", name)
    assert m, name
    start_ns, stop_ns = _ns(m[1]), _ns(m[2])
    assert start_ns == int(start.timestamp()) * 1_000_000_000
    assert stop_ns == int(stop.timestamp()) * 1_000_000_000
    expect(page.locator("#ex-msg")).to_contain_text(f"Downloaded {name}")
    path = tmp_path / name
    download.save_as(path)
    shot(page, f"export-{fmt}")

    r = httpx.get(f"{up.url}/api/instruments/sup-rover-1/telemetry",
                  params={"channels": "mode,batt_v", "start": start_ns, "stop": stop_ns},
                  headers={"Authorization": f"Bearer {up.token}"}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    want = r.json()["columns"]
    assert len(want["time"]) > 10
    auth = {"Authorization": f"Bearer {up.token}"}
    detail = httpx.get(f"{up.url}/api/instruments/sup-rover-1", headers=auth, timeout=10).json()
    labels = next(c for c in detail["channels"] if c["name"] == "mode")["enum"]
    if fmt == "parquet":
        got = pq.read_table(path)
        times = got.column("time").cast(pa.int64()).to_pylist()
        assert times == want["time"]
        assert got.column("mode").to_pylist() == want["mode"]
        assert got.column("batt_v").to_pylist() == pytest.approx(want["batt_v"])
    else:
        got = pcsv.read_csv(io.BytesIO(path.read_bytes()))
        assert got.column_names[:5] == ["time", "seq", "mode", "mode__label", "batt_v [V]"]
        times = got.column("time").cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_pylist()
        assert times == want["time"]
        assert got.column("mode").to_pylist() == want["mode"]
        assert got.column("mode__label").to_pylist() == [labels[str(v)] for v in want["mode"]]
        assert got.column("batt_v [V]").to_pylist() == pytest.approx(want["batt_v"])
    only_local(page, up.url)
