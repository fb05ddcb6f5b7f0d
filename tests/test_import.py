"""Import of packet files written by an independent encoder: bytes built here by hand with
int.to_bytes from the profile's layout as documented, never with ilrs_ops' own codec."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ilrs_ops.cli import app
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import (
    Recorder,
    create_recording,
    import_packets,
    list_recordings,
    read_recording,
)
from tests.conftest import DATA

UNIX = 1_795_000_000  # 2026-11-18 UTC, packet k of a stream at UNIX + k/2 s
TAI_UTC = 37  # s, since 2017-01-01
EPOCH_1958 = 4383 * 86400  # 1958-01-01 to 1970-01-01
RECV = 1_795_100_000 * 10**9
ROVER_APID, PROBE_APID, STRAY = 0x2A1, 0x2B0, 0x123

PROBE_YAML = """\
instrument: acme-probe-1
partner: acme
name: Test probe
kind: probe
apid: 0x2B0
packet_length: 16
expected_period_s: 1.0
time: {code: cuc, coarse: 4, fine: 2}
fields:
  - {name: temp, type: i16, units: degC, calibration: {poly: [-10.0, 0.5]}}
  - {name: flags, type: u4}
  - {name: level, type: u12, calibration: {poly: [1.0, 2.0]}}
"""


def header(apid: int, seq: int, total: int, version: int = 0) -> bytes:
    """CCSDS primary header: version 3, type 1 (TM 0), sec. header flag 1, APID 11,
    sequence flags 2 (3), count 14, data length 16 (total - 7)."""
    word0 = version << 13 | 0 << 12 | 1 << 11 | apid
    word1 = 3 << 14 | seq
    return word0.to_bytes(2, "big") + word1.to_bytes(2, "big") + (total - 7).to_bytes(2, "big")


def cuc(k: int) -> bytes:
    """CUC 4+2 of UNIX + k/2 s UTC: TAI seconds since 1958, then the fraction in 1/65536 s."""
    coarse = UNIX + k // 2 + EPOCH_1958 + TAI_UTC
    return coarse.to_bytes(4, "big") + (32768 * (k % 2)).to_bytes(2, "big")


def pack(fields: list[tuple[int, int]]) -> bytes:
    """(value, bits) fields packed MSB first; negative values as two's complement."""
    acc, bits = 0, 0
    for value, width in fields:
        acc = acc << width | (value & ((1 << width) - 1))
        bits += width
    assert bits % 8 == 0
    return acc.to_bytes(bits // 8, "big")


def rover(k: int, seq: int, mode: int, batt_v: int, batt_i: int, wheels: list[int], heater: int,
          thermistor: int, odo: int) -> bytes:  # fmt: skip
    body = pack(
        [(mode, 8), (batt_v, 12), (0, 4), (batt_i, 16)]
        + [(w, 16) for w in wheels]
        + [(heater, 1), (thermistor, 7), (odo, 24)]
    )
    pkt = header(ROVER_APID, seq, 33) + cuc(k) + body
    assert len(pkt) == 33
    return pkt


def probe(k: int, seq: int, temp: int, flags: int, level: int) -> bytes:
    pkt = header(PROBE_APID, seq, 16) + cuc(k) + pack([(temp, 16), (flags, 4), (level, 12)])
    assert len(pkt) == 16
    return pkt


# Raw values of the rover packets, and their engineering values worked out by hand.
ROVER = [
    # k, seq, mode, batt_v, batt_i, wheels, heater, thermistor, odo
    (0, 10, 1, 2800, 2500, [1500, -300, 0, 2000, 100, -4000], 1, 32, 500),
    (1, 11, 0, 3500, -1200, [0, 0, 0, 0, 0, 7500], 0, 96, 1500),
    (2, 13, 2, 2300, 4000, [6500, 1, 2, 3, 4, 5], 1, 127, 999),
]
ROVER_ENG = [
    {"mode": 1, "batt_v": 28.0, "batt_i": 2.5, "heater_on": 1.0, "thermistor": -20.0,
     "odo": 50.0, "wheel_temp": [15.0, -3.0, 0.0, 20.0, 1.0, -40.0],
     "power_w": 70.0, "hottest_wheel": 20.0, "batt_v__state": 0},
    {"mode": 0, "batt_v": 35.0, "batt_i": -1.2, "heater_on": 0.0,
     "thermistor": 10.0 + 32 * 80 / 63, "odo": 400.0, "wheel_temp": [0, 0, 0, 0, 0, 75.0],
     "power_w": -42.0, "hottest_wheel": 75.0, "batt_v__state": 2},
    {"mode": 2, "batt_v": 23.0, "batt_i": 4.0, "heater_on": 1.0, "thermistor": 90.0,
     "odo": 99.9, "wheel_temp": [65.0, 0.01, 0.02, 0.03, 0.04, 0.05],
     "power_w": 92.0, "hottest_wheel": 65.0, "batt_v__state": 1},
]  # fmt: skip
PROBE = [(0, 7, -20, 5, 100), (2, 8, 300, 15, 4095)]
PROBE_ENG = [
    {"temp": -20.0, "flags": 5.0, "level": 201.0},
    {"temp": 140.0, "flags": 15.0, "level": 8191.0},
]


@pytest.fixture
def two(tmp_path: Path) -> Catalog:
    folder = tmp_path / "profiles" / "acme"
    folder.mkdir(parents=True)
    shutil.copy(DATA / "good_profiles" / "acme" / "rover.yaml", folder / "rover.yaml")
    (folder / "probe.yaml").write_text(PROBE_YAML)
    return load_catalog([tmp_path / "profiles"])


def campaign_file(path: Path) -> dict[str, bytes]:
    """Mixed APIDs, a stray APID, a bad version, a bad length, and a cut packet at the end."""
    r = [rover(*row) for row in ROVER]
    p = [probe(*row) for row in PROBE]
    parts = {
        "stray": header(STRAY, 1, 16) + cuc(0) + bytes(4),
        "bad_version": header(ROVER_APID, 12, 20, version=2) + bytes(14),
        "bad_length": header(ROVER_APID, 12, 21) + cuc(3) + bytes(9),
        "cut": rover(4, 14, 0, 2800, 0, [0] * 6, 0, 0, 0)[:20],
    }
    data = (
        r[0] + p[0] + parts["stray"] + r[1] + parts["bad_version"] + p[1] + parts["bad_length"]
        + r[2] + parts["cut"]
    )  # fmt: skip
    path.write_bytes(data)
    return parts


def run_import(tmp_path: Path, catalog: Catalog, name: str, chunk: int) -> dict[str, pa.Table]:
    rec = create_recording(tmp_path / "data", name, "imported", "campaign.bin")
    with History.at(rec.path, catalog) as store:
        summary = import_packets(
            tmp_path / "campaign.bin",
            Recorder(store.store, catalog),
            catalog.by_apid,
            chunk_octets=chunk,
            recv_ns=RECV,
        )
        out = {inst: store.query(inst, None, 0, 2**62) for inst in ("acme-rover-1", "acme-probe-1")}
        for lane in ("acme-rover-1", "_unknown"):
            out[f"q:{lane}"] = store.quarantine(lane, 0, 2**62)
        out["events"] = store.events("acme-rover-1", 0, 2**62)
    out["summary"] = summary  # type: ignore[assignment]
    return out


def test_import_decodes_every_value_and_quarantines_the_rest(tmp_path: Path, two: Catalog) -> None:
    parts = campaign_file(tmp_path / "campaign.bin")
    got = run_import(tmp_path, two, "campaign", 1 << 20)

    tm = got["acme-rover-1"]
    assert tm.num_rows == 3
    t = tm.column("time").cast(pa.int64()).to_pylist()
    assert t == [UNIX * 10**9 + k * 500_000_000 for k, *_ in ROVER]
    assert tm.column("seq").to_pylist() == [row[1] for row in ROVER]
    for i, want in enumerate(ROVER_ENG):
        for name, value in want.items():
            np.testing.assert_allclose(
                np.asarray(tm.column(name)[i].as_py(), np.float64), value, rtol=1e-12,
                atol=1e-12, err_msg=f"rover packet {i} {name}",
            )  # fmt: skip
    tp = got["acme-probe-1"]
    assert tp.column("time").cast(pa.int64()).to_pylist() == [
        UNIX * 10**9 + k * 500_000_000 for k, *_ in PROBE
    ]
    for i, want in enumerate(PROBE_ENG):
        for name, value in want.items():
            assert tp.column(name)[i].as_py() == pytest.approx(value, abs=1e-12), (i, name)

    # Quarantine: the bad length under the rover, the rest under _unknown, with their bytes.
    q = got["q:acme-rover-1"]
    assert q.column("reason").to_pylist() == ["bad_length"]
    assert q.column("data").to_pylist() == [parts["bad_length"]]
    u = got["q:_unknown"]
    assert u.column("reason").to_pylist() == ["unknown_apid", "bad_version", "length_past_end"]
    assert u.column("data").to_pylist() == [parts["stray"], parts["bad_version"], parts["cut"]]
    assert set(u.column("recv").cast(pa.int64()).to_pylist()) == {RECV}
    assert "at octet 49 of the file" in u.column("detail")[0].as_py()  # 33 + 16

    # Events: the gap 11 -> 13, batt_v into red and out to yellow.
    ev = got["events"]
    kinds = list(zip(ev.column("kind").to_pylist(), ev.column("channel").to_pylist(), strict=True))
    assert ("gap", None) in kinds
    gap = ev.filter(pa.compute.equal(ev.column("kind"), "gap"))
    assert gap.column("value").to_pylist() == [1.0]
    batt = ev.filter(pa.compute.equal(ev.column("channel"), "batt_v"))
    assert list(zip(batt.column("from_state").to_pylist(), batt.column("to_state").to_pylist(),
                    strict=True)) == [(0, 2), (2, 1)]  # fmt: skip

    s = got["summary"]
    assert s.by_apid == {ROVER_APID: 6, PROBE_APID: 2, STRAY: 1}  # bad ones too
    assert dict(s.decoded) == {"acme-rover-1": 3, "acme-probe-1": 2}
    assert dict(s.quarantined) == {
        "bad_length": 1, "unknown_apid": 1, "bad_version": 1, "length_past_end": 1
    }  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 7, 16, 33, 50])
