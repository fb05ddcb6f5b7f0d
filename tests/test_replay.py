"""Replay: a live simulator run with faults, recorded by a real Ingestor, replayed at max speed
over the real Mosquitto into a fresh recording and straight through the pipelines; all three
stores hold the same telemetry, events and rollups, and nothing reaches the live root."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import aiomqtt
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ilrs_ops.cli import app
from ilrs_ops.errors import BrokerError
from ilrs_ops.history import History
from ilrs_ops.ingest import IngestConfig
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import (
    Recorder,
    RecordingError,
    ReplayControl,
    create_recording,
    import_packets,
    list_recordings,
    publish,
    replay_direct,
    replay_mqtt,
    replay_root,
    resolve_store,
)
from ilrs_ops.schemas import RAW
from ilrs_ops.sim import Faults, Simulator
from ilrs_ops.sources import Message, Source, StoreSource
from ilrs_ops.store import Store
from tests.conftest import MOSQUITTO, ROOT
from tests.test_import import UNIX, campaign_file, two  # noqa: F401 (a fixture)
from tests.test_ingest import run_ingest, table
from tests.test_process import combined_rollups

FAULTS = Faults(
    corrupt=0.02, truncate=0.02, wrong_apid=0.02, duplicate=0.03, gap=0.03, reorder=0.03,
    limit=0.02, limit_s=2.0,
)  # fmt: skip
ALL = (0, 2**62)
#: A quick seismometer of the test's own, so a few seconds of a live run trigger its detector.
QUAKE_YAML = """\
instrument: acme-quake-1
partner: acme
name: Test seismometer
kind: seismometer
apid: 0x7A0
packet_length: 42
expected_period_s: 0.1
time: {code: cuc, coarse: 4, fine: 2}
fields:
  - name: vel_z
    type: i24
    count: 10
    sample_rate_hz: 100
    units: nm/s
    calibration: {poly: [0.0, 0.01]}
    sim: {model: seismic, amplitude: 2.0, max: 5000.0, rate_per_h: 3600, duration_s: 1}
detectors:
  - {kind: sta_lta, channel: vel_z, sta_s: 0.2, lta_s: 2, on: 4, off: 1.5}
