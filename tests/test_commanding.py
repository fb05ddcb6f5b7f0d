"""The commanding service: checks, two-person approval, queues, verification against live
status, timeouts, idempotency and a restart mid-verification, on a real store.

The module here is a small stand-in that reads each packet with the TC codec, acknowledges in
its status counters and applies the command's ``sim`` effect; the simulator's own execution
and the MQTT path are tested in test_sim_commands and test_console_commands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilrs_ops import wire
from ilrs_ops.commanding import Commander, CommandLinkError, RefusedError, Telecommands
from ilrs_ops.profiles import CatalogOwner, load_catalog
from ilrs_ops.store import Store

ROOT = Path(__file__).parents[1]
ROVER = ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml"


@dataclass(frozen=True)
class Who:
    name: str
    role: str
    partner: str | None = None


ALICE, BOB = Who("alice", "operator"), Who("bob", "operator")
SUPARCO, NARIT = Who("sup", "partner", "suparco"), Who("nar", "partner", "narit")
VIEWER = Who("vic", "viewer")


class Module:
    """The rover as far as commanding sees it: its status document and its TC handling."""

    def __init__(self, owner: CatalogOwner, *, lose: bool = False, reject: bool = False) -> None:
        self.profile = owner.current.instruments["sup-rover-1"].profile
        self.tc = Telecommands(self.profile)
        self.values: dict[str, Any] = dict(
            mode="SAFE", batt_v=28.0, cmd_accepted=3, cmd_rejected=1, cmd_last_seq=0,
            cmd_error="NONE",
        )  # fmt: skip
        self.lose, self.reject = lose, reject
        self.packets: list[bytes] = []
        self.topics: list[str] = []
        self.commander: Commander | None = None

    def status(self, _instrument: str) -> dict[str, Any]:
        return {"values": {k: {"value": v} for k, v in self.values.items()}}

    async def publish(self, topic: str, packet: bytes) -> None:
        self.topics.append(topic)
        self.packets.append(packet)
        if self.lose:
            return
        read = self.tc.read(packet if not self.reject else packet[:-1] + b"\x00")
        self.values["cmd_last_seq"] = read.seq
        if read.reason != wire.TC_NONE:
            self.values["cmd_rejected"] += 1
            self.values["cmd_error"] = read.reason
        else:
            self.values["cmd_accepted"] += 1
            self.values["cmd_error"] = "NONE"
            assert read.command is not None and read.args is not None
            if read.command.sim is not None:
                for k, v in read.command.sim.set.items():
                    self.values[k] = read.args[v[1:]] if str(v).startswith("$") else v
        self.tell()

    def tell(self) -> None:
        assert self.commander is not None
        self.commander.on_status("sup-rover-1")


def catalog(tmp_path: Path, **verify: float) -> CatalogOwner:
    """The station's rover, its verification windows changed to ``verify`` (seconds)."""
    doc = yaml.safe_load(ROVER.read_text())
    doc["expected_period_s"] = 0.1  # the stand-in acknowledges at once: windows may be short
    for c in doc["commands"]:
        c.setdefault("verify", {}).update(verify)
    folder = tmp_path / "profiles" / "suparco"
    folder.mkdir(parents=True)
    (folder / "sup-rover-1.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return CatalogOwner(load_catalog(tmp_path / "profiles"))


async def commander(tmp_path: Path, module: Module, owner: CatalogOwner) -> Commander:
    cmd = Commander(Store(tmp_path / "data"), owner, module.status, root="live")
    await asyncio.to_thread(cmd.rebuild)
    cmd.start(module.publish)
    module.commander = cmd
    return cmd


async def settle(cmd: Commander, id: str, *stages: str, timeout: float = 10.0) -> None:
    """Wait until command ``id`` reaches one of ``stages``."""
    async with asyncio.timeout(timeout):
        while cmd.records[id].stage not in stages:
            await asyncio.sleep(0.01)


def stages(cmd: Commander, id: str) -> list[str]:
    return [s["stage"] for s in cmd.records[id].stages]


async def test_a_command_goes_through_every_stage_and_is_stored(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "set_mode", {"mode": "DRIVE"}, id="r1")
    await settle(cmd, "r1", *wire.FINAL_STAGES)
    assert stages(cmd, "r1") == ["requested", "sent", "received", "executed", "completed"]
    assert module.values["mode"] == "DRIVE"
    assert module.topics == ["live/tc/suparco/sup-rover-1"]
    read = Telecommands(module.profile).read(module.packets[0])
    assert (read.command.name, read.args, read.seq) == ("set_mode", {"mode": "DRIVE"}, 0)  # type: ignore[union-attr]
    assert rec.packet == module.packets[0].hex() and rec.requested_by == "alice"
    # the store holds the same history: a new service folds the same record
    again = Commander(Store(tmp_path / "data"), owner, module.status)
    again.rebuild()
    assert again.records["r1"].json() == cmd.records["r1"].json()
    await cmd.close()


async def test_bad_requests_are_refused_with_what_and_where(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    cases = [
        (ALICE, "sup-rover-1", "drive", {"distance": 80.0}, 422, "distance"),
        (ALICE, "sup-rover-1", "set_mode", {"mode": "FLY"}, 422, "mode"),
        (ALICE, "sup-rover-1", "set_mode", {"mode": "SAFE", "speed": 2}, 422, "speed"),
        (ALICE, "sup-rover-1", "warp", {}, 422, "command"),
        (ALICE, "sup-rover-9", "safe", {}, 422, "instrument"),
        (NARIT, "sup-rover-1", "safe", {}, 403, None),
        (VIEWER, "sup-rover-1", "safe", {}, 403, None),
    ]
    for who, inst, name, args, status, parameter in cases:
        with pytest.raises(RefusedError) as err:
            await cmd.submit(who, inst, name, args)
        assert (err.value.status, err.value.parameter) == (status, parameter), (name, args)
    assert "80 is outside [0.1, 50] m" in str(
        (await _refusal(cmd, ALICE, "drive", {"distance": 80.0})).args[0]
    )
    assert module.packets == [] and cmd.records == {}
    await cmd.close()


async def _refusal(cmd: Commander, who: Who, name: str, args: dict[str, Any]) -> RefusedError:
    with pytest.raises(RefusedError) as err:
        await cmd.submit(who, "sup-rover-1", name, args)
    return err.value


async def test_pre_send_conditions_are_checked_against_live_status(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    err = await _refusal(cmd, SUPARCO, "drive", {"distance": 5.0})
    assert err.status == 409
    assert "mode == DRIVE does not hold (it is SAFE)" in str(err)
    module.values.update(mode="DRIVE", batt_v=25.0)
    err = await _refusal(cmd, SUPARCO, "drive", {"distance": 5.0})
    assert "batt_v > 26.0 does not hold (it is 25.0)" in str(err)
    assert module.packets == []
    await cmd.close()


async def test_a_hazardous_command_needs_a_second_operator(tmp_path: Path) -> None:
    owner = catalog(tmp_path, executed_s=0.5)
    module = Module(owner)
    module.values["mode"] = "DRIVE"
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "drive", {"distance": 2.5})
    assert (rec.stage, rec.waiting) == ("queued", "approval") and module.packets == []
    for who, status in ((ALICE, 403), (SUPARCO, 403), (VIEWER, 403)):
        with pytest.raises(RefusedError) as err:
            await cmd.approve(who, rec.id)
        assert err.value.status == status
    await cmd.approve(BOB, rec.id)
    await settle(cmd, rec.id, *wire.FINAL_STAGES)
    assert rec.approved_by == "bob" and rec.stage == "completed"  # no executed conditions
    assert stages(cmd, rec.id) == ["requested", "queued", "approved", "sent", "received",
                                   "completed"]  # fmt: skip
    # the speed default went into the packet; the distance as counts of 0.01 m
    assert rec.args == {"distance": 2.5, "speed": 3} and rec.raw == {"distance": 250, "speed": 3}
    # a partner's hazardous request waits for an operator; a rejected one is never sent
    mine = await cmd.submit(SUPARCO, "sup-rover-1", "drive", {"distance": 1.0})
    await cmd.reject(ALICE, mine.id, "not near the lander today")
    assert mine.stage == "rejected" and mine.reason == "not near the lander today"
    with pytest.raises(RefusedError) as err:
        await cmd.approve(BOB, mine.id)
    assert err.value.status == 409
    assert len(module.packets) == 1
    await cmd.close()


async def test_a_lost_command_times_out_waiting_for_its_acknowledgement(tmp_path: Path) -> None:
    owner = catalog(tmp_path, received_s=0.3)
    module = Module(owner, lose=True)
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "safe", {})
    await settle(cmd, rec.id, *wire.FINAL_STAGES)
    assert (rec.stage, rec.failed_stage) == ("timed_out", "received")
    assert "no acknowledgement within 0.3 s" in (rec.reason or "")
    await cmd.close()


async def test_a_rejected_packet_fails_with_the_module_reason(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner, reject=True)
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "safe", {})
    await settle(cmd, rec.id, *wire.FINAL_STAGES)
    assert (rec.stage, rec.failed_stage) == ("failed", "received")
    assert rec.reason == "the module rejected it: BAD_CHECKSUM"
    await cmd.close()


