"""`ilrs-ops`: the command line. Each command parses options, then calls the framework."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ilrs_ops.broker import EmbeddedBroker
from ilrs_ops.broker_config import write_broker_config
from ilrs_ops.console import ConsoleSettings, create_token, serve
from ilrs_ops.errors import IlrsError, InputError, ProfileError
from ilrs_ops.ingest import IngestConfig, Ingestor, Protocol
from ilrs_ops.monitor import Monitor
from ilrs_ops.profiles import Catalog, load_catalog
from ilrs_ops.replay import (
    CHUNK_OCTETS,
    Recorder,
    StoreSource,
    create_recording,
    import_packets,
    replay_into,
    replay_root,
    resolve_store,
)
from ilrs_ops.settings import Settings, load_settings, parse_broker
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
PortOpt = Annotated[int, typer.Option("--http-port", help="console HTTP port (0: any free one)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed: same seed, same packets")]
ScaleOpt = Annotated[
    float, typer.Option("--time-scale", help="lunar cycle speed-up (10000: a day+night in ~4 min)")
]
# Where a command needs a broker and none is given (`up` embeds one instead).
LOCAL_BROKER = "127.0.0.1:1883"

FaultOpt = Annotated[
    str,
    typer.Option("--fault", help="fault rates per packet, e.g. limit=0.01,gap=0.005 or all=0.01"),
]


def _settings(**options: object) -> Settings:
    """The settings with the command line's options in force; a bad value exits 2 saying which
    setting and what is wrong."""
    try:
        return load_settings(**options)
    except InputError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


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
    catalog = _catalog(paths or [_settings().profiles])
    out.print(f"{len(catalog)} profile(s) OK")


@profiles_app.command("list")
def profiles_list(
    paths: Annotated[list[Path] | None, typer.Argument(help="profile files or folders")] = None,
) -> None:
    """A table of the station's instruments."""
    catalog = _catalog(paths or [_settings().profiles])
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
    s = _settings(broker=broker, profiles=profiles, root=root)
    catalog = _catalog([s.profiles])
    host, port = _broker(s)
    faults = _faults(fault)

    async def main() -> None:
        sim = Simulator(
            catalog,
            host=host,
            port=port,
            root=s.root,
            seed=seed,
            time_scale=time_scale,
            bundle=bundle,
            faults=faults,
            instruments=instrument,
            **s.broker_login,
        )
        err.print(f"simulating {len(sim.modules)} instruments -> {host}:{port}")
        await sim.run(duration)
        lost = ", ".join(f"{i}={n}" for i, n in sorted(sim.lost.items()) if n) or "none"
        err.print(
            f"published {sum(sim.published.values())} packets; lost {sum(sim.lost.values())} "
            f"(broker unreachable or no PUBACK): {lost}"
        )

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
    segment_messages: Annotated[
        int, typer.Option(help="seal a lane's WAL segment to Parquet at this many messages", min=1)
    ] = IngestConfig.segment_messages,
) -> None:
    """Ingest telemetry: MQTT -> durable WAL -> ack -> pipelines -> Parquet, status, events."""
    s = _settings(broker=broker, profiles=profiles, root=root, data=data)
    catalog = _catalog([s.profiles])
    host, port = _broker(s)
    try:
        i, n = (int(x) for x in shard.split("/"))
        config = IngestConfig(
            host=host,
            port=port,
            root=s.root,
            shard=i,
            shards=n,
            protocol=_protocol(protocol),
            segment_messages=segment_messages,
            **s.broker_login,
        )
    except ValueError as exc:
        raise typer.BadParameter(
            f"{shard!r}: {exc}; write i/N, e.g. 0/2", param_hint="--shard"
        ) from None

    async def main() -> None:
        with Store(s.data, catalog) as store:
            err.print(f"ingesting shard {i}/{n} from {host}:{port} into {store.root}")
            ingestor = Ingestor(catalog, store, config, profiles=s.profiles)
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
    s = _settings(broker=broker, profiles=profiles, root=root)
    catalog = _catalog([s.profiles])
    host, port = _broker(s)

    async def main() -> None:
        async with _mqtt(host, port, s.broker_login) as client:
            await _watch(Monitor(catalog, root=s.root), client)

    _run(main())


