"""`ilrs-ops`: the command line. Each command parses options, then calls the framework."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.errors import IlrsError, ProfileError
from ilrs_ops.ingest import IngestConfig, Ingestor, Protocol
from ilrs_ops.monitor import Monitor
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.settings import Settings, parse_broker
from ilrs_ops.sim import Faults, Simulator
from ilrs_ops.store import Store

app = typer.Typer(
    help="ILRS ground segment: telemetry ingest and operations.", no_args_is_help=True
)
profiles_app = typer.Typer(help="Check and list partner instrument profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")

# Wide when piped, so that tables are never cut short for scripts and logs.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

ProfilesOpt = Annotated[
    Path | None,
    typer.Option("--profiles", help="folder of instrument profiles [env ILRS_PROFILES]"),
]
BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="host:port of the MQTT broker [env ILRS_BROKER]")
]
RootOpt = Annotated[str | None, typer.Option("--root", help="topic root [env ILRS_ROOT]")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="store folder [env ILRS_DATA]")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed: same seed, same packets")]
ScaleOpt = Annotated[
    float, typer.Option("--time-scale", help="lunar cycle speed-up (10000: a day+night in ~4 min)")
]
FaultOpt = Annotated[
    str,
    typer.Option("--fault", help="fault rates per packet, e.g. limit=0.01,gap=0.005 or all=0.01"),
]


def _catalog(paths: list[Path]) -> Catalog:
    try:
        return load_catalog(paths)
    except ProfileError as exc:
        for p in exc.problems:
            err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) in the profiles")
        raise typer.Exit(1) from None


def _run(coro: object) -> None:
    """Run a coroutine; Ctrl-C stops cleanly, IlrsError prints its message and exits 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        err.print("stopped")
    except IlrsError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@profiles_app.command("check")
def profiles_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="profile files or folders")] = None,
) -> None:
    """Validate profiles; list every problem with file:line:column (exit 1 if any)."""
    catalog = _catalog(paths or [Settings().profiles])
    out.print(f"{len(catalog)} profile(s) OK")


@profiles_app.command("list")
def profiles_list(
    paths: Annotated[list[Path] | None, typer.Argument(help="profile files or folders")] = None,
) -> None:
    """A table of the station's instruments."""
    catalog = _catalog(paths or [Settings().profiles])
    t = Table()
    for name in ("partner", "instrument", "kind", "APID", "channels", "rate", "packet"):
        t.add_column(name, no_wrap=True)
    for inst in sorted(catalog, key=lambda i: (i.profile.partner, i.id)):
        p = inst.profile
        rate = 1.0 / p.expected_period_s
        t.add_row(
            p.partner,
            p.instrument,
            p.kind,
            f"{p.apid:#05x}",
            str(len(inst.channels)),
            f"{rate:g} Hz",
            f"{p.packet_length} B",
        )
    out.print(t)


@app.command()
def simulate(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    seed: SeedOpt = 0,
    time_scale: ScaleOpt = 1.0,
    bundle: Annotated[int, typer.Option(help="packets per MQTT message", min=1)] = 1,
    fault: FaultOpt = "",
    duration: Annotated[float | None, typer.Option(help="seconds of telemetry, then stop")] = None,
    instrument: Annotated[list[str] | None, typer.Option(help="only these instruments")] = None,
) -> None:
    """Run the simulated station: every profile publishes CCSDS packets at its rate, QoS 1."""
    s = Settings()
    catalog = _catalog([profiles or s.profiles])
    host, port = _broker_address(broker or s.broker or "127.0.0.1:1883")
    faults = _faults(fault)

    async def main() -> None:
        sim = Simulator(
            catalog,
            host=host,
            port=port,
            root=root or s.root,
            seed=seed,
            time_scale=time_scale,
            bundle=bundle,
            faults=faults,
            instruments=instrument,
        )
        err.print(f"simulating {len(sim.modules)} instruments -> {host}:{port}")
        await sim.run(duration)
        err.print(f"published {sum(sim.published.values())} packets")

    _run(main())


@app.command()
def ingest(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    data: DataOpt = None,
    shard: Annotated[str, typer.Option(help="this process's shard i/N of the instruments")] = "0/1",
    protocol: Annotated[
        str, typer.Option(help="MQTT protocol: v5, or v311 (embedded broker)")
    ] = "v5",
) -> None:
    """Ingest telemetry: MQTT -> durable WAL -> ack -> pipelines -> Parquet, status, events."""
    s = Settings()
    catalog = _catalog([profiles or s.profiles])
    host, port = _broker_address(broker or s.broker or "127.0.0.1:1883")
    try:
        i, n = (int(x) for x in shard.split("/"))
        config = IngestConfig(
            host=host,
            port=port,
            root=root or s.root,
            shard=i,
            shards=n,
            protocol=_protocol(protocol),
        )
    except ValueError as exc:
        raise typer.BadParameter(
            f"{shard!r}: {exc}; write i/N, e.g. 0/2", param_hint="--shard"
        ) from None

    async def main() -> None:
        with Store(data or s.data, catalog) as store:
            err.print(f"ingesting shard {i}/{n} from {host}:{port} into {store.root}")
            ingestor = Ingestor(catalog, store, config, profiles=profiles or s.profiles)
            try:
                await ingestor.run()
            finally:
                await ingestor.close()

    _run(main())


