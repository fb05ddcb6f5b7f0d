"""`ilrs-ops up`, the README's main command: embedded broker, simulator, ingest and console come
up together, the console serves live status with the printed token, and Ctrl-C seals the store;
so do SIGINT and SIGTERM when a script started it in the background (SIGINT ignored there)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pytest

from ilrs_ops import _commands
from ilrs_ops.profiles import Catalog
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_up_runs_the_station_and_the_console(station: Catalog, tmp_path: Path) -> None:
    env = os.environ | {"ILRS_EMBEDDED_PORT": str(free_port())}
    cmd = [
        sys.executable,
        "-m",
        "ilrs_ops",
        "up",
        "--data",
        str(tmp_path),
        "--http-port",
        str(free_port()),
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        seen = b""
        async with asyncio.timeout(90):
            while b"operator token:" not in seen:
                seen += await proc.stderr.readline()
        m = re.search(rb"console: (\S+)/\s+operator token: (\S+)", seen)
        assert m, seen
        url, token = m[1].decode(), m[2].decode()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/api/status")).status_code == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with asyncio.timeout(30):
                while True:  # until every instrument has reported through the whole chain
                    body = (await http.get("/api/status", headers=headers)).json()
                    tiles = [i for p in body["partners"] for i in p["instruments"]]
                    if all(t["packets"] > 0 for t in tiles):
                        break
                    await asyncio.sleep(1)
            assert {t["instrument"] for t in tiles} == set(station.instruments)
            # A plain `up` (`make run`) shows alarms soon: a demo rate of limit faults, said
            # to be simulated in the terminal and to the page (/api/me).
            assert b"SIMULATED station: demo faults injected: limit=0.005 per packet" in seen
            me = (await http.get("/api/me", headers=headers)).json()
            assert me["simulation"] == "demo faults injected: limit=0.005 per packet", me
            async with asyncio.timeout(90):
                while not (await http.get("/api/alarms", headers=headers)).json()["alarms"]:
                    await asyncio.sleep(1)
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.communicate()
    assert proc.returncode == 0
    raw = ds.dataset(tmp_path / "raw", format="parquet", partitioning="hive")
    assert raw.count_rows() > 0
    assert not list((tmp_path / "wal").glob("*/*.arrows"))  # sealed on the way out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_up_in_the_background_of_a_script_stops_cleanly_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """A script's background job runs with SIGINT ignored (no job control): `up` must take it
    all the same, and SIGTERM too: stop, seal, exit 0."""
    up = (f"{sys.executable} -m ilrs_ops up --data {tmp_path / 'data'} "
          f"--http-port {free_port()} 2>{tmp_path / 'up.err'} >/dev/null")  # fmt: skip
    script = f"{up} &\necho $!\nwait $!\necho exit=$?\n"
    env = os.environ | {"ILRS_EMBEDDED_PORT": str(free_port())}
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        pid = int(await shell.stdout.readline())
        err = tmp_path / "up.err"
        async with asyncio.timeout(90):
            while b"operator token:" not in (err.read_bytes() if err.exists() else b""):
                await asyncio.sleep(0.2)
        async with asyncio.timeout(30):  # until something reached the WAL
            while not list((tmp_path / "data" / "wal").glob("*/*.arrows")):
                await asyncio.sleep(0.2)
        os.kill(pid, signum)
        try:
            async with asyncio.timeout(60):
                out, _ = await shell.communicate()
        except TimeoutError:  # `up` says what its stop waits on after STOP_REPORT_S
            pytest.fail(f"`up` did not stop within 60 s:\n{err.read_text(errors='replace')}")
    finally:
        if shell.returncode is None:
            shell.kill()
            await shell.wait()
        with contextlib.suppress(ProcessLookupError, UnboundLocalError):
            os.kill(pid, signal.SIGKILL)  # `up` outlived its shell: the test failed
    assert out.decode().strip().endswith("exit=0"), (out, err.read_text(errors="replace"))
    assert "stopped" in err.read_text()
    raw = ds.dataset(tmp_path / "data" / "raw", format="parquet", partitioning="hive")
    assert raw.count_rows() > 0
    assert not list((tmp_path / "data" / "wal").glob("*/*.arrows"))  # sealed on the way out


async def test_a_slow_stop_says_what_it_waits_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stop that takes longer than STOP_REPORT_S lists the tasks still running and where they
    wait, so that a hung stop (as a lost cancel once made) is found from its output."""
    monkeypatch.setattr(_commands, "STOP_REPORT_S", 0.2)

    async def slow_to_stop() -> None:
        async def sealing() -> None:
            await asyncio.sleep(1.0)

        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.create_task(sealing(), name="seal-the-store")

    async def signal_soon() -> None:
        await asyncio.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    kill = asyncio.create_task(signal_soon())
    assert await _commands._until_signal(slow_to_stop()) is True
    await kill
    said = capsys.readouterr().err
    assert "still stopping; " in said, said
    assert "seal-the-store" in said and "sealing" in said, said


TITLE = "ILRS station — ingest status"


def _tmux(sock: str, *args: str) -> str:
    run = subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.skipif(not shutil.which("tmux"), reason="no tmux: apt-get install -y tmux")
def test_warnings_during_up_print_above_the_live_table(tmp_path: Path) -> None:
    """On a terminal (tmux), log lines during `up` (here: a profile refused while it runs) go
    above the live table, which stays one table redrawn in place, not stacked copies."""
    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "hardware_profiles", profiles)
    sock = f"ilrs-test-{os.getpid()}"
    # The terminal's size, not COLUMNS/LINES a test runner may have set, sizes the table.
    up = (f"env -u COLUMNS -u LINES ILRS_EMBEDDED_PORT={free_port()} "
          f"{sys.executable} -m ilrs_ops up --data {tmp_path / 'data'} --profiles {profiles} "
          f"--http-port {free_port()}; "
          "sleep 30")  # fmt: skip
    _tmux(sock, "new-session", "-d", "-x", "220", "-y", "60", "-c", str(ROOT), up)
    try:
        deadline = time.monotonic() + 90
        while _tmux(sock, "capture-pane", "-p").count(TITLE) < 1:
            assert time.monotonic() < deadline, _tmux(sock, "capture-pane", "-p")
            time.sleep(0.5)
        time.sleep(2)
        for k in range(3):  # warnings while the table is live
            (profiles / f"broken-{k}.yaml").write_text("instrument: [\n")
            time.sleep(1.5)
        time.sleep(2)
        screen = _tmux(sock, "capture-pane", "-p", "-S", "-200")
        (tmp_path / "screen.txt").write_text(screen)
    finally:
        with contextlib.suppress(AssertionError):
            _tmux(sock, "send-keys", "C-c")
            time.sleep(5)
        with contextlib.suppress(AssertionError):
            _tmux(sock, "kill-server")
    assert "profile refused" in screen or "broken-0.yaml" in screen, screen
    assert screen.count(TITLE) == 1, screen
