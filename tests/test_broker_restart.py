"""Broker restart: a Mosquitto with persistence is stopped in the middle of a simulated stream
and started again on the same port. Ingest and simulator (both subprocesses, as deployed)
reconnect with backoff; whatever the station made while it could not reach the broker is lost,
and the sequence-gap events in the store account for every lost packet: per instrument, stored
+ missing by the gap events = generated, and nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import numpy as np
import pyarrow.compute as pc
import pytest

from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from tests.conftest import DATA, ROOT, start_mosquitto
from tests.test_ingest_crash import Ingest, check_parquet_opens, duplicates, stored_raw

MODULUS = 1 << 14
DURATION_S = 40.0  # seconds of telemetry the simulator sends
OUTAGE_1 = 8.0  # the broker stops this long after the simulator started,
OUTAGE_2 = 25.0  # and again here,
DOWN_S = 6.0  # each time for this long
FAST_PERIOD_S = 0.01


class PersistentBroker:
    """A Mosquitto of the test's own that keeps sessions and queued messages on disk: saved
    every second and when it stops on SIGTERM, loaded when it starts again."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\nautosave_interval 1\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
            # Started as root, Mosquitto would become user mosquitto, who cannot write here.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_mosquitto(self.conf, self.port, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Mosquitto saves its database, then exits
            self.proc.wait(10)


def fast_profiles(folder: Path) -> Path:
    """The test rover (2 Hz) and a copy of it at 100 Hz, so that an outage loses many packets."""
    (folder / "acme").mkdir(parents=True)
    text = (DATA / "good_profiles" / "acme" / "rover.yaml").read_text()
    (folder / "acme" / "rover.yaml").write_text(text)
    fast = (
        text.replace("instrument: acme-rover-1", "instrument: acme-rover-fast")
        .replace("apid: 0x2A1", "apid: 0x2A2")
        .replace("expected_period_s: 0.5", f"expected_period_s: {FAST_PERIOD_S}")
    )
    assert fast.count("acme-rover-fast") == 1 and f"{FAST_PERIOD_S}" in fast
    (folder / "acme" / "rover-fast.yaml").write_text(fast)
    return folder


async def ingest_connected(broker: tuple[str, int], root: str, timeout: float = 30) -> None:
    """Wait for the ingest's retained metrics: it is connected and subscribed."""
    async with aiomqtt.Client(*broker) as client:
        await client.subscribe(f"{root}/metrics/ingest/#")
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                if json.loads(message.payload)["connected"]:  # type: ignore[arg-type]
                    return


def sequence_holes(seq: np.ndarray) -> int:
    """Packets missing between consecutive counts (14-bit, in stored order)."""
    d = np.diff(seq.astype(np.int64)) % MODULUS
    return int(np.sum(d - 1))


def retries(lines: list[str], who: str) -> list[float]:
    """The backoff delays a client logged ("<who>: broker ...; retry in 0.5s")."""
    return [float(x) for x in re.findall(rf"{who}: broker .*; retry in ([\d.]+)s", "".join(lines))]


