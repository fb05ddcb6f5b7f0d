"""The packet inspector's API on a real uvicorn over a store written by the real pipelines (sealed
Parquet and the live WAL): recent raw packets decoded field by field, compared with values read
from the same octets by struct and int.from_bytes; a variant packet with a short variable-length
array (its CRC after the array moves up); quarantined packets with reason and detail, a corrupt
one with its hex and the decoder's error; the unknown-topic quarantine; every role; bad
parameters named."""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from ilrs_ops.ccsds import utc_ns_to_cuc
from ilrs_ops.console import ConsoleSettings, create_app, create_token
from ilrs_ops.errors import InputError
from ilrs_ops.history import History
from ilrs_ops.profiles import load_catalog
from ilrs_ops.store import UNKNOWN
from tests.conftest import DATA, MOSQUITTO, ROOT
from tests.test_store import ingest, make_batches
from tests.test_variants import WAVEFORM, packets

NS = 1_000_000_000
ROVER, EVENT = "sup-rover-1", "acme-event"
GHOST = "ilrs/tm/nobody/ghost"


@dataclass
class Running:
    url: str
    tokens: dict[str, str]
    rover_packets: list[bytes]  # every rover packet stored, in time order
    wave: bytes  # the acme-event waveform packet (5 samples)
    samples: list[int]
    corrupt: bytes  # quarantined as bad_version
    start_ns: int

    def get(self, role: str, path: str, **params: object) -> httpx.Response:
        h = {"Authorization": f"Bearer {self.tokens[role]}"} if role in self.tokens else {}
        return httpx.get(self.url + path, headers=h, params=params, timeout=30)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("packets")
    profiles = tmp / "profiles"
    (profiles / "suparco").mkdir(parents=True)
    (profiles / "acme").mkdir()
    shutil.copy(ROOT / "hardware_profiles/suparco/rover-1.yaml", profiles / "suparco")
    shutil.copy(DATA / "v2_profiles/acme/event-probe.yaml", profiles / "acme")
    catalog = load_catalog([profiles])
    rover, event = catalog.instruments[ROVER], catalog.instruments[EVENT]
    start_ns = time.time_ns() // NS * NS - 600 * NS
    batches = make_batches(rover, 6, per_batch=20, start_ns=start_ns, per_frame=1, seed=4)
    stored = [f for _, frames in batches for f in frames]
    corrupt = bytes([stored[3][0] | 0xE0]) + stored[3][1:]  # version 7
    coarse, fine = utc_ns_to_cuc(np.array([start_ns + 300 * NS]), 2)
    samples = [-7, 0, 1234, -32768, 32767]
    wave = packets(WAVEFORM, {"_seq_count": np.array([9]), "_time_coarse": coarse,
                              "_time_fine": fine, "pkt_type": np.array([3]),
                              "event_id": np.array([4242]), "channel": np.array([1]),
                              "samples": np.array([samples + [0] * 27])},
                   1, np.array([5]))[0]  # fmt: skip
    recv = np.array([start_ns + 400 * NS], np.int64)
    with History.at(tmp / "data", catalog) as history:
        # Four batches sealed, two in the live WAL; then rejects, live: a corrupt packet, a
        # duplicate of a stored one, a frame cut short.
        lane = ingest(history, rover, batches, seal_every=4)
        bad = [(recv, [corrupt]), (recv + 1, [stored[-1]]), (recv + 2, [stored[5][:4]])]
        ingest(history, rover, bad, lane=lane)
        ingest(history, event, [(recv, [wave])])
        history.store.wal(UNKNOWN).append(recv, GHOST, [stored[0]])
    tokens_file = tmp / "tokens.yaml"
    tokens = {
        "operator": create_token(tokens_file, "desk", "operator"),
        "partner": create_token(tokens_file, "suparco-ops", "partner", "suparco"),
        "viewer": create_token(tokens_file, "wall", "viewer"),
    }
    settings = ConsoleSettings(
        broker_host=MOSQUITTO[0], broker_port=MOSQUITTO[1], root=f"test/packets-{os.getpid()}",
        data=tmp / "data", profiles=profiles, tokens=tokens_file,
    )  # fmt: skip
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "console did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{port}", tokens, stored, wave, samples, corrupt, start_ns)
    finally:
        server.should_exit = True
        thread.join(10)


