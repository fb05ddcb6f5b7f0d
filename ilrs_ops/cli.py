"""`ilrs-ops`: the command line. Each command parses options, then calls one function.

Only typer and the standard library load at start, so that `--help` answers at once: settings
are read when a command runs, and what a command does (with numpy, pyarrow, MQTT, the console)
is in ilrs_ops._commands, which imports the framework inside each function.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ilrs_ops import _commands
from ilrs_ops.errors import InputError

if TYPE_CHECKING:
    from ilrs_ops.settings import Settings
    from ilrs_ops.sources import Protocol

app = typer.Typer(
    help="ILRS ground segment: telemetry ingest and operations.", no_args_is_help=True
)
profiles_app = typer.Typer(
    help="Check, list and import partner instrument profiles.", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")
archive_app = typer.Typer(
    help="The archive of sealed tables on Delta Lake: convert a store, compact, vacuum.",
    no_args_is_help=True,
)
app.add_typer(archive_app, name="archive")

# Where a command needs a broker and none is given (`up` embeds one instead).
LOCAL_BROKER = "127.0.0.1:1883"
# Defaults that --help shows, spelled here so that --help need not import their modules;
# tests/test_cli.py checks them against IngestConfig.segment_messages and replay.CHUNK_OCTETS.
SEGMENT_MESSAGES = 200_000
CHUNK_OCTETS = 8 << 20

ProfilesOpt = Annotated[
    Path | None,
    typer.Option("--profiles", help="folder of instrument profiles [env ILRS_PROFILES]"),
]
BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="host:port of the MQTT broker [env ILRS_BROKER]")
]
RootOpt = Annotated[str | None, typer.Option("--root", help="topic root [env ILRS_ROOT]")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="store folder [env ILRS_DATA]")]
ArchiveOpt = Annotated[
    str | None,
    typer.Option(
        help="sealed tables as Delta Lake tables at this path or s3://bucket/prefix (AWS_* "
        "from the environment); a store keeps the archive it was first given [env ILRS_ARCHIVE]"
    ),
]
PrefixOpt = Annotated[
    int,
    typer.Option(
        "--prefix-octets",
        min=0,
        help="octets before every packet of the file that are not part of it (a recorder's "
        "marker, e.g. 4 for Europa Clipper SUDA): skipped, neither decoded nor quarantined",
    ),
]
PortOpt = Annotated[int, typer.Option("--http-port", help="console HTTP port (0: any free one)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed: same seed, same packets")]
ScaleOpt = Annotated[
    float, typer.Option("--time-scale", help="lunar cycle speed-up (10000: a day+night in ~4 min)")
]
FaultOpt = Annotated[
    str,
    typer.Option(
        "--fault",
        help="fault rates per packet, e.g. limit=0.01,gap=0.005 or all=0.01; per command: "
        "tc_lost, tc_rejected, tc_unexecuted",
    ),
]
#: `up`'s demo faults: with ~8 packets/s from the station a limit excursion about every 25 s,
#: so a first `make run` shows alarms within a minute; labelled as simulated where shown.
UP_FAULTS = "limit=0.005"
UpFaultOpt = Annotated[
    str,
    typer.Option(
        "--fault",
        help="simulated fault rates per packet (a demo by default; none: no faults), "
        "e.g. limit=0.01,gap=0.005 or all=0.01",
    ),
]


@profiles_app.command("check")
def profiles_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="profile files or folders")] = None,
) -> None:
    """Validate profiles; list every problem with file:line:column (exit 1 if any)."""
    _commands.check_profiles(paths or [_settings().profiles])


@profiles_app.command("list")
def profiles_list(
    paths: Annotated[list[Path] | None, typer.Argument(help="profile files or folders")] = None,
) -> None:
    """A table of the station's instruments."""
    _commands.list_profiles(paths or [_settings().profiles])


