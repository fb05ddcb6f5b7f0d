# ruff: noqa: F811  (pytest fixtures imported from test_console_page)
"""Trending (#/trend) in real headless Chromium against `ilrs-ops up` with dropouts: two
parameters of two instruments with different units get two y-axes and both series, whose
points are the telemetry API's numbers (fetched here, independently); a dropout is a gap (a
null), not a line; the URL alone restores the trend after a reload; zoomed out the rollups'
min/max band, zoomed in by a drag the samples; the CSV export holds what is plotted; a partner
cannot add, nor be shown, another partner's parameter; the header search's "+ trend" adds one,
and a "last ..." window follows the clock. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
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

ROVER, EPS = "sup-rover-1/batt_v", "cnsa-eps/batt_t"  # V and degC, partners suparco and cnsa
NS = 1_000_000_000
TREND = "() => document.querySelector('#tr-plot')._trend"
DATA = "() => document.querySelector('#tr-plot')._plot.data"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`ilrs-ops up` whose modules go silent for 20 s now and then; returned once the rover's
    telemetry has such a gap in it."""
    with running_up(tmp_path_factory.mktemp("page-trend"), "--fault", "dropout=0.04") as running:
        deadline = time.monotonic() + 150
        while True:
            times = api(running, "sup-rover-1", "batt_v", *last(600))["columns"]["time"]
            if len(times) > 20 and max(b - a for a, b in itertools.pairwise(times)) > 5 * NS:
                break
            assert time.monotonic() < deadline, "no dropout in the rover's telemetry in 150 s"
            time.sleep(2)
        yield running


def last(s: int) -> tuple[int, int]:
    now = time.time_ns()
    return now - s * NS, now


def api(up: Up, inst: str, chan: str, start: int, stop: int, **q: Any) -> dict[str, Any]:
    r = httpx.get(
        f"{up.url}/api/instruments/{inst}/telemetry",
        params={"channels": chan, "start": start, "stop": stop, **q},
        headers={"Authorization": f"Bearer {up.token}"},
        timeout=20,
    )
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"trend-{name}.png"))


def wait_loads(page: Any, n: int) -> None:
    page.wait_for_function(
        f"() => Number(document.querySelector('#tr-plot').dataset.loads || 0) >= {n}",
        timeout=20_000,
    )


def loads(page: Any) -> int:
    return int(page.eval_on_selector("#tr-plot", "b => Number(b.dataset.loads || 0)"))


def add(page: Any, param: str) -> None:
    n = loads(page)
    page.fill("#tr-add", param)
    page.click("#tr-add-ok")
    wait_loads(page, n + 1)


def values(page: Any, param: str) -> dict[float, float | None]:
    """x -> value of ``param``'s mean series; None for a null (a gap), absent for undefined
    (no sample of this instrument at that x; uPlot joins the series onto one x)."""
    return page.evaluate(
        """(p) => {
          const b = document.querySelector('#tr-plot'), d = b._plot.data;
          const s = b._trend.series.find((x) => x.param === p);
          const out = [];
          d[0].forEach((x, i) => {
            const v = d[s.idx[0]][i];
            if (v !== undefined) out.push([x, v]);
          });
          return out;
        }""",
        param,
    )


