"""What each `ilrs-ops` command does, once ilrs_ops.cli has parsed its options.

Each function imports the framework when it runs, not this module: the command line starts
without numpy, pyarrow, the MQTT clients or the console, so `ilrs-ops --help` answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ilrs_ops.errors import BrokerError, IlrsError, InputError, ProfileError

if TYPE_CHECKING:
    import aiomqtt
    from rich.console import Console
    from rich.table import Table

    from ilrs_ops.commanding.client import CommandsClient
    from ilrs_ops.ingest import Ingestor
    from ilrs_ops.monitor import Monitor
    from ilrs_ops.profiles import Catalog, Instrument
    from ilrs_ops.settings import Settings
    from ilrs_ops.sim import Faults
    from ilrs_ops.sources import Protocol


@functools.cache
def out() -> Console:
    """Results, on stdout; made at first use, not at import. Wide when piped, so that tables are
    never cut short for scripts and logs."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


@functools.cache
def err() -> Console:
    """Progress and errors, on stderr (wide when piped, as ``out``)."""
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def fail(message: str) -> NoReturn:
    """Print ``error <message>`` on stderr and exit 2."""
    from rich.markup import escape

    err().print(f"[red]error[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def check_profiles(paths: list[Path]) -> None:
    """`profiles check`: validate the profiles; every problem listed, exit 1 if any."""
    catalog = _catalog(paths)
    out().print(f"{len(catalog)} profile(s) OK")


def list_profiles(paths: list[Path]) -> None:
    """`profiles list`: a table of the station's instruments."""
    from rich.table import Table

    catalog = _catalog(paths)
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
            _octets(inst),
        )
    out().print(t)


def _octets(inst: Instrument) -> str:
    """A packet's length, or the range of a packet with a variable-length array or variants."""
    if inst.variant_layouts:
        lo = min(int(x.lengths(0)) for x in inst.variant_layouts)
        hi = max(x.packet_length for x in inst.variant_layouts)
        return f"{lo}..{hi} B ({len(inst.variant_layouts)} variants)"
    if inst.layout.variable:
        return f"{int(inst.layout.lengths(0))}..{inst.profile.packet_length} B"
    return f"{inst.profile.packet_length} B"


def import_profiles(
    source: Path,
    out_dir: Path,
    *,
    format: str | None,
    sample: Path | None,
    force: bool,
    options: dict[str, Any],
    sample_prefix_octets: int = 0,
) -> None:
    """`profiles import`: ``source`` mapped to profiles under ``out_dir``; a table of them and
    every note on what could not be mapped. A bad document, or a file in the way: exit 1."""
    import time as _time

    from rich.markup import escape
    from rich.table import Table

    from ilrs_ops.profiles import (
        ImportOptions,
        import_definition,
        parse_integrity,
        parse_time,
        write_imported,
    )

    try:
        check = options["integrity"]
        parsed = {
            "time": parse_time(options["time"]),
            "integrity": None if check is None else parse_integrity(check),
        }
        opts = ImportOptions(**(options | parsed))
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None
    started = _time.perf_counter()
    try:
        result = import_definition(
            source,
            opts,
            format=format,  # type: ignore[arg-type]
            sample=sample,
            sample_prefix_octets=sample_prefix_octets,
        )
        written = write_imported(result, out_dir, force=force)
    except ProfileError as exc:
        for p in exc.problems:
            err().print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
        err().print(f"{len(exc.problems)} problem(s) in the imported profiles (a bug of the "
                    "import: please report it with the definition)")  # fmt: skip
        raise typer.Exit(1) from None
    except IlrsError as exc:
        err().print(f"[red]error[/red] {escape(str(exc))}", highlight=False, emoji=False,
                    soft_wrap=True)  # fmt: skip
        raise typer.Exit(1) from None
    took = _time.perf_counter() - started
    t = Table(title=f"imported {escape(source.name)} ({result.tool}) in {took:.2f} s")
    for col in ("APID", "instrument", "from", "octets", "channels", "sample", "file"):
        t.add_column(col, no_wrap=True)
    for p, path in zip(result.profiles, written, strict=True):
        seen = "-" if result.sample is None else str(result.sample.get(p.apid, 0))
        t.add_row(f"{p.apid:#05x}", path.stem, escape(p.source), p.octets,
                  str(p.channels), seen, escape(str(path)))  # fmt: skip
    out().print(t)
    report = result.report()
    out().print(f"{len(written)} profile(s) written; {len(report)} note(s) on what could not be "
                "mapped as it stands (also in each file's header):", highlight=False)  # fmt: skip
    for line in report:
        out().print(f"  {line}", markup=False, emoji=False, highlight=False, soft_wrap=True)