def fields_of(packet: dict) -> dict[str, dict]:
    return {f["name"]: f for f in packet["fields"]}


def octets(packet: dict, field: dict) -> bytes:
    """The octets the API says ``field`` lies in, cut from the packet's own hex."""
    a, b = field["octets"]
    return bytes.fromhex(packet["hex"])[a:b]


def test_raw_packets_decode_like_struct_reads_the_octets(console: Running) -> None:
    r = console.get("operator", f"/api/instruments/{ROVER}/packets", kind="raw", limit=200,
                    start=console.start_ns)  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["apid_hex"] == "0x2a1" and doc["kind"] == "raw"
    got = doc["packets"]
    # Every stored packet, sealed and live, newest first; nothing decoded twice or lost.
    assert [bytes.fromhex(p["hex"]) for p in got] == console.rover_packets[::-1]
    assert [p["recv_ns"] for p in got] == sorted((p["recv_ns"] for p in got), reverse=True)
    for p in got:
        data = bytes.fromhex(p["hex"])
        word0, word1, length = struct.unpack(">HHH", data[:6])
        assert p["kind"] == "raw" and p["decode_error"] is None and p["reason"] is None
        assert p["apid"] == word0 & 0x7FF == 0x2A1 and p["apid_hex"] == "0x2a1"
        assert p["seq"] == word1 & 0x3FFF and p["length"] == len(data) == length + 7 == 69
        assert p["time"].endswith("Z") and p["recv"].endswith("Z")
        head = {f["name"]: f["raw"] for f in p["header"]}
        seq = word1 & 0x3FFF
        assert head == {"version": 0, "type": 0, "sec_hdr_flag": 1, "apid": 0x2A1,
                        "seq_flags": 3, "seq_count": seq, "length_field": 62}  # fmt: skip
        f = fields_of(p)
        assert f["time_coarse"]["raw"] == int.from_bytes(data[6:10], "big")
        assert f["time_fine"]["raw"] == int.from_bytes(data[10:12], "big")
        assert f["mode"]["raw"] == data[12]
        assert f["mode"]["value"] == ["SAFE", "DRIVE", "SCIENCE", "HIBERNATE", "CHARGE"][data[12]]
        batt_v = int.from_bytes(data[13:15], "big") >> 4
        assert f["batt_v"]["raw"] == batt_v and f["batt_v"]["units"] == "V"
        assert f["batt_v"]["value"] == pytest.approx(batt_v * 0.01)
        assert (f["batt_v"]["bit_offset"], f["batt_v"]["bit_width"]) == (104, 12)
        assert f["batt_v"]["spans"] == [[104, 116]] and f["batt_v"]["octets"] == [13, 15]
        batt_i = int.from_bytes(data[14:16], "big") & 0xFFF
        batt_i -= (batt_i & 0x800) << 1  # i12
        assert f["batt_i"]["raw"] == batt_i
        wheels = list(struct.unpack(">6h", data[16:28]))
        assert f["wheel_temp"]["raw"] == wheels and f["wheel_temp"]["count"] == 6
        assert f["wheel_temp"]["value"] == pytest.approx([w * 0.01 for w in wheels])
        assert octets(p, f["wheel_temp"]) == data[16:28]
        assert f["motor_i"]["raw"] == list(data[28:34])
        # Little-endian on the wire: struct's "<" reads them, and they lie where the API says.
        (odometer,) = struct.unpack("<I", data[34:38])
        assert f["odometer"]["raw"] == odometer and octets(p, f["odometer"]) == data[34:38]
        (heading,) = struct.unpack("<h", data[38:40])
        assert f["heading"]["value"] == pytest.approx(heading * 0.01)
        (pos_x,) = struct.unpack(">d", data[43:51])
        assert f["pos_x"]["raw"] == pos_x == f["pos_x"]["value"]
        assert f["link_rssi"]["value"] == pytest.approx(-150 + 0.5 * data[59])
        assert f["spare0"]["ignored"] and f["spare0"]["value"] is None
        assert f["spare0"]["raw"] == data[61] & 0x0F and f["spare0"]["spans"] == [[492, 496]]
        assert f["cmd_error"]["value"] == "NONE" and octets(p, f["cmd_error"]) == data[68:69]
        power = f["power_w"]
        assert power["group"] == "derived" and power["spans"] == [] and power["octets"] is None
        assert power["value"] == pytest.approx(f["batt_v"]["value"] * f["batt_i"]["value"])
        assert f["batt_v"]["state"] in (0, 1, 2)