def test_two_instruments_two_units_the_api_numbers_a_gap_and_the_url(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.click("#nav-trend")
    expect(page.locator("#trend")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    page.click('#tb-presets button[data-range="900"]')  # the time bar (timebar.js)
    add(page, ROVER)
    add(page, EPS)
    assert "p=sup-rover-1/batt_v,cnsa-eps/batt_t" in page.evaluate("location.hash")
    trend = page.evaluate(TREND)
    assert trend["axes"] == ["V", "degC"]
    labels = page.evaluate(
        "() => document.querySelector('#tr-plot')._plot.axes.slice(1).map(a => [a.label, a.side])"
    )
    assert labels == [["V", 3], ["degC", 1]]  # one left, one right
    assert [s["mode"] for s in trend["series"]] == ["raw", "raw"]
    # the points are the API's, over the same window
    for param in (ROVER, EPS):
        inst, chan = param.split("/")
        ref = api(up, inst, chan, trend["start_ns"], trend["stop_ns"])["columns"]
        want = [(t / NS, v) for t, v in zip(ref["time"], ref[chan], strict=True)]
        got = [(x, v) for x, v in values(page, param) if v is not None]
        # Packets of the window's last seconds may have come in since the page asked: an
        # instrument's packets arrive in time order, so those are after its last point.
        late = [w for w in want if w[0] > got[-1][0] + 1e-6]
        want = want[: len(want) - len(late)]
        assert len(got) == len(want) > 20, param
        assert len(late) <= 5, (param, late)
        for (gx, gv), (wx, wv) in zip(got, want, strict=True):
            assert gx == pytest.approx(wx, abs=1e-6)
            assert gv == pytest.approx(wv)
    # a dropout is a null between the two samples around it
    rover = values(page, ROVER)
    xs = [x for x, v in rover if v is not None]
    gaps = [(a, b) for a, b in itertools.pairwise(xs) if b - a > 5]
    assert gaps
    # ... in the mean and in the min and max lines: a null at every x in the gap (the other
    # instrument's times too), since uPlot draws a line across an undefined
    drawn = page.evaluate(
        """(p) => {
          const b = document.querySelector('#tr-plot'), d = b._plot.data;
          const s = b._trend.series.find((x) => x.param === p);
          return s.idx.map((k) => d[0].map((x, i) => [x, d[k][i] === undefined ? 'u' : d[k][i]]));
        }""",
        ROVER,
    )
    for a, b in gaps:
        for line in drawn:
            inside = [v for x, v in line if a < x < b]
            assert inside and all(v is None for v in inside), (a, b, inside)
    expect(page.locator("#tr-msg")).to_have_text("")
    shot(page, "two-units")
    # the URL alone restores it
    url = page.url
    n = loads(page)
    page.reload()
    wait_loads(page, 1)
    assert page.url == url
    again = page.evaluate(TREND)
    assert [s["param"] for s in again["series"]] == [ROVER, EPS]
    assert again["axes"] == ["V", "degC"]
    assert n >= 1
    only_local(page, up.url)


def test_band_zoomed_out_samples_zoomed_in_and_the_export(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.goto(f"{up.url}/#/trend?p={ROVER},{EPS}&range=900")
    wait_loads(page, 1)
    # few samples per bucket on a young station: buckets from 50 samples on, for this test
    page.evaluate("() => { window.ilrsTrend.rawMax = 50; }")
    n = loads(page)
    inst, chan = ROVER.split("/")
    # The answer the page was given: asked again later, the live end of the window would
    # have gained samples (a busy run saw its last bucket's mean move by 0.01).
    with page.expect_response(
        lambda r: f"/api/instruments/{inst}/telemetry" in r.url and "max_points=" in r.url
    ) as answer:
        page.click('#tb-presets button[data-range="3600"]')
    wait_loads(page, n + 1)
    trend = page.evaluate(TREND)
    assert [s["mode"] for s in trend["series"]] == ["buckets", "buckets"]
    assert page.evaluate("() => document.querySelector('#tr-plot')._plot.bands.length") == 2
    # the buckets are the API's (the rollups'), min <= mean <= max
    ref = answer.value.json()
    assert (ref["start_ns"], ref["stop_ns"], ref["max_points"]) == (
        trend["start_ns"], trend["stop_ns"], trend["buckets"]
    )  # fmt: skip
    c = ref["columns"]
    width = (trend["stop_ns"] - trend["start_ns"]) / trend["buckets"] / NS
    cols = [c[k] for k in ("time", f"{chan}__count", f"{chan}__mean", f"{chan}__min")]
    want = {
        round(t / NS + width / 2, 3): (m, lo, hi)
        for t, k, m, lo, hi in zip(*cols, c[f"{chan}__max"], strict=True)
        if k
    }
    got = page.evaluate(
        """(p) => {
          const b = document.querySelector('#tr-plot'), d = b._plot.data;
          const s = b._trend.series.find((x) => x.param === p);
          const out = [];
          d[0].forEach((x, i) => { const v = d[s.idx[0]][i];
            if (v !== undefined && v !== null) out.push([x, v, d[s.idx[1]][i], d[s.idx[2]][i]]); });
          return out;
        }""",
        ROVER,
    )
    assert len(got) == len(want) > 5
    for x, m, lo, hi in got:
        assert want[round(x, 3)] == pytest.approx((m, lo, hi))
        assert lo <= m <= hi
    shot(page, "band")
    # drag over the last few minutes: a fixed window, finer, the samples themselves
    box = page.locator("#tr-plot .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    n = loads(page)
    page.mouse.move(box["x"] + box["width"] * 0.98, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
    page.mouse.up()
    wait_loads(page, n + 1)
    zoomed = page.evaluate(TREND)
    assert "start=" in page.url and "stop=" in page.url and "range=" not in page.url
    assert zoomed["stop_ns"] - zoomed["start_ns"] < 0.05 * 3600 * NS
    assert [s["mode"] for s in zoomed["series"]] == ["raw", "raw"]
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "archive")
    # the export: what is plotted, row by row
    with page.expect_download() as dl:
        page.click("#tr-export")
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text())))
    assert rows[0] == ["time_utc", f"{ROVER} [V]", f"{EPS} [degC]"]
    for col, param in enumerate((ROVER, EPS), start=1):
        shown = [(x, v) for x, v in values(page, param) if v is not None]
        exported = [
            (datetime.fromisoformat(r[0].replace("Z", "+00:00")).timestamp(), float(r[col]))
            for r in rows[1:]
            if r[col]
        ]
        assert len(exported) == len(shown) > 5, param
        for (ex, ev), (sx, sv) in zip(exported, shown, strict=True):
            assert ex == pytest.approx(sx, abs=1e-3)  # (the CSV's times are to the ms)
            assert ev == pytest.approx(sv)
    only_local(page, up.url)


def test_a_partner_cannot_add_another_partners_parameter(page: Any, up: Up) -> None:
    token = create_token(up.data / "up-tokens.yaml", "suparco-trend", "partner", "suparco")
    login(page, up.url, token)
    # in the URL (a link from an operator): named, with the console's refusal, not plotted
    page.goto(f"{up.url}/#/trend?p={EPS},{ROVER}&range=900")
    wait_loads(page, 1)
    expect(page.locator("#tr-msg")).to_contain_text(f"{EPS}: 403")
    assert [s["param"] for s in page.evaluate(TREND)["series"]] == [ROVER]
    shot(page, "partner")
    # typed into the add box: refused by name, and the trend stays as it was
    page.goto(f"{up.url}/#/trend?p={ROVER}&range=900")
    wait_loads(page, 2)
    before = page.url
    page.fill("#tr-add", EPS)
    page.click("#tr-add-ok")
    expect(page.locator("#tr-msg")).to_contain_text(f"{EPS}: not added: 403")
    assert page.url == before
    # and the search offers none of another partner's channels
    page.fill("#tr-add", "batt_t")
    page.wait_for_timeout(800)
    options = page.eval_on_selector_all("#tr-options option", "os => os.map(o => o.value)")
    assert all(o.startswith("sup-") for o in options), options
    only_local(page, up.url)


def test_the_header_search_adds_to_the_trend(page: Any, up: Up) -> None:
    login(page, up.url, up.token)
    page.goto(f"{up.url}/#/trend?p={ROVER}&range=900")
    wait_loads(page, 1)
    n = loads(page)
    page.fill("#search", "batt_t")
    page.locator('#search-results li[data-instrument="cnsa-eps"] .s-trend').click()
    wait_loads(page, n + 1)
    before = page.evaluate(TREND)
    assert [s["param"] for s in before["series"]] == [ROVER, EPS]
    # live: the window follows the clock (a refresh every 3 s for the last 15 min)
    expect(page.locator("#tb-mode")).to_have_attribute("data-mode", "realtime")
    wait_loads(page, n + 2)
    after = page.evaluate(TREND)
    assert after["stop_ns"] > before["stop_ns"]
    assert after["stop_ns"] - after["start_ns"] == 900 * NS
    only_local(page, up.url)