@app.command()
def up(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    data: DataOpt = None,
    seed: SeedOpt = 0,
    time_scale: ScaleOpt = 10000.0,
    fault: FaultOpt = "",
    http_port: PortOpt = 8000,
) -> None:
    """Run the station on one machine: broker (embedded unless --broker), simulator, ingest
    into the store, the operations console, and a live status table."""
    s = _settings(broker=broker, profiles=profiles, data=data)
    folder = s.profiles
    catalog = _catalog([folder])
    faults = _faults(fault)
    address = s.broker

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            login = s.broker_login if address else {}  # the embedded broker takes anyone
            if address:
                host, port = _broker_address(address)
            else:
                host, port = "127.0.0.1", s.embedded_port
                await stack.enter_async_context(EmbeddedBroker(host=host, port=port))
                err.print(f"embedded MQTT broker on {host}:{port}")
            store = stack.enter_context(Store(s.data, catalog))
            config = IngestConfig(
                host=host, port=port, root=s.root, protocol="v5" if address else "v311", **login
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
                **login,
            )
            err.print(
                f"simulating {len(sim.modules)} instruments, storing in {store.root}; Ctrl-C stops"
            )
            # A fresh operator token for this run, kept (hashed) beside the store.
            tokens = store.root / "up-tokens.yaml"
            tokens.unlink(missing_ok=True)
            token = create_token(tokens, "operator", "operator")
            console = ConsoleSettings(
                broker_host=host,
                broker_port=port,
                root=s.root,
                data=store.root,
                profiles=folder,
                tokens=tokens,
                http_port=http_port,
                broker_user=login.get("username"),
                broker_password=login.get("password"),
            )
            async with asyncio.TaskGroup() as tg:
                tg.create_task(ingestor.run())
                await ingestor.ready()
                tg.create_task(sim.run())
                started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                tg.create_task(serve(console, started))
                url = await started
                err.print(f"console: {url}/  operator token: {token}")
                tg.create_task(_show(lambda: _status_table(ingestor)))

    _run(main())


@app.command("console")
def console_(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    data: DataOpt = None,
    http_port: PortOpt = 8000,
    tokens: Annotated[
        Path | None, typer.Option(help="tokens file [env ILRS_CONSOLE_TOKENS]")
    ] = None,
    dev: Annotated[
        bool, typer.Option(help="without a tokens file, make an operator token")
    ] = False,
) -> None:
    """Serve the operations console (API, live WebSocket) over the broker and the store."""
    s = _settings(broker=broker, profiles=profiles, root=root, data=data)
    host, port = _broker(s)
    given: dict[str, object] = {"tokens": tokens} if tokens else {}
    if s.broker_user:  # else ILRS_CONSOLE_BROKER_USER/_PASSWORD, when set, stay in force
        given |= {"broker_user": s.broker_user, "broker_password": s.broker_password}
    try:
        settings = ConsoleSettings(
            broker_host=host,
            broker_port=port,
            root=s.root,
            data=s.data,
            profiles=s.profiles,
            http_port=http_port,
            dev=dev,
            **given,
        )
    except ValidationError as exc:
        err.print(f"[red]error[/red] {exc.errors()[0]['msg']}", highlight=False)
        raise typer.Exit(2) from None
    _run(serve(settings, capture_signals=True))


@app.command("token")
def token_(
    name: Annotated[str, typer.Argument(help="who the token is for")],
    role: Annotated[str, typer.Option(help="operator, partner or viewer")],
    tokens: Annotated[Path, typer.Option(help="tokens file to add it to")],
    partner: Annotated[str | None, typer.Option(help="the partner, for role partner")] = None,
) -> None:
    """Make a console token: printed once; the tokens file keeps only its sha256."""
    try:
        out.print(create_token(tokens, name, role, partner))  # type: ignore[arg-type]
    except IlrsError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command("broker-config")
