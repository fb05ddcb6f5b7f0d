"""Tokens of a running console: the console on a real uvicorn reloads its tokens file when it
changes (a token added works, a removed one stops, a broken file leaves the tokens in force);
`ilrs-ops up` keeps the tokens of its file across restarts and takes one added while it runs;
`ilrs-ops token` refuses a partner the profiles do not know, naming the known ones."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ilrs_ops.console import create_token
from ilrs_ops.profiles import Catalog
from tests.conftest import ROOT
from tests.test_console_replay import serving
from tests.test_up import free_port

RELOAD_S = 10.0


def status_code(url: str, token: str) -> int:
    r = httpx.get(f"{url}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return r.status_code


def wait_for(url: str, token: str, code: int) -> None:
    """Until ``token`` answers ``code``; slow enough that unknown tries stay under the
    console's limit of failed authentications (10 at once)."""
    deadline = time.monotonic() + RELOAD_S
    while (got := status_code(url, token)) != code:
        assert time.monotonic() < deadline, f"token still answers {got}, not {code}"
        time.sleep(0.4)


def test_the_console_reloads_its_tokens_file(tmp_path: Path, topic_root: str) -> None:
    tokens = tmp_path / "tokens.yaml"
    desk = create_token(tokens, "desk", "operator")
    (tmp_path / "data").mkdir()
    with serving(tmp_path / "data", tokens, topic_root) as (url, _):
        assert status_code(url, desk) == 200
        wall = create_token(tokens, "wall", "viewer")
        wait_for(url, wall, 200)  # added while running: in force without a restart
        create_token(tokens, "desk", "operator", replace=True)
        wait_for(url, desk, 401)  # replaced: the old token stops working
        tokens.write_text("tokens: [ {name: broken\n")
        time.sleep(1.0)
        assert status_code(url, wall) == 200  # a broken file: the tokens in force stay


def up_cmd(data: Path) -> tuple[list[str], dict[str, str]]:
    env = os.environ | {"ILRS_EMBEDDED_PORT": str(free_port())}
    cmd = [sys.executable, "-m", "ilrs_ops", "up", "--data", str(data),
           "--http-port", str(free_port())]  # fmt: skip
    return cmd, env


def start_up(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    cmd, env = up_cmd(data)
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "ilrs-ops up printed no console URL in 90 s"
        m = re.search(r"console: (\S+)/\s+operator token: (\S+)", log.read_text(errors="replace"))
        if m:
            return proc, m[1], m[2]
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(60)


def test_up_keeps_its_tokens_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, url, first = start_up(data, tmp_path / "up1.err")
    try:
        tokens = data / "up-tokens.yaml"
        assert tokens.is_file()
        added = subprocess.run(
            [sys.executable, "-m", "ilrs_ops", "token", "wall", "--role", "viewer",
             "--tokens", str(tokens)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        wall = added.stdout.strip()
        wait_for(url, wall, 200)  # the running `up` took it
    finally:
        assert stop(proc) == 0
    proc, url, second = start_up(data, tmp_path / "up2.err")
    try:
        assert status_code(url, wall) == 200  # kept across the restart
        assert status_code(url, second) == 200
        assert status_code(url, first) == 401  # each run prints a fresh operator token
    finally:
        assert stop(proc) == 0


def test_a_token_for_an_unknown_partner_is_refused(station: Catalog, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "ilrs_ops", "token", "x", "--role", "partner",
         "--partner", "nosuchpartner", "--tokens", str(tokens)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run
    message = " ".join(run.stderr.split())
    assert "unknown partner 'nosuchpartner'" in message
    for partner in {i.profile.partner for i in station}:
        assert partner in message
    assert not tokens.exists()
    ok = subprocess.run(
        [sys.executable, "-m", "ilrs_ops", "token", "x", "--role", "partner",
         "--partner", "suparco", "--tokens", str(tokens)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
