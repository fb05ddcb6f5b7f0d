"""Packet variants: one APID, several layouts chosen by a common field's value. A hand-written
two-variant profile round-trips through ``pipelines.encode`` and the processor, unknown
selector values are quarantined, bad definitions are errors at their line, and IMAP-IDEX's
published science packets (an event header and waveform packets behind APID 1424) decode
equal to space-packet-parser's decode of the same file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ilrs_ops import wire
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Instrument, ProfileError, load_catalog, load_profile
from pipelines.encode import encode
from pipelines.integrity import checks
from tests.conftest import DATA, reference_fields
from tests.inline import START_NS
from tests.reference import encode_packet

EVENT = load_catalog([DATA / "v2_profiles"]).instruments["acme-event"]
HEADER, WAVEFORM = EVENT.variant_layouts


def packets(layout, cols: dict, n: int, counts=None) -> list[bytes]:
    """``n`` packets of one variant's layout from ``cols`` (header fields filled here), each
    with its CRC-16 in its last two octets."""
    if counts is None and layout.variable:
        counts = np.full(n, layout.var_slots[1])
    lengths = layout.lengths(np.zeros(n, np.int64) if counts is None else counts)
    full = {
        "_version": 0,
        "_type": 0,
        "_sec_hdr": 1,
        "_apid": EVENT.profile.apid,
        "_seq_flags": 3,
        "_length": lengths - 7,
        "_time_fine": 0,
        "crc": 0,
        **cols,
    }
    buf = encode(layout, full, n, counts)
    starts = np.cumsum(lengths) - lengths
    crc = checks(buf, starts, 0, starts * 0 + lengths - 2, "crc16-ccitt-false")
    buf[starts + lengths - 2] = (crc >> np.uint64(8)).astype(np.uint8)
    buf[starts + lengths - 1] = (crc & np.uint64(0xFF)).astype(np.uint8)
    return [buf[s : s + length].tobytes() for s, length in zip(starts, lengths, strict=True)]


def test_two_variants_encode_and_decode_back_exactly() -> None:
    rng = np.random.default_rng(11)
    n = 6
    head_cols = {
        "_seq_count": np.arange(0, 2 * n, 2),
        "_time_coarse": 1_000 + np.arange(0, 2 * n, 2),
        "pkt_type": 1,
        "event_id": rng.integers(0, 1 << 16, n),
        "trigger_level": rng.integers(0, 4096, n),
        "mode": rng.integers(0, 3, n),
        "n_waves": rng.integers(0, 256, n),
    }
    counts = np.array([32, 0, 1, 17, 32, 5])
    wave_cols = {
        "_seq_count": np.arange(1, 2 * n, 2),
        "_time_coarse": 1_001 + np.arange(0, 2 * n, 2),
        "pkt_type": rng.integers(2, 4, n),
        "event_id": rng.integers(0, 1 << 16, n),
        "channel": rng.integers(0, 256, n),
        "samples": rng.integers(-(1 << 15), 1 << 15, (n, 32)),
    }
    heads = packets(HEADER, head_cols, n)
    waves = packets(WAVEFORM, wave_cols, n, counts)
    frame = b"".join(p for pair in zip(heads, waves, strict=True) for p in pair)
    out = Processor(EVENT).process([frame], np.array([START_NS]), EVENT.topic())
    assert out.quarantine.num_rows == 0 and out.telemetry.num_rows == 2 * n
    rows = out.telemetry.to_pylist()
    for k in range(n):
        h, w = rows[2 * k], rows[2 * k + 1]
        assert h["pkt_type__raw"] == 1 and w["pkt_type__raw"] == wave_cols["pkt_type"][k]
        for name in ("event_id", "trigger_level", "mode", "n_waves"):
            assert h[f"{name}__raw"] == head_cols[name][k], name
        assert h["trigger_level"] == head_cols["trigger_level"][k] * 0.5
        assert h["trigger_v"] == pytest.approx(head_cols["trigger_level"][k] * 0.5 / 1000)
        assert w["event_id__raw"] == wave_cols["event_id"][k]
        assert w["channel__raw"] == wave_cols["channel"][k]
        assert w["samples__raw"] == wave_cols["samples"][k, : counts[k]].tolist()
        # Each row has its own variant's channels; the other's are null.
        assert h["samples"] is None and h["channel"] is None and h["samples__state"] is None
        assert w["trigger_level"] is None and w["mode__raw"] is None and w["trigger_v"] is None
    assert out.latest["values"]["samples"] == (wave_cols["samples"][-1, :5] * 0.25).tolist()
    assert out.latest["values"]["mode"] in ("IDLE", "ARMED", "TRIGGERED")


def test_a_variants_limits_judge_its_packets_alone() -> None:
    """A waveform out of limits stays in alarm across the header packets between them."""
    n = 3
    heads = packets(
        HEADER,
        {
            "_seq_count": [0, 2, 4],
            "_time_coarse": [1, 3, 5],
            "pkt_type": 1,
            "event_id": 0,
            "trigger_level": 10,
            "mode": 0,
            "n_waves": 0,
        },
        n,
    )
    waves = packets(
        WAVEFORM,
        {
            "_seq_count": [1, 3, 5],
            "_time_coarse": [2, 4, 6],
            "pkt_type": 2,
            "event_id": 0,
            "channel": 0,
            "samples": np.full((n, 32), 4000),
        },
        n,
    )
    frame = b"".join(p for pair in zip(heads, waves, strict=True) for p in pair)
    out = Processor(EVENT).process([frame], np.array([START_NS]), EVENT.topic())
    limit = [e for e in out.events.to_pylist() if e["kind"] == wire.LIMIT]
    assert [(e["channel"], e["detail"]) for e in limit] == [("samples", "nominal -> red")]


def test_an_unknown_selector_value_is_quarantined_with_the_value() -> None:
    good = packets(
        HEADER,
        {
            "_seq_count": 0,
            "_time_coarse": 5,
            "pkt_type": 1,
            "event_id": 1,
            "trigger_level": 1,
            "mode": 0,
            "n_waves": 0,
        },
        1,
    )
    stray = bytearray(good[0])
    stray[12] = 9  # pkt_type
    short = packets(
        WAVEFORM,
        {
            "_seq_count": 1,
            "_time_coarse": 6,
            "pkt_type": 3,
            "event_id": 1,
            "channel": 1,
            "samples": 0,
        },
        1,
        np.array([4]),
    )[0]
    wrong = bytearray(short[:-1])  # a waveform with half an element too few
    wrong[5] -= 1
    proc = Processor(EVENT)
    frame = bytes(stray) + good[0] + bytes(wrong)
    out = proc.process([frame], np.array([START_NS]), EVENT.topic())
    q = out.quarantine.to_pylist()
    assert out.telemetry.num_rows == 1
    assert [r["reason"] for r in q] == [wire.UNKNOWN_VARIANT, wire.BAD_LENGTH]
    assert "pkt_type = 9 chooses no variant of acme-event" in q[0]["detail"]
    assert q[0]["data"] == bytes(stray)
    assert "acme-event waveform packet has" in q[1]["detail"]
    assert proc.state.rejects == {wire.UNKNOWN_VARIANT: 1, wire.BAD_LENGTH: 1}


def test_the_simulator_sends_every_variant_and_all_are_stored() -> None:
    from tests.inline import process, simulated

    out = process(EVENT, simulated(EVENT, 12), 12)
    assert out.quarantine.num_rows == 0 and out.telemetry.num_rows == 12
    kinds = out.telemetry.column("pkt_type__raw").to_pylist()
    assert kinds == [1, 2] * 6


BAD = """\
instrument: acme-v
partner: acme
name: test
kind: power
apid: 0x530
expected_period_s: 1.0
time: {code: cuc, coarse: 4, fine: 2}
fields:
  - {name: kind, type: u8}
