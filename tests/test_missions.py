"""Real mission packet files, imported with a profile written from their published definitions,
every stored value checked bit for bit against an independent decoder, no good packet
quarantined.

Missions from three agencies: NOAA (JPSS-1), NASA (Europa Clipper's magnetometer) and the
Canadian Space Agency (APID 400), plus ccsdspy's long hs test file. The files come from the
package registry, never from this repository: space-packet-parser's source distribution
carries real mission data with the missions' XTCE definitions (its wheel does not), so a
session fixture downloads that sdist once, checks its published digest and unpacks only the
test data (the ``spp_data`` fixture of tests/conftest.py); ccsdspy's installed package carries
the others. space-packet-parser and ccsdspy are the independent decoders.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from ilrs_ops.history import History
from ilrs_ops.profiles import load_catalog
from ilrs_ops.replay import Recorder, create_recording, import_packets
from ilrs_ops.store import Store
from tests.conftest import DATA

ALL = (0, 2**62)
MISSIONS = load_catalog([DATA / "missions"])


def imported(tmp_path: Path, file: Path, instrument: str) -> tuple[pa.Table, dict, object]:
    """The file imported into a fresh recording: its telemetry, quarantine counts, summary."""
    rec = create_recording(tmp_path / "data", "mission", "imported", str(file))
    inst = MISSIONS.instruments[instrument]
    with Store(rec.path) as store:
        summary = import_packets(file, Recorder(store, MISSIONS), {inst.profile.apid: inst})
    with History.at(rec.path, MISSIONS) as history:
        tm = history.query(instrument, None, *ALL, raw=True)
    return tm, dict(summary.quarantined), summary


def cds_ns(days: int, ms: int, us: int) -> int:
    """A CDS time (days since 1958-01-01 UTC, ms of day, us of ms) as UTC ns since 1970."""
    t = dt.datetime(1958, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        days=days, milliseconds=ms, microseconds=us
    )
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def test_jpss1_geolocation_decodes_bit_for_bit(spp_data: Path, tmp_path: Path) -> None:
    import space_packet_parser as spp

    folder = spp_data / "jpss"
    file = folder / "J01_G011_LZ_2021-04-09T00-00-00Z_V01.DAT1"
    tm, quarantined, summary = imported(tmp_path, file, "noaa-jpss1-geolocation")
    assert quarantined == {}  # 0 good packets quarantined
    definition = spp.load_xtce(folder / "jpss1_geolocation_xtce_v1.xml")
    with file.open("rb") as f:
        packets = [definition.parse_bytes(raw) for raw in spp.ccsds_generator(f)]
    assert tm.num_rows == len(packets) == summary.decoded["noaa-jpss1-geolocation"] == 7200
    # Every channel equals the independent decoder's raw value exactly (float32 widened).
    for name in MISSIONS.instruments["noaa-jpss1-geolocation"].channels:
        theirs = np.array([float(p[name.upper()].raw_value) for p in packets])
        ours = tm.column(name).to_numpy()
        assert np.array_equal(ours, theirs), name
        raw = tm.column(name + "__raw").to_numpy()  # in the field's own type (f32 stays f32)
        assert np.array_equal(raw, theirs.astype(raw.dtype)) and raw.dtype != np.float64, name
    seq = np.array([p["SRC_SEQ_CTR"].raw_value for p in packets])
    assert np.array_equal(tm.column("seq").to_numpy(), seq)
    times = [cds_ns(p["DOY"].raw_value, p["MSEC"].raw_value, p["USEC"].raw_value) for p in packets]
    assert tm.column("time").cast(pa.int64()).to_pylist() == times


def test_europa_clipper_magnetometer_decodes_bit_for_bit(tmp_path: Path) -> None:
    import importlib.resources

    from ccsdspy import FixedLength, PacketField

    file = importlib.resources.files("ccsdspy") / "tests" / "data" / "europa_clipper"
    file = Path(str(file / "apid01227.tlm"))
    tm, quarantined, summary = imported(tmp_path, file, "nasa-ecm-fg3")
    assert quarantined == {}  # every PEC (CRC-16) right, none quarantined
    # The independent decoder: ccsdspy, with the field list the instrument team published.
    fields = [
        PacketField(name="sclk_s", bit_length=32, data_type="uint"),
        PacketField(name="sclk_sub", bit_length=16, data_type="uint"),
        PacketField(name="accountability_id", bit_length=32, data_type="uint"),
    ]
    fields += [
        PacketField(name=f"ch{c}_{i}", bit_length=24, data_type="int")
        for i in range(160)
        for c in (3, 2, 1)
    ]
    inst = MISSIONS.instruments["nasa-ecm-fg3"]
    hk = [f.name for f in inst.profile.fields if f.name.startswith("hk_")]
    fields += [PacketField(name=n, bit_length=24, data_type="int") for n in hk]
    fields += [PacketField(name=n, bit_length=16, data_type="uint") for n in ("register_80", "pec")]
    theirs = FixedLength(fields).load(str(file), include_primary_header=True)
    n = len(theirs["sclk_s"])
    assert tm.num_rows == n == summary.decoded["nasa-ecm-fg3"] == 22
    fg = np.stack([theirs[f"ch{c}_{i}"] for i in range(160) for c in (3, 2, 1)], axis=1)
    ours = tm.column("fg").combine_chunks().flatten().to_numpy().reshape(n, 480)
    assert np.array_equal(ours, fg)
    for name in ["accountability_id", *hk, "register_80"]:
        assert np.array_equal(tm.column(name).to_numpy(), theirs[name]), name
    assert np.array_equal(tm.column("seq").to_numpy(), theirs["CCSDS_SEQUENCE_COUNT"])
    # J2000 is 2000-01-01T11:58:55.816 UTC; no leap second falls in the count, so UTC is the
    # epoch plus the count, the fraction rounded to the nearest ns.
    j2000 = 946_727_935_816_000_000
    sub = theirs["sclk_sub"].astype(np.int64)
    want = j2000 + theirs["sclk_s"].astype(np.int64) * 10**9 + (sub * 10**9 + 2**15) // 2**16
    assert tm.column("time").cast(pa.int64()).to_pylist() == want.tolist()


def test_europa_clipper_expanding_block_decodes_bit_for_bit(tmp_path: Path) -> None:
    import importlib.resources

    from ccsdspy import PacketArray, PacketField, VariableLength

    folder = importlib.resources.files("ccsdspy") / "tests" / "data" / "europa_clipper"
    file = Path(str(folder / "expanding_footer_packet.bin"))
    tm, quarantined, summary = imported(tmp_path, file, "nasa-ecm-fgx")
    assert quarantined == {}  # every PEC right, every length fits the block
    inst = MISSIONS.instruments["nasa-ecm-fgx"]
    hk = [f.name for f in inst.profile.fields if f.name.startswith("hk_")]
    # The independent decoder: ccsdspy's variable-length reader, as its regression test has it.
    theirs = VariableLength(
        [
            PacketField(name="sclk_s", bit_length=32, data_type="uint"),
            PacketField(name="sclk_sub", bit_length=16, data_type="uint"),
            PacketField(name="accountability_id", bit_length=32, data_type="uint"),
            PacketArray(name="fgx", data_type="uint", bit_length=8, array_shape="expand"),
            *[PacketField(name=n, bit_length=24, data_type="int") for n in hk],
            PacketField(name="register_80", bit_length=16, data_type="uint"),
            PacketField(name="pec", bit_length=16, data_type="uint"),
        ]
    ).load(str(file))
    n = len(theirs["sclk_s"])
    assert tm.num_rows == n == summary.decoded["nasa-ecm-fgx"] == 22
    assert tm.column("fgx_channels__raw").to_pylist() == [a.tolist() for a in theirs["fgx"]]
    assert {len(a) for a in theirs["fgx"]} == {1440}
    for name in ["accountability_id", *hk, "register_80"]:
        assert tm.column(name + "__raw").to_pylist() == theirs[name].tolist(), name


def test_ccsdspy_hs_long_file_decodes_bit_for_bit(tmp_path: Path) -> None:
    """ccsdspy's hs dataset, APID 895: 71,970 packets, the long file of the import benchmark.

    Its defs.csv counts bit offsets from the end of the primary header (its first field at
    0), while ccsdspy counts them from the start of the packet, so ccsdspy is given the
    published fields with the 48 header bits added."""
    import csv
    import importlib.resources

    from ccsdspy import FixedLength, PacketField

    folder = importlib.resources.files("ccsdspy") / "tests" / "data" / "hs" / "apid895"
    folder = Path(str(folder))
    (file,) = folder.glob("*.tlm")
    tm, quarantined, summary = imported(tmp_path, file, "hs-apid895")
    assert quarantined == {}
    with (folder / "defs.csv").open() as f:
        rows = list(csv.DictReader(f))
    fields = [
        PacketField(
            name=r["name"].removeprefix("pkt895_"),
            data_type=r["data_type"],
            bit_length=int(r["bit_length"]),
            bit_offset=48 + int(r["bit_offset"]),
        )
        for r in rows
    ]
    theirs = FixedLength(fields).load(str(file), include_primary_header=True)
    n = len(theirs["time_secs"])
    assert tm.num_rows == n == summary.decoded["hs-apid895"] == 71_970
    inst = MISSIONS.instruments["hs-apid895"]
    for f in inst.profile.fields:
        raw = tm.column(f.name + "__raw").to_numpy()
        assert np.array_equal(raw, theirs[f.name].astype(raw.dtype)), f.name
    assert set(theirs) - {f.name for f in inst.profile.fields} == {
        k for k in theirs if k.startswith("CCSDS_")
    }  # every published field, the bit fields of uint32_bitfld (sub-fields) too
    cnt = theirs["uint16_cnt"].astype(np.float64)
    assert np.allclose(tm.column("uint16_cnt").to_numpy(), 20 - 0.0002766 * cnt, rtol=0, atol=1e-9)
    assert np.array_equal(tm.column("seq").to_numpy(), theirs["CCSDS_SEQUENCE_COUNT"])
    secs = theirs["time_secs"].astype(np.int64)
    want = secs * 10**9 + theirs["time_usecs"].astype(np.int64) * 1000
    assert tm.column("time").cast(pa.int64()).to_numpy().tolist() == want.tolist()


def test_csa_apid400_decodes_bit_for_bit(tmp_path: Path) -> None:
    """A Canadian Space Agency file: its two published, not byte-aligned parameters equal
    ccsdspy's decode with the published field list; no good packet quarantined."""
    import importlib.resources

    from ccsdspy import FixedLength, PacketField

    file = importlib.resources.files("ccsdspy") / "tests" / "data" / "csa" / "apid00400.tlm"
    tm, quarantined, summary = imported(tmp_path, Path(str(file)), "csa-apid400")
    assert quarantined == {}
    for name, before, after in (("param1", 954, 159), ("param2", 970, 143)):
        theirs = FixedLength(
            [
                PacketField(name="filler", data_type="fill", bit_length=before),
                PacketField(name=name, data_type="uint", bit_length=7),
                PacketField(name="filler2", data_type="fill", bit_length=after),
            ]
        ).load(str(file), include_primary_header=True)
        assert tm.num_rows == len(theirs[name]) == summary.decoded["csa-apid400"] == 3444
        assert np.array_equal(tm.column(name + "__raw").to_numpy(), theirs[name]), name
    assert np.array_equal(tm.column("seq").to_numpy(), theirs["CCSDS_SEQUENCE_COUNT"])