def test_a_variant_packet_shows_its_own_fields_and_where_they_moved(console: Running) -> None:
    r = console.get("operator", f"/api/instruments/{EVENT}/packets", start=console.start_ns)
    assert r.status_code == 200, r.text
    (p,) = r.json()["packets"]
    data = console.wave
    assert bytes.fromhex(p["hex"]) == data and p["length"] == len(data) == 28
    assert p["variant"] == "waveform" and p["seq"] == 9
    f = fields_of(p)
    assert "trigger_level" not in f and "mode" not in f  # the header variant's fields
    assert f["pkt_type"]["value"] == "WAVEFORM" and f["pkt_type"]["raw"] == 3
    assert f["event_id"]["raw"] == int.from_bytes(data[13:15], "big") == 4242
    assert f["samples"]["count"] == 5 and f["samples"]["raw"] == console.samples
    assert f["samples"]["value"] == pytest.approx([s * 0.25 for s in console.samples])
    assert list(struct.unpack(">5h", octets(p, f["samples"]))) == console.samples
    # The CRC after a short array: 27 elements earlier than the layout's longest packet.
    assert f["crc"]["octets"] == [26, 28] and f["crc"]["bit_offset"] == 208
    assert f["crc"]["raw"] == int.from_bytes(data[26:28], "big")


def test_quarantined_packets_carry_reason_detail_and_what_could_be_decoded(console: Running):
    r = console.get("operator", f"/api/instruments/{ROVER}/packets", kind="quarantine",
                    start=console.start_ns)  # fmt: skip
    assert r.status_code == 200, r.text
    got = {p["reason"]: p for p in r.json()["packets"]}
    assert set(got) == {"bad_version", "duplicate", "truncated"}
    for p in got.values():
        assert p["kind"] == "quarantine" and p["topic"] == "ilrs/tm/suparco/sup-rover-1"
        assert p["detail"]
    # The corrupt packet: its hex, its header as the octets have it, the decoder's reason.
    bad = got["bad_version"]
    assert bytes.fromhex(bad["hex"]) == console.corrupt and "version 7" in bad["detail"]
    assert bad["fields"] == [] and bad["decode_error"].startswith("bad_version")
    assert {f["name"]: f["raw"] for f in bad["header"]}["version"] == 7
    # A duplicate is a good packet stored twice: it decodes like the first.
    dup = got["duplicate"]
    assert dup["decode_error"] is None and bytes.fromhex(dup["hex"]) == console.rover_packets[-1]
    assert fields_of(dup)["mode"]["raw"] == console.rover_packets[-1][12]
    assert dup["time_ns"] is not None and "already accepted" in dup["detail"]
    # Four octets: no header at all, still its hex and why.
    cut = got["truncated"]
    assert cut["hex"] == console.rover_packets[5][:4].hex() and cut["header"] == []
    assert cut["apid"] is None and cut["decode_error"]
    # kind=all mixes both, newest received first; reason narrows to the quarantine.
    mixed = console.get("operator", f"/api/instruments/{ROVER}/packets", limit=5,
                        start=console.start_ns).json()["packets"]  # fmt: skip
    assert [p["kind"] for p in mixed[:3]] == ["quarantine"] * 3 and len(mixed) == 5
    only = console.get("operator", f"/api/instruments/{ROVER}/packets", reason="duplicate",
                       start=console.start_ns).json()["packets"]  # fmt: skip
    assert [p["reason"] for p in only] == ["duplicate"]