def broker_config(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the files into")],
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    port: Annotated[int, typer.Option(help="port of the broker's listener")] = 1883,
    run_as: Annotated[
        str | None, typer.Option(help="user Mosquitto runs as when started as root")
    ] = None,
) -> None:
    """Generate Mosquitto passwords, ACLs (from the profiles) and a config: each instrument may
    only publish its own telemetry topic; passwords go to credentials.env (mode 0600)."""
    s = _settings(profiles=profiles, root=root)
    catalog = _catalog([s.profiles])
    try:
        cfg = write_broker_config(catalog, out_dir, root=s.root, port=port, run_as=run_as)
    except (IlrsError, OSError) as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(
        f"{len(cfg.users)} MQTT users ({len(catalog)} instruments) in {cfg.folder}: passwords, "
        f"acl, mosquitto.conf; credentials in {cfg.credentials} (mode 0600, keep it secret)"
    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="raw concatenated CCSDS space packets")],
    instrument: Annotated[
        list[str] | None, typer.Option(help="decode with this instrument's profile (repeatable)")
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="decode with this profile file (not in the catalog)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="recording name [default: file name]")] = None,
    data: DataOpt = None,
    profiles: ProfilesOpt = None,
    chunk_size: Annotated[int, typer.Option(help="octets read at a time", min=1)] = CHUNK_OCTETS,
) -> None:
    """Import a packet file as a recording: every packet routed by APID to the profile(s) given
    (all of the catalog when none is), decoded, or quarantined with its reason."""
    if instrument and profile:
        raise typer.BadParameter("give --instrument or --profile, not both", param_hint="--profile")
    s = _settings(profiles=profiles, data=data)
    catalog = _catalog([s.profiles])
    if profile is not None:
        chosen = _catalog([profile])
        catalog = Catalog({**catalog.instruments, **chosen.instruments})
        routes = chosen.by_apid
    elif instrument:
        unknown = sorted(set(instrument) - catalog.instruments.keys())
        if unknown:
            raise typer.BadParameter(
                f"unknown instrument(s) {unknown}; see `ilrs-ops profiles list`",
                param_hint="--instrument",
            )
        routes = {catalog.instruments[i].profile.apid: catalog.instruments[i] for i in instrument}
    else:
        routes = catalog.by_apid
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    name = name or re.sub(r"[^a-z0-9_.-]+", "-", file.stem.lower()).strip("-.") or "import"

    async def main() -> None:
        rec = create_recording(s.data, name, "imported", str(file.resolve()))
        with Store(rec.path, catalog) as store, _progress("importing", file.stat().st_size) as bar:
            recorder = Recorder(store, catalog)
            summary = await asyncio.to_thread(
                import_packets, file, recorder, routes, chunk_octets=chunk_size, progress=bar
            )
        rec.extra = {
            "octets": summary.octets,
            "by_apid": {str(k): v for k, v in summary.by_apid.items()},
        }
        seen = sorted({*recorder.packets, *recorder.rejects} - {"_unknown"})
        rec.finish(seen, recorder.packets, recorder.rejects)
        t = Table(title=f"imported {file.name} into recording {name!r}")
        for col in ("APID", "instrument", "packets", "decoded"):
            t.add_column(col, no_wrap=True)
        by_apid = {a: i.id for a, i in routes.items()}
        # Garbage reads as many APIDs of an item or two: the largest ten, then the rest summed.
        ranked = sorted(summary.by_apid.items(), key=lambda kv: (kv[0] not in by_apid, -kv[1]))
        for apid, count in sorted(ranked[:10]):
            inst = by_apid.get(apid, "-" if apid >= 0 else "(no header)")
            decoded = summary.decoded.get(inst, 0) if apid in by_apid else 0
            t.add_row(f"{apid:#05x}" if apid >= 0 else "-", inst, str(count), str(decoded))
        if len(ranked) > 10:
            rest = sum(c for _, c in ranked[10:])
            t.add_row(f"{len(ranked) - 10} more", "-", str(rest), "0")
        out.print(t)
        reasons = ", ".join(f"{r} {c}" for r, c in sorted(summary.quarantined.items())) or "none"
        out.print(
            f"{summary.octets} octets, {summary.items} packets: "
            f"{sum(summary.decoded.values())} decoded, quarantined: {reasons}"
        )

    _run(main())