def simulate(
    s: Settings,
    broker: tuple[str, int],
    *,
    seed: int,
    time_scale: float,
    bundle: int,
    fault: str,
    duration: float | None,
    instruments: list[str] | None,
) -> None:
    """`simulate`: the simulated station publishes to ``broker`` for ``duration`` s (or until
    Ctrl-C), then says what it published and lost."""
    from ilrs_ops.sim import Simulator

    catalog = _catalog([s.profiles])
    faults = _faults(fault)
    host, port = broker

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
            instruments=instruments,
            **s.broker_login,
        )
        err().print(f"simulating {len(sim.modules)} instruments -> {host}:{port}")
        await sim.run(duration)
        lost = ", ".join(f"{i}={n}" for i, n in sorted(sim.lost.items()) if n) or "none"
        err().print(
            f"published {sum(sim.published.values())} packets; lost {sum(sim.lost.values())} "
            f"(broker unreachable or no PUBACK): {lost}"
        )

    _run(main())


def ingest(
    s: Settings,
    broker: tuple[str, int],
    *,
    shard: str,
    protocol: Protocol,
    segment_messages: int,
) -> None:
    """`ingest`: this process's ``shard`` (text ``i/N``) of the instruments from ``broker`` into
    the store, until Ctrl-C."""
    from ilrs_ops.ingest import IngestConfig, Ingestor
    from ilrs_ops.store import Store

    catalog = _catalog([s.profiles])
    host, port = broker
    try:
        i, n = (int(x) for x in shard.split("/"))
        config = IngestConfig(
            host=host,
            port=port,
            root=s.root,
            shard=i,
            shards=n,
            protocol=protocol,
            segment_messages=segment_messages,
            **s.broker_login,
        )
    except ValueError as exc:
        raise typer.BadParameter(
            f"{shard!r}: {exc}; write i/N, e.g. 0/2", param_hint="--shard"
        ) from None

    async def main() -> None:
        with Store(s.data, s.archive) as store:
            err().print(f"ingesting shard {i}/{n} from {host}:{port} into {store}")
            async with Ingestor(
                catalog=catalog, store=store, config=config, profiles=s.profiles
            ) as ingestor:
                await ingestor.ready()
                freeze_heap()
                await ingestor.wait()

    _run(main())


def ingest_workers(
    s: Settings,
    broker: tuple[str, int],
    *,
    workers: int,
    protocol: str,
    segment_messages: int,
) -> None:
    """`ingest --workers N`: shards 0/N..N-1/N, each an `ingest --shard i/N` process of its own
    (the broker login goes to them in the environment, as it came), until Ctrl-C stops them all."""
    from ilrs_ops.ingest import supervise

    _catalog([s.profiles])  # a bad profile is refused once, here, not by N workers
    host, port = broker

    def argv(i: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ilrs_ops",
            "ingest",
            f"--shard={i}/{workers}",
            f"--broker={host}:{port}",
            f"--profiles={s.profiles}",
            f"--root={s.root}",
            f"--data={s.data}",
            *([f"--archive={s.archive}"] if s.archive else []),
            f"--protocol={protocol}",
            f"--segment-messages={segment_messages}",
        ]

    def started(shard: int, pid: int) -> None:
        err().print(f"ingest worker {shard}/{workers}: pid {pid}")

    _run(supervise(argv, workers, started=started))


def monitor(s: Settings, broker: tuple[str, int]) -> None:
    """`monitor`: the decoded traffic from ``broker``, per instrument, until the connection
    ends."""
    from ilrs_ops.monitor import Monitor

    catalog = _catalog([s.profiles])
    host, port = broker

    async def main() -> None:
        async with _mqtt(host, port, s.broker_login) as client:
            await _watch(Monitor(catalog, root=s.root), client)

    _run(main())


