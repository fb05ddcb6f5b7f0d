"""Profiles are hot-reloaded: a changed or new profile goes live without a restart; an invalid
one is refused with its ProfileError and the version in force stays."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiomqtt
import numpy as np
import pyarrow.dataset as ds

from ilrs_ops.history import History
from ilrs_ops.ingest import IngestConfig, Ingestor
from ilrs_ops.profiles import load_catalog
from ilrs_ops.sim import Environment, Module
from tests.conftest import DATA, MOSQUITTO


async def until(predicate, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


async def test_changed_new_and_invalid_profiles(topic_root: str, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(DATA / "good_profiles", profiles)
    rover_file = profiles / "acme" / "rover.yaml"
    catalog = load_catalog([profiles])
    config = IngestConfig(
        root=topic_root, client_id=f"{topic_root}-ingest".replace("/", "-"), batch_delay_s=0.01
    )
    with History.at(tmp_path / "store", catalog) as store:
        async with Ingestor(
            catalog=catalog, store=store.store, config=config, profiles=profiles
        ) as ingestor:
            await asyncio.wait_for(ingestor.ready(), 30)
            await asyncio.sleep(0.5)  # the file watcher starts with the task group

            rover = catalog.instruments["acme-rover-1"]
            module = Module(rover, Environment(epoch_ns=0), seed=1, start_ns=1_790_000_000 * 10**9)
            async with aiomqtt.Client(*MOSQUITTO) as pub:
                for p in module.next_batch(5).packets:
                    await pub.publish(rover.topic(topic_root), p, qos=1)
                await until(lambda: ingestor.lanes["acme-rover-1"].metrics.messages == 5)

                # A changed calibration: batt_v counts now read 0.02 V each instead of 0.01 V.
                rover_file.write_text(
                    rover_file.read_text().replace("poly: [0.0, 0.01]", "poly: [0.0, 0.02]")
                )
                await until(lambda: ingestor.profile_reloads == 1)
                for p in module.next_batch(5).packets:
                    await pub.publish(rover.topic(topic_root), p, qos=1)
                await until(lambda: ingestor.lanes["acme-rover-1"].metrics.messages == 10)

                # An invalid edit is refused; the version in force stays.
                good_text = rover_file.read_text()
                rover_file.write_text(good_text.replace("type: u12", "type: u65"))
                await until(lambda: bool(ingestor.profile_errors))
                assert any("u65" in e and "rover.yaml" in e for e in ingestor.profile_errors)
                assert ingestor.profile_reloads == 1
                rover_file.write_text(good_text)

                # A new instrument goes live: a copy of the rover under another id and APID.
                new_text = good_text.replace("acme-rover-1", "acme-rover-2")
                new_text = new_text.replace("0x2A1", "0x2A2")
                (profiles / "acme" / "rover2.yaml").write_text(new_text)
                await until(lambda: "acme-rover-2" in ingestor.lanes)
                rover2 = ingestor.catalog.instruments["acme-rover-2"]
                m2 = Module(rover2, Environment(epoch_ns=0), seed=2, start_ns=1_790_000_000 * 10**9)
                for p in m2.next_batch(3).packets:
                    await pub.publish(rover2.topic(topic_root), p, qos=1)
                await until(lambda: ingestor.lanes["acme-rover-2"].metrics.messages == 3)

    tm = (
        ds.dataset(
            tmp_path / "store" / "telemetry" / "instrument=acme-rover-1",
            format="parquet",
            partitioning="hive",
        )
        .to_table()
        .sort_by("seq")
    )
    raw = (
        ds.dataset(
            tmp_path / "store" / "raw" / "instrument=acme-rover-1",
            format="parquet",
            partitioning="hive",
        )
        .to_table()
        .sort_by("seq")
    )
    counts = np.array(
        [int.from_bytes(d[13:15], "big") >> 4 for d in raw.column("data").to_pylist()]
    )
    volts = tm.column("batt_v").to_numpy()
    np.testing.assert_allclose(volts[:5], counts[:5] * 0.01)  # before the change
    np.testing.assert_allclose(volts[5:], counts[5:] * 0.02)  # after it
    new = ds.dataset(
        tmp_path / "store" / "raw" / "instrument=acme-rover-2",
        format="parquet",
        partitioning="hive",
    ).to_table()
    assert new.num_rows == 3
