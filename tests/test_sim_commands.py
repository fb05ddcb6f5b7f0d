"""The simulator executes telecommands on a real broker: encoded TC packets published to a
module's TC topic, acknowledged (or rejected) in its telemetry, their effects in its values.

Runs against the machine's Mosquitto on 127.0.0.1:1883. Every wait is bounded by a guard that
fails the test; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import numpy as np
import pytest

from ilrs_ops import wire
from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.commanding import Telecommands
from ilrs_ops.profiles import Catalog, Command, CommandSim, Instrument
from ilrs_ops.sim import Environment, Faults, Module, Simulator
from tests.by_apid import decode_frames
from tests.conftest import MOSQUITTO

ROVER = "sup-rover-1"
GUARD_S = 20.0  # a wait that takes this long has failed: the ack or the packet never came
Row = dict[str, Any]


def fast_rover(station: Catalog) -> Catalog:
    """The station's rover at 10 packets/s, with two more commands that switch it off and on."""
    inst = station.instruments[ROVER]
    extra = [
        Command(name="standby", opcode=0x20, sim=CommandSim(power="off")),
        Command(name="wake", opcode=0x21, sim=CommandSim(power="on")),
    ]
    p = inst.profile.model_copy(
        update={"expected_period_s": 0.1, "commands": [*inst.profile.commands, *extra]}
    )
    return Catalog({ROVER: Instrument(p, inst.path)})


@dataclass
class Link:
    """A running simulator, its telemetry decoded row by row, and a client that commands."""

    sim: Simulator
    catalog: Catalog
    root: str
    pub: aiomqtt.Client
    rows: dict[str, asyncio.Queue[Row]] = field(default_factory=dict)
    seq: Counter[str] = field(default_factory=Counter)

    def tc(self, instrument: str) -> Telecommands:
        return Telecommands(self.catalog.instruments[instrument].profile)

    def packet(self, instrument: str, name: str, **args: Any) -> bytes:
        """A good packet of command ``name``, with the instrument's next sequence count."""
        c = self.tc(instrument).codec(name)
        self.seq[instrument] += 1
        return c.encode(c.arguments(args), self.seq[instrument])

    async def send(self, instrument: str, packet: bytes) -> None:
        p = self.catalog.instruments[instrument].profile
        await self.pub.publish(wire.topic(self.root, wire.TC, p.partner, instrument), packet, qos=1)

    async def until(self, instrument: str, ok: Callable[[Row], bool]) -> Row:
        """The first row from now on for which ``ok`` holds (the rows before it are passed)."""
        async with asyncio.timeout(GUARD_S):
            while True:
                row = await self.rows[instrument].get()
                if ok(row):
                    return row

    async def handled(self, instrument: str, outcome: str, count: int = 1) -> int:
        """Wait until the module has handled ``count`` commands so; the index of its next
        packet, which is the first to be made after them."""
        m = next(m for m in self.sim.modules if m.instrument.id == instrument)
        async with asyncio.timeout(GUARD_S):
            while self.sim.commands[instrument, outcome] < count:
                await asyncio.sleep(0.02)
        return m.index


def rows_of(catalog: Catalog, payload: bytes) -> list[tuple[str, Row]]:
    """Each packet of a frame as {channel: value} (enum channels as labels), with its seq."""
    decoded, rejected = decode_frames(catalog, [payload])
    assert not rejected.reasons, rejected.counts()
    out = []
    for d in decoded:
        eng = d.engineering()
        fields = {f.name: f for f in d.instrument.profile.fields}
        for k in range(len(d)):
            row: Row = {"_seq": int(d.seq_count[k])}
            for name, v in eng.items():
                states = fields[name].enumeration
                value = v[k]
                row[name] = (
                    states.get(int(value)) if states is not None and np.ndim(value) == 0 else value
                )
            out.append((d.instrument.id, row))
    return out


