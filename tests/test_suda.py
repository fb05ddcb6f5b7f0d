"""Europa Clipper SUDA (LASP): a packet file whose every packet follows a 4-octet prefix that is
not part of it (space-packet-parser reads it with ``ccsds_generator(f, skip_header_bytes=4)``).
`ilrs-ops profiles import` of its XTCE and `ilrs-ops import --prefix-octets 4` decode all 13 real
packets as space-packet-parser does; a file the prefix does not fit is quarantined where it
does not fit, never decoded as something else.

The mission files come from the space-packet-parser sdist (the ``spp_data`` fixture).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ilrs_ops import wire
from ilrs_ops.errors import InputError
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import Recorder, create_recording, import_packets, resolve_store
from ilrs_ops.store import Store
from pipelines.frames import OK, split_frames
from tests.test_profile_import import cli

XTCE = "suda_combined_science_definition.xml"
FILE = "sciData_2022_130_17_41_53.spl"
PREFIX = 4
HEADER = ("VERSION", "TYPE", "SEC_HDR_FLG", "PKT_APID", "SEQ_FLGS", "SRC_SEQ_CTR", "PKT_LEN")


def spp_suda(folder: Path) -> list:
    """space-packet-parser's decode of the SUDA file, as its own tests read it."""
    import space_packet_parser as spp

    definition = spp.load_xtce(folder / XTCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own notes on the definition
        with (folder / FILE).open("rb") as f:
            return [definition.parse_bytes(raw) for raw in spp.ccsds_generator(
                f, skip_header_bytes=PREFIX)]  # fmt: skip


def packets_of(data: bytes, prefix: int) -> list[tuple[int, bytes]]:
    """Reference split: (file offset, packet) of each packet after its ``prefix`` octets."""
    out, at = [], 0
    while at + prefix + 6 <= len(data):
        s = at + prefix
        end = s + int.from_bytes(data[s + 4 : s + 6], "big") + 7
        out.append((s, data[s:end]))
        at = end
    return out


@pytest.fixture(scope="module")
def suda(spp_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """SUDA's XTCE imported by `ilrs-ops profiles import` (a fresh process), APID 1425 (its
    packets), the real file as the sample read with its prefix: the profile's folder, and it."""
    folder = spp_data / "suda"
    out = tmp_path_factory.mktemp("suda") / "profiles"
    done = cli("profiles", "import", folder / XTCE, "--partner", "lasp", "--apid", "1425",
               "--instrument", "suda", "--out", out, "--sample", folder / FILE,
               "--prefix-octets", str(PREFIX))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = " ".join(done.stdout.split())
    assert ("3 containers on APID 1425 chosen by IDX__SCIFETCHTYPE (SciFetchTypeZero: 1; "
            "SciFetchTypeNonZero: 2..255; IDX_SCIFETCH: 0)") in report  # fmt: skip
    # The sample, read with its prefix, is 13 packets of 1425; none is "no packet".
    assert "no packet" not in report and "enough for the sample's longest packet" in report
    assert cli("profiles", "check", out).returncode == 0
    return out, folder / FILE


def decode(tmp: Path, catalog: Catalog, file: Path, **kw: int):
    """``file`` imported as the CLI does: each instrument's telemetry, the summary, and the
    octets of every item quarantined, in any lane."""
    rec = create_recording(tmp / "data", "imported", "imported", str(file))
    with Store(rec.path) as store:
        summary = import_packets(file, Recorder(store, catalog), catalog.by_apid, **kw)
    with History.at(rec.path, catalog) as history:
        tables = {i: history.query(i, None, 0, 2**62, raw=True) for i in summary.decoded}
        kept = [history.quarantine(lane, 0, 2**62) for lane in ("_unknown", "suda")]
    return tables, summary, pa.concat_tables(kept)


def assert_as_spp(tm: pa.Table, theirs: list) -> int:
    """Every row of ``tm`` equal, raw value for raw value, to space-packet-parser's packet of
    the same sequence count; the values compared."""
    by_seq = {p["SRC_SEQ_CTR"].raw_value: p for p in theirs}
    times = [f.name for f in tm.schema if pa.types.is_timestamp(f.type)]  # receive times
    compared = 0
    for row in tm.drop_columns(times).to_pylist():
        packet = by_seq[row["seq"]]
        for name, value in packet.items():
            if name in HEADER:
                continue
            ours = row[re.sub(r"_+", "_", name.lower()) + "__raw"]
            if isinstance(value.raw_value, bytes):
                ours = bytes(ours)
            assert ours == value.raw_value, (row["seq"], name)
            compared += 1
    return compared


def test_suda_imports_with_its_prefix_and_decodes_as_space_packet_parser(
    suda: tuple[Path, Path], spp_data: Path, tmp_path: Path
) -> None:
    """`ilrs-ops import --prefix-octets 4` in a fresh process: all 13 packets decoded, every
    value equal to space-packet-parser's raw value, none quarantined, 13 prefixes skipped."""
    out, file = suda
    done = cli("import", file, "--profile", out / "lasp" / "suda.yaml", "--data",
               tmp_path / "data", "--name", "suda", "--prefix-octets", str(PREFIX))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stdout.split())
    assert ("36776 octets, 13 packets: 13 decoded, quarantined: none, 13 prefixes of 4 octets "
            "skipped") in summary  # fmt: skip
    catalog = load_catalog([out])
    rec = resolve_store(tmp_path / "data", "suda")
    with History.at(rec, catalog) as history:
        tm = history.query("suda", None, 0, 2**62, raw=True)
    theirs = spp_suda(spp_data / "suda")
    assert tm.num_rows == len(theirs) == 13
    assert tm.column("seq").to_pylist() == [p["SRC_SEQ_CTR"].raw_value for p in theirs]
    # One event header (IDX__SCIFETCHTYPE 1: 100 parameters after the primary header) and 12
    # waveform packets (a blob to the rest of the packet, then sync and CRC: 21 each).
    assert [p["IDX__SCIFETCHTYPE"].raw_value for p in theirs[:2]] == [1, 2]
    assert assert_as_spp(tm, theirs) == 100 + 12 * 21


def test_prefix_split_is_the_reference_split(suda: tuple[Path, Path]) -> None:
    """The kernel with a prefix finds each packet where the pure-Python split does, in any
    chunking of the frames, and the prefixes belong to no item."""
    data = suda[1].read_bytes()
    want = packets_of(data, PREFIX)
    buf = np.frombuffer(data, np.uint8)
    items = split_frames(buf, np.array([0]), np.array([buf.size]), prefix=PREFIX)
    assert (items.status == OK).all() and (items.apid == 1425).all()
    assert items.start.tolist() == [s for s, _ in want]
    assert items.length.tolist() == [len(p) for _, p in want]
    assert int(items.length.sum()) == len(data) - PREFIX * len(want)
    with pytest.raises(ValueError, match="prefix must be an octet count"):
        split_frames(buf, np.array([0]), np.array([buf.size]), prefix=-1)


@pytest.mark.parametrize("tail", [2, PREFIX + 3])
@pytest.mark.parametrize("chunk", [1 << 20, 1000])
def test_a_cut_prefix_or_header_at_the_end_is_truncated_with_its_offset(
    suda: tuple[Path, Path], spp_data: Path, tmp_path: Path, tail: int, chunk: int
) -> None:
    """The file ends in part of a prefix (2 octets), or a prefix and half a header: the 13
    packets decode as before, whatever the chunk size (chunk ends cut prefixes too), and the
    tail is one item quarantined as truncated, its file offset said."""
    out, file = suda
    data = file.read_bytes()
    cut = tmp_path / "cut.spl"
    cut.write_bytes(data + data[:tail])
    catalog = load_catalog([out])
    tables, summary, q = decode(tmp_path, catalog, cut, prefix_octets=PREFIX, chunk_octets=chunk)
    assert dict(summary.decoded) == {"suda": 13} and summary.prefixes == 13
    assert dict(summary.quarantined) == {wire.TRUNCATED: 1}
    assert assert_as_spp(tables["suda"], spp_suda(spp_data / "suda")) == 100 + 12 * 21
    assert q.column("data").to_pylist() == [data[:tail]]
    assert q.column("detail").to_pylist() == [
        f"{tail} octets at octet {len(data)} of the file (its end), fewer than a 4-octet prefix "
        "and a 6-octet header"
    ]


def test_a_prefix_given_for_a_file_without_one_decodes_nothing_false(
    suda: tuple[Path, Path], spp_data: Path, tmp_path: Path
) -> None:
    """The SUDA packets without their prefixes, imported with --prefix-octets 4: each header is
    read 4 octets late, so the items fail the framing and are quarantined; what does decode
    (after a resync onto a real packet) is a real packet, equal to space-packet-parser's. The
    CLI says the option may be wrong."""
    out, file = suda
    bare = tmp_path / "bare.bin"
    bare.write_bytes(b"".join(p for _, p in packets_of(file.read_bytes(), PREFIX)))
    catalog = load_catalog([out])
    tables, summary, q = decode(tmp_path, catalog, bare, prefix_octets=PREFIX)
    assert summary.decoded["suda"] < 13 and summary.quarantined
    assert {wire.BAD_VERSION, wire.LENGTH_PAST_END} & summary.quarantined.keys()
    if "suda" in tables:
        assert_as_spp(tables["suda"], spp_suda(spp_data / "suda"))
    # Every octet is decoded, quarantined, or the prefix of a packet decoded: none lost.
    stored = sum(map(len, q.column("data").to_pylist()))
    decoded = sum(len(p) for _, p in packets_of(bare.read_bytes(), 0)
                  if int.from_bytes(p[2:4], "big") & 0x3FFF in set(tables["suda"].column("seq")
                                                                   .to_pylist()))  # fmt: skip
    assert stored + decoded + PREFIX * summary.prefixes == bare.stat().st_size
    done = cli("import", bare, "--profile", out / "lasp" / "suda.yaml", "--data",
               tmp_path / "cli", "--prefix-octets", str(PREFIX))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "import it without --prefix-octets" in " ".join(done.stdout.split())


def test_prefix_octets_refused_below_zero(suda: tuple[Path, Path], tmp_path: Path) -> None:
    out, file = suda
    catalog = load_catalog([out])
    with pytest.raises(InputError, match="prefix_octets must be >= 0"):
        decode(tmp_path, catalog, file, prefix_octets=-1)
    done = cli("import", file, "--profile", out / "lasp" / "suda.yaml", "--data",
               tmp_path / "cli", "--prefix-octets", "-1")  # fmt: skip
    assert done.returncode == 2 and "--prefix-octets" in done.stderr


def test_garbage_between_prefixed_packets_is_quarantined_whole(
    suda: tuple[Path, Path], spp_data: Path, tmp_path: Path
) -> None:
    """5 stray octets before a packet's prefix: the resync finds the prefixed packet after
    them; the 5 octets are one bad item (its would-be prefix included, so no garbage is
    skipped unseen), the 13 packets decode as space-packet-parser decodes them."""
    out, file = suda
    data = file.read_bytes()
    at = packets_of(data, PREFIX)[3][0] - PREFIX
    junk = b"\x01\x02\x03\x04\xff"  # a header after its would-be prefix: version 7
    bad = tmp_path / "junk.spl"
    bad.write_bytes(data[:at] + junk + data[at:])
    tables, summary, q = decode(tmp_path, load_catalog([out]), bad, prefix_octets=PREFIX)
    assert dict(summary.decoded) == {"suda": 13} and summary.prefixes == 13
    assert dict(summary.quarantined) == {wire.BAD_VERSION: 1}
    assert q.column("data").to_pylist() == [junk]
    (detail,) = q.column("detail").to_pylist()
    assert f"at octet {at} of the file" in detail and "prefix 01020304" in detail
    assert assert_as_spp(tables["suda"], spp_suda(spp_data / "suda")) == 100 + 12 * 21


def test_a_prefixed_sample_read_without_its_prefix_is_reported(spp_data: Path) -> None:
    """Without --prefix-octets the sample's prefixes are read as headers: the report says so
    (items that are no packet), and with it every item is one of the 13 packets."""
    from ilrs_ops.profiles import ImportOptions, import_definition

    folder = spp_data / "suda"
    opts = ImportOptions(partner="lasp", apid=1425)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own notes on the definition
        bare = import_definition(folder / XTCE, opts, sample=folder / FILE)
        right = import_definition(folder / XTCE, opts, sample=folder / FILE,
                                  sample_prefix_octets=PREFIX)  # fmt: skip
    assert any("items that are no packet" in line for line in bare.report())
    assert not any("items that are no packet" in line for line in right.report())
    assert right.sample == {1425: 13}
    with pytest.raises(InputError, match="--prefix-octets must be 0 or more"):
        import_definition(folder / XTCE, opts, sample=folder / FILE, sample_prefix_octets=-1)