@pytest.mark.slow
async def test_broker_restarts_mid_stream_and_the_gap_events_account_for_every_loss(
    tmp_path: Path, free_port: int
) -> None:
    """Two outages of a 40 s stream. First the broker restarts under running clients: both
    reconnect with backoff. Then ingest crashes, the broker queues for its session, restarts
    with that queue on disk, and a new ingest (started while the broker is down, so it retries
    too) gets the queue: those packets are stored, and only what the simulator could not
    publish is missing."""
    t_start = time.monotonic()
    root = "restart"
    profiles = fast_profiles(tmp_path / "profiles")
    catalog: Catalog = load_catalog([profiles])
    broker = PersistentBroker(tmp_path / "mosquitto", free_port)
    address = ("127.0.0.1", free_port)
    data = tmp_path / "store"
    fast = "acme-rover-fast"
    broker.start()
    sim: asyncio.subprocess.Process | None = None
    ingest = await Ingest.start(address, data, root, profiles)
    first = ingest
    try:
        await ingest_connected(address, root)
        cmd = [
            sys.executable, "-m", "ilrs_ops", "simulate", "--broker", f"127.0.0.1:{free_port}",
            "--profiles", str(profiles), "--root", root, "--seed", "3",
            "--duration", str(DURATION_S),
        ]  # fmt: skip
        sim = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
        sim_err = asyncio.create_task(sim.stderr.read())  # type: ignore[union-attr]
        t0 = time.monotonic()

        async def at(s: float) -> None:
            await asyncio.sleep(max(0.0, t0 + s - time.monotonic()))

        # Outage 1: the broker restarts under running clients.
        await at(OUTAGE_1)
        broker.stop()
        down_1 = time.monotonic()
        await at(OUTAGE_1 + DOWN_S)
        broker.start()
        down_1 = time.monotonic() - down_1

        # Outage 2: ingest crashes; the broker queues for its session, then restarts.
        await at(OUTAGE_2 - 3.0)
        await ingest.stop(signal.SIGKILL)
        with History.at(data, catalog) as store:
            stored_at_crash = int(store.counters(fast)["packets"])  # type: ignore[call-overload]
        await at(OUTAGE_2)
        broker.stop()
        down_2 = time.monotonic()
        saved = (broker.folder / "mosquitto.db").exists()
        ingest = await Ingest.start(address, data, root, profiles)  # retries until it is back
        await at(OUTAGE_2 + DOWN_S)
        async with asyncio.timeout(30):  # on a busy machine its start-up may take a while
            while len(retries(ingest.lines, "ingest")) < 2:
                await asyncio.sleep(0.1)
        broker.start()
        down_2 = time.monotonic() - down_2

        await asyncio.wait_for(sim.wait(), DURATION_S + 60)
        sim_text = (await sim_err).decode()
        assert sim.returncode == 0, sim_text
        # Every instrument's last packet comes after the outages: wait until ingest has it.
        generated = {i.id: max(1, round(DURATION_S / i.profile.expected_period_s)) for i in catalog}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with History.at(data, catalog) as store:
                last = {i: store.latest(i).column("seq").to_pylist() for i in generated}
            if all(last[i] == [(n - 1) % MODULUS] for i, n in generated.items()):
                break
            await asyncio.sleep(0.5)
        code = await ingest.stop(signal.SIGINT)
        assert code in (0, -signal.SIGINT, 130), (code, ingest.lines)
    finally:
        if sim is not None and sim.returncode is None:
            sim.kill()
            await sim.wait()
        await ingest.stop(signal.SIGKILL)
        broker.stop()

    check_parquet_opens(data, {})
    found = re.search(r"published (\d+) packets; lost (\d+) .*: (.*)", sim_text)
    assert found, sim_text
    # What the simulator could not publish (or got no PUBACK for), per instrument.
    sim_lost = {k: int(v) for k, v in re.findall(r"([\w-]+)=(\d+)", found.group(3))}
    assert int(found.group(1)) + int(found.group(2)) == sum(generated.values())
    report, carried = [], 0
    for inst_id, n in generated.items():
        raw = stored_raw(data, catalog, inst_id).sort_by("time")
        seq = raw.column("seq").to_numpy()
        with History.at(data, catalog) as store:
            gaps = store.events(inst_id, 0, 2**62, kinds=["gap"])
        missing = int(pc.sum(gaps.column("value")).as_py() or 0)
        holes = sequence_holes(seq)
        report.append(
            f"{inst_id}: generated {n}, stored {raw.num_rows}, {gaps.num_rows} gap events "
            f"missing {gaps.column('value').to_pylist()} = {missing}, sequence holes {holes}, "
            f"simulator lost {sim_lost.get(inst_id, 0)}"
        )
        assert duplicates(raw) == 0, f"{inst_id}: a packet was stored twice"
        assert seq[0] == 0 and seq[-1] == (n - 1) % MODULUS, report[-1]  # nothing lost at the ends
        assert holes == missing, report[-1]  # the gap events name every hole
        assert raw.num_rows + missing == n, report[-1]  # stored + gap-accounted = generated
        # Only what the simulator could not publish is missing: what the broker acknowledged
        # survived both restarts (it may have had some the simulator got no PUBACK for).
        assert missing <= sim_lost.get(inst_id, 0), report[-1]
        if inst_id == fast:
            assert gaps.num_rows == 2, report[-1]  # one per outage
            # Stored after the crash and before the second gap: what the broker kept on disk.
            second = int(np.flatnonzero(np.diff(seq.astype(np.int64)) % MODULUS != 1)[1]) + 1
            carried = second - stored_at_crash
    lines = first.lines + ingest.lines
    ingest_retries, sim_retries = retries(lines, "ingest"), retries([sim_text], "simulator")
    print(
        f"\nbroker down {down_1:.1f} s at {OUTAGE_1:.0f} s and {down_2:.1f} s at {OUTAGE_2:.0f} s "
        f"of a {DURATION_S:.0f} s stream; ingest retries {ingest_retries}, simulator retries "
        f"{sim_retries}; {carried} packets of {fast} queued for the crashed ingest came back "
        "from the broker's disk; "
        + "; ".join(report)
        + f"; wall {time.monotonic() - t_start:.1f} s"
    )
    assert carried > 0.5 * 3.0 / FAST_PERIOD_S, carried  # ~3 s of packets
    assert saved and "Error" not in broker.log.read_text(), broker.log.read_text()
    # Both clients reconnected after each outage with growing backoff delays (0.2, 0.5, 1 s ...).
    for delays in (ingest_retries, sim_retries):
        assert delays.count(0.2) == 2 and len(delays) >= 6, (delays, lines, sim_text)