def up(
    s: Settings,
    broker: tuple[str, int] | None,
    *,
    seed: int,
    time_scale: float,
    fault: str,
    http_port: int,
) -> None:
    """`up`: the station on one machine, over ``broker`` or, when None, an embedded one:
    simulator, ingest into the store, the console and a live status table, until Ctrl-C."""
    from ilrs_ops.broker import EmbeddedBroker
    from ilrs_ops.console import ConsoleSettings, create_token, serve
    from ilrs_ops.ingest import IngestConfig, Ingestor
    from ilrs_ops.sim import Simulator
    from ilrs_ops.store import Store

    folder = s.profiles
    catalog = _catalog([folder])
    faults = _faults(fault)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            login = s.broker_login if broker else {}  # the embedded broker takes anyone
            if broker:
                host, port = broker
            else:
                host, port = "127.0.0.1", s.embedded_port
                await stack.enter_async_context(EmbeddedBroker(host=host, port=port))
                err().print(f"embedded MQTT broker on {host}:{port}")
            store = stack.enter_context(Store(s.data, s.archive))
            config = IngestConfig(host=host, port=port, root=s.root, **login)
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
            err().print(
                f"simulating {len(sim.modules)} instruments, storing in {store}; Ctrl-C stops"
            )
            simulation = _simulation_note(faults)
            if faults.any:
                note = f"[bold yellow]SIMULATED station[/]: {simulation} (--fault none: no faults)"
                err().print(note, highlight=False)
            # A fresh operator token for this run, kept (hashed) beside the store; the file's
            # other tokens (partners, viewers added with `ilrs-ops token`) stay across runs.
            tokens = store.root / UP_TOKENS
            token = create_token(tokens, "operator", "operator", replace=True)
            console = ConsoleSettings(
                broker_host=host,
                broker_port=port,
                root=s.root,
                data=store.root,
                profiles=folder,
                tokens=tokens,
                http_port=http_port,
                simulation=simulation,
                sim_epoch_ns=sim.env.epoch_ns,
                sim_time_scale=sim.env.time_scale,
                broker_user=login.get("username"),
                broker_password=login.get("password"),
            )
            ingestor = await stack.enter_async_context(
                Ingestor(catalog=catalog, store=store, config=config, profiles=folder)
            )
            async with asyncio.TaskGroup() as tg:
                tg.create_task(ingestor.wait())
                await ingestor.ready()
                tg.create_task(sim.run())
                started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                tg.create_task(serve(console, started))
                url = await started
                freeze_heap()
                err().print(f"console: {url}/  operator token: {token}")
                tg.create_task(_show(lambda: _status_table(ingestor)))

    _run(main())


def console(
    s: Settings, broker: tuple[str, int], *, http_port: int, tokens: Path | None, dev: bool
) -> None:
    """`console`: serve the operations console over ``broker`` and the store, until a signal.
    Settings the command line does not give stay with ``ILRS_CONSOLE_*``."""
    from pydantic import ValidationError

    from ilrs_ops.console import ConsoleSettings, serve

    host, port = broker
    given: dict[str, object] = {"tokens": tokens} if tokens else {}
    if s.broker_user:  # else ILRS_CONSOLE_BROKER_USER/_PASSWORD, when set, stay in force
        given |= {"broker_user": s.broker_user, "broker_password": s.broker_password}
    if s.commander_user:  # ILRS_COMMANDER_USER/_PASSWORD: the one user that may send commands
        given |= {"commander_user": s.commander_user, "commander_password": s.commander_password}
    try:
        settings = ConsoleSettings(
            broker_host=host,
            broker_port=port,
            root=s.root,
            data=s.data,
            archive=s.archive,
            profiles=s.profiles,
            http_port=http_port,
            dev=dev,
            **given,
        )
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"])

    async def main() -> None:
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started.add_done_callback(
            lambda f: (
                f.cancelled()
                or f.exception()
                or err().print(f"console on {f.result()}/ (API docs: {f.result()}/docs)")
                or freeze_heap()
            )
        )
        await serve(settings, started=started, capture_signals=True)

    _run(main(), signals=False)  # uvicorn takes them