"""


@pytest.fixture
def quake_station(tmp_path: Path) -> Catalog:
    """The station plus acme-quake-1."""
    folder = tmp_path / "profiles"
    shutil.copytree(ROOT / "hardware_profiles", folder)
    (folder / "acme").mkdir()
    (folder / "acme" / "quake.yaml").write_text(QUAKE_YAML)
    return load_catalog([folder])


def tables(root: Path, catalog: Catalog) -> dict[str, dict[str, object]]:
    """What can be compared between a live run and its replay, per instrument: raw without
    the receive time, telemetry, events (sorted), rollups combined per bucket, quarantine."""
    out: dict[str, dict[str, object]] = {}
    by_time = [("time", "ascending"), ("seq", "ascending")]
    with History.at(root, catalog) as store:
        for inst in catalog:
            raw = pa.Table.from_batches(list(store.raw_batches(inst.id, *ALL)), schema=RAW)
            ev = store.events(inst.id, *ALL)
            ev = ev.sort_by([(c, "ascending") for c in ("time", "kind", "channel", "detail")])
            out[inst.id] = {
                "raw": raw.drop_columns(["recv"]).sort_by(by_time),
                "telemetry": store.query(inst.id, None, *ALL),
                "events": ev,
                "rollups": combined_rollups(table(root, "rollups", inst.id)),
                "quarantine": store.quarantine(inst.id, *ALL),
            }
    return out


def assert_same(a: dict, b: dict, what: str) -> None:
    for inst in a:
        for name in ("raw", "telemetry", "events"):
            x, y = a[inst][name], b[inst][name]
            assert x.num_rows == y.num_rows, (what, inst, name, x.num_rows, y.num_rows)
            assert x.equals(y), (what, inst, name)
        ra, rb = a[inst]["rollups"], b[inst]["rollups"]
        assert ra.keys() == rb.keys(), (what, inst)
        for key in ra:
            for col in ("count", "min", "max", "first", "last"):
                assert ra[key][col] == rb[key][col], (what, inst, key, col)
            # Sums of partial sums: the same numbers added in another grouping.
            assert ra[key]["sum"] == pytest.approx(rb[key]["sum"], rel=1e-12), (what, inst, key)


async def watch(root: str, seen: list[str]) -> None:
    """Everything published under the live root while the replay runs (retained messages of
    the live run, delivered on subscribing, are not publications)."""
    async with aiomqtt.Client(*MOSQUITTO) as client:
        await client.subscribe(f"{root}/#", qos=1)
        async for message in client.messages:
            if not message.retain:
                seen.append(str(message.topic))


@pytest.mark.slow
async def test_replay_reproduces_the_live_run(
    quake_station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    station = quake_station
    live = tmp_path / "live"
    sim = Simulator(
        station,
        host=MOSQUITTO[0],
        port=MOSQUITTO[1],
        root=topic_root,
        seed=0,
        faults=FAULTS,
        bundle=10,  # seed 0 in frames of 10 packets: the quake detector triggers (found so)
    )
    config = IngestConfig(
        root=topic_root, segment_s=2.0, client_id=f"{topic_root}-ingest".replace("/", "-")
    )
    with History.at(live, station) as store:
        await run_ingest(store.store, station, config, lambda: sim.run(6.0))
    assert sum(sim.injected().values()) > 0

    data = tmp_path / "data"
    seen: list[str] = []
    watcher = asyncio.create_task(watch(topic_root, seen))
    await asyncio.sleep(0.5)  # subscribed, retained messages delivered
    rec = create_recording(data, "again", "replayed", str(live))
    name_root = replay_root(topic_root, "again")
    source = StoreSource(live, station, root=name_root, bundle=1)
    assert isinstance(source, Source)
    with Store(rec.path) as store:
        ingestor = await replay_mqtt(
            source, store, station, host=MOSQUITTO[0], port=MOSQUITTO[1], root=name_root,
            speed=None,
        )  # fmt: skip
    await asyncio.sleep(0.5)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    assert seen == []  # (d) nothing on the live root during the replay
    assert sum(st.packets for st in ingestor.status.values()) == source.total

    direct = create_recording(data, "direct", "replayed", str(live))
    with Store(direct.path) as store:
        await replay_direct(StoreSource(live, station, bundle=7), Recorder(store, station))

    a, b, c = tables(live, station), tables(rec.path, station), tables(direct.path, station)
    assert_same(a, b, "live vs MQTT replay")  # (b)
    assert_same(b, c, "MQTT replay vs direct")  # (c)
    kinds = {k for t in a.values() for k in t["events"].column("kind").to_pylist()}
    assert {"limit", "gap", "detector"} <= kinds
    # Bad packets never reached raw, so the replays quarantine nothing.
    assert sum(t["quarantine"].num_rows for t in a.values()) > 0
    assert sum(t["quarantine"].num_rows for t in b.values()) == 0
    assert sum(t["quarantine"].num_rows for t in c.values()) == 0
    assert [r.name for r in list_recordings(data)] == ["again", "direct"]


def test_replay_root_is_beside_the_live_root() -> None:
    assert replay_root("ilrs", "x") == "ilrs-replay/x"
    assert not replay_root("ilrs", "x").startswith("ilrs/")


def test_cli_replays_an_imported_recording(
    tmp_path: Path,
    two: Catalog,  # noqa: F811 (the fixture imported above)
    topic_root: str,
) -> None:
    campaign_file(tmp_path / "campaign.bin")
    data = tmp_path / "data"
    common = ["--data", str(data), "--profiles", str(tmp_path / "profiles")]
    cli = CliRunner()

    def run(*args: str) -> str:
        result = cli.invoke(app, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    run("import", str(tmp_path / "campaign.bin"), "--name", "tvac-1")
    run("replay", "--from", "tvac-1", "--direct", "--to", "re-direct")
    run("replay", "--from", "tvac-1", "--to", "re-mqtt", "--root", topic_root, "--speed", "10")
    k1 = str(UNIX * 10**9 + 500_000_000)
    run("replay", "--from", "tvac-1", "--direct", "--to", "re-window", "--start", k1,
        "--stop", "2026-11-18T11:06:41Z", "--instrument", "acme-rover-1")  # fmt: skip
    recs = {r.name: r for r in list_recordings(data)}
    assert {n: r.origin for n, r in recs.items()} == {
        "tvac-1": "imported", "re-direct": "replayed", "re-mqtt": "replayed",
        "re-window": "replayed",
    }  # fmt: skip
    assert recs["re-mqtt"].packets == recs["tvac-1"].packets == recs["re-direct"].packets
    assert recs["re-window"].packets == {"acme-rover-1": 1}  # [k=1, k=2): one rover packet
    assert recs["re-mqtt"].extra["topic_root"] == f"{topic_root}-replay/re-mqtt"
    for inst in ("acme-rover-1", "acme-probe-1"):
        got = []
        for name in ("tvac-1", "re-direct", "re-mqtt"):
            with History.at(recs[name].path, two) as store:
                got.append(store.query(inst, None, *ALL))
        assert got[0].num_rows > 0
        assert got[1].equals(got[0]) and got[2].equals(got[0]), inst


async def test_store_source_merges_instruments_in_time_order(
    tmp_path: Path,
    two: Catalog,  # noqa: F811
) -> None:
    campaign_file(tmp_path / "campaign.bin")
    data = tmp_path / "data"
    rec = create_recording(data, "tvac", "imported", "campaign.bin")
    with Store(rec.path) as store:
        import_packets(tmp_path / "campaign.bin", Recorder(store, two), two.by_apid)
    source = StoreSource(rec.path, two, root="r")
    got = [m async for batch in source for m in batch]
    assert source.total == len(got) == 5
    assert [m.recv_ns for m in got] == sorted(m.recv_ns for m in got)
    assert [m.topic.rpartition("/")[2] for m in got] == [
        "acme-probe-1",
        "acme-rover-1",
        "acme-rover-1",
        "acme-probe-1",
        "acme-rover-1",
    ]  # fmt: skip  (k = 0, 0, 1, 2, 2: ties in instrument order)
    bundled = StoreSource(rec.path, two, root="r", bundle=2, instruments=["acme-rover-1"])
    frames = [m.payload for batch in [b async for b in bundled] for m in batch]
    assert bundled.total == len(frames) == 2 and [len(f) for f in frames] == [66, 33]
    with pytest.raises(RecordingError, match="neither a recording"):
        resolve_store(data, "nothing-here")
    assert resolve_store(data, "tvac") == rec.path


class Timed:
    """A Source of ``n`` messages ``step_s`` apart on the source's timeline."""

    def __init__(self, topic: str, n: int = 3, step_s: float = 1.0) -> None:
        self.topic, self.total, self.step_ns = topic, n, int(step_s * 1e9)

    async def _gen(self):
        yield [Message(k * self.step_ns, self.topic, bytes([k])) for k in range(self.total)]

    def __aiter__(self):
        return self._gen()


