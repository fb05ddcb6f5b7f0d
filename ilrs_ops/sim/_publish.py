"""The simulator's MQTT side: every module publishes its packets at its own rate, QoS 1, and
executes the telecommands that arrive on its TC topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable

import aiomqtt

from ilrs_ops import wire
from ilrs_ops.backoff import Backoff
from ilrs_ops.errors import InputError
from ilrs_ops.profiles import Catalog
from ilrs_ops.sim._environment import Environment
from ilrs_ops.sim._faults import Faults
from ilrs_ops.sim._station import Handled, Module
from ilrs_ops.sources import open_client, publish, raise_if_stopping

log = logging.getLogger(__name__)

NS = 1_000_000_000


class Simulator:
    """The simulated station: one Module per profile, published to ``{root}/tm/{partner}/{id}``.

    ``await run(duration_s)`` connects, publishes and returns. Packet times start at
    ``start_ns`` (default: now) and advance by each profile's period; ``bundle`` packets travel
    per MQTT message. Lost connections are retried with backoff; packets that fall due while
    the broker is away are lost, as on a real link, and show up as sequence gaps on the ground.

    Each module with commands subscribes (QoS 1) to ``{root}/tc/{partner}/{id}`` before the
    first packet goes out; what became of each command is counted in ``commands``.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        root: str = "ilrs",
        seed: int = 0,
        start_ns: int | None = None,
        time_scale: float = 1.0,
        bundle: int = 1,
        faults: Faults | None = None,
        instruments: Iterable[str] | None = None,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if bundle < 1:
            raise InputError(f"bundle must be >= 1 packet per message, not {bundle}")
        chosen = set(instruments) if instruments is not None else None
        unknown = sorted((chosen or set()) - catalog.instruments.keys())
        if unknown:
            raise InputError(f"unknown instrument(s) {unknown}; see `ilrs-ops profiles list`")
        self.host, self.port, self.root = host, port, root
        self._login = {"username": username, "password": password}
        self.bundle = bundle
        self.client_id = client_id or f"ilrs-sim-{seed}-{int(time.time())}"
        self.start_ns = start_ns if start_ns is not None else time.time_ns()
        self.env = env = Environment(epoch_ns=self.start_ns, time_scale=time_scale)
        self.modules = [
            Module(inst, env, seed=seed, start_ns=self.start_ns, faults=faults)
            for inst in catalog
            if chosen is None or inst.id in chosen
        ]
        self.published: Counter[str] = Counter()  # packets per instrument
        self.messages: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()  # packets that fell due while disconnected
        self.commands: Counter[tuple[str, str]] = Counter()  # (instrument, Handled.outcome)
        self._by_tc_topic = {
            wire.topic(root, wire.TC, m.profile.partner, m.profile.instrument): m
            for m in self.modules
            if m.telecommands is not None
        }
        self._by_id = {m.instrument.id: m for m in self.modules}
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()

    async def run(self, duration_s: float | None = None) -> None:
        """Publish until ``duration_s`` of packet time has been sent (forever when None)."""
        async with asyncio.TaskGroup() as tg:
            link = tg.create_task(self._keep_connected())
            modules = [tg.create_task(self._run_module(m, duration_s)) for m in self.modules]
            await asyncio.gather(*modules)
            link.cancel()

    def injected(self) -> Counter[tuple[str, str]]:
        """Faults injected so far, by (instrument, kind)."""
        return Counter(
            {(m.instrument.id, k): v for m in self.modules for k, v in m.injected.items()}
        )

    async def _keep_connected(self) -> None:
        backoff = Backoff()
        while True:
            raise_if_stopping()  # a listen that ended because of the cancel: no reconnect
            try:
                async with open_client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    max_queued_outgoing_messages=100_000,
                    **self._login,
                ) as client:
                    # Every module publishes concurrently by design; aiomqtt's default warns at 10.
                    client.pending_calls_threshold = 10 * len(self.modules) + 100
                    for tc in self._by_tc_topic:
                        await client.subscribe(tc, qos=1)
                    self._client = client
                    backoff.reset()
                    self._connected.set()
                    log.info("simulator connected to %s:%d", self.host, self.port)
                    await self._listen(client)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                await backoff.wait(log, f"simulator: broker {self.host}:{self.port}: {exc}")

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Hand each telecommand to its module until the connection drops (aiomqtt raises
        MqttError from the iterator)."""
        async for message in client.messages:
            m = self._by_tc_topic.get(str(message.topic))
            if m is None or not isinstance(message.payload, bytes | bytearray):
                continue
            self.handle(m, bytes(message.payload))

    def handle(self, m: Module, packet: bytes) -> Handled:
        """One telecommand to module ``m``; a power switch of another module takes effect on
        that module at once."""
        done = m.command(packet)
        self.commands[m.instrument.id, done.outcome] += 1
        r = done.read
        log.info(
            "simulator: %s: telecommand %s seq %s: %s%s",
            m.instrument.id,
            r.command.name if r is not None and r.command is not None else "?",
            r.seq if r is not None else "?",
            done.outcome,
            f" ({r.reason}: {r.detail})" if r is not None and r.reason != wire.TC_NONE else "",
        )
        target = self._by_id.get(done.target) if done.target is not None else None
        if target is not None and r is not None and r.command is not None:
            target.switch(r.command.sim.power == "on")  # type: ignore[union-attr]
        return done

    async def _run_module(self, m: Module, duration_s: float | None) -> None:
        # The clock starts with the first connection: a packet lost before the first one that
        # arrives leaves no sequence gap on the ground, so nothing could account for it.
        await self._connected.wait()
        wall0 = time.monotonic()
        period_s = m.period_ns / NS
        total = None if duration_s is None else max(1, round(duration_s / period_s))
        topic = m.instrument.topic(self.root)
        while total is None or m.index < total:
            n = self.bundle if total is None else min(self.bundle, total - m.index)
            due_at = wall0 + (m.index + n - 1) * period_s  # when the batch's last packet is due
            await asyncio.sleep(max(0.0, due_at - time.monotonic()))
            if not self._connected.is_set():
                await self._connected.wait()
                behind = int((time.monotonic() - wall0) / period_s) - m.index
                if behind > 0:  # the link was down: these packets never reached the ground
                    skip = behind if total is None else min(behind, total - m.index)
                    m.index += skip
                    self.lost[m.instrument.id] += skip
                    log.warning(
                        "simulator: %s: %d packets fell due while the broker was away: lost",
                        m.instrument.id,
                        skip,
                    )
                    continue
            batch = m.next_batch(n)
            await self._publish(topic, batch.packets, m.instrument.id)
        await self._publish(topic, m.flush(), m.instrument.id)

    async def _publish(self, topic: str, packets: list[bytes], instrument: str) -> None:
        if not packets:
            return
        frames = [b"".join(packets)] if self.bundle > 1 else packets
        for frame in frames:
            client = self._client
            if client is None:
                self.lost[instrument] += len(packets)
                log.warning("simulator: %s: %d packets lost: no broker", instrument, len(packets))
                return
            try:
                await publish(client, topic, frame)
            except aiomqtt.MqttError as exc:
                self.lost[instrument] += len(packets)
                log.warning("simulator: publish to %s failed: %s", topic, exc)
                return
            self.messages[instrument] += 1
        self.published[instrument] += len(packets)