@contextlib.asynccontextmanager
async def running(
    catalog: Catalog,
    root: str,
    faults: Faults | None = None,
    broker: tuple[str, int] = MOSQUITTO,
) -> AsyncIterator[Link]:
    host, port = broker
    sim = Simulator(catalog, host=host, port=port, root=root, seed=5, faults=faults)
    async with aiomqtt.Client(host, port) as sub, aiomqtt.Client(host, port) as pub:
        link = Link(sim, catalog, root, pub, {i.id: asyncio.Queue() for i in catalog})
        await sub.subscribe(wire.all_of(root, wire.TM), qos=1)

        async def read() -> None:
            async for message in sub.messages:
                for instrument, row in rows_of(catalog, bytes(message.payload)):  # type: ignore[arg-type]
                    link.rows[instrument].put_nowait(row)

        tasks = [asyncio.create_task(read()), asyncio.create_task(sim.run(None))]
        try:
            for inst in catalog:  # the module is up (and subscribed: that comes first)
                await link.until(inst.id, lambda r: True)
            yield link
        finally:
            for t in tasks:
                t.cancel()
            # Not a bare await: a task that took the cancel in would hang the suite; this
            # fails naming it (and its stack) instead.
            _, pending = await asyncio.wait(tasks, timeout=GUARD_S)
            assert not pending, f"did not stop when cancelled: {[t.get_stack() for t in pending]}"
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t


def acked(seq: int, accepted: int | None = None, rejected: int | None = None):
    def ok(r: Row) -> bool:
        return (
            r["cmd_last_seq"] == seq
            and (accepted is None or r["cmd_accepted"] == accepted)
            and (rejected is None or r["cmd_rejected"] == rejected)
        )

    return ok


# ------------------------------------------------------------------ accepted, rejected


async def test_command_is_acknowledged_and_its_effect_shows(station: Catalog, topic_root: str):
    catalog = fast_rover(station)
    async with running(catalog, topic_root) as link:
        first = await link.until(ROVER, lambda r: True)
        assert (first["cmd_accepted"], first["cmd_rejected"], first["cmd_error"]) == (0, 0, "NONE")
        assert first["mode"] == "DRIVE"  # lunar day
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        row = await link.until(ROVER, lambda r: r["cmd_accepted"] == 1)
        assert (row["cmd_last_seq"], row["cmd_rejected"], row["cmd_error"]) == (1, 0, "NONE")
        assert row["mode"] == "SCIENCE"
        # Held until another command sets it: every later packet, then SAFE.
        for _ in range(5):
            assert (await link.until(ROVER, lambda r: True))["mode"] == "SCIENCE"
        await link.send(ROVER, link.packet(ROVER, "safe"))
        row = await link.until(ROVER, lambda r: r["cmd_accepted"] == 2)
        assert (row["cmd_last_seq"], row["mode"]) == (2, "SAFE")
        assert link.sim.commands == Counter({(ROVER, "executed"): 2})


async def test_commands_on_the_embedded_broker(
    station: Catalog, topic_root: str, free_port: int
) -> None:
    """The zero-setup path: amqtt (MQTT 3.1.1) carries commands to the module and acks back."""
    async with (
        EmbeddedBroker(port=free_port),
        running(fast_rover(station), topic_root, broker=("127.0.0.1", free_port)) as link,
    ):
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="CHARGE"))
        row = await link.until(ROVER, acked(1, accepted=1))
        assert (row["mode"], row["cmd_error"]) == ("CHARGE", "NONE")
        await link.send(ROVER, _bad_crc(link))
        row = await link.until(ROVER, acked(2, rejected=1))
        assert (row["mode"], row["cmd_error"]) == ("CHARGE", wire.TC_BAD_CHECKSUM)


def _recrc(packet: bytearray) -> bytes:
    """``packet`` with its CRC made right again for its (altered) octets."""
    from pipelines.integrity import checks

    buf = np.frombuffer(bytes(packet), np.uint8)
    crc = int(
        checks(buf, np.zeros(1, np.int64), 0, np.full(1, len(packet) - 2), "crc16-ccitt-false")[0]
    )
    packet[-2:] = crc.to_bytes(2, "big")
    return bytes(packet)


def _bad_crc(link: Link) -> bytes:
    pkt = bytearray(link.packet(ROVER, "set_mode", mode="SCIENCE"))
    pkt[-1] ^= 0xFF
    return bytes(pkt)


def _unknown_opcode(link: Link) -> bytes:
    pkt = bytearray(link.packet(ROVER, "set_mode", mode="SCIENCE"))
    pkt[6] = 0x55
    return _recrc(pkt)


