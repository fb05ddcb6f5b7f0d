"""`ilrs-ops profiles import`: real mission definitions (the JPSS XTCE and ccsdspy CSV, CTIM's
38-container XTCE) made into profiles, which `profiles check` accepts and which decode the
missions' real packet files exactly as the independent decoders do (space-packet-parser,
ccsdspy); every XTCE construct the import maps or reports; bad documents refused, located,
nothing written.

The mission files come from the space-packet-parser sdist (the ``spp_data`` fixture).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ilrs_ops import wire
from ilrs_ops.ccsds import build_packet
from ilrs_ops.cli import app
from ilrs_ops.errors import DefinitionError
from ilrs_ops.history import History
from ilrs_ops.profiles import (
    Catalog,
    ImportedProfile,
    ImportOptions,
    Profile,
    import_definition,
    load_catalog,
    load_profile,
    parse_integrity,
    parse_time,
)
from ilrs_ops.replay import Recorder, create_recording, import_packets
from ilrs_ops.store import Store
from pipelines.limits import NOMINAL, YELLOW
from tests.conftest import DATA, ROOT
from tests.test_missions import cds_ns

ALL = (0, 2**62)
JPSS_FILE = "J01_G011_LZ_2021-04-09T00-00-00Z_V01.DAT1"
CTIM_FILE = "ccsds_2021_155_14_39_51"
runner = CliRunner()


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m ilrs_ops ARGS` in a fresh interpreter, this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ilrs_ops", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def decode(tmp: Path, catalog: Catalog, file: Path) -> tuple[dict[str, pa.Table], object]:
    """``file`` imported as import_packets does for the CLI (every packet routed by APID to the
    catalog's instruments): each instrument's telemetry, and the summary."""
    rec = create_recording(tmp / "data", "imported", "imported", str(file))
    with Store(rec.path) as store:
        summary = import_packets(file, Recorder(store, catalog), catalog.by_apid)
    with History.at(rec.path, catalog) as history:
        tables = {i: history.query(i, None, *ALL, raw=True) for i in summary.decoded}
    return tables, summary


def read_back(folder: Path, made: ImportedProfile) -> Profile:
    """``made`` written under ``folder`` and loaded: the profile the import checked, or fail."""
    path = folder / made.path
    path.parent.mkdir(parents=True)
    path.write_text(made.text)
    profile = load_profile(path)
    assert profile == made.profile
    return profile


def spp_packets(xtce: Path, file: Path, root: str | None = None) -> list:
    import space_packet_parser as spp

    definition = spp.load_xtce(xtce)
    with file.open("rb") as f:
        return [
            definition.parse_bytes(raw, root_container_name=root) for raw in spp.ccsds_generator(f)
        ]


@pytest.mark.parametrize("clock", ["none", "cds:days=2,subms=2"])
def test_jpss_xtce_imports_checks_and_decodes_as_space_packet_parser(
    spp_data: Path, tmp_path: Path, clock: str
) -> None:
    folder = spp_data / "jpss"
    out = tmp_path / "profiles"
    done = cli(
        "profiles",
        "import",
        folder / "jpss1_geolocation_xtce_v1.xml",
        "--partner",
        "noaa",
        "--instrument",
        "noaa-jpss1-geolocation",
        "--kind",
        "spacecraft",
        "--out",
        out,
        "--time",
        clock,
        "--sample",
        folder / JPSS_FILE,
    )
    assert done.returncode == 0, done.stderr
    profile_file = out / "noaa" / "noaa-jpss1-geolocation.yaml"
    assert str(profile_file) in done.stdout and "0x00b" in done.stdout
    text = profile_file.read_text()
    assert text.startswith("# noaa-jpss1-geolocation: Spacecraft Attitude and Ephemeris\n")
    assert "jpss1_geolocation_xtce_v1.xml" in text.split("\ninstrument:")[0]  # where from
    checked = cli("profiles", "check", out)
    assert checked.returncode == 0 and "1 profile(s) OK" in checked.stdout, checked.stderr
    if clock == "none":
        assert "time: {code: none}" in text and "point time at the packet's clock" in done.stdout
    else:
        assert "DOY, MSEC, USEC (64 bits after the primary header); read as the CDS" in done.stdout

    catalog = load_catalog([out])
    p = catalog.instruments["noaa-jpss1-geolocation"].profile
    assert (p.apid, p.packet_length, p.kind) == (11, 71, "spacecraft")
    tables, summary = decode(tmp_path, catalog, folder / JPSS_FILE)
    assert dict(summary.quarantined) == {}
    tm = tables["noaa-jpss1-geolocation"]
    packets = spp_packets(folder / "jpss1_geolocation_xtce_v1.xml", folder / JPSS_FILE)
    assert tm.num_rows == len(packets) == 7200
    channels = catalog.instruments["noaa-jpss1-geolocation"].channels
    assert len(channels) == (20 if clock == "none" else 17)
    for name in channels:
        theirs = np.array([float(x[name.upper()].raw_value) for x in packets])
        assert np.array_equal(tm.column(name).to_numpy(), theirs), name
    seq = np.array([x["SRC_SEQ_CTR"].raw_value for x in packets])
    assert np.array_equal(tm.column("seq").to_numpy(), seq)
    if clock != "none":
        times = [
            cds_ns(x["DOY"].raw_value, x["MSEC"].raw_value, x["USEC"].raw_value) for x in packets
        ]
        assert tm.column("time").cast(pa.int64()).to_pylist() == times


def test_jpss_ccsdspy_csv_imports_and_decodes_as_ccsdspy(spp_data: Path, tmp_path: Path) -> None:
    from ccsdspy import FixedLength

    folder = spp_data / "jpss"
    csv = folder / "ccsdspy_jpss1_geolocation.csv"
    out = tmp_path / "profiles"
    done = cli("profiles", "import", csv, "--partner", "noaa", "--apid", "11", "--out", out)
    assert done.returncode == 0, done.stderr
    assert cli("profiles", "check", out).returncode == 0
    catalog = load_catalog([out])
    (inst,) = catalog
    assert inst.id == "noaa-ccsdspy-jpss1-geolocation" and inst.profile.packet_length == 71
    tables, summary = decode(tmp_path, catalog, folder / JPSS_FILE)
    assert dict(summary.quarantined) == {}
    theirs = FixedLength.from_file(str(csv)).load(str(folder / JPSS_FILE))
    tm = tables[inst.id]
    assert tm.num_rows == len(theirs["DOY"]) == 7200
    assert len(inst.channels) == 20
    for name in inst.channels:
        assert np.array_equal(tm.column(name).to_numpy(), theirs[name.upper()]), name


def split_packets(file: Path) -> list[bytes]:
    """The space packets of ``file``, each by its length field (total = length + 7)."""
    data, out, at = file.read_bytes(), [], 0
    while at + 6 <= len(data):
        end = at + int.from_bytes(data[at + 4 : at + 6], "big") + 7
        out.append(data[at:end])
        at = end
    return out


def ctim_import(spp_data: Path, out: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """`profiles import` of CTIM's XTCE, its real packet file as the sample; every packet ends
    in ``packet_checksum``, the sum of the octets before it modulo 2^16 (found from the real
    packets: all 1499 agree; the XTCE names the parameter but not how it is made)."""
    folder = spp_data / "ctim"
    return cli(
        "profiles", "import", folder / "ctim_xtce_v1.xml", "--partner", "lasp", "--out", out,
        "--root-container", "CCSDSTelemetryPacket", "--sample", folder / CTIM_FILE,
        "--integrity", "sum16:field=packet_checksum", *more,
    )  # fmt: skip


def test_ctim_every_apid_gets_a_profile_that_decodes_as_space_packet_parser(
    spp_data: Path, tmp_path: Path
) -> None:
    folder = spp_data / "ctim"
    xtce, file = folder / "ctim_xtce_v1.xml", folder / CTIM_FILE
    out = tmp_path / "profiles"
    t0 = time.perf_counter()
    done = ctim_import(spp_data, out)
    took = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    print(f"importing CTIM (38 containers, 9559 entries) took {took:.2f} s, a fresh process")
    report = " ".join(done.stdout.split())
    # The real wrong definition: APID 1's XTCE is 11 bits short of the real packets; their
    # checksum is in their last two octets, so the missing bits go before it.
    assert re.search(
        r"APID_1_Packet \(APID 1\): the sample's packets are 114 octets .* 901 bits: 11 bits "
        r"short; padded with a spare of 11 bits \(spare_tail\) before packet_checksum",
        report,
    )
    assert re.search(
        r"APID_20_Packet \(APID 20\): .*1 of 46 octets.*1 packet\(s\) not of 30 octets will be "
        "quarantined",
        report,
    )
    assert re.search(
        r"APID_10_Packet \(224: fs_list_dir_0, .*a string \(StringParameterType", report
    )
    # APID 12 (no packet in the file): its fields put the checksum off an octet boundary.
    assert re.search(
        r"APID_12_Packet \(packet_checksum\): packet_checksum is u16 at bit 346; sum16 needs "
        "a big-endian u16 on an octet boundary; no check declared",
        report,
    )
    assert cli("profiles", "check", out).returncode == 0

    catalog = load_catalog([out])
    again = import_definition(
        xtce,
        ImportOptions(
            partner="lasp",
            root_container="CCSDSTelemetryPacket",
            integrity=parse_integrity("sum16:field=packet_checksum"),
        ),
        sample=file,
    )
    assert {p.profile.instrument: p.profile for p in again.profiles} == {
        i.id: i.profile for i in catalog
    }  # the YAML text says what the import checked (its time stamp aside)
    checked = {i.profile.apid for i in catalog if i.profile.integrity is not None}
    assert len(checked) == 37 and 12 not in checked
    with pytest.warns(UserWarning, match="did not match"):  # APID 1 short, APID 20's log of 2
        packets = spp_packets(xtce, file, root="CCSDSTelemetryPacket")
    definition_apids = {
        int(m) for m in re.findall(r'value="(\d+)"', xtce.read_text()) if 0 < int(m) < 64
    }
    assert len(catalog) == 38 and set(catalog.by_apid) == definition_apids
    tables, summary = decode(tmp_path, catalog, file)
    # One APID-20 packet carries two log entries (46 octets, not the definition's 30): a
    # variant the XTCE does not describe, quarantined as the report said; nothing else, and
    # every other packet's checksum is right.
    assert dict(summary.quarantined) == {"bad_length": 1}
    raw = split_packets(file)
    by_apid: dict[int, dict[int, object]] = {}
    last_octets: dict[tuple[int, int], int] = {}
    for x, octets in zip(packets, raw, strict=True):
        if not (x["PKT_APID"].raw_value == 20 and x["PKT_LEN"].raw_value + 7 == 46):
            by_apid.setdefault(x["PKT_APID"].raw_value, {})[x["SEQ_CTR"].raw_value] = x
            last_octets[x["PKT_APID"].raw_value, x["SEQ_CTR"].raw_value] = int.from_bytes(
                octets[-2:], "big"
            )
    assert sum(summary.decoded.values()) == sum(map(len, by_apid.values())) == 1498
    compared = 0
    for apid, theirs in by_apid.items():
        inst = catalog.by_apid[apid]
        tm = tables[inst.id]
        seqs = tm.column("seq").to_pylist()
        assert sorted(seqs) == sorted(theirs), apid
        names = {n.lower(): n for n in theirs[seqs[0]]}  # the XTCE's names, ours lower-cased
        for name in inst.channels:
            if tm.schema.field(name).type == pa.string():  # their text, our padding stripped
                want_text = [str(theirs[s][names[name]]).rstrip("\0 ") for s in seqs]
                assert tm.column(name).to_pylist() == want_text, (apid, name)
                compared += 1
                continue
            if apid == 1 and name == "packet_checksum":  # space-packet-parser reads it 11
                want = np.array([last_octets[1, s] for s in seqs])  # bits early: its last octets
            else:
                want = np.array([float(theirs[s][names[name]].raw_value) for s in seqs])
            assert np.array_equal(tm.column(name).to_numpy(), want, equal_nan=True), (apid, name)
            compared += 1
    assert compared > 3000  # every channel of the 9 APIDs in the file


def test_ctim_checksums_catch_one_flipped_bit(spp_data: Path, tmp_path: Path) -> None:
    """Each real CTIM packet with one bit flipped (in its data, in its checksum) is quarantined
    as bad_crc; the file's other packets still decode."""
    out = tmp_path / "profiles"
    assert ctim_import(spp_data, out).returncode == 0
    catalog = load_catalog([out])
    raw = split_packets(spp_data / "ctim" / CTIM_FILE)
    by_apid: dict[int, list[int]] = {}
    for k, p in enumerate(raw):
        by_apid.setdefault(int.from_bytes(p[:2], "big") & 0x7FF, []).append(k)
    rng = np.random.default_rng(155)
    flipped = set()
    for apid, ks in sorted(by_apid.items()):
        for k in rng.choice(ks, min(2, len(ks)), replace=False).tolist():
            if len(raw[k]) == 46 and apid == 20:
                continue  # the log of two entries: bad_length before its check
            p = bytearray(raw[k])
            at = int(rng.integers(6 * 8, len(p) * 8)) if len(flipped) % 2 else len(p) * 8 - 3
            p[at // 8] ^= 0x80 >> (at % 8)
            raw[k] = bytes(p)
            flipped.add(k)
    file = tmp_path / "flipped.bin"
    file.write_bytes(b"".join(raw))
    _, summary = decode(tmp_path, catalog, file)
    assert dict(summary.quarantined) == {wire.BAD_CRC: len(flipped), wire.BAD_LENGTH: 1}
    assert len(flipped) == 14  # two of each APID (one of those with one packet), data and check
    assert sum(summary.decoded.values()) == 1498 - len(flipped)


def test_idex_xtce_containers_chosen_by_a_field_import_as_variants(
    spp_data: Path, tmp_path: Path
) -> None:
    """IMAP-IDEX's APID 1424 carries two containers inheriting IDX_SCI0, chosen by
    ``IDX__SCI0TYPE`` (== 1: the event header; > 1: waveform packets, a blob sized by the
    packet length): the import makes them the variants of one profile, and all 78 real packets
    decode through the pipeline equal to space-packet-parser's decode, none quarantined. Its
    ``IDX__`` names are renamed (``__`` marks our stored columns' suffixes)."""
    folder = spp_data / "idex"
    xtce, file = (
        folder / "idex_combined_science_definition.xml",
        folder / "sciData_2023_052_14_45_05",
    )
    out = tmp_path / "profiles"
    done = cli("profiles", "import", xtce, "--partner", "lasp", "--out", out, "--sample", file,
               "--integrity", "crc16-ccitt-false:field=IDX__CRCSCI0PKT")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = " ".join(done.stdout.split())
    assert "IDX__SCI0TYPE -> idx_sci0type" in report and "a name with '__'" in report
    assert (
        "container IDX_SCI0: 2 containers on APID 1424 chosen by IDX__SCI0TYPE (Sci0TypeZero: 1; "
        "Sci0TypeNonZero: 2..255); mapped to the variants of one profile" in report
    )
    assert "a binary blob sized by PKT_LEN (IDX__SCI0RAW_Type); mapped to type: u8" in report
    # APID 1425: IDX_SCIFETCH is a packet itself and the base of its two inheritors.
    assert re.search(r"container IDX_SCIFETCH: a packet itself .* a variant for "
                     r"IDX__SCIFETCHTYPE = 0", report)  # fmt: skip
    assert "second container" not in report
    assert cli("profiles", "check", out).returncode == 0
    catalog = load_catalog([out])
    inst = catalog.by_apid[1424]
    p = inst.profile
    assert p.variants is not None and p.variants.selector == "idx_sci0type"
    assert [(v.name, v.value, v.packet_length) for v in p.variants.cases] == [
        ("sci0typezero", 1, 304),
        ("sci0typenonzero", "2..255", 4080),
    ]
    # Both variants end in IDX__CRCSCI0PKT: CRC-16/CCITT-FALSE of the octets before it (found
    # from the real packets, all 78 agree; the XTCE does not say it).
    assert p.integrity is not None and (p.integrity.check, p.integrity.field) == (
        "crc16-ccitt-false",
        "idx_crcsci0pkt",
    )
    tables, summary = decode(tmp_path, catalog, file)
    assert dict(summary.quarantined) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own notes on the definition
        theirs = spp_packets(xtce, file)
    tm = tables[inst.id]
    assert tm.num_rows == len(theirs) == 78
    assert tm.column("seq").to_pylist() == [x["SRC_SEQ_CTR"].raw_value for x in theirs]
    times = [f.name for f in tm.schema if pa.types.is_timestamp(f.type)]  # receive times
    rows = tm.drop_columns(times).to_pylist()
    compared = 0
    for row, packet in zip(rows, theirs, strict=True):
        mine = 0
        for name, value in packet.items():
            if name in ("VERSION", "TYPE", "SEC_HDR_FLG", "SEQ_FLGS", "SRC_SEQ_CTR", "PKT_LEN"):
                continue
            if name == "PKT_APID":
                continue
            ours = re.sub(r"_+", "_", name.lower())
            if name == "IDX__SCI0RAW":
                assert bytes(row[f"{ours}__raw"]) == value.raw_value
            else:
                assert row[f"{ours}__raw"] == value.raw_value, name
            mine += 1
        compared += mine
        # The other variant's channels are null in this packet.
        other = "idx_txhdrblocks" if row["idx_sci0type__raw"] > 1 else "idx_sci0raw"
        assert row[f"{other}__raw"] is None
    assert compared == 6 * (18 + 82) + 72 * (18 + 3)

    raw = split_packets(file)  # one bit flipped in an event header and in a waveform packet
    for k, at in ((0, 100), (1, 8 * len(raw[1]) - 200)):
        flipped = bytearray(raw[k])
        flipped[at // 8] ^= 1 << (at % 8)
        raw[k] = bytes(flipped)
    assert [x["IDX__SCI0TYPE"].raw_value > 1 for x in theirs[:2]] == [False, True]
    (tmp_path / "flip").mkdir()
    bad = tmp_path / "flip" / "flipped.bin"
    bad.write_bytes(b"".join(raw))
    _, summary = decode(tmp_path / "flip", catalog, bad)
    assert dict(summary.quarantined) == {wire.BAD_CRC: 2}


def test_every_xtce_construct_is_mapped_or_reported(tmp_path: Path) -> None:
    """A small XTCE with each construct once: calibrations, alarms and their contexts,
    enumerations, booleans, little-endian, strings, a 70-bit integer, a reserved name, a
    variant and a packet of variable size. Packets made here decode as space-packet-parser
    decodes them, in engineering units."""
    import space_packet_parser as spp

    xtce = DATA / "import" / "constructs.xml"
    result = import_definition(xtce, ImportOptions(partner="test"))
    (made,) = result.profiles
    report = "\n".join(result.report())
    for expected in [
        "container HK_ALT: a second container for APID 291 (a variant of HK); skipped",
        "container HK_ALT: a restriction SEQ_FLGS == 0 of HK_ALT; not checked",
        "container LOG: TEXT: a string of variable size (TEXT_Type); skipped",
        "(MODE): the enumeration label ' SCIENCE '; written 'SCIENCE'",
        "(MODE): an enumeration value 300 (TOO_BIG) outside u8; dropped",
        "(MODE): an enumeration alarm; not mapped",
        "(BATT_V): an exclusive bound of CriticalRange; taken as inclusive",
        "(BATT_V): a WatchRange; not mapped",
        "(BATT_V): a context alarm on MODE > 1; not mapped",
        "(FLAG): a boolean; mapped to enum {0: FALSE, 1: TRUE}",
        "(LE24): least significant byte first, 24 bits at bit 104",
        "(NAME): a string (StringParameterType NAME_Type, 16 bits); mapped to type: string, "
        "length: 2, encoding: utf-8",
        "(WIDE): an integer of 70 bits (wider than 64); kept as spare bits (70 bits",
        "(max -> max_value): a name reserved",
        "padded with a spare field of 2 bits (spare_pad)",
    ]:
        assert expected in report, expected
    profile = read_back(tmp_path, made)
    f = {x.name: x for x in profile.fields}
    assert f["mode"].enum == {0: "SAFE", 1: "SCIENCE"}
    assert f["batt_v"].calibration.poly == [0.5, 0.01]
    lim = f["batt_v"].limits
    assert (lim.yellow, lim.red) == ((24.0, 33.0), (22.0, 34.5))
    assert [(c.channel, c.equals, c.yellow) for c in lim.when] == [("mode", "SAFE", (20.0, 33.0))]
    assert f["temp"].calibration.table and f["temp"].calibration.outside == "nan"
    assert [s.poly for s in f["step"].calibration.segments] == [[1.5], [2.5]]
    assert f["le16"].endian == "little" and f["le24"].ignore
    assert (f["name"].type, f["name"].length, f["name"].encoding) == ("string", 2, "utf-8")
    assert [(x.name, x.type) for x in profile.fields if x.name.startswith("wide")] == [
        ("wide_0", "u64"),
        ("wide_1", "u6"),
    ]

    # Packets: (mode, batt_v raw, temp raw, flag, le16, f64, step) and what the limits say.
    rows = [
        (1, 2250, -1000, 1, 0x1234, 2.5, 50, YELLOW),
        (0, 2250, 1500, 0, 0xBEEF, -1e9, 200, NOMINAL),
    ]
    raw = b""
    for seq, (mode, batt, temp, flag, le16, f64, step, _) in enumerate(rows):
        bits = f"{mode:08b}{batt:012b}{temp & 0xFFF:012b}{flag:01b}{0:07b}"
        bits += f"{int.from_bytes(le16.to_bytes(2, 'little'), 'big'):016b}{0x0A0B0C:024b}"
        bits += f"{0x4142:016b}{int.from_bytes(np.float64(f64).tobytes()[::-1], 'big'):064b}"
        bits += f"{5:070b}{step:08b}{7:08b}{0:02b}"
        raw += build_packet(0x123, seq, b"", int(bits, 2).to_bytes(len(bits) // 8, "big"))
    file = tmp_path / "hk.bin"
    file.write_bytes(raw)
    catalog = load_catalog([tmp_path / "test"])
    tables, summary = decode(tmp_path, catalog, file)
    assert dict(summary.quarantined) == {}
    tm = tables["test-hk"]
    definition = spp.load_xtce(xtce)
    with file.open("rb") as fh, pytest.warns(UserWarning, match="did not match"):  # the 2 pad bits
        theirs = [definition.parse_bytes(p) for p in spp.ccsds_generator(fh)]
    for name, theirs_name in [
        ("mode", "MODE"),
        ("flag", "FLAG"),
        ("le16", "LE16"),
        ("max_value", "max"),
    ]:
        assert tm.column(name).to_pylist() == [x[theirs_name].raw_value for x in theirs], name
    assert tm.column("name").to_pylist() == [str(x["NAME"]) for x in theirs] == ["AB", "AB"]
    for name in ("batt_v", "temp", "f64", "step"):
        want = [float(x[name.upper()]) for x in theirs]  # spp's calibrated value
        assert np.allclose(tm.column(name).to_numpy(), want, rtol=1e-12, atol=0), name
    assert tm.column("batt_v__state").to_pylist() == [r[-1] for r in rows]


def test_containers_chosen_by_a_field_become_variants_or_say_why_not(tmp_path: Path) -> None:
    """Restrictions by ==, a range of two comparisons and != (overlapping another's values:
    neither's), a concrete base with an inheritor, and two containers chosen by two parameters
    (not variants). Packets made here decode as space-packet-parser decodes them; the values
    no variant takes (and the overlap) are unknown_variant."""
    import space_packet_parser as spp

    xtce = DATA / "import" / "variants.xml"
    result = import_definition(xtce, ImportOptions(partner="test"))
    report = "\n".join(result.report())
    for expected in [
        "variants.xml:50: container EVT: 3 containers on APID 300 chosen by KIND (EVT_A: 1; "
        "EVT_B: 2..7; EVT_C: 10..255); mapped to the variants of one profile",
        "variants.xml:79: container EVT_C: KIND = 8..9 matches the restrictions of both EVT_B "
        "and EVT_C (space-packet-parser refuses such packets); chosen by neither",
        "variants.xml:65: container EVT_B: the fields end 4 bits into an octet (76 bits); "
        "padded with a spare field of 4 bits (spare_pad)",
        "variants.xml:105: container TWO_2: a second container for APID 301 (a variant of "
        "TWO_1); skipped: TWO_2's restriction P2 == 1 (variants.xml:105): the containers are "
        "chosen by two parameters (P1, P2); variants have one selector",
        "variants.xml:120: container MODE_BASE: a packet itself and the base of the others: "
        "XTCE reads as it the packets no other's restriction matches; a variant for KIND = "
        "0..4, 6..255; the common part ends at KIND",
    ]:
        assert expected in report, expected
    made = {m.apid: m for m in result.profiles}
    assert set(made) == {300, 301, 302}
    evt, mode = (read_back(tmp_path / str(a), made[a]) for a in (300, 302))
    assert [(v.name, v.value, v.packet_length) for v in evt.variants.cases] == [
        ("evt_a", 1, 10),
        ("evt_b", "2..7", 10),
        ("evt_c", "10..255", 12),
    ]
    assert [(v.name, v.value) for v in mode.variants.cases] == [
        ("mode_five", 5),
        ("mode_base", ["0..4", "6..255"]),
    ]
    assert [f.name for f in mode.fields] == ["kind"] and made[302].channels == 3  # v once

    good = [  # (apid, user data): what space-packet-parser reads too
        (300, bytes([1, 7]) + (0xBEEF).to_bytes(2, "big")),
        (300, bytes([3, 9, 0xA5, 0xC0])),
        (300, bytes([12, 1]) + (0xDEADBEEF).to_bytes(4, "big")),
        (302, bytes([5, 44]) + (0x1234).to_bytes(2, "big")),
        (302, bytes([3, 45])),
    ]
    stray = [(300, bytes([8, 0, 0, 0])), (300, bytes([0, 0, 0, 0]))]  # overlap; no variant
    packets = [build_packet(a, k, b"", d) for k, (a, d) in enumerate(good + stray)]
    file = tmp_path / "variants.bin"
    file.write_bytes(b"".join(packets))
    catalog = load_catalog([tmp_path / "300" / "test", tmp_path / "302" / "test"])
    tables, summary = decode(tmp_path, catalog, file)
    assert dict(summary.quarantined) == {wire.UNKNOWN_VARIANT: 2}
    definition = spp.load_xtce(xtce)
    with pytest.warns(UserWarning, match="76b"):  # EVT_B's 4 pad bits
        theirs = [definition.parse_bytes(p) for p in packets[: len(good)]]
    rows = {a: tables[catalog.by_apid[a].id].drop_columns(["time"]).to_pylist() for a in (300, 302)}
    for (apid, _), packet in zip(good, theirs, strict=True):
        row = rows[apid].pop(0)
        values = {n.lower(): v.raw_value for n, v in packet.items() if n not in
                  ("VERSION", "TYPE", "SEC_HDR_FLG", "PKT_APID", "SEQ_FLGS", "SRC_SEQ_CTR",
                   "PKT_LEN")}  # fmt: skip
        for name, value in values.items():
            assert row[f"{name}__raw"] == value, (apid, name)
        for name in {n.removesuffix("__raw") for n in row if n.endswith("__raw")} - set(values):
            assert row[f"{name}__raw"] is None, (apid, name)  # another variant's channel


def test_every_csv_construct_is_mapped_or_reported(tmp_path: Path) -> None:
    csv = tmp_path / "hk.csv"
    csv.write_text(
        "name, data_type, bit_length, bit_offset, byte_order\n"
        "COARSE, uint, 32, 48,\n"
        'TEMPS, "int(2, 3)", 12, 88,\n'  # 8 bits after COARSE in no field: a gap
        "SPACER, fill, 4, 160,\n"
        "OVER, uint, 8, 160,\n"  # on top of SPACER
        "LE, uint, 16, 168, little\n"
        "ODD, uint, 32, 184, 2143\n"
        "BAD, uint, 16, 216, 2143\n"  # four octets' order on two
        "LABEL, str, 16, 232,\n"
        "RATE, float, 32, 248,\n"
        "BIG, uint, 96, 280,\n"  # a 96-bit counter: its octets
        "DATA, uint(expand), 8, 376,\n"
        "AFTER, uint, 8, ,\n"
    )
    result = import_definition(csv, ImportOptions(partner="t", apid=7))
    (made,) = result.profiles
    report = "\n".join(result.report())
    for expected in [
        "hk.csv:3: CSV: bits 80..87 before TEMPS are in no field; kept as spare bits (8 bits",
        "hk.csv:3: CSV (TEMPS): an array of shape (2, 3); flattened to count 6 (row-major)",
        "hk.csv:5: CSV (OVER): bit_offset 160 overlaps the field(s) before (they end at bit 164)",
        "hk.csv:8: CSV (BAD): byte order '2143' on 16 bits at bit 216 (a byte order moves the "
        "whole octets of a byte-aligned field); not mapped: kept as spare bits (16 bits",
        "hk.csv:9: CSV (LABEL): a string; mapped to type: string, length: 2 (ascii)",
        "hk.csv:11: CSV (BIG): a uint of 96 bits; mapped to u96, stored as its octets",
        "hk.csv:1: CSV hk (data): an array of variable length (count_from: rest); count: 4096 "
        "at most, the most a space packet holds",
    ]:
        assert expected in report, expected
    profile = read_back(tmp_path, made)
    got = [(f.name, f.type, f.count, f.endian, f.ignore) for f in profile.fields]
    assert got == [
        ("coarse", "u32", None, "big", False),
        ("gap_80", "u8", None, "big", True),
        ("temps", "i12", 6, "big", False),
        ("spacer", "u4", None, "big", True),
        ("gap_164", "u4", None, "big", True),
        ("le", "u16", None, "little", False),
        ("odd", "u32", None, "2143", False),
        ("bad", "u16", None, "big", True),
        ("label", "string", None, "big", False),
        ("rate", "f32", None, "big", False),
        ("big", "u96", None, "big", False),
        ("data", "u8", 4096, "big", False),  # to the rest of the packet: count_from rest
        ("after", "u8", None, "big", False),  # moves with it
    ]
    assert profile.fields[-2].count_from == "rest"
    assert (profile.apid, profile.packet_length) == (7, 47 + 4096 + 1)


@pytest.mark.parametrize(
    ("name", "content", "args", "says"),
    [
        ("notes.xml", "this is not <xml", [], r"notes\.xml:1: not XML: "),
        ("empty.xml", None, [], r"empty\.xml:\d+: <ContainerSet>: no <SequenceContainer>"),
        (
            "bad.csv",
            "name,data_type,bit_length\nA,uint,8\nB,double,32\n",
            ["--apid", "5"],
            r"bad\.csv:3: data_type: data_type 'double' of B is not a ccsdspy type; use one of",
        ),
        (
            "noapid.csv",
            "name,data_type,bit_length\nA,uint,8\n",
            [],
            r"noapid\.csv: --apid: a ccsdspy CSV does not say which APID it describes; give --apid",
        ),
    ],
    ids=["not-xml", "no-containers", "csv-unknown-type", "csv-without-apid"],
)
def test_a_bad_document_exits_1_located_and_writes_nothing(
    spp_data: Path, tmp_path: Path, name: str, content: str | None, args: list[str], says: str
) -> None:
    source = tmp_path / name
    if content is None:  # the real JPSS document with its containers taken out
        text = (spp_data / "jpss" / "jpss1_geolocation_xtce_v1.xml").read_text()
        text = re.sub(
            r"<xtce:ContainerSet>.*</xtce:ContainerSet>",
            "<xtce:ContainerSet>\n        </xtce:ContainerSet>",
            text,
            flags=re.S,
        )
        source.write_text(text)
    else:
        source.write_text(content)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["profiles", "import", str(source), "--partner", "p", "--out", str(out), *args]
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert re.search(says, " ".join(result.output.split())), result.output
    assert not out.exists()


def test_what_space_packet_parser_refuses_is_located(tmp_path: Path) -> None:
    text = (DATA / "import" / "constructs.xml").read_text()
    cases = {
        "undefined.xml": (text.replace('parameterRef="STEP"/>', 'parameterRef="NOPE"/>'),
                          r"undefined\.xml:\d+: <ParameterRefEntry>: .*'NOPE' is referred to but "
                          "not defined"),
        "schema.xml": (text.replace("<xtce:Variable maxSizeInBits", "<xtce:SizeInBits><xtce:"
                                    "TerminationChar>00</xtce:TerminationChar></xtce:SizeInBits>"
                                    "<xtce:Variable maxSizeInBits"),
                       r"schema\.xml:\d+: .*\(the XTCE schema: Element 'TerminationChar': This "
                       "element is not expected"),
    }  # fmt: skip
    for name, (content, says) in cases.items():
        source = tmp_path / name
        source.write_text(content)
        with pytest.raises(DefinitionError) as err:
            import_definition(source, ImportOptions(partner="p"))
        assert re.search(says, str(err.value)), str(err.value)
        line = int(str(err.value).split(":")[1])
        assert ("NOPE" if name == "undefined.xml" else "TerminationChar") in content.splitlines()[
            line - 1
        ]


def test_a_time_code_replaces_the_fields_it_covers_or_is_refused(tmp_path: Path) -> None:
    xtce = DATA / "import" / "constructs.xml"
    cuc1 = ImportOptions(partner="test", time=parse_time("cuc:coarse=1,fine=0"))
    (made,) = import_definition(xtce, cuc1).profiles
    notes = [str(n) for n in made.notes]
    assert any("MODE (8 bits after the primary header); read as the CUC time code" in n
               for n in notes)  # fmt: skip
    assert any("a context alarm on BATT_V when MODE == SAFE; dropped" in n for n in notes)
    assert "time: {code: cuc, coarse: 1, fine: 0}" in made.text and "name: mode," not in made.text
    cuc2 = ImportOptions(partner="test", time=parse_time("cuc:coarse=2,fine=0"))
    with pytest.raises(ValueError, match="end inside field BATT_V"):
        import_definition(xtce, cuc2)


def test_options_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--time 'cds:days=5'"):
        parse_time("cds:days=5")
    assert parse_time("cuc:coarse=4,fine=2").octets == 6
    assert parse_integrity("sum16:field=packet_checksum,start=6").start == 6
    for bad, says in [
        ("sum17:field=x", "'sum17' is not a check"),
        ("sum16", "name the parameter holding it"),
        ("sum16:crc", "'crc' is not field=NAME or start=N"),
        ("crc32:field=x,start=-1", "start must be 0 or more"),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)):
            parse_integrity(bad)
    source = tmp_path / "x.csv"
    source.write_text("name,data_type,bit_length\nA,uint,8\n")
    result = runner.invoke(
        app,
        [
            "profiles",
            "import",
            str(source),
            "--partner",
            "P",
            "--apid",
            "5",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "partner 'P'" in result.output
    made = tmp_path / "o"
    ok = ["profiles", "import", str(source), "--partner", "p", "--apid", "0x10", "--out", str(made)]
    assert runner.invoke(app, ok).exit_code == 0
    again = runner.invoke(app, ok)  # the file is there now: refused unless --force
    assert again.exit_code == 1 and "exist(s) already" in again.output
    assert runner.invoke(app, [*ok, "--force"]).exit_code == 0


@pytest.mark.parametrize("shape", ["N", "expand"])
def test_a_ccsdspy_variable_length_csv_imports_and_decodes_as_ccsdspy(
    tmp_path: Path, shape: str
) -> None:
    from ccsdspy import PacketArray, PacketField, VariableLength

    sizes = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55]
    file = tmp_path / "var.bin"
    packets = []
    for k, n in enumerate(sizes):  # N, N words counting up from N, a footer: ccsdspy's layout
        body = struct.pack(f">H{n}HH", n, *range(n, 2 * n), 0xA5A5 ^ k)
        packets.append(struct.pack(">HHH", 0x0123, 0xC000 | k, len(body) - 1) + body)
    file.write_bytes(b"".join(packets))
    csv = tmp_path / "var.csv"
    csv.write_text(f"name,data_type,bit_length\nN,uint,16\nDATA,uint({shape}),16\nFOOTER,uint,16\n")
    out = tmp_path / "profiles"
    done = cli("profiles", "import", csv, "--partner", "t", "--apid", "0x123", "--out", out,
               "--sample", file)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "an array of variable length" in done.stdout and "count: 55 at most" in done.stdout
    catalog = load_catalog([out])
    (inst,) = catalog
    assert inst.profile.variable is not None
    assert inst.profile.variable.count_from == ("n" if shape == "N" else "rest")
    tables, summary = decode(tmp_path, catalog, file)
    assert dict(summary.quarantined) == {}
    tm = tables[inst.id]
    theirs = VariableLength(
        [
            PacketField(name="N", data_type="uint", bit_length=16),
            PacketArray(name="DATA", data_type="uint", bit_length=16, array_shape=shape),
            PacketField(name="FOOTER", data_type="uint", bit_length=16),
        ]
    ).load(file)
    assert tm.column("data__raw").to_pylist() == [a.tolist() for a in theirs["DATA"]]
    assert tm.column("footer__raw").to_pylist() == theirs["FOOTER"].tolist()
    assert tm.column("n__raw").to_pylist() == theirs["N"].tolist() == sizes