@app.command()
def monitor(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
) -> None:
    """Subscribe to the station's telemetry and show what arrives, decoded, per instrument."""
    s = Settings()
    catalog = _catalog([profiles or s.profiles])
    host, port = _broker_address(broker or s.broker or "127.0.0.1:1883")

    async def main() -> None:
        async with _mqtt(host, port) as client:
            await _watch(Monitor(catalog, root=root or s.root), client)

    _run(main())


@app.command()
def up(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    data: DataOpt = None,
    seed: SeedOpt = 0,
    time_scale: ScaleOpt = 10000.0,
    fault: FaultOpt = "",
) -> None:
    """Run the station on one machine: broker (embedded unless --broker), simulator, ingest
    into the store, and a live status table."""
    s = Settings()
    folder = profiles or s.profiles
    catalog = _catalog([folder])
    faults = _faults(fault)
    address = broker or s.broker

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            if address:
                host, port = _broker_address(address)
            else:
                host, port = "127.0.0.1", s.embedded_port
                await stack.enter_async_context(EmbeddedBroker(host=host, port=port))
                err.print(f"embedded MQTT broker on {host}:{port}")
            store = stack.enter_context(Store(data or s.data, catalog))
            config = IngestConfig(
                host=host, port=port, root=s.root, protocol="v5" if address else "v311"
            )
            ingestor = Ingestor(catalog, store, config, profiles=folder)
            stack.push_async_callback(ingestor.close)
            sim = Simulator(
                catalog,
                host=host,
                port=port,
                root=s.root,
                seed=seed,
                time_scale=time_scale,
                faults=faults,
            )
            err.print(
                f"simulating {len(sim.modules)} instruments, storing in {store.root}; Ctrl-C stops"
            )
            async with asyncio.TaskGroup() as tg:
                tg.create_task(ingestor.run())
                await ingestor.ready()
                tg.create_task(sim.run())
                tg.create_task(_show(lambda: _status_table(ingestor)))

    _run(main())


HEALTH_STYLE = {
    "nominal": "green",
    "warning": "yellow",
    "critical": "bold red",
    "stale": "magenta",
    "offline": "dim",
}


def _status_table(ingestor: Ingestor) -> Table:
    now = time.time()
    t = Table(title="ILRS station — ingest status")
    for col in ("partner", "instrument", "health", "packets", "rejects", "latest values"):
        t.add_column(col, no_wrap=col != "latest values")
    for lane_id, st in sorted(
        ingestor.status.items(), key=lambda kv: (kv[1].instrument.profile.partner, kv[0])
    ):
        health = st.health(now)
        values = ", ".join(f"{k}={_short(v)}" for k, v in list(st.latest.items())[:4])
        t.add_row(
            st.instrument.profile.partner,
            lane_id,
            f"[{HEALTH_STYLE[health]}]{health}[/]",
            str(st.packets),
            str(sum(st.rejects.values())),
            values,
        )
    return t


def _short(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return f"[{len(v)} values]"
    return str(v)


async def _show(render: Callable[[], Table]) -> None:
    """Redraw a table: live on a terminal, every 10 s otherwise (logs, CI)."""
    if sys.stdout.isatty():
        with Live(render(), console=out, refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(0.5)
                live.update(render())
    while True:
        await asyncio.sleep(10)
        out.print(render())


async def _watch(mon: Monitor, client: aiomqtt.Client) -> None:
    """Feed the monitor and show its table until the connection ends."""
    async with asyncio.TaskGroup() as tg:
        reader = tg.create_task(mon.run(client))
        view = tg.create_task(_show(mon.table))
        await reader
        view.cancel()


@contextlib.asynccontextmanager
async def _mqtt(host: str, port: int) -> AsyncIterator[aiomqtt.Client]:
    try:
        async with aiomqtt.Client(host, port) as client:
            yield client
    except aiomqtt.MqttError as exc:
        raise IlrsError(f"MQTT broker {host}:{port}: {exc}") from exc


def _broker_address(text: str) -> tuple[str, int]:
    try:
        return parse_broker(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--broker") from None


def _protocol(text: str) -> Protocol:
    if text not in ("v5", "v311"):
        raise typer.BadParameter(f"{text!r}: use v5 or v311", param_hint="--protocol")
    return text  # type: ignore[return-value]


def _faults(text: str) -> Faults:
    try:
        return Faults.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