def _out_of_range(link: Link) -> bytes:
    c = link.tc(ROVER).codec("drive")
    link.seq[ROVER] += 1
    return c.encode({"distance": 60.0, "speed": 3}, link.seq[ROVER])  # range is 0.1..50 m


def _wrong_apid(link: Link) -> bytes:
    pkt = bytearray(link.packet(ROVER, "set_mode", mode="SCIENCE"))
    word = int.from_bytes(pkt[:2], "big") & ~0x7FF | link.catalog.instruments[ROVER].profile.apid
    pkt[:2] = word.to_bytes(2, "big")  # the rover's TM APID, not its TC APID
    return _recrc(pkt)


def _bad_enum(link: Link) -> bytes:
    pkt = bytearray(link.packet(ROVER, "set_mode", mode="SCIENCE"))
    pkt[7] = 9  # no mode has code 9
    return _recrc(pkt)


@pytest.mark.parametrize(
    "make, reason",
    [
        (_bad_crc, wire.TC_BAD_CHECKSUM),
        (_unknown_opcode, wire.TC_UNKNOWN_OPCODE),
        (_out_of_range, wire.TC_BAD_ARGUMENT),
        (_bad_enum, wire.TC_BAD_ARGUMENT),
        (_wrong_apid, wire.TC_BAD_APID),
    ],
)
async def test_bad_commands_are_rejected_with_their_reason(
    station: Catalog, topic_root: str, make, reason: str
):
    catalog = fast_rover(station)
    async with running(catalog, topic_root) as link:
        await link.send(ROVER, make(link))
        row = await link.until(ROVER, lambda r: r["cmd_rejected"] == 1)
        assert (row["cmd_last_seq"], row["cmd_accepted"], row["cmd_error"]) == (1, 0, reason)
        assert row["mode"] == "DRIVE"  # no effect
        # A good one after it: accepted, the error cleared, the counters as they were.
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        row = await link.until(ROVER, acked(2))
        assert (row["cmd_accepted"], row["cmd_rejected"], row["cmd_error"]) == (1, 1, "NONE")
        assert row["mode"] == "SCIENCE"
        assert link.sim.commands == Counter({(ROVER, "rejected"): 1, (ROVER, "executed"): 1})


# ------------------------------------------------------------------ power


async def test_power_off_goes_quiet_after_the_ack_and_on_resumes(station: Catalog, topic_root: str):
    catalog = fast_rover(station)
    async with running(catalog, topic_root) as link:
        m = link.sim.modules[0]
        await link.send(ROVER, link.packet(ROVER, "standby"))
        ack = await link.until(ROVER, acked(1, accepted=1))
        # Off: nothing comes, but it still hears commands (set_mode is acknowledged later).
        async with asyncio.timeout(GUARD_S):
            while m.unsent < 5:
                await asyncio.sleep(0.02)
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        await link.handled(ROVER, "executed", 2)
        assert link.rows[ROVER].empty()
        await link.send(ROVER, link.packet(ROVER, "wake"))
        await link.handled(ROVER, "executed", 3)
        back = await link.rows[ROVER].get()  # the very next packet after the ack of standby
        assert (back["cmd_accepted"], back["cmd_last_seq"], back["mode"]) == (3, 3, "SCIENCE")
        assert back["_seq"] - ack["_seq"] > 5  # the packets that fell due while off: a gap
        later = await link.rows[ROVER].get()
        assert later["_seq"] == back["_seq"] + 1  # and it keeps sending