async def test_publish_keeps_relative_timing_divided_by_speed(topic_root: str) -> None:
    got: list[tuple[float, bytes]] = []
    async with aiomqtt.Client(*MOSQUITTO) as client:
        await client.subscribe(f"{topic_root}/#", qos=1)

        async def read() -> None:
            async for message in client.messages:
                got.append((time.monotonic(), bytes(message.payload)))
                if len(got) == 3:
                    return

        reader = asyncio.create_task(read())
        source = Timed(f"{topic_root}/tm/acme/acme-rover-1")
        assert isinstance(source, Source)
        sent = await publish(source, host=MOSQUITTO[0], port=MOSQUITTO[1], speed=5.0)
        await asyncio.wait_for(reader, 5)
    assert sent.messages == 3 and [p for _, p in got] == [b"\0", b"\1", b"\2"]
    assert 0.3 < got[2][0] - got[0][0] < 0.6  # 2 s of source time at 5x: 0.4 s
    assert 0.3 < sent.seconds < 0.8


async def test_a_replay_pauses_resumes_and_stops(topic_root: str) -> None:
    control = ReplayControl()
    source = Timed(f"{topic_root}/tm/acme/acme-rover-1", n=40, step_s=0.05)
    task = asyncio.create_task(
        publish(source, host=MOSQUITTO[0], port=MOSQUITTO[1], speed=1.0, control=control)
    )
    await asyncio.sleep(0.4)
    control.pause()
    assert control.state == "paused"
    held = control.sent
    await asyncio.sleep(0.5)
    assert control.sent <= held + 1  # one message may have been waiting for its time
    control.resume()
    await asyncio.sleep(0.3)
    assert control.sent > held + 1
    control.stop()
    sent = await asyncio.wait_for(task, 5)
    assert control.state == "stopped" and sent.stopped
    assert control.total == 40 and 5 < sent.messages < 40


async def test_no_broker_is_a_broker_error(free_port: int) -> None:
    with pytest.raises(BrokerError, match=f"127.0.0.1:{free_port}"):
        await publish(Timed("x/tm/a/b"), host="127.0.0.1", port=free_port, speed=None)