def make_token(
    tokens: Path, name: str, role: str, partner: str | None, s: Settings | None = None
) -> None:
    """`token`: add a token for ``name`` to ``tokens`` and print it (its only appearance). A
    ``partner`` must be a partner of the profiles (``s.profiles``): a typo would make a token
    that sees nothing."""
    from ilrs_ops.console import create_token

    if partner is not None and s is not None:
        known = sorted({i.profile.partner for i in _catalog([s.profiles])})
        if partner not in known:
            fail(
                f"unknown partner {partner!r}: the profiles in {s.profiles} have "
                f"{', '.join(known)}; use one of them, or --profiles for another folder"
            )
    try:
        out().print(create_token(tokens, name, role, partner))  # type: ignore[arg-type]
    except IlrsError as exc:
        fail(str(exc))


def broker_config(s: Settings, folder: Path, *, port: int, run_as: str | None) -> None:
    """`broker-config`: Mosquitto passwords, ACLs and config for the profiles into ``folder``."""
    from ilrs_ops.broker_config import write_broker_config

    catalog = _catalog([s.profiles])
    try:
        cfg = write_broker_config(catalog, folder, root=s.root, port=port, run_as=run_as)
    except (IlrsError, OSError) as exc:
        fail(str(exc))
    out().print(
        f"{len(cfg.users)} MQTT users ({len(catalog)} instruments) in {cfg.folder}: passwords, "
        f"acl, mosquitto.conf; credentials in {cfg.credentials} (mode 0600, keep it secret)"
    )


def archive_migrate(s: Settings, archive: str) -> None:
    """`archive migrate`: the store's Parquet tables into a Delta archive, with progress."""
    from ilrs_ops.store import migrate

    try:
        done = migrate(s.data, archive, progress=lambda line: err().print(line, highlight=False))
    except IlrsError as exc:
        fail(str(exc))
    rows = ", ".join(f"{t} {n}" for t, n in done.rows.items())
    out().print(f"converted {done.files} files ({rows} rows) into {archive}", highlight=False)
    out().print(f"the Parquet files are in {done.backup}: delete it when satisfied")


def archive_maintain(s: Settings, what: str, retention_hours: float) -> None:
    """`archive optimize` / `archive vacuum`: per table, what it did."""
    from ilrs_ops.store import Store, optimize, vacuum

    try:
        with Store(s.data, s.archive) as store:
            done = optimize(store) if what == "optimize" else vacuum(store, retention_hours)
    except IlrsError as exc:
        fail(str(exc))
    noun = "files written" if what == "optimize" else "files deleted"
    for uri, n in done.items():
        out().print(f"{uri}: {n} {noun}", highlight=False)