async def test_eps_switches_another_instrument_off_and_on(station: Catalog, topic_root: str):
    """A power distribution command: the target goes quiet at once and hears no commands."""
    eps = next(
        (i for i in station if any(c.sim and c.sim.target for c in i.profile.commands)), None
    )
    if eps is None:
        pytest.fail("no station profile switches another instrument's supply")
    off = next(c for c in eps.profile.commands if c.sim and c.sim.target and c.sim.power == "off")
    on = next(
        c
        for c in eps.profile.commands
        if c.sim and c.sim.target == off.sim.target and c.sim.power == "on"  # type: ignore[union-attr]
    )
    target = off.sim.target  # type: ignore[union-attr]
    fast = {
        i: station.instruments[i].profile.model_copy(update={"expected_period_s": 0.1})
        for i in (eps.id, target)
    }
    catalog = Catalog({i: Instrument(p, station.instruments[i].path) for i, p in fast.items()})
    async with running(catalog, topic_root) as link:
        t = next(m for m in link.sim.modules if m.instrument.id == target)
        await link.send(eps.id, link.packet(eps.id, off.name))
        await link.until(eps.id, acked(1, accepted=1))
        async with asyncio.timeout(GUARD_S):
            while t.unsent < 5:
                await asyncio.sleep(0.02)
        while not link.rows[target].empty():  # what it sent before the switch
            link.rows[target].get_nowait()
        last = t.index
        await link.send(eps.id, link.packet(eps.id, on.name))
        await link.until(eps.id, acked(2, accepted=2))
        back = await link.until(target, lambda r: True)
        assert back["_seq"] >= last  # nothing between the switch and the switch back
        assert link.sim.commands[eps.id, "executed"] == 2


# ------------------------------------------------------------------ faults


async def test_lost_command_is_never_acknowledged(station: Catalog, topic_root: str):
    catalog = fast_rover(station)
    async with running(catalog, topic_root, Faults(tc_lost=1.0)) as link:
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        after = await link.handled(ROVER, "lost")
        row = await link.until(ROVER, lambda r: r["_seq"] >= after)
        assert (row["cmd_accepted"], row["cmd_rejected"], row["cmd_last_seq"]) == (0, 0, 0)
        assert row["mode"] == "DRIVE"
        assert link.sim.injected() == Counter({(ROVER, "tc_lost"): 1})


async def test_garbled_command_is_rejected_as_bad_checksum(station: Catalog, topic_root: str):
    catalog = fast_rover(station)
    async with running(catalog, topic_root, Faults(tc_rejected=1.0)) as link:
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        row = await link.until(ROVER, lambda r: r["cmd_rejected"] == 1)
        assert (row["cmd_last_seq"], row["cmd_accepted"]) == (1, 0)
        assert (row["cmd_error"], row["mode"]) == (wire.TC_BAD_CHECKSUM, "DRIVE")
        assert link.sim.injected() == Counter({(ROVER, "tc_rejected"): 1})


async def test_unexecuted_command_is_acknowledged_without_effect(station: Catalog, topic_root: str):
    catalog = fast_rover(station)
    async with running(catalog, topic_root, Faults(tc_unexecuted=1.0)) as link:
        await link.send(ROVER, link.packet(ROVER, "set_mode", mode="SCIENCE"))
        row = await link.until(ROVER, acked(1, accepted=1))
        assert (row["cmd_error"], row["mode"]) == ("NONE", "DRIVE")
        for _ in range(5):
            assert (await link.until(ROVER, lambda r: True))["mode"] == "DRIVE"
        assert link.sim.injected() == Counter({(ROVER, "tc_unexecuted"): 1})


# ------------------------------------------------------------------ without a broker


def _module(station: Catalog, faults: Faults | None = None) -> Module:
    inst = station.instruments[ROVER]
    return Module(inst, Environment(epoch_ns=0), seed=9, start_ns=0, faults=faults)


def test_command_faults_are_counted_and_seeded(station: Catalog) -> None:
    faults = Faults(tc_lost=0.2, tc_rejected=0.2, tc_unexecuted=0.2)
    tc = Telecommands(station.instruments[ROVER].profile).codec("safe")

    def run() -> tuple[list[str], Counter[str]]:
        m = _module(station, faults)
        return [m.command(tc.encode({}, k)).outcome for k in range(300)], m.injected

    outcomes, injected = run()
    assert run() == (outcomes, injected)  # the same seed, the same faults
    got = Counter(outcomes)
    assert got["lost"] == injected["tc_lost"] > 30
    assert got["rejected"] == injected["tc_rejected"] > 30
    assert got["unexecuted"] == injected["tc_unexecuted"] > 30
    assert got["executed"] == 300 - sum(injected.values()) > 30