def test_the_unknown_topic_quarantine_is_for_operators(console: Running) -> None:
    r = console.get("operator", "/api/packets/unknown", start=console.start_ns)
    assert r.status_code == 200, r.text
    (p,) = r.json()["packets"]
    assert p["topic"] == GHOST and p["reason"] == "unknown_instrument"
    assert bytes.fromhex(p["hex"]) == console.rover_packets[0] and p["apid_hex"] == "0x2a1"
    assert p["fields"] == [] and p["decode_error"]
    assert console.get("partner", "/api/packets/unknown").status_code == 403
    assert console.get("viewer", "/api/packets/unknown").status_code == 403


@pytest.mark.parametrize(
    ("role", "instrument", "status"),
    [
        ("operator", ROVER, 200),
        ("operator", EVENT, 200),
        ("partner", ROVER, 200),
        ("partner", EVENT, 403),
        ("viewer", ROVER, 403),
        ("anonymous", ROVER, 401),
    ],
)
def test_each_role_sees_the_packets_it_may(console, role, instrument, status) -> None:
    r = console.get(role, f"/api/instruments/{instrument}/packets", start=console.start_ns)
    assert r.status_code == status, r.text
    if role == "viewer":
        assert "viewers see station status only" in r.json()["detail"]
    if status == 200:
        assert r.json()["packets"]


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [
        ({"kind": "cooked"}, 422, "kind"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 201}, 422, "limit"),
        ({"limit": "lots"}, 422, "limit"),
        ({"reason": "party"}, 400, "reason"),
        ({"reason": "duplicate", "kind": "raw"}, 400, "reason"),
        ({"start": "yesterday"}, 400, "start"),
        ({"start": "2030-01-01T00:00:00Z", "stop": "2020-01-01"}, 400, "start"),
    ],
)
def test_bad_parameters_are_named(console: Running, params, status, names) -> None:
    r = console.get("operator", f"/api/instruments/{ROVER}/packets", **params)
    assert r.status_code == status, r.text
    assert names in r.text
    assert console.get("operator", "/api/instruments/nope/packets").status_code == 404


def test_a_window_in_the_past_is_empty_and_limit_bounds_the_rest(console: Running) -> None:
    r = console.get("operator", f"/api/instruments/{ROVER}/packets", start="2020-01-01",
                    stop="2020-01-02")  # fmt: skip
    assert r.status_code == 200 and r.json()["packets"] == []
    r = console.get("operator", f"/api/instruments/{ROVER}/packets", kind="raw", limit=7,
                    start=console.start_ns)  # fmt: skip
    got = [bytes.fromhex(p["hex"]) for p in r.json()["packets"]]
    assert got == console.rover_packets[::-1][:7] and r.json()["truncated"] is False


def test_history_raw_joins_sealed_and_live(tmp_path: Path) -> None:
    """History.raw: the sealed segments and the live WAL, in time order; ``last`` the newest."""
    catalog = load_catalog([ROOT / "hardware_profiles/suparco"])
    rover = catalog.instruments[ROVER]
    t0 = 1_750_000_000 * NS
    batches = make_batches(rover, 5, per_batch=10, start_ns=t0, per_frame=1)
    frames = [f for _, fs in batches for f in fs]
    with History.at(tmp_path, catalog) as history:
        ingest(history, rover, batches, seal_every=2)  # 4 sealed, 1 live
        whole = history.raw(ROVER, t0, t0 + 3600 * NS)
        assert whole.column("data").to_pylist() == frames
        last = history.raw(ROVER, t0, t0 + 3600 * NS, last=15)
        assert last.column("data").to_pylist() == frames[-15:]
        with pytest.raises(InputError, match="last must be an integer"):
            history.raw(ROVER, t0, t0 + NS, last=0)
