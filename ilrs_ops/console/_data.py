"""Data access for the routes: every read goes through ``Access``, which checks the principal.

Partner scoping lives here, not in route decorators: each helper asks ``Principal.can_read``
(or ``can_see_tile``) for every instrument it touches, so a new route cannot forget it.
Store and pyarrow errors are translated here: bad arguments (InputError) -> BadRequestError
(400), disk -> UnavailableError (503); any other exception is a bug and stays one (a 500).
Time windows are [start, stop): start inclusive, stop exclusive, UTC ns since 1970.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from ilrs_ops import wire
from ilrs_ops.commanding import redacted
from ilrs_ops.console import _links
from ilrs_ops.console._auth import Principal
from ilrs_ops.console._errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
)
from ilrs_ops.console._rates import MAX_WINDOW_S
from ilrs_ops.console._state import StationState, Update
from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, Instrument

NS = wire.NS
MAX_POINTS = 10_000
DEFAULT_WINDOW_NS = 3600 * NS
LINK_WINDOW_S = (2.0, MAX_WINDOW_S)  # rates of the links view: over this many s
_INT = re.compile(r"^-?\d+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Store and pyarrow errors as the console's: InputError -> 400, the rest -> 503. A plain
    ValueError is not the caller's fault (the routes check what they pass): it goes on, a 500."""
    try:
        yield
    except InputError as exc:
        raise BadRequestError(f"{what}: {exc}") from exc
    except StoreError as exc:
        raise UnavailableError(f"{what}: store unavailable: {exc}") from exc
    except (pa.ArrowException, OSError) as exc:
        raise UnavailableError(f"{what}: store unavailable: {exc}") from exc


