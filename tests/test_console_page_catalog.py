"""Issue 13, defect 7, in real Chromium against `ilrs-ops up` over a copy of the profiles: a
profile uploaded while the page is open reaches it live, without a reload (a new instrument's
tile appears, a changed one's name changes), and profile events read as words, not JSON."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.test_console_page import (  # noqa: F401  (fixtures)
    Up,
    browser,
    login,
    only_local,
    page,
    running_up,
    sync_api,
)

ROVER = (ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml").read_text()
NEW = "sup-rover-2"


@pytest.fixture(scope="module")
def up_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("catalog")
    shutil.copytree(ROOT / "hardware_profiles", tmp / "profiles")
    with running_up(tmp, "--profiles", str(tmp / "profiles"), "--fault", "none") as running:
        yield running


def put(up: Up, partner: str, instrument: str, text: str) -> dict[str, Any]:
    r = httpx.put(f"{up.url}/api/profiles/{partner}/{instrument}", content=text.encode(),
                  headers={"Authorization": f"Bearer {up.token}"}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_an_uploaded_instrument_reaches_an_open_page_live(
    page: Any,  # noqa: F811 (the fixture imported above)
    up_copy: Up,
) -> None:
    login(page, up_copy.url, up_copy.token)
    sync_api.expect(page.locator("#conn")).to_have_text("live")
    sync_api.expect(page.locator("#sim")).to_have_text("SIMULATED STATION · no faults injected")
    page.evaluate("window.notReloaded = true")  # gone if the page were reloaded

    # a changed profile of an instrument whose detail is open: its event comes live, in words
    page.click('.tile[data-instrument="sup-rover-1"]')
    sync_api.expect(page.locator("#detail-title")).to_contain_text("sup-rover-1")
    sync_api.expect(page.locator("#channel")).not_to_have_value("")
    # the channel shown before the change (read after it, it may be mid-redraw: a busy run
    # read an empty choice there)
    channel = page.eval_on_selector("#channel", "s => s.value")
    changed = ROVER.replace("name: SUPARCO rover housekeeping", "name: Rover housekeeping v2")
    assert changed != ROVER
    put(up_copy, "suparco", "sup-rover-1", changed)
    event = page.locator('#events li[data-kind="profile"]').first
    sync_api.expect(event).to_contain_text("profile replaced by operator (operator)")
    sync_api.expect(event).to_contain_text("suparco/sup-rover-1.yaml")
    assert "{" not in event.inner_text() and '"' not in event.inner_text()
    # and the open detail itself shows the new profile (its name here), on the same channel
    sync_api.expect(page.locator("#detail-title")).to_contain_text("Rover housekeeping v2")
    sync_api.expect(page.locator("#channel")).to_have_value(channel)
    page.screenshot(path="/tmp/console-profile-event.png")

    # a new instrument: its tile appears on the open overview
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#overview")).to_be_visible()
    new = ROVER.replace("instrument: sup-rover-1", f"instrument: {NEW}")
    new = new.replace("apid: 0x2A1", "apid: 0x2A2").replace(
        "name: SUPARCO rover housekeeping", "name: Second rover"
    )
    put(up_copy, "suparco", NEW, new)
    tile = page.locator(f'.tile[data-instrument="{NEW}"]')
    sync_api.expect(tile).to_have_count(1, timeout=5000)
    sync_api.expect(tile.locator(".name")).to_have_text("Second rover")
    sync_api.expect(page.locator('.tile[data-instrument="sup-rover-1"] .name')).to_have_text(
        "Rover housekeeping v2"
    )
    page.screenshot(path="/tmp/console-new-tile.png")
    # its detail lists the upload, read back from the store, in words as well
    tile.click()
    stored = page.locator('#events li[data-kind="profile"]').first
    sync_api.expect(stored).to_contain_text(f"profile uploaded by operator (operator) · "
                                            f"suparco/{NEW}.yaml · APID 0x2a2")  # fmt: skip
    assert page.evaluate("window.notReloaded") is True

    # a profile copied into the folder, not uploaded: its tile appears too
    page.keyboard.press("Escape")
    dropped = new.replace(f"instrument: {NEW}", "instrument: sup-rover-3")
    dropped = dropped.replace("apid: 0x2A2", "apid: 0x2A3").replace("Second rover", "Third rover")
    (up_copy.data.parent / "profiles" / "suparco" / "rover-3.yaml").write_text(dropped)
    third = page.locator('.tile[data-instrument="sup-rover-3"]')
    sync_api.expect(third).to_have_count(1, timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    only_local(page, up_copy.url)


def test_profile_folder_is_a_copy(up_copy: Up) -> None:
    """The uploads above went to the copy, never to the repository's profiles."""
    assert not (ROOT / "hardware_profiles" / "suparco" / f"{NEW}.yaml").exists()
    assert isinstance(up_copy.data, Path)
