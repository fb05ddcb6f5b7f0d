"""Issue 13: the trending view with 6 parameters over one day of a 100 Hz instrument, measured
in the browser: from the navigation to the frame that shows the plot (server + render).

Run: .venv/bin/python bench/bench_trend.py [hours] [runs]
The store is bench_query.py's (a synthetic 12-channel 100 Hz profile, one minute batches through
a real ``Lane``, sealed hour by hour). The console app runs on a real uvicorn over it; headless
Chromium (Debian's, via Playwright) opens ``#/trend?p=<6 channels>&start=..&stop=..`` with the
token in session storage, and the page notes ``performance.now()`` in the animation frame after
uPlot drew (``#tr-plot`` ``data-drawn-ms``): the page load, login check, the WebSocket, one
telemetry request of 6 channels x ~1400 buckets from the 1 s rollups, and the drawing. Cold is
the first navigation after the console started; warm the median of ``runs`` reloads.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query import CHANNELS, NS, START, build

from ilrs_ops.console import ConsoleSettings, create_app, create_token

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


def main() -> None:
    hours = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history, took = build(root, hours)
        history.close()
        print(f"{hours} h of a 100 Hz instrument, {hours * 3600 * 100:,} packets: built in "
              f"{took:.0f} s")  # fmt: skip
        tokens = root / "tokens.yaml"
        token = create_token(tokens, "bench", "operator")
        settings = ConsoleSettings(
            data=root / "data", profiles=root / "profiles", tokens=tokens, root=f"bench/{root.name}"
        )
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        params = ",".join(f"bench-imu/{c}" for c in CHANNELS[:6])
        hash_ = f"#/trend?p={params}&start={iso(START)}&stop={iso(START + hours * 3600 * NS)}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.add_init_script(f"sessionStorage.setItem('ilrs.token', '{token}')")
                times: list[float] = []
                parts: list[dict[str, float]] = []
                for k in range(runs + 1):
                    if k == 0:
                        page.goto(f"{url}/{hash_}")
                    else:
                        page.reload()
                    page.wait_for_function(
                        "() => document.querySelector('#tr-plot')?.dataset.drawnMs",
                        timeout=60_000,
                    )
                    ms = float(page.eval_on_selector("#tr-plot", "b => b.dataset.drawnMs"))
                    info = page.eval_on_selector("#tr-list", "b => b.innerText")
                    assert "buckets" in info and page.inner_text("#tr-msg") == "", info
                    times.append(ms)
                    parts.append(page.evaluate(PARTS))
                page.screenshot(path=str(Path(tmp) / "trend.png"))
                shots = Path(__file__).resolve().parents[1] / "test-artifacts"
                shots.mkdir(exist_ok=True)
                page.screenshot(path=str(shots / "bench-trend.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(30)
        print(f"trend of 6 channels over {hours} h, navigation to plot painted:")
        print(f"  cold {times[0]:.0f} ms; warm median {statistics.median(times[1:]):.0f} ms "
              f"(min {min(times[1:]):.0f}, max {max(times[1:]):.0f}, {runs} reloads)")  # fmt: skip
        print(f"  {info.splitlines()[1] if len(info.splitlines()) > 1 else info}")
        for name, p in [("cold", parts[0]), ("warm", parts[len(parts) // 2])]:
            print(f"  {name}: page loaded at {p['page_loaded']:.0f} ms, telemetry asked at "
                  f"{p['telemetry_sent']:.0f} ms, answered in {p['telemetry_ms']:.0f} ms, "
                  f"plot painted at {p['drawn']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