def test_chunk_boundaries_change_nothing(tmp_path: Path, two: Catalog, chunk: int) -> None:
    campaign_file(tmp_path / "campaign.bin")
    whole = run_import(tmp_path, two, "whole", 1 << 20)
    cut = run_import(tmp_path, two, f"cut-{chunk}", chunk)
    for key in whole:
        if key != "summary":
            assert cut[key].equals(whole[key]), key
    assert cut["summary"] == whole["summary"]


def test_one_instrument_sends_other_apids_to_unknown(tmp_path: Path, two: Catalog) -> None:
    campaign_file(tmp_path / "campaign.bin")
    rec = create_recording(tmp_path / "data", "rover-only", "imported", "campaign.bin")
    rover_only = {ROVER_APID: two.instruments["acme-rover-1"]}
    with History.at(rec.path, two) as store:
        s = import_packets(tmp_path / "campaign.bin", Recorder(store.store, two), rover_only)
        assert store.query("acme-rover-1", None, 0, 2**62).num_rows == 3
        assert store.quarantine("_unknown", 0, 2**62).num_rows == 5
    assert s.quarantined["unknown_apid"] == 3  # two probe packets and the stray one


def test_cli_import_writes_a_recording(tmp_path: Path, two: Catalog) -> None:
    campaign_file(tmp_path / "campaign.bin")
    data = tmp_path / "data"
    args = ["import", str(tmp_path / "campaign.bin"), "--name", "tvac-1", "--data", str(data)]
    args += ["--profiles", str(tmp_path / "profiles"), "--chunk-size", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "length_past_end" in result.output and "decoded" in result.output
    (rec,) = list_recordings(data)
    assert rec.name == "tvac-1" and rec.origin == "imported"
    assert rec.packets == {"acme-probe-1": 2, "acme-rover-1": 3}
    assert read_recording(rec.path).rejects["_unknown"]["bad_version"] == 1
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "exists" in again.output


def test_cli_import_with_a_profile_file(tmp_path: Path, two: Catalog) -> None:
    """--profile: a partner's profile that is not in the catalog decodes its packets; the
    rover's packets, not routed, are quarantined as unknown APIDs."""
    campaign_file(tmp_path / "campaign.bin")
    data = tmp_path / "data"
    probe_yaml = tmp_path / "profiles" / "acme" / "probe.yaml"
    args = ["import", str(tmp_path / "campaign.bin"), "--profile", str(probe_yaml)]
    args += ["--data", str(data), "--profiles", str(DATA / "good_profiles")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (rec,) = list_recordings(data)
    assert rec.name == "campaign" and rec.instruments == ["acme-probe-1"]
    assert rec.packets == {"acme-probe-1": 2}
    assert rec.rejects["_unknown"]["unknown_apid"] == 5  # 3 rover, 1 bad length, 1 stray
    both = CliRunner().invoke(app, [*args, "--instrument", "acme-rover-1"])
    assert both.exit_code != 0 and "not both" in both.output
    # Run where there is no station catalog: the profile file is all it needs.
    alone = [*args[:4], "--data", str(tmp_path / "d2"), "--profiles", str(tmp_path / "none")]
    result = CliRunner().invoke(app, alone)
    assert result.exit_code == 0, result.output
    assert list_recordings(tmp_path / "d2")[0].packets == {"acme-probe-1": 2}