@profiles_app.command("import")
def profiles_import(
    source: Annotated[Path, typer.Argument(help="an XTCE document (.xml) or a ccsdspy CSV")],
    partner: Annotated[str, typer.Option(help="partner id: the profiles' folder and partner")],
    out: Annotated[Path, typer.Option("--out", help="folder to write <partner>/<id>.yaml into")],
    format_: Annotated[
        str | None, typer.Option("--format", help="xtce or csv [default: by suffix]")
    ] = None,
    apid: Annotated[
        str | None, typer.Option(help="only this APID (XTCE); the APID (CSV, required)")
    ] = None,
    instrument: Annotated[
        str | None, typer.Option(help="instrument id (a prefix when several profiles result)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="human-readable name")] = None,
    kind: Annotated[str, typer.Option(help="instrument class, e.g. spacecraft")] = "unknown",
    period_s: Annotated[float, typer.Option(help="expected seconds between packets")] = 1.0,
    root_container: Annotated[
        str | None, typer.Option(help="XTCE: the container packets are parsed from")
    ] = None,
    time: Annotated[
        str, typer.Option(help="packet clock: none, cds:days=2,subms=2, cuc:coarse=4,fine=2")
    ] = "none",
    integrity: Annotated[
        str | None,
        typer.Option(help="the packets' check, e.g. sum16:field=packet_checksum[,start=0]"),
    ] = None,
    sample: Annotated[
        Path | None, typer.Option(help="real packets: compare their lengths with the definition")
    ] = None,
    prefix_octets: Annotated[
        int,
        typer.Option(
            "--prefix-octets",
            min=0,
            help="octets before every packet of --sample that are not part of it (as for "
            "`ilrs-ops import --prefix-octets`)",
        ),
    ] = 0,
    force: Annotated[bool, typer.Option(help="replace profile files that exist")] = False,
) -> None:
    """Import a partner's XTCE or ccsdspy CSV definition as profiles; report what cannot be
    mapped (exit 1 on a document that cannot be imported, writing nothing)."""
    if format_ not in (None, "xtce", "csv"):
        raise typer.BadParameter(f"{format_!r}: use xtce or csv", param_hint="--format")
    if not source.is_file():
        raise typer.BadParameter(f"{source} is not a file", param_hint="SOURCE")
    if sample is not None and not sample.is_file():
        raise typer.BadParameter(f"{sample} is not a file", param_hint="--sample")
    number = None
    if apid is not None:
        try:
            number = int(apid, 0)
        except ValueError:
            raise typer.BadParameter(f"{apid!r}: a number, e.g. 11 or 0x00B",
                                     param_hint="--apid") from None  # fmt: skip
    _commands.import_profiles(
        source,
        out,
        format=format_,
        sample=sample,
        sample_prefix_octets=prefix_octets,
        force=force,
        options={
            "partner": partner,
            "apid": number,
            "instrument": instrument,
            "name": name,
            "kind": kind,
            "period_s": period_s,
            "root_container": root_container,
            "time": time,
            "integrity": integrity,
        },
    )


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
    _commands.simulate(
        s,
        _broker(s),
        seed=seed,
        time_scale=time_scale,
        bundle=bundle,
        fault=fault,
        duration=duration,
        instruments=instrument,
    )


@app.command()
def ingest(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    data: DataOpt = None,
    archive: ArchiveOpt = None,
    shard: Annotated[str, typer.Option(help="this process's shard i/N of the instruments")] = "0/1",
    workers: Annotated[
        int,
        typer.Option(
            help="run shards 0/N..N-1/N, each in a process of its own (N: this host's cores)",
            min=1,
        ),
    ] = 1,
    protocol: Annotated[
        str, typer.Option(help="MQTT protocol: auto (5, else 3.1.1 if refused), v5 or v311")
    ] = "auto",
    segment_messages: Annotated[
        int, typer.Option(help="seal a lane's WAL segment to Parquet at this many messages", min=1)
    ] = SEGMENT_MESSAGES,
) -> None:
    """Ingest telemetry: MQTT -> durable WAL -> ack -> pipelines -> sealed tables, status."""
    s = _settings(broker=broker, profiles=profiles, root=root, data=data, archive=archive)
    if workers > 1:
        if shard != "0/1":
            raise typer.BadParameter(
                f"--workers {workers} runs every shard i/{workers} itself; leave out --shard",
                param_hint="--shard",
            )
        _protocol(protocol)  # a bad value is refused here, not by each worker
        _commands.ingest_workers(
            s, _broker(s), workers=workers, protocol=protocol, segment_messages=segment_messages
        )
        return
    _commands.ingest(
        s,
        _broker(s),
        shard=shard,
        protocol=_protocol(protocol),
        segment_messages=segment_messages,
    )


@app.command()
def monitor(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
) -> None:
    """Subscribe to the station's telemetry and show what arrives, decoded, per instrument."""
    s = _settings(broker=broker, profiles=profiles, root=root)
    _commands.monitor(s, _broker(s))


@app.command()
def up(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    data: DataOpt = None,
    archive: ArchiveOpt = None,
    seed: SeedOpt = 0,
    time_scale: ScaleOpt = 10000.0,
    fault: UpFaultOpt = UP_FAULTS,
    http_port: PortOpt = 8000,
) -> None:
    """Run the station on one machine: broker (embedded unless --broker), simulator (with a
    small demo rate of limit faults unless --fault none), ingest into the store, the
    operations console, and a live status table."""
    s = _settings(broker=broker, profiles=profiles, data=data, archive=archive)
    _commands.up(
        s,
        _broker_address(s.broker) if s.broker else None,  # None: embedded
        seed=seed,
        time_scale=time_scale,
        fault=fault,
        http_port=http_port,
    )


@app.command("console")
def console_(
    broker: BrokerOpt = None,
    profiles: ProfilesOpt = None,
    root: RootOpt = None,
    data: DataOpt = None,
    archive: ArchiveOpt = None,
    http_port: PortOpt = 8000,
    tokens: Annotated[
        Path | None, typer.Option(help="tokens file [env ILRS_CONSOLE_TOKENS]")
    ] = None,
    dev: Annotated[
        bool, typer.Option(help="without a tokens file, make an operator token")
    ] = False,
) -> None:
    """Serve the operations console (API, live WebSocket) over the broker and the store."""
    s = _settings(broker=broker, profiles=profiles, root=root, data=data, archive=archive)
    _commands.console(s, _broker(s), http_port=http_port, tokens=tokens, dev=dev)


@app.command("token")
def token_(
    name: Annotated[str, typer.Argument(help="who the token is for")],
    role: Annotated[str, typer.Option(help="operator, partner or viewer")],
    tokens: Annotated[Path, typer.Option(help="tokens file to add it to")],
    partner: Annotated[str | None, typer.Option(help="the partner, for role partner")] = None,
    profiles: ProfilesOpt = None,
) -> None:
    """Make a console token: printed once; the tokens file keeps only its sha256. A partner
    must be one of the profiles' partners. A running console takes the new token at once."""
    s = _settings(profiles=profiles) if partner is not None else None
    _commands.make_token(tokens, name, role, partner, s)


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
    _commands.broker_config(s, out_dir, port=port, run_as=run_as)


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
    prefix_octets: PrefixOpt = 0,
) -> None:
    """Import a packet file as a recording: every packet routed by APID to the profile(s) given
    (all of the catalog when none is), decoded, or quarantined with its reason. A file whose
    packets each follow a fixed prefix (a recorder's marker, e.g. Europa Clipper SUDA's 4
    octets): --prefix-octets N skips it."""
    if instrument and profile:
        raise typer.BadParameter("give --instrument or --profile, not both", param_hint="--profile")
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    s = _settings(profiles=profiles, data=data)
    _commands.import_file(
        s,
        file,
        name=name or re.sub(r"[^a-z0-9_.-]+", "-", file.stem.lower()).strip("-.") or "import",
        instruments=instrument,
        profile=profile,
        chunk_size=chunk_size,
        prefix_octets=prefix_octets,
    )


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
    protocol: Annotated[
        str, typer.Option(help="MQTT protocol: auto (5, else 3.1.1 if refused), v5 or v311")
    ] = "auto",
) -> None:
    """Replay a store or recording in packet-time order into a new recording: over MQTT under
    {root}-replay/{name} (never the live root) at a speed factor, or --direct."""
    if not from_:
        raise typer.BadParameter("say what to replay: a recording name or a store folder",
                                 param_hint="--from")  # fmt: skip
    factor = _speed(speed)
    window = (_time_ns(start, "--start"), _time_ns(stop, "--stop"))
    if window[0] is not None and window[1] is not None and window[0] >= window[1]:
        raise typer.BadParameter(f"{start} is not before {stop}: the window is [start, stop)",
                                 param_hint="--stop")  # fmt: skip
    s = _settings(broker=broker, profiles=profiles, root=root, data=data)
    _commands.replay(
        s,
        _broker(s),
        from_=from_,
        name=to or "replay-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ").lower(),
        instruments=instrument,
        window=window,
        speed=speed,
        factor=factor,
        bundle=bundle,
        direct=direct,
        protocol=_protocol(protocol),
    )


