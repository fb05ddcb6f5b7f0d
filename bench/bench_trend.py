"""Issue 13: the trending view with 6 parameters over one day of a 100 Hz instrument, measured
in the browser: from the navigation to the frame that shows the plot (server + render).

Run: .venv/bin/python bench/bench_trend.py [hours] [runs]
The store is bench_query.py's (a synthetic 12-channel 100 Hz profile, one minute batches through
a real ``Lane``, sealed hour by hour). ``ilrs-ops console`` serves it in a process of its own;
headless Chromium (Debian's, via Playwright) opens ``#/trend?p=<6 channels>&start=..&stop=..``
with the token in session storage, and the page notes ``performance.now()`` in the animation
frame after uPlot drew (``#tr-plot`` ``data-drawn-ms``): the page load, login check, the
WebSocket, one telemetry request of 6 channels x ~1400 buckets from the 1 s rollups, and the
drawing. Three figures: both cold (a browser that never saw the page, a console just started);
console cold (the console restarted, the browser with the page in its cache, as an operator's
after a console restart); warm (the median of ``runs`` reloads). Also the overview's page load
to its first tile painted, after the console restarted and warm.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query import CHANNELS, NS, START, build

from ilrs_ops.console import create_token

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# where the time goes, from the browser's navigation and resource timing (ms since navigation)
PARTS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const tm = performance.getEntriesByType('resource').filter((r) => r.name.includes('/telemetry'));
  const r = tm[tm.length - 1];
  return { page_loaded: nav.loadEventEnd, telemetry_sent: r.startTime, telemetry_ms: r.duration,
           drawn: Number(document.querySelector('#tr-plot').dataset.drawnMs) };
}"""


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def console(root: Path, port: int) -> Iterator[str]:
    """``ilrs-ops console`` over the bench store, in a process of its own (a fresh start: no
    import, reader or page cache of a previous console in it), until the block ends."""
    log = (root / f"console-{time.time_ns()}.log").open("w")
    cmd = [sys.executable, "-m", "ilrs_ops", "console", "--data", str(root / "data"),
           "--profiles", str(root / "profiles"), "--tokens", str(root / "tokens.yaml"),
           "--root", f"bench/{root.name}", "--http-port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the console exited: see {log.name}"
            assert time.monotonic() < deadline, f"the console did not start: see {log.name}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        log.close()


def painted(page: Page) -> tuple[float, dict[str, float]]:
    """The trend's painted time (ms since navigation) and where it went."""
    page.wait_for_function(
        "() => document.querySelector('#tr-plot')?.dataset.drawnMs", timeout=60_000
    )
    info = page.eval_on_selector("#tr-list", "b => b.innerText")
    assert "buckets" in info and page.inner_text("#tr-msg") == "", info
    return float(page.eval_on_selector("#tr-plot", "b => b.dataset.drawnMs")), page.evaluate(PARTS)


#: The overview's first tile, stamped in the frame after it is in the page.
FIRST_TILE = """new MutationObserver((_, obs) => {
  if (!document.querySelector('#partners .tile')) return;
  obs.disconnect();
  requestAnimationFrame(() => { window.firstTileMs = performance.now(); });
}).observe(document, { childList: true, subtree: true });"""


def first_tile(page: Page) -> float:
    """Navigation to the overview's first tile painted, in ms."""
    page.wait_for_function("() => window.firstTileMs", timeout=60_000)
    return float(page.evaluate("window.firstTileMs"))


def main() -> None:
    hours = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history, took = build(root, hours)
        history.close()
        print(f"{hours} h of a 100 Hz instrument, {hours * 3600 * 100:,} packets: built in "
              f"{took:.0f} s")  # fmt: skip
        token = create_token(root / "tokens.yaml", "bench", "operator")
        params = ",".join(f"bench-imu/{c}" for c in CHANNELS[:6])
        hash_ = f"#/trend?p={params}&start={iso(START)}&stop={iso(START + hours * 3600 * NS)}"
        port = free_port()
        shots = ROOT / "test-artifacts"
        shots.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.add_init_script(f"sessionStorage.setItem('ilrs.token', '{token}')")
            # 1. Browser and console both cold: a browser that never saw the page.
            with console(root, port) as url:
                page.goto(f"{url}/{hash_}")
                first = painted(page)
            # 2. The console restarted, the browser as an operator's (page in its cache).
            # 3. Reloads: both warm.
            # The overview's first tile, console cold then warm, between them the trend's.
            page.add_init_script(FIRST_TILE)
            with console(root, port) as url:
                page.evaluate("location.hash = '#/'")
                page.reload()
                tile_cold = first_tile(page)
                page.evaluate(f"location.hash = '{hash_}'")
                page.reload()
                cold = painted(page)
                warm = []
                for _ in range(runs):
                    page.reload()
                    warm.append(painted(page))
                page.screenshot(path=str(shots / "bench-trend.png"))
                page.evaluate("location.hash = '#/'")
                tiles = []
                for _ in range(runs):
                    page.reload()
                    tiles.append(first_tile(page))
            browser.close()
        times = [w[0] for w in warm]
        print(f"trend of 6 channels over {hours} h, navigation to plot painted:")
        print(f"  browser and console cold {first[0]:.0f} ms; console restarted {cold[0]:.0f} ms; "
              f"warm median {statistics.median(times):.0f} ms (min {min(times):.0f}, "
              f"max {max(times):.0f}, {runs} reloads)")  # fmt: skip
        print(f"overview, navigation to first tile painted: console restarted {tile_cold:.0f} ms; "
              f"warm median {statistics.median(tiles):.0f} ms (max {max(tiles):.0f})")  # fmt: skip
        mid = sorted(warm, key=lambda w: w[0])[len(warm) // 2]
        for name, (_, p) in [("both cold", first), ("console cold", cold), ("warm", mid)]:
            print(f"  {name}: page loaded at {p['page_loaded']:.0f} ms, telemetry asked at "
                  f"{p['telemetry_sent']:.0f} ms, answered in {p['telemetry_ms']:.0f} ms, "
                  f"plot painted at {p['drawn']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