@app.command()
def replay(
    from_: Annotated[
        str, typer.Option("--from", help="a recording name, or the folder of a store")
    ] = "",
    instrument: Annotated[list[str] | None, typer.Option(help="only these instruments")] = None,
    start: Annotated[str | None, typer.Option(help="from this packet time (ISO 8601 UTC)")] = None,
    stop: Annotated[str | None, typer.Option(help="up to this packet time, exclusive")] = None,
    speed: Annotated[str, typer.Option(help="1, 10, ... times real time, or max")] = "max",
    bundle: Annotated[int, typer.Option(help="packets per MQTT message", min=1)] = 1,
    to: Annotated[str | None, typer.Option(help="recording to replay into [replay-TIME]")] = None,
    direct: Annotated[
        bool, typer.Option(help="no MQTT: straight through the pipelines (current profiles)")
    ] = False,
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    data: DataOpt = None,
    protocol: Annotated[str, typer.Option(help="MQTT protocol: v5, or v311 (embedded)")] = "v5",
) -> None:
    """Replay a store or recording in packet-time order into a new recording: over MQTT under
    {root}-replay/{name} (never the live root) at a speed factor, or --direct."""
    s = _settings(broker=broker, profiles=profiles, root=root, data=data)
    catalog = _catalog([s.profiles])
    if not from_:
        raise typer.BadParameter("say what to replay: a recording name or a store folder",
                                 param_hint="--from")  # fmt: skip
    factor = _speed(speed)
    window = (_time_ns(start, "--start"), _time_ns(stop, "--stop"))
    if window[0] is not None and window[1] is not None and window[0] >= window[1]:
        raise typer.BadParameter(f"{start} is not before {stop}: the window is [start, stop)",
                                 param_hint="--stop")  # fmt: skip
    folder = s.data
    name = to or "replay-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ").lower()
    host, port = _broker(s)
    topic_root = replay_root(s.root, name)

    async def main() -> None:
        src = resolve_store(folder, from_)
        try:
            source = StoreSource(
                src, catalog, root=topic_root, instruments=instrument,
                start_ns=window[0], stop_ns=window[1], bundle=bundle,
            )  # fmt: skip
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--instrument") from None
        rec = create_recording(folder, name, "replayed", str(src))
        rec.window = window
        rec.extra = {"speed": speed, "direct": direct, "bundle": bundle, "topic_root": topic_root}
        with _progress("replaying", source.total) as bar:
            await replay_into(
                source, rec, catalog, host=host, port=port, speed=factor, direct=direct,
                protocol=_protocol(protocol), progress=bar, **s.broker_login,
            )  # fmt: skip
        packets = rec.packets
        how = "directly" if direct else f"over MQTT ({topic_root}, speed {speed})"
        out.print(
            f"replayed {sum(packets.values())} packets of {len(source.instruments)} instrument(s)"
            f" from {src} {how} into recording {name!r} ({rec.path})"
        )

    _run(main())


@contextlib.contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields the function to advance it (safe from threads)."""
    with Progress(console=err, transient=not sys.stderr.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise typer.BadParameter(
            f"{text!r}: a factor > 0 (1, 10, ...) or max", param_hint="--speed"
        )
    return value


def _time_ns(text: str | None, hint: str) -> int | None:
    """ISO 8601 (UTC unless it says otherwise), or integer ns since 1970."""
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write an ISO 8601 time, e.g. 2026-11-18T12:00:00Z", param_hint=hint
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


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
async def _mqtt(
    host: str, port: int, login: dict[str, str | None]
) -> AsyncIterator[aiomqtt.Client]:
    try:
        async with aiomqtt.Client(host, port, **login) as client:
            yield client
    except aiomqtt.MqttError as exc:
        raise IlrsError(f"MQTT broker {host}:{port}: {exc}") from exc


def _broker(s: Settings) -> tuple[str, int]:
    """The broker a command talks to: --broker, else ILRS_BROKER, else the local one."""
    return _broker_address(s.broker or LOCAL_BROKER)


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