@archive_app.command("migrate")
def archive_migrate(
    archive: Annotated[
        str, typer.Option(help="the new archive: a path or s3://bucket/prefix (AWS_* from env)")
    ],
    data: DataOpt = None,
) -> None:
    """Convert the store's Parquet tables into a Delta Lake archive (stop its ingest first);
    the old files move to parquet-before-archive/ in the store, to delete once satisfied."""
    _commands.archive_migrate(_settings(data=data), archive)


@archive_app.command("optimize")
def archive_optimize(data: DataOpt = None, archive: ArchiveOpt = None) -> None:
    """Compact the archive's small seal files; safe while ingest runs."""
    _commands.archive_maintain(_settings(data=data, archive=archive), "optimize", 0.0)


@archive_app.command("vacuum")
def archive_vacuum(
    data: DataOpt = None,
    archive: ArchiveOpt = None,
    retention_hours: Annotated[
        float, typer.Option(help="keep what versions of the last this many hours read", min=0)
    ] = 168.0,
) -> None:
    """Delete files no recent version reads (after optimize); safe while ingest runs."""
    _commands.archive_maintain(_settings(data=data, archive=archive), "vacuum", retention_hours)


def _settings(**options: object) -> Settings:
    """The settings, with the command line's options in force over ``ILRS_*``; a bad value exits
    2 saying which setting and what is wrong. Imported here: pydantic-settings is slow to load."""
    from ilrs_ops.settings import load_settings

    try:
        return load_settings(**options)
    except InputError as exc:
        _commands.fail(str(exc))