variants:
  selector: SELECTOR
  cases:
    - name: a
      value: 1
      packet_length: 14
      fields:
        - {name: x, type: u8}
    - name: b
      value: VALUE
      packet_length: 14
      fields:
        - {name: FIELD, type: u8}
"""


@pytest.mark.parametrize(
    ("selector", "value", "field", "line", "says"),
    [
        ("x", "2", "y", 11, "the selector 'x' is a field of variant 'a', not of the common part"),
        ("kind", "0..3", "y", 19, "selector value 1 is also variant 'a''s"),
        ("kind", "2", "kind", 22, "variant 'b': 'kind' is already a common field"),
        ("kind", "2", "x", 22, None),  # the same name, the same declaration: one channel
        ("kind", "300", "y", 19, "value 300 does not fit the selector 'kind'"),
    ],
)
def test_bad_variant_definitions_are_errors_at_their_line(
    selector: str, value: str, field: str, line: int, says: str | None
) -> None:
    text = BAD.replace("SELECTOR", selector).replace("VALUE", value).replace("FIELD", field)
    if says is None:
        p = load_profile("v.yaml", text=text)
        assert [f.name for f in p.channel_fields] == ["kind", "x"]
        return
    with pytest.raises(ProfileError) as err:
        load_profile("v.yaml", text=text)
    found = [pr for pr in err.value.problems if says in pr.message]
    assert found, err.value.problems
    assert found[0].line == line and found[0].hint


def test_a_variant_field_declared_differently_and_lengths_are_located() -> None:
    text = BAD.replace("SELECTOR", "kind").replace("VALUE", "2")
    text = text.replace("{name: FIELD, type: u8}", "{name: x, type: u16}")
    with pytest.raises(ProfileError) as err:
        load_profile("v.yaml", text=text)
    msgs = {(pr.line, pr.message.split(";")[0]) for pr in err.value.problems}
    assert (22, "variant 'b': 'x' is declared differently in variant 'a'") in msgs
    assert any(line == 20 and "variant 'b'" in m and "packet_length" in m for line, m in msgs)


# ---------------------------------------------------------------------- IMAP-IDEX


def idex_profile(xtce: Path) -> str:
    """A variants profile of IDEX's APID 1424 from space-packet-parser's reading of the XTCE:
    the common part (secondary header and the SCI0 header words), the event header (type 1)
    and the waveform packets (type > 1: a blob to the end of the packet, then sync and CRC)."""
    import space_packet_parser as spp

    d = spp.load_xtce(xtce)

    def fields(container: str) -> list[str]:
        out = []
        for e in d.containers[container].entry_list:
            if type(e).__name__ == "SequenceContainer":
                out += fields(e.name)
            elif e.name == "IDX__SCI0RAW":
                out.append("{name: sci0raw, type: u8, count: 4032, count_from: rest}")
            else:
                bits = e.parameter_type.encoding.size_in_bits
                out.append(f"{{name: {e.name.lower().replace('__', '_')}, type: u{bits}}}")
        return out

    def block(items: list[str], indent: str) -> str:
        return "".join(f"{indent}- {f}\n" for f in items)

    header_bits = 48 + sum(
        int(f.split("type: u")[1].rstrip("}")) for f in fields("IDX_SCI0") + fields("Sci0TypeZero")
    )
    return (
        "instrument: lasp-idex-sci0\npartner: lasp\nname: IDEX science\nkind: dust\n"
        "apid: 1424\nexpected_period_s: 1.0\ntime: {code: none}\nfields:\n"
        + block(fields("IDX_SCI0"), "  ")
        + "variants:\n  selector: idx_sci0type\n  cases:\n"
        + f"    - name: event_header\n      value: 1\n      packet_length: {header_bits // 8}\n"
        + "      fields:\n"
        + block(fields("Sci0TypeZero"), "        ")
        + "    - name: waveform\n      value: 2..255\n      packet_length: 4080\n      fields:\n"
        + block(fields("Sci0TypeNonZero"), "        ")
    )


def test_idex_science_packets_decode_as_space_packet_parser_does(
    spp_data: Path, tmp_path: Path
) -> None:
    import space_packet_parser as spp

    folder = spp_data / "idex"
    xtce = folder / "idex_combined_science_definition.xml"
    text = idex_profile(xtce)
    inst = Instrument(load_profile(tmp_path / "idex.yaml", text=text), tmp_path / "idex.yaml")
    data = (folder / "sciData_2023_052_14_45_05").read_bytes()
    definition = spp.load_xtce(xtce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own notes on the definition
        with (folder / "sciData_2023_052_14_45_05").open("rb") as f:
            theirs = [definition.parse_bytes(raw) for raw in spp.ccsds_generator(f)]
    out = Processor(inst).process([data], np.array([START_NS]), inst.topic())
    assert out.quarantine.num_rows == 0
    assert out.telemetry.num_rows == len(theirs) == 78
    rows = out.telemetry.to_pylist()
    kinds = {1: 0, "wave": 0}
    for row, packet in zip(rows, theirs, strict=True):
        for name, value in packet.items():
            if name in (
                "VERSION",
                "TYPE",
                "SEC_HDR_FLG",
                "SEQ_FLGS",
                "SRC_SEQ_CTR",
                "PKT_LEN",
            ) or name.startswith("PKT_"):
                continue
            ours = name.lower().replace("__", "_")
            if name == "IDX__SCI0RAW":
                assert bytes(row["sci0raw__raw"]) == value.raw_value
            else:
                assert row[f"{ours}__raw"] == value.raw_value, name
        kinds[1 if row["idx_sci0type__raw"] == 1 else "wave"] += 1
    assert kinds == {1: 6, "wave": 72}


def test_variant_packets_import_into_the_store_and_read_back_with_nulls(tmp_path: Path) -> None:
    """One table of every variant's channels: History queries, buckets and DuckDB read it."""
    from ilrs_ops.history import History
    from ilrs_ops.replay import Recorder, create_recording, import_packets
    from ilrs_ops.store import Store
    from tests.inline import simulated

    duckdb = pytest.importorskip("duckdb")
    catalog = load_catalog([DATA / "v2_profiles"])
    n = 40
    file = tmp_path / "event.bin"
    file.write_bytes(simulated(EVENT, n))
    rec = create_recording(tmp_path / "data", "event", "imported", str(file))
    with Store(rec.path) as store:
        summary = import_packets(file, Recorder(store, catalog), {EVENT.profile.apid: EVENT})
    assert dict(summary.quarantined) == {} and summary.decoded["acme-event"] == n
    with History.at(rec.path, catalog) as history:
        tm = history.query("acme-event", ["pkt_type", "trigger_level", "samples"], 0, 2**62)
        b = history.query("acme-event", ["trigger_level", "event_id"], START_NS,
                          START_NS + n * 10**9, buckets=2, source="telemetry")  # fmt: skip
    levels = tm.column("trigger_level").to_pylist()
    assert [v is None for v in levels] == [False, True] * (n // 2)
    assert [v is None for v in tm.column("samples").to_pylist()] == [True, False] * (n // 2)
    assert [c.as_py() for c in b.column("trigger_level__count")] == [n // 4, n // 4]
    assert [c.as_py() for c in b.column("event_id__count")] == [n // 2, n // 2]
    glob = f"{rec.path}/telemetry/**/*.parquet"
    row = duckdb.sql(
        f"select count(*) filter (where pkt_type = 1), count(samples) from read_parquet('{glob}')"
    ).fetchall()[0]
    assert row == (n // 2, n // 2)


# ---------------------------------------------------------------------- random variants


@st.composite
def variant_profiles(draw: st.DrawFn) -> tuple[str, list[list[int]]]:
    """A profile of 2..4 variants behind one selector (u8, after 0..2 common fields), each with
    1..4 own integer fields of 1..32 bits, padded to whole octets; and each variant's selector
    values (one value or a range)."""
    kinds = st.sampled_from("ui")
    common = [f"{k}{draw(st.integers(1, 16))}" for k in draw(st.lists(kinds, max_size=2))]
    lines = [
        "instrument: acme-random-variants",
        "partner: acme",
        "name: random variants",
        "kind: test",
        "apid: 0x123",
        "expected_period_s: 1.0",
        "time: {code: none}",
        "order: arrival",
        "fields:",
        "  - {name: sel, type: u8}",
        *(f"  - {{name: c{j}, type: {t}}}" for j, t in enumerate(common)),
        "variants:",
        "  selector: sel",
        "  cases:",
    ]
    bits0 = 48 + 8 + sum(int(t[1:]) for t in common)
    n = draw(st.integers(2, 4))
    cuts = sorted(draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True)))
    values: list[list[int]] = []
    for k, lo in enumerate(cuts):
        hi = cuts[k + 1] - 1 if k + 1 < n else 255
        top = draw(st.integers(lo, min(hi, lo + 3)))
        values.append(list(range(lo, top + 1)))
        own = [
            f"{t}{draw(st.integers(1, 32))}" for t in draw(st.lists(kinds, min_size=1, max_size=4))
        ]
        bits = bits0 + sum(int(t[1:]) for t in own)
        pad = -bits % 8
        lines += [
            f"    - name: v{k}",
            f"      value: {lo}" if top == lo else f"      value: {lo}..{top}",
            f"      packet_length: {(bits + pad) // 8}",
            "      fields:",
            *(f"        - {{name: v{k}_{j}, type: {t}}}" for j, t in enumerate(own)),
        ]
        if pad:
            lines.append(f"        - {{name: v{k}_pad, type: u{pad}, ignore: true}}")
    return "\n".join(lines) + "\n", values


@given(st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_variant_profiles_round_trip_against_the_reference(data: st.DataObject) -> None:
    """Packets of random variants, packed by the independent reference encoder
    (tests/reference.py) from each variant's layout derived by hand, decode through the
    Processor to the values given: each row its own variant's fields, the others' null."""
    text, values = data.draw(variant_profiles())
    p = load_profile("random.yaml", text=text)
    inst = Instrument(p, Path("random.yaml"))
    flats = p.variant_profiles
    packets, wanted = [], []
    for seq in range(data.draw(st.integers(1, 12))):
        k = data.draw(st.integers(0, len(flats) - 1))
        flat = flats[k]
        ref = reference_fields(flat)
        given_values: dict[str, int] = {"sel": data.draw(st.sampled_from(values[k]))}
        for name, _, width, kind, *_ in ref:
            if name.startswith("_") or name in given_values:
                continue
            lo, hi = (
                (-(1 << (width - 1)), (1 << (width - 1)) - 1)
                if kind == "i"
                else (0, (1 << width) - 1)
            )
            given_values[name] = 0 if name.endswith("_pad") else data.draw(st.integers(lo, hi))
        header = {"_version": 0, "_type": 0, "_sec_hdr": 0, "_apid": 0x123, "_seq_flags": 3,
                  "_seq_count": seq, "_length": flat.packet_length - 7}  # fmt: skip
        packets.append(encode_packet({**header, **given_values}, ref, flat.packet_length))
        wanted.append((k, given_values))
    out = Processor(inst).process([b"".join(packets)], np.array([START_NS]), inst.topic())
    assert out.quarantine.num_rows == 0, out.quarantine.to_pylist()
    rows = out.telemetry.to_pylist()
    assert len(rows) == len(wanted)
    every = {f.name for f in p.channel_fields if not f.ignore}
    for row, (k, given_values) in zip(rows, wanted, strict=True):
        mine = {n for n in given_values if not n.endswith("_pad")}
        for name in every:
            got = row[f"{name}__raw"] if f"{name}__raw" in row else row[name]
            if name in mine:
                assert got == given_values[name], (k, name)
            else:
                assert got is None, (k, name)  # another variant's field
