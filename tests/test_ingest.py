"""Ingest end to end on the real Mosquitto: the simulator with every fault, the ingestor, the store.

The store must then hold every good packet exactly once, each injected fault as its quarantine
row or gap event, and calibrated values equal to the profile's formulas applied independently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections import Counter
from pathlib import Path

import aiomqtt
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from ilrs_ops.history import History
from ilrs_ops.ingest import IngestConfig, Ingestor, shard_of
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.schemas import EVENTS, QUARANTINE, RAW
from ilrs_ops.sim import Environment, Faults, Module, Simulator
from ilrs_ops.store import Store
from ilrs_ops.wire import InstrumentStatus
from tests.conftest import MOSQUITTO
from tests.test_process import reference_engineering


def table(root: Path, name: str, instrument: str) -> pa.Table:
    path = root / name / f"instrument={instrument}"
    if not path.exists():  # nothing stored: empty, with the columns of the table
        return {"raw": RAW, "quarantine": QUARANTINE, "events": EVENTS}.get(
            name, pa.schema([])
        ).empty_table()
    return ds.dataset(path, format="parquet", partitioning="hive").to_table()


async def run_ingest(store: Store, catalog: Catalog, config: IngestConfig, work) -> Ingestor:
    """Start an ingestor, run ``work`` while it ingests, then wait until it is idle, stop it
    and seal what is left."""
    async with Ingestor(catalog=catalog, store=store, config=config) as ingestor:
        await asyncio.wait_for(ingestor.ready(), 30)
        await work()
        seen = -1
        while seen != sum(lane.metrics.messages for lane in ingestor.lanes.values()):
            seen = sum(lane.metrics.messages for lane in ingestor.lanes.values())
            await asyncio.sleep(1.0)
    return ingestor


def test_shards_split_the_instruments_stably(station: Catalog) -> None:
    for n in (1, 2, 3, 5):
        owners = {i.id: shard_of(i.id, n) for i in station}
        assert all(owners[i] == zlib.crc32(i.encode()) % n for i in owners)  # stable across runs
        assert set(owners.values()) <= set(range(n))
    assert len({shard_of(i.id, 2) for i in station}) == 2  # both shards get work


def test_health_follows_limits_and_silence(rover: Catalog) -> None:
    st = InstrumentStatus(rover.instruments["acme-rover-1"])  # expected period 0.5 s
    assert st.health(100.0) == "offline"  # never heard of
    st.last_recv_s = 100.0
    st.states = {"batt_v": 0, "wheel_temp": 1}
    assert st.health(100.2) == "warning"
    st.states["batt_v"] = 2
    assert st.health(100.2) == "critical"
    assert st.health(101.6) == "stale"  # more than 3 periods
    assert st.health(115.1) == "offline"  # more than 30 periods
    doc = json.loads(st.to_json(100.2))
    assert doc["health"] == "critical" and doc["instrument"] == "acme-rover-1"


async def test_station_with_every_fault_lands_exactly_once(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    faults = Faults(
        corrupt=0.03,
        truncate=0.03,
        wrong_apid=0.03,
        duplicate=0.03,
        gap=0.05,
        reorder=0.03,
        dropout=0.04,
        dropout_s=3.0,
        limit=0.02,
        limit_s=2.0,
    )
    sim = Simulator(
        station, host=MOSQUITTO[0], port=MOSQUITTO[1], root=topic_root, seed=11, faults=faults
    )
    config = IngestConfig(
        root=topic_root, segment_s=3.0, client_id=f"{topic_root}-ingest".replace("/", "-")
    )
    with History.at(tmp_path, station) as store:
        ingestor = await run_ingest(store.store, station, config, lambda: sim.run(12.0))

    totals: Counter[str] = Counter()
    for m in sim.modules:
        inst, inj = m.instrument, m.injected
        totals.update(inj)
        raw = table(tmp_path, "raw", inst.id)
        tm = table(tmp_path, "telemetry", inst.id)
        q = table(tmp_path, "quarantine", inst.id)
        # Exactly once: every good packet that was sent, no duplicates.
        keys = list(
            zip(
                raw.column("seq").to_pylist(),
                raw.column("time").cast(pa.int64()).to_pylist(),
                strict=True,
            )
        )
        assert len(keys) == len(set(keys)), inst.id
        sent_good = m.index - inj["dropped"] - inj["corrupt"] - inj["truncate"] - inj["wrong_apid"]
        reasons = Counter(q.column("reason").to_pylist()) if q.num_rows else Counter()
        # A good packet is stored, or quarantined as out of order when it came after a later
        # one (a reordered packet whose successor was itself lost arrives in order).
        assert raw.num_rows + reasons["out_of_order"] == sent_good, (inst.id, dict(inj))
        assert raw.num_rows == tm.num_rows
        assert reasons["out_of_order"] <= inj["reorder"], inst.id
        # Each fault as its quarantine reason.
        assert reasons["bad_version"] == inj["corrupt"], inst.id
        assert reasons["truncated"] + reasons["length_past_end"] == inj["truncate"], inst.id
        assert reasons["wrong_apid"] == inj["wrong_apid"], inst.id
        assert reasons["duplicate"] == inj["duplicate"], inst.id
        # Gap events account for every sequence count missing between the packets stored.
        seq = np.sort(np.array(raw.column("seq").to_pylist()))
        ev = table(tmp_path, "events", inst.id)
        gaps = ev.filter(pa.compute.equal(ev.column("kind"), "gap")) if ev.num_rows else ev
        missing = int(np.sum(gaps.column("value").to_numpy())) if gaps.num_rows else 0
        if len(seq):
            lost_inside = int(seq[-1] - seq[0] + 1 - len(seq))
            assert missing == lost_inside, inst.id
        # The status document counts the same gaps (the console's links view shows them).
        st = ingestor.status[inst.id]
        assert (st.gaps, st.missing) == (gaps.num_rows, missing), inst.id
        # Calibrated values equal the formulas applied by hand to the stored raw bytes.
        by_seq = {s: i for i, s in enumerate(tm.column("seq").to_pylist())}
        for packet, s in list(
            zip(raw.column("data").to_pylist(), raw.column("seq").to_pylist(), strict=True)
        )[:20]:
            ref = reference_engineering(inst, packet)
            row = by_seq[s]
            for name, want in ref.items():
                got = np.asarray(tm.column(name)[row].as_py(), dtype=np.float64)
                np.testing.assert_allclose(
                    got,
                    np.asarray(want, dtype=np.float64),
                    rtol=1e-12,
                    atol=1e-9,
                    err_msg=f"{inst.id}.{name}",
                )
    # The run did exercise every fault kind somewhere in the station.
    for kind in ("corrupt", "truncate", "wrong_apid", "duplicate", "gap", "reorder", "dropout"):
        assert totals[kind] > 0, kind
    # Limit excursions became red transitions and back.
    limit_events = sum(
        table(tmp_path, "events", i.id)
        .filter(pa.compute.equal(table(tmp_path, "events", i.id).column("kind"), "limit"))
        .num_rows
        for i in station
        if table(tmp_path, "events", i.id).num_rows
    )
    assert totals["limit"] > 0
    out_of_order = sum(
        Counter(table(tmp_path, "quarantine", i.id).column("reason").to_pylist())["out_of_order"]
        for i in station
        if table(tmp_path, "quarantine", i.id).num_rows
    )
    assert out_of_order > 0
    assert limit_events >= totals["limit"]


async def test_status_is_retained_per_instrument(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    sim = Simulator(station, host=MOSQUITTO[0], port=MOSQUITTO[1], root=topic_root, seed=2)
    config = IngestConfig(
        root=topic_root, client_id=f"{topic_root}-ingest".replace("/", "-"), status_interval_s=0.2
    )
    with History.at(tmp_path, station) as store:
        await run_ingest(store.store, station, config, lambda: sim.run(3.0))
    status: dict[str, dict] = {}
    async with aiomqtt.Client(*MOSQUITTO) as client:
        await client.subscribe(f"{topic_root}/status/#", qos=1)

        async def read() -> None:
            async for message in client.messages:
                doc = json.loads(bytes(message.payload))
                status[doc["instrument"]] = doc
                if len(status) == len(station):
                    return

        await asyncio.wait_for(read(), 10)
        for inst in station:  # clean up the retained messages of this test
            await client.publish(
                f"{topic_root}/status/{inst.profile.partner}/{inst.id}", b"", retain=True
            )
    assert set(status) == set(station.instruments)
    for inst in station:
        doc = status[inst.id]
        assert doc["packets"] == sim.published[inst.id]
        assert doc["health"] in {"nominal", "warning", "critical", "stale", "offline"}
        assert set(doc["values"]) == set(inst.channels)


@pytest.mark.parametrize("bad", ["1/1", "2/2", "-1/3"])
def test_bad_shard_is_refused(bad: str) -> None:
    i, n = (int(x) for x in bad.split("/"))
    with pytest.raises(ValueError, match="use i/N"):
        IngestConfig(shard=i, shards=n)


async def test_two_shards_share_the_station_each_instrument_in_one(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    sim = Simulator(station, host=MOSQUITTO[0], port=MOSQUITTO[1], root=topic_root, seed=4)
    ingestors: list[Ingestor] = []
    with History.at(tmp_path, station) as store:
        stack = contextlib.AsyncExitStack()
        for shard in range(2):
            cfg = IngestConfig(
                root=topic_root,
                shard=shard,
                shards=2,
                client_id=f"{topic_root}-ingest-{shard}".replace("/", "-"),
            )
            ing = Ingestor(catalog=station, store=store.store, config=cfg)
            ingestors.append(await stack.enter_async_context(ing))
        for ing in ingestors:
            await asyncio.wait_for(ing.ready(), 30)
        await sim.run(3.0)
        await asyncio.sleep(2.0)
        await stack.aclose()
    owners = [set(ing.status) for ing in ingestors]
    assert owners[0].isdisjoint(owners[1]) and owners[0] | owners[1] == set(station.instruments)
    for inst in station:
        owner = ingestors[shard_of(inst.id, 2)]
        assert owner.status[inst.id].packets == sim.published[inst.id]
        assert table(tmp_path, "raw", inst.id).num_rows == sim.published[inst.id]


async def test_unknown_instrument_is_quarantined_not_lost(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    config = IngestConfig(root=topic_root, client_id=f"{topic_root}-ingest".replace("/", "-"))

    async def publish() -> None:
        async with aiomqtt.Client(*MOSQUITTO) as pub:
            for i in range(3):
                await pub.publish(f"{topic_root}/tm/nowhere/ghost-1", bytes([i]) * 20, qos=1)

    with History.at(tmp_path, station) as store:
        await run_ingest(store.store, station, config, publish)
        q = store.quarantine("_unknown", 0, 2**62)
    assert q.num_rows == 3
    assert set(q.column("reason").to_pylist()) == {"unknown_instrument"}
    assert set(q.column("topic").to_pylist()) == {f"{topic_root}/tm/nowhere/ghost-1"}
    assert sorted(q.column("data").to_pylist()) == [bytes([i]) * 20 for i in range(3)]


async def test_slow_store_means_backpressure_not_loss(
    rover: Catalog, topic_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that takes 50 ms per append: the lane queue stays within its bound, the reader
    waits, the broker holds the rest, and every message is stored in the end."""
    inst = rover.instruments["acme-rover-1"]
    module = Module(inst, Environment(epoch_ns=0), seed=5, start_ns=1_790_000_000 * 10**9)
    packets = module.next_batch(400).packets
    real_wal = Store.wal

    class SlowWriter:
        def __init__(self, writer) -> None:
            self.writer = writer

        def append(self, *args):
            time.sleep(0.05)
            return self.writer.append(*args)

        def rotate(self):
            return self.writer.rotate()

    monkeypatch.setattr(Store, "wal", lambda self, lane: SlowWriter(real_wal(self, lane)))
    config = IngestConfig(
        root=topic_root,
        client_id=f"{topic_root}-ingest".replace("/", "-"),
        lane_queue=10,
        batch_messages=5,
    )
    depth: list[int] = []
    with History.at(tmp_path, rover) as store:
        async with Ingestor(catalog=rover, store=store.store, config=config) as ingestor:
            await asyncio.wait_for(ingestor.ready(), 30)
            lane = ingestor.lanes["acme-rover-1"]
            async with aiomqtt.Client(*MOSQUITTO) as pub:
                for p in packets:
                    await pub.publish(inst.topic(topic_root), p, qos=1)
                    depth.append(lane.queue.qsize())
            while lane.metrics.messages < len(packets):
                depth.append(lane.queue.qsize())
                await asyncio.sleep(0.05)
    assert max(depth) <= 10 and max(depth) >= 5  # the queue filled up to its bound, no further
    assert table(tmp_path, "raw", "acme-rover-1").num_rows == len(packets)