def _broker(s: Settings) -> tuple[str, int]:
    """The broker a command talks to: --broker, else ILRS_BROKER, else the local one."""
    return _broker_address(s.broker or LOCAL_BROKER)


def _broker_address(text: str) -> tuple[str, int]:
    """``host:port`` parsed; a bad one is a usage error of --broker."""
    from ilrs_ops.settings import parse_broker

    try:
        return parse_broker(text)
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--broker") from None


commands_app = typer.Typer(
    help="The commands of instruments, and the command history, from a console.",
    no_args_is_help=True,
)
app.add_typer(commands_app, name="commands")

ConsoleUrlOpt = Annotated[
    str,
    typer.Option("--console", envvar="ILRS_CONSOLE_URL", help="the console's URL"),
]
TokenOpt = Annotated[
    str,
    typer.Option(
        "--token", envvar="ILRS_TOKEN", help="your console token (`up` prints an operator's)"
    ),
]
CONSOLE_URL = "http://127.0.0.1:8000"


@app.command("command")
def command_(
    instrument: Annotated[str, typer.Argument(help="instrument id, e.g. sup-rover-1")],
    name: Annotated[str, typer.Argument(help="command name (`ilrs-ops commands list`)")],
    args: Annotated[list[str] | None, typer.Argument(help="arguments as name=value")] = None,
    wait: Annotated[
        bool, typer.Option(help="print each stage as it happens, until the final one")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most", min=0)] = 120.0,
    console: ConsoleUrlOpt = CONSOLE_URL,
    token: TokenOpt = "",
) -> None:
    """Send a telecommand through the console: checked there (your role, arguments, pre-send
    conditions), queued when hazardous until a second operator approves, then verified in
    telemetry. With --wait exits 0 only when it completed, 1 when it ended otherwise."""
    _commands.send_command(console, token, instrument, name, args or [], wait=wait,
                           timeout_s=timeout)  # fmt: skip


@commands_app.command("list")
def commands_list(
    instrument: Annotated[str, typer.Argument(help="instrument id")],
    console: ConsoleUrlOpt = CONSOLE_URL,
    token: TokenOpt = "",
) -> None:
    """The commands of an instrument: arguments, ranges, units, hazardous, conditions."""
    _commands.list_commands(console, token, instrument)


@commands_app.command("history")
def commands_history(
    instrument: Annotated[str | None, typer.Option(help="only this instrument")] = None,
    state: Annotated[
        str | None, typer.Option(help="only this state (completed, failed..., open)")
    ] = None,
    limit: Annotated[int, typer.Option(help="newest this many", min=1, max=5000)] = 50,
    console: ConsoleUrlOpt = CONSOLE_URL,
    token: TokenOpt = "",
) -> None:
    """The command history, newest first: who asked, state, where and why it failed."""
    _commands.command_history(console, token, instrument, state, limit)


def _protocol(text: str) -> Protocol:
    """--protocol checked: auto, v5 or v311."""
    if text not in ("auto", "v5", "v311"):
        raise typer.BadParameter(f"{text!r}: use auto, v5 or v311", param_hint="--protocol")
    return text  # type: ignore[return-value]


def _speed(text: str) -> float | None:
    """--speed as a factor of real time; None for max (as fast as it goes)."""
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
