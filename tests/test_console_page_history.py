"""History plots of the console page in real headless Chromium (Debian's, via Playwright), over
a store with an outage in it, on a real uvicorn: the outage shows as a gap in the line, not a
straight line across it; the axis spans the window chosen ("last 1 h" of a young station is an
hour wide, its data at the right end) and no point is drawn before the first packet. And when
the console dies, every tile says it has no live link, visibly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ilrs_ops.console import create_token
from ilrs_ops.profiles import load_catalog
from ilrs_ops.replay import Recorder, import_packets
from ilrs_ops.store import Store
from tests.conftest import ROOT
from tests.test_console_page import (  # noqa: F401 (fixtures)
    CHROMIUM,
    browser,
    login,
    only_local,
    page,
)
from tests.test_console_replay import NS, A, packets, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"
)

# The history plot's data as uPlot holds it: [x (s), mean, min, max, limit lines...].
DATA = "() => document.querySelector('#hist-plot')._plot.data.slice(0, 2)"


@dataclass
class Site:
    url: str
    token: str
    first_s: float  # the first packet's time
    outage_s: tuple[float, float]  # no packets in between


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """sup-rover-1 (1 packet/s): 60 s of packets, a 90 s outage, 60 s more, ending 30 s ago."""
    tmp = tmp_path_factory.mktemp("page_history")
    catalog = load_catalog([ROOT / "hardware_profiles"])
    t0 = (time.time_ns() // NS - 240) * NS
    file = tmp / "rover.bin"
    file.write_bytes(b"".join(packets(catalog, A, 60, t0, seed=1) +
                              packets(catalog, A, 60, t0 + 150 * NS, seed=2)))  # fmt: skip
    data = tmp / "data"
    with Store(data) as store:
        recorder = Recorder(store, catalog)
        import_packets(file, recorder, catalog.by_apid)
        recorder.close()
    tokens = tmp / "tokens.yaml"
    token = create_token(tokens, "desk", "operator")
    with serving(data, tokens, f"test/page_history-{tmp.name}") as (url, _):
        yield Site(url, token, t0 / NS, (t0 / NS + 60, t0 / NS + 150))


def _open_history(tab: Any, site: Site, range_s: int) -> list[list[float | None]]:
    login(tab, site.url, site.token)
    tab.click(f'.tile[data-instrument="{A}"]')
    tab.select_option("#channel", "batt_v")
    tab.click(f'#tb-presets button[data-range="{range_s}"]')  # the time bar (timebar.js)
    tab.wait_for_function(
        "() => Number(document.querySelector('#hist-plot').dataset.points) > 100", timeout=15_000
    )
    sync_api.expect(tab.locator("#hist-info")).to_contain_text("is a gap")
    return tab.evaluate(DATA)  # type: ignore[no-any-return]


@pytest.mark.parametrize("range_s", [300, 3600])
def test_an_outage_is_a_gap_and_the_axis_spans_the_window(
    page: Any,  # noqa: F811 (the fixture imported above)
    site: Site,
    range_s: int,
) -> None:
    started = time.time()
    x, mean = _open_history(page, site, range_s)
    # the axis: the whole window, however young the data
    assert x[0] == pytest.approx(started - range_s, abs=15)
    assert x[-1] == pytest.approx(started, abs=15)
    # no value before the first packet, nor inside the outage; a null between the two runs
    shown = [(t, v) for t, v in zip(x, mean, strict=True) if v is not None]
    assert min(t for t, _ in shown) >= site.first_s - 1e-3
    lo, hi = site.outage_s
    assert not [t for t, _ in shown if lo + 1.5 < t < hi - 0.5], "values drawn in the outage"
    inside = [v for t, v in zip(x, mean, strict=True) if lo < t < hi]
    assert inside and all(v is None for v in inside), "no gap where the outage is"
    if range_s == 300:
        page.screenshot(path="/tmp/console-history-gap.png")
    only_local(page, site.url)


def test_every_tile_says_so_when_the_backend_dies(
    page: Any,  # noqa: F811
    tmp_path: Path,
    topic_root: str,
) -> None:
    tokens = tmp_path / "tokens.yaml"
    token = create_token(tokens, "desk", "operator")
    (tmp_path / "data").mkdir()
    with serving(tmp_path / "data", tokens, topic_root) as (url, _):
        login(page, url, token)
        sync_api.expect(page.locator("#conn")).to_have_text("live")
        n = page.locator(".tile").count()
        assert n > 0
        assert page.locator('.tile[data-link="lost"]').count() == 0
    # the console is gone: its WebSocket closed
    sync_api.expect(page.locator('.tile[data-link="lost"]')).to_have_count(n, timeout=15_000)
    for tile in page.locator(".tile").all():
        sync_api.expect(tile.locator(".health")).to_contain_text("no live link")
        assert "no live link" in (tile.get_attribute("aria-label") or "")
    background = page.locator(".tile").first.evaluate("t => getComputedStyle(t).backgroundImage")
    assert "repeating-linear-gradient" in background
    page.screenshot(path="/tmp/console-link-lost.png")
