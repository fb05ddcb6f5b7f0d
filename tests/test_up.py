"""`ilrs-ops up`, the README's main command: embedded broker, simulator, ingest and console come
up together, the console serves live status with the printed token, and Ctrl-C seals the store."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pyarrow.dataset as ds

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
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.communicate()
    assert proc.returncode == 0
    raw = ds.dataset(tmp_path / "raw", format="parquet", partitioning="hive")
    assert raw.count_rows() > 0
    assert not list((tmp_path / "wal").glob("*/*.arrows"))  # sealed on the way out