def parse_time(value: str | None, parameter: str) -> int | None:
    """ISO-8601 (naive times are UTC) or integer ns since 1970 -> ns; None stays None."""
    if value is None or value == "":
        return None
    text = value.strip()
    if _INT.match(text):
        ns = int(text)
    else:
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise BadRequestError(
                f"{parameter}={value!r} is not a time: use ISO-8601 (2026-11-24T03:00:00Z) "
                "or integer ns since 1970",
                parameter,
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ns = (dt - _EPOCH) // timedelta(microseconds=1) * 1000
    if not -(2**63) <= ns < 2**63:
        raise BadRequestError(f"{parameter}={value!r}: out of the range of ns times", parameter)
    return ns


def window(start: str | None, stop: str | None) -> tuple[int, int]:
    """[start, stop) from query parameters; stop defaults to now, start to an hour before."""
    stop_ns = parse_time(stop, "stop")
    start_ns = parse_time(start, "start")
    if stop_ns is None:
        stop_ns = time.time_ns() if start_ns is None else max(time.time_ns(), start_ns + 1)
    if start_ns is None:
        start_ns = max(stop_ns - DEFAULT_WINDOW_NS, -(2**63))
    if start_ns >= stop_ns:
        raise BadRequestError(
            f"start ({start_ns}) must be before stop ({stop_ns}): the window is [start, stop)",
            "start",
        )
    return start_ns, stop_ns


def split_list(value: str | None) -> list[str] | None:
    """Comma-separated names; None (no filter) when there are none ("", " ", ",")."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()] or None


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """NaN and infinities as null (JSON has none), recursively through lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def column_json(arr: pa.ChunkedArray | pa.Array) -> list[Any]:
    if pa.types.is_timestamp(arr.type):
        return arr.cast(pa.int64()).to_pylist()
    values = arr.to_pylist()
    if pa.types.is_binary(arr.type) or pa.types.is_fixed_size_binary(arr.type):
        return [None if v is None else v.hex() for v in values]  # blobs, wide integers, __raw
    if (
        pa.types.is_floating(arr.type)
        or pa.types.is_list(arr.type)
        or (pa.types.is_fixed_size_list(arr.type))
    ):
        return [jsonable(v) for v in values]
    return values


@dataclass(frozen=True, eq=False)
class Access:
    """The data one principal may see: station status, instruments, telemetry, events, metrics."""

    principal: Principal
    catalog: Catalog
    history: History
    state: StationState
    max_rows: int = 200_000

    # ------------------------------------------------------------------ instruments

    def instrument(self, instrument_id: str) -> Instrument:
        """The instrument, if the principal may read its data; else NotFoundError/ForbiddenError."""
        inst = self.catalog.instruments.get(instrument_id)
        if inst is None:
            raise NotFoundError(f"unknown instrument {instrument_id!r}", "id")
        if not self.principal.can_read(inst):
            raise ForbiddenError(
                f"{self.principal.role} {self.principal.name!r} may not read {instrument_id!r}"
            )
        return inst

    def readable(self) -> list[Instrument]:
        return [i for i in self.catalog if self.principal.can_read(i)]

    # ------------------------------------------------------------------ status

    def status(self, now_s: float | None = None) -> dict[str, Any]:
        """Partners -> instruments -> tiles the principal may see (viewers: no values)."""
        now_s = time.time() if now_s is None else now_s
        partners: dict[str, list[dict[str, Any]]] = {}
        for inst in sorted(self.catalog, key=lambda i: (i.profile.partner, i.id)):
            tile = self.tile(inst, now_s)
            if tile is not None:
                partners.setdefault(inst.profile.partner, []).append(tile)
        who = self.principal
        return {
            "updated": now_s,
            "you": {"name": who.name, "role": who.role, "partner": who.partner},
            "broker_connected": self.state.connected,
            "partners": [{"partner": p, "instruments": t} for p, t in partners.items()],
        }

    def tile(self, inst: Instrument, now_s: float | None = None) -> dict[str, Any] | None:
        """The status tile of ``inst`` as the principal may see it, or None when it may not."""
        p = inst.profile
        if not self.principal.can_see_tile(p.partner):
            return None
        now_s = time.time() if now_s is None else now_s
        doc = self.state.status.get(inst.id) or {}
        last_recv = doc.get("last_recv")
        health = wire.aged_health(doc.get("health"), last_recv, p.expected_period_s, now_s)
        tile: dict[str, Any] = {
            "instrument": inst.id,
            "partner": p.partner,
            "name": p.name,
            "kind": p.kind,
            "health": health,
            "last_recv": last_recv,
            "last_packet_time_ns": doc.get("last_packet_time_ns"),
            "last_packet_time": iso(doc.get("last_packet_time_ns")),
            "expected_period_s": p.expected_period_s,
            "packets": doc.get("packets", 0),
            "bytes": doc.get("bytes", 0),
            "rejects": doc.get("rejects", {}),
            "values": None,
        }
        if self.principal.can_read(inst):
            units = _units(inst)
            values = doc.get("values") or {}
            tile["values"] = {
                name: {
                    "value": jsonable(v.get("value")) if isinstance(v, dict) else None,
                    "units": units.get(name),
                    "state": v.get("state") if isinstance(v, dict) else None,
                }
                for name, v in values.items()
            }
        return tile

    def accepts(self, wanted: set[str] | None, events: bool = True) -> Callable[[Update], bool]:
        """The WebSocket filter: updates of ``wanted`` instruments (all when None) that the
        principal may see; events only where it may read the instrument's data."""

        def accepts(update: Update) -> bool:
            if update.kind == "replay":  # replays are the operators' business
                return self.principal.is_operator
            if update.kind == "catalog":  # each client is sent the tiles it may see
                return True
            if wanted is not None and update.instrument not in wanted:
                return False
            inst = self.catalog.instruments.get(update.instrument)
            partner = inst.profile.partner if inst is not None else update.partner
            if update.kind == "event":
                return events and self.principal.can_read_partner(partner)
            if update.kind == "command":  # viewers see the history, partners their own
                return self.principal.role == "viewer" or self.principal.can_read_partner(partner)
            return self.principal.can_see_tile(partner)

        return accepts

    def render(self, update: Update) -> dict[str, Any] | None:
        """An update as a WebSocket message, scoped again at the point of sending."""
        if update.kind == "replay":
            return {"type": "replay", "replay": update.data} if self.principal.is_operator else None
        if update.kind == "command":
            doc = update.data if self.principal.role != "viewer" else redacted(update.data)
            return {"type": "command", "command": doc}
        inst = self.catalog.instruments.get(update.instrument)
        if inst is None:
            return None
        if update.kind == "status":
            tile = self.tile(inst)
            return None if tile is None else {"type": "status", "status": tile}
        if not self.principal.can_read(inst):
            return None
        return {"type": "event", "event": _event_json(update.data)}

    # ------------------------------------------------------------------ detail

    def detail(self, instrument_id: str, recent_events: int = 50) -> dict[str, Any]:
        inst = self.instrument(instrument_id)
        p = inst.profile
        stop = time.time_ns()
        with reading(f"counters of {inst.id}"):
            counters = self.history.counters(inst.id)
            events = self.history.events(inst.id, stop - 86_400 * NS, stop)
        return {
            "instrument": inst.id,
            "partner": p.partner,
            "name": p.name,
            "kind": p.kind,
            "description": p.description,
            "apid": p.apid,
            "expected_period_s": p.expected_period_s,
            "channels": _channels(inst),
            "counters": jsonable_dict(counters),
            "status": self.tile(inst),
            "recent_events": _events_rows(events, inst)[-recent_events:],
        }

    # ------------------------------------------------------------------ telemetry

    def channels(self, inst: Instrument, channels: str | None) -> list[str]:
        names = split_list(channels)
        if names is None:
            return list(inst.channels)
        unknown = [c for c in names if c not in inst.channels]
        if unknown:
            raise BadRequestError(
                f"channels: unknown channel(s) {unknown} of {inst.id}; "
                f"its channels: {inst.channels}",
                "channels",
            )
        if len(set(names)) != len(names):
            raise BadRequestError(f"channels: {names} names a channel twice", "channels")
        return names

    def telemetry(
        self,
        instrument_id: str,
        channels: str | None,
        start: str | None,
        stop: str | None,
        max_points: int | None,
    ) -> dict[str, Any]:
        inst = self.instrument(instrument_id)
        names = self.channels(inst, channels)
        start_ns, stop_ns = window(start, stop)
        if max_points is not None and not 1 <= max_points <= MAX_POINTS:
            raise BadRequestError(
                f"max_points={max_points}: use 1..{MAX_POINTS} (buckets over [start, stop))",
                "max_points",
            )
        with reading(f"telemetry of {inst.id}"):
            table = self.history.query(inst.id, names, start_ns, stop_ns, max_points)
        if max_points is None and table.num_rows > self.max_rows:
            raise BadRequestError(
                f"{table.num_rows} rows in [start, stop), more than {self.max_rows}: "
                "give max_points, a narrower window, or use /export",
                "max_points",
            )
        meta = table.schema.metadata or {}
        return {
            "instrument": inst.id,
            "start_ns": start_ns,
            "stop_ns": stop_ns,
            "max_points": max_points,
            "source": meta.get(b"source", b"telemetry").decode(),
            "rows": table.num_rows,
            "units": {n: u for n, u in _units(inst).items() if n in names},
            "columns": {name: column_json(table.column(name)) for name in table.column_names},
        }

    # ------------------------------------------------------------------ events

    def events(
        self,
        instrument: str | None,
        kind: str | None,
        start: str | None,
        stop: str | None,
        limit: int,
        partner: str | None = None,
    ) -> dict[str, Any]:
        """Events of the named instruments (else all the principal may read), optionally only
        of ``partner`` (comma-separated partner ids) and ``kind``, time in [start, stop)."""
        kinds = split_list(kind)
        if kinds is not None:
            bad = [k for k in kinds if k not in wire.EVENT_KINDS]
            if bad:
                raise BadRequestError(
                    f"kind: unknown {bad}; use some of {list(wire.EVENT_KINDS)}", "kind"
                )
        start_ns, stop_ns = window(start, stop)
        ids = split_list(instrument)
        insts = [self.instrument(i) for i in ids] if ids is not None else self.readable()
        if not insts and self.principal.role == "viewer":
            raise ForbiddenError("viewers see station status only, not events")
        partners = split_list(partner)
        if partners is not None:
            known = sorted({i.profile.partner for i in self.catalog})
            bad = [p for p in partners if p not in known]
            if bad:
                raise BadRequestError(f"partner: unknown {bad}; the partners: {known}", "partner")
            insts = [i for i in insts if i.profile.partner in partners]
        rows: list[dict[str, Any]] = []
        for inst in insts:
            with reading(f"events of {inst.id}"):
                table = self.history.events(inst.id, start_ns, stop_ns, kinds)
            rows += _events_rows(table, inst)
        rows.sort(key=lambda r: r["time_ns"])
        return {
            "start_ns": start_ns,
            "stop_ns": stop_ns,
            "truncated": len(rows) > limit,
            "events": rows[-limit:],
        }

    # ------------------------------------------------------------------ search

    def search(self, q: str, limit: int) -> dict[str, Any]:
        """Channels of every instrument the principal may read whose name, description or
        units contain every word of ``q`` (case-insensitive); best first: a name equal to
        ``q``, then names that start with it, then names that contain it, then the rest."""
        words = q.lower().split()
        if not words:
            raise BadRequestError("q: give a word to look for (a name, description or units)", "q")
        whole = " ".join(words)
        hits: list[tuple[tuple[int, str, str], dict[str, Any]]] = []
        for inst in self.readable():
            for ch in _channels(inst):
                name = ch["name"].lower()
                text = " ".join(
                    str(ch.get(k) or "").lower() for k in ("name", "description", "units")
                )
                if not all(w in text for w in words):
                    continue
                # 0 the name itself, 1 a name that starts with it, 2 contains it, 3 the rest
                rank = [name == whole, name.startswith(whole), whole in name, True].index(True)
                hit = {
                    "instrument": inst.id,
                    "partner": inst.profile.partner,
                    "instrument_name": inst.profile.name,
                    "channel": ch["name"],
                    "description": ch.get("description"),
                    "units": ch.get("units"),
                    "source": ch["source"],
                }
                hits.append(((rank, ch["name"], inst.id), hit))
        hits.sort(key=lambda h: h[0])
        return {
            "q": q,
            "total": len(hits),
            "truncated": len(hits) > limit,
            "results": [h for _, h in hits[:limit]],
        }

    # ------------------------------------------------------------------ links

    def links(
        self,
        instrument: str | None,
        partner: str | None,
        window_s: float,
        now_s: float | None = None,
    ) -> _links.Links:
        """The links and ingest view of the named instruments (else all the principal may
        read), optionally only of ``partner``: rates over the last ``window_s``. Lanes only of
        those instruments; shards as a whole (and the lane of unknown topics) to operators
        only; viewers, who see status only, get a ForbiddenError."""
        if self.principal.role == "viewer":
            raise ForbiddenError(
                "viewers see station status only (GET /api/status), not links and ingest"
            )
        lo, hi = LINK_WINDOW_S
        if not lo <= window_s <= hi:  # (NaN too)
            raise BadRequestError(
                f"window={window_s}: use {lo:g}..{hi:g} s (rates over the last window)", "window"
            )
        ids = split_list(instrument)
        insts = [self.instrument(i) for i in ids] if ids is not None else self.readable()
        partners = split_list(partner)
        if partners is not None:
            known = sorted({i.profile.partner for i in self.catalog})
            bad = [p for p in partners if p not in known]
            if bad:
                raise BadRequestError(f"partner: unknown {bad}; the partners: {known}", "partner")
            insts = [i for i in insts if i.profile.partner in partners]
        now_s = time.time() if now_s is None else now_s
        rows = []
        for inst in sorted(insts, key=lambda i: (i.profile.partner, i.id)):
            tile = self.tile(inst, now_s)
            if tile is not None:
                rows.append(
                    _links.instrument_link(self.state, inst, tile["health"], now_s, window_s)
                )
        everything = self.principal.is_operator and ids is None and partners is None
        wanted = None if everything else {i.id for i in insts}
        return _links.Links(
            updated=now_s,
            window_s=window_s,
            shard_stale_after_s=_links.SHARD_STALE_S,
            broker_connected=self.state.connected,
            instruments=rows,
            lanes=_links.lane_links(self.state, wanted, now_s, window_s),
            shards=_links.shard_links(self.state, now_s) if self.principal.is_operator else None,
        )

    # ------------------------------------------------------------------ metrics

    def require_operator(self, what: str) -> None:
        if not self.principal.is_operator:
            raise ForbiddenError(
                f"{what} is for operators; {self.principal.name!r} is a {self.principal.role}"
            )


def jsonable_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: jsonable_dict(v) if isinstance(v, dict) else jsonable(v) for k, v in d.items()}