async def test_executed_conditions_that_never_hold_time_out(tmp_path: Path) -> None:
    owner = catalog(tmp_path, executed_s=0.3)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    module.profile.command("set_mode").sim.set.clear()  # type: ignore[union-attr]
    try:
        rec = await cmd.submit(ALICE, "sup-rover-1", "set_mode", {"mode": "SCIENCE"})
        await settle(cmd, rec.id, *wire.FINAL_STAGES)
    finally:
        module.profile.command("set_mode").sim.set["mode"] = "$mode"  # type: ignore[union-attr]
    assert (rec.stage, rec.failed_stage) == ("timed_out", "executed")
    assert "within 0.3 s" in (rec.reason or "")
    await cmd.close()


async def test_one_command_per_instrument_is_in_flight(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner, lose=True)
    cmd = await commander(tmp_path, module, owner)
    first = await cmd.submit(ALICE, "sup-rover-1", "set_mode", {"mode": "DRIVE"})
    second = await cmd.submit(ALICE, "sup-rover-1", "safe", {})
    assert (first.stage, second.stage) == ("sent", "requested") and len(module.packets) == 1
    # the module acknowledges the first: the second goes, with the next sequence count
    module.lose = False
    await module.publish(module.topics[0], module.packets[0])
    await settle(cmd, second.id, "completed")
    assert [first.seq, second.seq] == [0, 1] and len(module.packets) == 3
    await cmd.close()


