"""One catalog owner: a profile uploaded through the console is the one a replay started from
the console afterwards decodes with (real uvicorn, real Mosquitto)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from ilrs_ops.history import History
from ilrs_ops.profiles import load_catalog
from tests.conftest import ROOT
from tests.test_console import role_tokens
from tests.test_console_replay import ALL, NS, A, import_recording, packets, serving

ROVER = ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml"
OLD_CAL, NEW_CAL = "calibration: {poly: [0.0, 0.01]}", "calibration: {poly: [0.0, 0.02]}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str | None], Path]]:
    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "hardware_profiles", profiles)
    catalog = load_catalog([profiles])
    data = tmp_path / "data"
    data.mkdir()
    t0 = (time.time_ns() // NS - 3600) * NS
    import_recording(data, catalog, "rover", [packets(catalog, A, 60, t0, seed=5)])
    tokens_file = tmp_path / "tokens.yaml"
    tokens = role_tokens(tokens_file)
    root = f"test/test_console_catalog-{os.getpid()}"
    with serving(data, tokens_file, root, profiles=profiles) as (url, _):
        yield url, data, tokens, profiles


def batt_v(path: Path, profiles: Path) -> np.ndarray:
    with History.at(path, load_catalog([profiles])) as history:
        return history.query(A, ["batt_v"], *ALL).column("batt_v").to_numpy()


def test_a_replay_after_an_upload_uses_the_uploaded_profile(site) -> None:
    url, data, tokens, profiles = site
    h = {"Authorization": f"Bearer {tokens['operator']}"}
    text = ROVER.read_text()
    assert OLD_CAL in text.split("name: batt_v", 1)[1][:200]
    changed = text.replace(OLD_CAL, NEW_CAL, 1)  # batt_v: 0.02 V a count, was 0.01
    with httpx.Client(base_url=url, timeout=10) as http:
        r = http.put(f"/api/profiles/suparco/{A}", headers=h, content=changed.encode())
        assert r.status_code == 200, r.text
        r = http.post("/api/replays", json={"recording": "rover", "to": "after"}, headers=h)
        assert r.status_code == 201, r.text
        replay = r.json()
        deadline = time.monotonic() + 60
        while replay["state"] not in ("finished", "stopped", "failed"):
            assert time.monotonic() < deadline, replay
            time.sleep(0.05)
            replay = http.get(f"/api/replays/{replay['id']}", headers=h).json()
        assert replay["state"] == "finished", replay
    before = batt_v(data / "recordings" / "rover", ROOT / "hardware_profiles")
    after = batt_v(data / "recordings" / "after", profiles)
    assert before.size == after.size == 60
    np.testing.assert_allclose(after, 2 * before)  # decoded with the uploaded calibration
    assert (profiles / "suparco" / "rover-1.yaml").read_text() == changed