def test_commands_do_not_change_the_other_channels(station: Catalog) -> None:
    """Commands between batches leave every channel they do not set as it would have been."""
    quiet, busy = _module(station), _module(station)
    tc = Telecommands(station.instruments[ROVER].profile)
    c = tc.codec("set_mode")
    for k in range(10):
        busy.command(c.encode(c.arguments({"mode": "SCIENCE"}), k))
        busy.command(b"\x00" * 3)
        a, b = (decode_frames(station, m.next_batch(5).packets)[0][0].raw for m in (quiet, busy))
        untouched = set(a) - {"mode", "cmd_accepted", "cmd_rejected", "cmd_last_seq", "cmd_error"}
        for name in untouched:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert (b["cmd_accepted"] == k + 1).all() and (b["cmd_rejected"] == k + 1).all()
        assert (b["mode"] == 2).all()


def _some_arguments(c: Command) -> dict[str, Any]:
    """A valid value for each argument: its default, its last state, or the top of its range."""
    from ilrs_ops.commanding import value_range

    out: dict[str, Any] = {}
    for a in c.arguments:
        if a.default is not None:
            out[a.name] = a.default
        elif a.enum is not None:
            out[a.name] = sorted(set(a.enum.values()))[-1]
        else:
            out[a.name] = value_range(a)[1]
    return out


def _holds(cond, row: Row, args: dict[str, Any]) -> bool:
    ok = True
    for test, want in cond.tests:
        if isinstance(want, str) and want.startswith("$"):
            want = args[want[1:]]
        have = row[cond.channel]
        if test == "equals":
            ok &= have == want if isinstance(want, str) else abs(float(have) - want) < 1e-6
        elif test == "above":
            ok &= float(have) > float(want)
        else:
            ok &= float(have) < float(want)
    return ok


def test_every_station_command_executes_as_its_profile_verifies(station: Catalog) -> None:
    """Each command of each station profile, executed by its simulated module: acknowledged in
    the next packet, and its ``verify.executed`` conditions hold there (the sim and the
    verification a profile writes agree)."""
    commandable = [i for i in station if i.profile.commands]
    assert len(commandable) >= 10
    checked = 0
    for inst in commandable:
        tc = Telecommands(inst.profile)
        for seq, c in enumerate(inst.profile.commands, 1):
            m = Module(inst, Environment(epoch_ns=0), seed=2, start_ns=0)
            codec = tc.codec(c.name)
            args = codec.arguments(_some_arguments(c))
            done = m.command(codec.encode(args, seq))
            assert done.outcome == "executed", (inst.id, c.name, done)
            packets = m.next_batch(1).packets
            if c.sim is not None and c.sim.target is None and c.sim.power == "off":
                assert len(packets) == 1  # the ack, then silence
                assert m.next_batch(3).packets == []
            (_, row), *_ = rows_of(station, packets[0])
            assert (row["cmd_accepted"], row["cmd_last_seq"], row["cmd_error"]) == (1, seq, "NONE")
            for cond in c.verify.executed:
                assert _holds(cond, row, args), (inst.id, c.name, str(cond), row[cond.channel])
                checked += 1
    assert checked >= 30


def test_an_opened_outlet_takes_its_load_off_the_supply(station: Catalog) -> None:
    """The EPS's load_i carries each outlet's payload while it is on: opening the seismometer's
    outlet takes its 0.8 A off at once, and closing it puts it back; the rest is as it was."""
    eps = station.instruments["cnsa-eps"]
    load_i = next(f for f in eps.profile.fields if f.name == "load_i")
    draw = load_i.sim.loads["out_seismometer"]  # type: ignore[union-attr,index]
    quiet, busy = (Module(eps, Environment(epoch_ns=0), seed=3, start_ns=0) for _ in range(2))
    tc = Telecommands(eps.profile)
    t = quiet.times(5)
    np.testing.assert_array_equal(quiet.values(t)["load_i"], busy.values(t)["load_i"])
    busy.command(tc.codec("seismometer_off").encode({}, 1))
    a, b = quiet.values(t), busy.values(t)
    assert (b["out_seismometer"] == 0).all() and (a["out_seismometer"] == 1).all()
    np.testing.assert_allclose(a["load_i"] - b["load_i"], draw)
    np.testing.assert_array_equal(a["bus_v"], b["bus_v"])
    busy.command(tc.codec("seismometer_on").encode({}, 2))
    np.testing.assert_allclose(quiet.values(t)["load_i"], busy.values(t)["load_i"])