def _units(inst: Instrument) -> dict[str, str | None]:
    p = inst.profile
    return {f.name: f.units for f in p.channel_fields if not f.ignore} | {
        d.name: d.units for d in p.derived_channels
    }


def _limits(limits: Any) -> dict[str, Any] | None:
    if limits is None:
        return None
    return limits.model_dump(exclude_none=True, exclude_defaults=True) or None


def _channels(inst: Instrument) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in inst.profile.channel_fields:
        if f.ignore:
            continue
        out.append(
            {
                "name": f.name,
                "source": "field",
                "type": f.type,
                "count": f.count,
                "units": f.units,
                "description": f.description,
                "enum": {str(k): v for k, v in f.enum.items()} if f.enum else None,
                "limits": _limits(f.limits),
            }
        )
    for d in inst.profile.derived_channels:
        out.append(
            {
                "name": d.name,
                "source": "derived",
                "expr": d.expr,
                "units": d.units,
                "description": d.description,
                "limits": _limits(d.limits),
            }
        )
    return out


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: jsonable(v) for k, v in row.items()}
    if "time_ns" in out and "time" not in out:
        out["time"] = iso(out["time_ns"])
    return out


def _events_rows(table: pa.Table, inst: Instrument) -> list[dict[str, Any]]:
    if table.num_rows == 0:
        return []
    cols = {name: column_json(table.column(name)) for name in table.column_names}
    rows = []
    for k in range(table.num_rows):
        row = {name: cols[name][k] for name in cols}
        row["time_ns"] = row.pop("time")
        row["time"] = iso(row["time_ns"])
        row["instrument"] = inst.id
        row["partner"] = inst.profile.partner
        rows.append(row)
    return rows