def import_file(
    s: Settings,
    file: Path,
    *,
    name: str,
    instruments: list[str] | None,
    profile: Path | None,
    chunk_size: int,
    prefix_octets: int = 0,
) -> None:
    """`import`: ``file`` into recording ``name``, each packet routed by APID to ``profile``'s
    instruments, the ``instruments`` named, or else the whole catalog; then a summary table."""
    from rich.table import Table

    from ilrs_ops import wire
    from ilrs_ops.replay import Recorder, create_recording, import_packets
    from ilrs_ops.store import Store

    if profile is not None:  # a partner's own file: the station's profiles are not needed
        catalog = _catalog([profile])
        routes = catalog.by_apid
    elif instruments:
        catalog = _catalog([s.profiles])
        unknown = sorted(set(instruments) - catalog.instruments.keys())
        if unknown:
            raise typer.BadParameter(
                f"unknown instrument(s) {unknown}; see `ilrs-ops profiles list`",
                param_hint="--instrument",
            )
        routes = {catalog.instruments[i].profile.apid: catalog.instruments[i] for i in instruments}
    else:
        catalog = _catalog([s.profiles])
        routes = catalog.by_apid

    async def main() -> None:
        rec = create_recording(s.data, name, "imported", str(file.resolve()))
        with Store(rec.path) as store, _progress("importing", file.stat().st_size) as bar:
            recorder = Recorder(store, catalog)
            summary = await asyncio.to_thread(
                import_packets,
                file,
                recorder,
                routes,
                chunk_octets=chunk_size,
                progress=bar,
                prefix_octets=prefix_octets,
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
        out().print(t)
        reasons = ", ".join(f"{r} {c}" for r, c in sorted(summary.quarantined.items())) or "none"
        skipped = f", {summary.prefixes} prefixes of {prefix_octets} octets skipped"
        out().print(
            f"{summary.octets} octets, {summary.items} packets: "
            f"{sum(summary.decoded.values())} decoded, quarantined: {reasons}"
            + (skipped if prefix_octets else "")
        )
        framing = {wire.BAD_VERSION, wire.LENGTH_PAST_END, wire.TRUNCATED}
        if prefix_octets and framing & summary.quarantined.keys():
            out().print(
                f"items that are no packet after a {prefix_octets}-octet prefix: if the file's "
                "packets have no prefix (or another), import it without --prefix-octets (or "
                "with the right one)"
            )

    _run(main())


def replay(
    s: Settings,
    broker: tuple[str, int],
    *,
    from_: str,
    name: str,
    instruments: list[str] | None,
    window: tuple[int | None, int | None],
    speed: str,
    factor: float | None,
    bundle: int,
    direct: bool,
    protocol: Protocol,
) -> None:
    """`replay`: the store or recording ``from_``, in packet-time order within ``window``
    ([start, stop) ns), into recording ``name``: over MQTT at ``factor`` x real time (None: as
    fast as it goes; ``speed`` is the text given) or, ``direct``, straight into the pipelines."""
    from ilrs_ops.replay import (
        create_recording,
        replay_into,
        replay_root,
        resolve_store,
    )
    from ilrs_ops.sources import StoreSource

    catalog = _catalog([s.profiles])
    host, port = broker
    topic_root = replay_root(s.root, name)

    async def main() -> None:
        src = resolve_store(s.data, from_)
        try:
            source = StoreSource(
                src, catalog, root=topic_root, instruments=instruments,
                start_ns=window[0], stop_ns=window[1], bundle=bundle,
            )  # fmt: skip
        except InputError as exc:
            raise typer.BadParameter(str(exc), param_hint="--instrument") from None
        rec = create_recording(s.data, name, "replayed", str(src))
        rec.window = window
        rec.extra = {"speed": speed, "direct": direct, "bundle": bundle, "topic_root": topic_root}
        with _progress("replaying", source.total) as bar:
            await replay_into(
                source, rec, catalog, host=host, port=port, speed=factor, direct=direct,
                protocol=protocol, progress=bar, **s.broker_login,
            )  # fmt: skip
        packets = rec.packets
        how = "directly" if direct else f"over MQTT ({topic_root}, speed {speed})"
        out().print(
            f"replayed {sum(packets.values())} packets of {len(source.instruments)} instrument(s)"
            f" from {src} {how} into recording {name!r} ({rec.path})"
        )

    _run(main())


def _commands_client(url: str, token: str) -> CommandsClient:
    from ilrs_ops.commanding.client import CommandsClient

    if not token:
        fail("no token: give --token or set ILRS_TOKEN (`ilrs-ops up` prints an operator's)")
    return CommandsClient(url, token)


def send_command(
    url: str, token: str, instrument: str, name: str, pairs: list[str], *, wait: bool,
    timeout_s: float,
) -> None:  # fmt: skip
    """`command`: send one command; with ``wait`` follow it to its final stage (exit 1 unless
    it completed)."""
    from ilrs_ops.commanding.client import ConsoleCallError, parse_args, stage_lines, summary
    from ilrs_ops.commanding.client import watch as follow

    try:
        args = parse_args(pairs)
    except InputError as exc:
        fail(str(exc))
    client = _commands_client(url, token)
    try:
        doc = client.submit(instrument, name, args)
        out().print(summary(doc), highlight=False)
        if not wait:
            for line in stage_lines(doc, 0):
                out().print(line, highlight=False)
            return
        last = follow(client, doc, timeout_s, lambda line: out().print(line, highlight=False))
    except ConsoleCallError as exc:
        fail(f"{instrument} {name}: {exc}")
    finally:
        client.close()
    if not last["final"]:
        err().print(f"still {last['state']} after {timeout_s:g} s; see `ilrs-ops commands history`")
        raise typer.Exit(1)
    if last["state"] != "completed":
        raise typer.Exit(1)


def list_commands(url: str, token: str, instrument: str) -> None:
    """`commands list`: an instrument's commands as a table."""
    from rich.table import Table

    from ilrs_ops.commanding.client import ConsoleCallError

    client = _commands_client(url, token)
    try:
        doc = client.definitions(instrument)
    except ConsoleCallError as exc:
        fail(f"{instrument}: {exc}")
    finally:
        client.close()
    table = Table("command", "opcode", "arguments", "hazardous", "pre-send", "verified by",
                  title=f"commands of {instrument}")  # fmt: skip
    for c in doc["commands"]:
        args = "\n".join(f"{a['name']}: {a['summary']}" for a in c["arguments"]) or "-"
        v = c["verify"]
        verified = f"ack in {v['received_s']:g} s"
        if v["executed"]:
            verified += f"; {' and '.join(v['executed'])} in {v['executed_s']:g} s"
        table.add_row(c["name"], f"0x{c['opcode']:02X}", args, "yes" if c["hazardous"] else "",
                      " and ".join(c["pre"]) or "-", verified)  # fmt: skip
    out().print(table)


def command_history(
    url: str, token: str, instrument: str | None, state: str | None, limit: int
) -> None:
    """`commands history`: the newest commands as a table."""
    from rich.table import Table

    from ilrs_ops.commanding.client import ConsoleCallError

    client = _commands_client(url, token)
    try:
        records = client.history(instrument, state, limit)
    except ConsoleCallError as exc:
        fail(str(exc))
    finally:
        client.close()
    table = Table("requested (UTC)", "id", "instrument", "command", "arguments", "by", "state",
                  "why")  # fmt: skip
    for r in records:
        when = _utc(r["requested_ns"])
        args = " ".join(f"{k}={v}" for k, v in r["args"].items())
        why = f"at {r['failed_stage']}: {r['reason']}" if r["reason"] else (r["waiting"] or "")
        table.add_row(when, r["id"][:12], r["instrument"], r["command"], args,
                      r["requested_by"], r["state"], why)  # fmt: skip
    out().print(table)


def _utc(ns: int) -> str:
    import datetime as dt

    return f"{dt.datetime.fromtimestamp(ns / 1e9, dt.UTC):%Y-%m-%d %H:%M:%S}"


def freeze_heap() -> None:
    """Take what a service holds once it has started (profiles, compiled kernels, the libraries'
    modules) out of the cyclic collector's walks. Its full collections went through all of it
    every few seconds, pausing the event loop 83-148 ms each at 100x the station's rate: the
    live path's p99 (bench/RESULTS.md, "Collector pauses"). What is made later is collected as
    before."""
    gc.collect()
    gc.freeze()


def _run(main: Coroutine[Any, Any, None], *, signals: bool = True) -> None:
    """Run a command's coroutine; SIGINT (Ctrl-C) and SIGTERM stop it cleanly (what it holds is
    closed and sealed, exit 0); IlrsError prints its message and exits 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        stopped = asyncio.run(_until_signal(main) if signals else _plain(main))
    except KeyboardInterrupt:
        stopped = True
    except IlrsError as exc:
        fail(str(exc))
    if stopped:
        err().print("stopped")


async def _plain(main: Coroutine[Any, Any, None]) -> bool:
    await main
    return False


async def _until_signal(main: Coroutine[Any, Any, None]) -> bool:
    """Await ``main`` until a SIGINT or SIGTERM cancels it; True if one did. Both are taken
    even where the shell started us with SIGINT ignored (a background job of a script), where
    asyncio's own Ctrl-C handling stays off. A second signal while the first one's stop seals
    the store is only noted: cutting the seal short would lose the point of stopping cleanly."""
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[int] = []

    def stop(signum: int) -> None:
        if got:
            err().print("stopping: closing and sealing, please wait")
            _print_pending(task)
            return
        got.append(signum)
        task.cancel()
        # A stop that takes long says what it waits on; a blocked event loop, its threads.
        loop.call_later(STOP_REPORT_S, _print_pending, task)
        faulthandler.dump_traceback_later(2 * STOP_REPORT_S)

    taken = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop, signum)
            taken.append(signum)
    try:
        await main
    except asyncio.CancelledError:
        if not got:
            raise
        task.uncancel()  # ours, and handled: the run ends normally
    finally:
        faulthandler.cancel_dump_traceback_later()
        for signum in taken:
            loop.remove_signal_handler(signum)
    return bool(got)


def _print_pending(main: asyncio.Task[Any]) -> None:
    """Each task still running while ``main`` stops, with the line it waits at."""
    if main.done():
        return
    pending = [t for t in asyncio.all_tasks() if not t.done()]
    err().print(f"still stopping; {len(pending)} task(s) running:")
    for t in pending:
        frames = t.get_stack()
        at = f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else "?"
        err().print(f"  {t.get_name()} {t.get_coro()!r} at {at}", highlight=False, soft_wrap=True)


def _catalog(paths: list[Path]) -> Catalog:
    """The profiles of ``paths``; on mistakes, every problem printed and exit 1."""
    from ilrs_ops.profiles import load_catalog

    try:
        return load_catalog(paths)
    except ProfileError as exc:
        for p in exc.problems:
            err().print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
        err().print(f"{len(exc.problems)} problem(s) in the profiles")
        raise typer.Exit(1) from None


def _faults(text: str) -> Faults:
    """--fault parsed; a bad one is a usage error (exit 2) that says how to write it."""
    from ilrs_ops.sim import Faults

    try:
        return Faults.parse(text)
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None


def _simulation_note(faults: Faults) -> str:
    """What the page and the terminal say about `up`'s simulated station and its faults."""
    from ilrs_ops.sim import FAULT_KINDS

    if not faults.any:
        return "no faults injected"
    rates = ", ".join(f"{k}={getattr(faults, k):g}" for k in FAULT_KINDS if getattr(faults, k))
    return f"demo faults injected: {rates} per packet"


@contextlib.contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields the function to advance it (safe from threads)."""
    from rich.progress import Progress

    with Progress(console=err(), transient=not sys.stderr.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


#: `up`'s tokens file, in its data folder (README, "Console").
UP_TOKENS = "up-tokens.yaml"
STOP_REPORT_S = 20.0  # a stop still running after this says what it waits on

HEALTH_STYLE = {
    "nominal": "green",
    "warning": "yellow",
    "critical": "bold red",
    "stale": "magenta",
    "offline": "dim",
}


def _status_table(ingestor: Ingestor) -> Table:
    """`up`'s live view: one row per lane, its health coloured, its latest values."""
    from rich.table import Table

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
    """A value short enough for a table cell."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return f"[{len(v)} values]"
    return str(v)


async def _show(render: Callable[[], Table]) -> None:
    """Redraw a table: live on a terminal, every 10 s otherwise (logs, CI)."""
    from rich.live import Live

    if sys.stdout.isatty():
        with Live(render(), console=out(), refresh_per_second=2) as live, _logs_above(live):
            while True:
                await asyncio.sleep(0.5)
                live.update(render())
    while True:
        await asyncio.sleep(10)
        out().print(render())


@contextlib.contextmanager
def _logs_above(live: Any) -> Iterator[None]:
    """While a live table is drawn, log records are printed through its console, above the
    table: written straight to the terminal they would break its in-place redraw and leave
    stacked copies of it behind. Rich redirects print() and sys.stderr, not a logging handler
    that holds the terminal's stream."""
    import logging

    class Above(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                live.console.print(self.format(record), markup=False, highlight=False,
                                   emoji=False, soft_wrap=True)  # fmt: skip
            except Exception:
                self.handleError(record)

    def to_terminal(h: logging.Handler) -> bool:
        stream = getattr(h, "stream", None)
        # The terminal's own streams: by now Live has put proxies in sys.stdout and sys.stderr.
        terminal = (sys.__stderr__, sys.__stdout__, sys.stderr, sys.stdout)
        return isinstance(h, logging.StreamHandler) and stream in terminal

    # The root's handler (basicConfig) and those of loggers with their own (uvicorn's).
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = {lg: lg.handlers[:] for lg in loggers if any(to_terminal(h) for h in lg.handlers)}
    for lg, handlers in saved.items():
        lg.handlers[:] = [h if not to_terminal(h) else _above(Above(), h) for h in handlers]
    try:
        yield
    finally:
        for lg, handlers in saved.items():
            lg.handlers[:] = handlers


def _above(handler: Any, was: Any) -> Any:
    """``handler`` with the level and format of the handler ``was`` it stands in for."""
    handler.setLevel(was.level)
    handler.setFormatter(was.formatter)
    return handler


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
    """An MQTT client; aiomqtt's errors become IlrsError (exit 2 with the broker's address)."""
    import aiomqtt

    from ilrs_ops.sources import open_client

    try:
        async with open_client(host, port, **login) as client:
            yield client
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"MQTT broker {host}:{port}: {exc}") from exc