async def test_lanes_made_together_seal_spread_over_the_segment_age(
    station: Catalog, topic_root: str, tmp_path: Path
) -> None:
    """Lanes made together seal at spread times, not all in the same instant (17 seals at once
    held the event loop for 300 ms at 100x): each lane's first seal by age is timed here with
    every instrument at 10 Hz, so each lane sees a batch every 0.1 s."""
    fast = Catalog(
        {
            i.id: Instrument(i.profile.model_copy(update={"expected_period_s": 0.1}), i.path)
            for i in station
        }
    )
    segment_s = 5.0
    config = IngestConfig(
        root=topic_root, segment_s=segment_s, client_id=f"{topic_root}-ingest".replace("/", "-")
    )
    sim = Simulator(fast, host=MOSQUITTO[0], port=MOSQUITTO[1], root=topic_root, seed=8)
    first_seal: dict[str, float] = {}
    with Store(tmp_path) as store:
        async with Ingestor(catalog=fast, store=store, config=config) as ingestor:
            await asyncio.wait_for(ingestor.ready(), 30)
            t0 = time.monotonic()
            run = asyncio.create_task(sim.run(segment_s + 1.5))
            while not run.done():
                for iid, feed in ingestor.lanes.items():
                    if iid in fast.instruments and feed.metrics.seals and iid not in first_seal:
                        first_seal[iid] = time.monotonic() - t0
                await asyncio.sleep(0.05)
            await run
            sent = sum(sim.messages.values())  # acknowledged by the broker; ingest may lag
            async with asyncio.timeout(30):
                while sum(f.metrics.messages for f in ingestor.lanes.values()) < sent:
                    await asyncio.sleep(0.05)
    assert set(first_seal) == set(fast.instruments), "every lane sealed by age once"
    spread = max(first_seal.values()) - min(first_seal.values())
    assert spread >= segment_s / 2, sorted(first_seal.values())
    for inst in fast:  # and nothing lost on the way
        assert table(tmp_path, "raw", inst.id).num_rows == sim.published[inst.id]