async def test_a_request_id_sent_twice_is_one_command(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    a = await cmd.submit(SUPARCO, "sup-rover-1", "safe", {}, id="same")
    b = await cmd.submit(SUPARCO, "sup-rover-1", "safe", {}, id="same")
    assert a is b and len(module.packets) == 1
    with pytest.raises(RefusedError) as err:
        await cmd.submit(SUPARCO, "sup-rover-1", "set_mode", {"mode": "DRIVE"}, id="same")
    assert err.value.status == 409
    await cmd.close()


async def test_a_held_queue_keeps_commands_through_a_restart(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    with pytest.raises(RefusedError):
        await cmd.hold(SUPARCO, "sup-rover-1")
    await cmd.hold(ALICE, "sup-rover-1")
    rec = await cmd.submit(SUPARCO, "sup-rover-1", "set_mode", {"mode": "CHARGE"})
    gone = await cmd.submit(SUPARCO, "sup-rover-1", "safe", {})
    await cmd.cancel(SUPARCO, gone.id)
    assert (rec.stage, rec.waiting, gone.stage) == ("queued", "hold", "cancelled")
    assert module.packets == []
    await cmd.close()
    later = await commander(tmp_path, module, owner)  # a restarted console: still held
    assert later.queue("sup-rover-1")["held"] and later.records[rec.id].stage == "queued"
    assert module.packets == []
    await later.hold(ALICE, "sup-rover-1", held=False)
    await settle(later, rec.id, "completed")
    assert module.values["mode"] == "CHARGE" and len(module.packets) == 1
    await later.close()


async def test_a_restart_mid_verification_goes_on_where_it_was(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner, lose=True)
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "set_mode", {"mode": "SCIENCE"})
    assert rec.stage == "sent"
    await cmd.close()  # the console stops; the module executes the command meanwhile
    module.lose = False
    module.commander = None
    module.values.update(cmd_accepted=4, cmd_last_seq=rec.seq, mode="SCIENCE")
    later = await commander(tmp_path, module, owner)
    assert later.records[rec.id].stage == "sent"
    module.tell()  # the retained status reaches the new service
    await settle(later, rec.id, "completed")
    nxt = await later.submit(ALICE, "sup-rover-1", "safe", {})
    assert nxt.seq == rec.seq + 1  # type: ignore[operator]
    await later.close()


async def test_a_broker_that_is_away_fails_the_command_at_once(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)

    async def away(_topic: str, _packet: bytes) -> None:
        raise CommandLinkError("not connected to the broker 127.0.0.1:1")

    cmd = Commander(Store(tmp_path / "data"), owner, module.status)
    cmd.start(away)
    rec = await cmd.submit(ALICE, "sup-rover-1", "safe", {})
    assert (rec.stage, rec.failed_stage) == ("failed", "sent")
    assert "not connected" in (rec.reason or "")
    await cmd.close()


async def test_viewers_see_history_without_sensitive_arguments(tmp_path: Path) -> None:
    owner = catalog(tmp_path)
    module = Module(owner)
    cmd = await commander(tmp_path, module, owner)
    rec = await cmd.submit(ALICE, "sup-rover-1", "set_mode", {"mode": "DRIVE"})
    rec.sensitive = ("mode",)
    assert cmd.history(VIEWER) == [rec]
    assert rec.json(show_args=False)["args"] == {"mode": "(hidden)"}
    assert rec.json(show_args=False)["packet"] is None
    assert cmd.history(NARIT) == [] and cmd.history(SUPARCO) == [rec]
    await cmd.close()
