"""History: what the store has sealed, joined with the live WAL tail run through a Lane.

Every read of telemetry, events, quarantine and counters goes through History (the console reads
nothing else). The live tail is kept cheap: per lane, History remembers the WAL segments it has
run and the offset it read to, so a query reads and decodes only what was appended since the
previous one; the tables of segments it has moved past are kept until their seal shows in the
checkpoint. Time windows are [start, stop): start inclusive, stop exclusive, UTC ns since 1970.
"""

from __future__ import annotations

import datetime
import itertools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ilrs_ops import wire
from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.history._buckets import (
    Buckets,
    bucket_edges,
    bucket_index,
    from_rollups,
    from_samples,
    positions,
)
from ilrs_ops.processing import Lane, state_of
from ilrs_ops.profiles import Catalog, CatalogOwner, Instrument
from ilrs_ops.schemas import (
    EVENTS,
    QUARANTINE,
    RAW,
    RAW_SUFFIX,
    ROLLUPS,
    STATE_SUFFIX,
    TIME,
    rollup_widths,
    telemetry_schema,
)
from ilrs_ops.store import SCHEMAS, UNKNOWN, Store, Unsealed, translate, window

NS = wire.NS
DAY_NS = 86_400 * NS  # the store's partitions: one folder per UTC day
#: With bucket edges off the rollup boundaries, rollups serve buckets at least this many rollup
#: widths wide (each inner edge then misplaces at most half a rollup width of samples).
ROLLUPS_PER_BUCKET = 10
QuerySource = Literal["auto", "rollups", "telemetry"]


@dataclass(eq=False)
class _Tail:
    """The unsealed WAL of one lane as far as it has been run: the segments moved past (their
    tables) and the one being read (in the lane's open segment, up to ``offset``)."""

    instrument: Instrument | None
    checkpoint: int
    lane: Lane
    closed: dict[int, dict[str, pa.Table]] = field(default_factory=dict)
    current: int | None = None
    offset: int = 0
    batches: dict[int, int] = field(default_factory=dict)  # WAL batches run, per segment
    discarded_bytes: int = 0
    _tables: dict[str, pa.Table] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        if name not in self._tables:
            parts = [t[name] for _, t in sorted(self.closed.items())]
            parts.append(self.lane.tables()[name])
            self._tables[name] = pa.concat_tables([p for p in parts if p.num_rows] or parts[-1:])
        return self._tables[name]

    def segments(self) -> list[int]:
        return sorted(self.closed) + ([self.current] if self.current is not None else [])


class History:
    """Reads of one store for the instruments of ``catalog`` (a Catalog, or the process's
    CatalogOwner, read at every call so a new profile is seen at once). Thread-safe: the
    console's request threads share one History. Raises InputError for bad arguments and
    StoreError for disk problems."""

    def __init__(self, store: Store, catalog: Catalog | CatalogOwner) -> None:
        self.store = store
        self.catalogs = CatalogOwner.of(catalog)
        self._tails: dict[str, _Tail] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._owns_store = False

    @classmethod
    def at(
        cls,
        root: Path | str,
        catalog: Catalog | CatalogOwner,
        archive: str | None = None,
        *,
        as_of: datetime.datetime | None = None,
    ) -> History:
        """History of the store under ``root`` (sealed tables in ``archive``; ``as_of``: what
        a Delta archive held at that instant: see ``Store``), which it opens and closes itself:
        ``with History.at("ilrs-data", catalog) as history: history.query(...)``."""
        history = cls(Store(root, archive, as_of=as_of), catalog)
        history._owns_store = True
        return history

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Forget the live tails (and close the store when ``at`` opened it)."""
        self._tails.clear()
        if self._owns_store:
            self.store.close()

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.current

    # ------------------------------------------------------------------ reads

    def query(
        self,
        instrument: str,
        channels: list[str] | None,
        start_ns: int,
        stop_ns: int,
        buckets: int | None = None,
        *,
        source: QuerySource = "auto",
        raw: bool = False,
    ) -> pa.Table:
        """Telemetry of ``instrument`` over [start_ns, stop_ns): start inclusive, stop exclusive
        (UTC ns since 1970), sealed Parquet and the live WAL together.

        Without ``buckets``: the rows, in time order, with columns ``time``, ``seq``, the
        channels (all when None, else in the order given) and their ``{channel}__state``;
        with ``raw``, also ``{channel}__raw`` for the channels that are fields (the value as
        the packet carried it, in its own type).

        With ``buckets=N``: N equal buckets over [start, stop) (edges ``start + i*span//N``), one
        row each: ``time`` (bucket start), then per channel ``{ch}__count``, ``__min``,
        ``__max``, ``__mean`` (null where a bucket has no valid sample); array channels count
        as one value per packet, their mean. The schema metadata ``source`` says what served it.

        ``source="auto"`` serves buckets from the widest rollup (60 s, 1 s) not wider than a
        bucket, when the bucket edges fall on that rollup's boundaries or a bucket spans at
        least ROLLUPS_PER_BUCKET rollup widths; otherwise, and for enum channels (which have
        no rollups), from telemetry. From rollups, a rollup row across an inner bucket edge
        counts in the bucket holding the middle of its samples' span (at most half a rollup
        width misplaced per edge); the outer edges stay exact, the partial rollup buckets
        there being computed from telemetry. ``"telemetry"`` is exact everywhere; ``"rollups"``
        uses the widest rollup not wider than a bucket whatever the edges.
        """
        inst = self._instrument(instrument)
        start, stop = window(start_ns, stop_ns)
        names = self._channels(inst, channels)
        if buckets is not None:
            n = _count(buckets)
            return self._downsample(inst, names, start, stop, n, source)
        if source not in ("auto", "rollups", "telemetry"):
            raise InputError(f"source {source!r}: use 'auto', 'rollups' or 'telemetry'")
        schema = self._schema("telemetry", inst)
        columns = ["time", "seq", *names]
        columns += [c + STATE_SUFFIX for c in names if c + STATE_SUFFIX in schema.names]
        if raw:
            columns += [c + RAW_SUFFIX for c in names if c + RAW_SUFFIX in schema.names]
        return self._telemetry(inst, columns, start, stop)

    def warm(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Ask each instrument for the hour before its newest row in buckets, as a plot does,
        and return how many answered: the first plot an operator opens after a start then does
        not pay for the first reads (Arrow's dataset and compute set-up, the files' footers).
        Stops early when ``stopping()`` says so; an instrument that cannot be read is skipped
        (its plot will say why)."""
        warmed = 0
        for inst in list(self.catalog.instruments.values()):
            if stopping():
                break
            names = [f.name for f in inst.profile.channel_fields if not f.is_octets][:1]
            try:
                row = self.latest(inst.id)
                if not names or row.num_rows == 0:
                    continue
                newest = int(row.column("time").cast(pa.int64())[0].as_py())
                self.query(inst.id, names, newest - 3600 * NS, newest + 1, 60)
            except (InputError, StoreError):
                continue
            warmed += 1
        return warmed

    def latest(self, instrument: str) -> pa.Table:
        """The newest telemetry row of ``instrument`` (one row, or none before any data)."""
        inst = self._instrument(instrument)
        schema = self._schema("telemetry", inst)
        with self._tail(inst.id) as tail:
            tm = tail.table("telemetry")
            checkpoint = tail.checkpoint
        if tm.num_rows:
            return tm.slice(tm.num_rows - 1)
        return self.store.last_row("telemetry", schema, inst.id, checkpoint)

    def events(
        self, instrument: str, start_ns: int, stop_ns: int, kinds: Iterable[str] | None = None
    ) -> pa.Table:
        """Events of ``instrument`` with time in [start_ns, stop_ns), in time order, optionally
        only of ``kinds`` (``wire.EVENT_KINDS``)."""
        inst = self._instrument(instrument)
        start, stop = window(start_ns, stop_ns)
        flt = None
        if kinds is not None:
            if isinstance(kinds, str):
                raise InputError(f"kinds is a list of kinds, not one string ({kinds!r})")
            kinds = list(kinds)
            bad = [k for k in kinds if k not in wire.EVENT_KINDS]
            if bad:
                raise InputError(f"unknown event kinds {bad}; use some of {list(wire.EVENT_KINDS)}")
            flt = ds.field("kind").isin(pa.array(kinds, pa.string()))  # [] too
        return self._rows("events", EVENTS, inst.id, "time", start, stop, flt)

    def quarantine(
        self,
        instrument: str,
        start_ns: int,
        stop_ns: int,
        reasons: Iterable[str] | None = None,
        *,
        last: int | None = None,
    ) -> pa.Table:
        """Quarantined packets of ``instrument`` (or ``_unknown``: messages on topics of no
        instrument) received in [start_ns, stop_ns), in order, optionally only of ``reasons``;
        with ``last``, only the newest ``last`` of them."""
        lane = self._lane(instrument)
        start, stop = window(start_ns, stop_ns)
        flt = None
        if reasons is not None:
            if isinstance(reasons, str):
                raise InputError("reasons is a list of reasons, not one string")
            flt = ds.field("reason").isin(pa.array(list(reasons), pa.string()))
        return self._rows("quarantine", QUARANTINE, lane, "recv", start, stop, flt, last)

    def raw(
        self, instrument: str, start_ns: int, stop_ns: int, *, last: int | None = None
    ) -> pa.Table:
        """The raw packets of ``instrument`` (``RAW``: time, recv, apid, seq, data) with packet
        time in [start_ns, stop_ns), sealed and the live WAL together, in time order; with
        ``last``, only the newest ``last`` of them (the older days are then not read)."""
        inst = self._instrument(instrument)
        start, stop = window(start_ns, stop_ns)
        return self._rows("raw", RAW, inst.id, "time", start, stop, None, last)

    def raw_batches(self, instrument: str, start_ns: int, stop_ns: int) -> Iterator[pa.RecordBatch]:
        """The sealed raw packets of ``instrument`` in [start_ns, stop_ns) (``Store.raw_batches``:
        the live WAL is not included, a replay reads what is sealed)."""
        inst = self._instrument(instrument)
        return self.store.raw_batches(inst.id, start_ns, stop_ns)

    def counters(self, instrument: str) -> dict[str, object]:
        """Totals of ``instrument`` since the store began: frames, octets, packets accepted,
        rejects by reason (the processing state after the live WAL), the last sealed segment,
        and the live (unsealed) segments and batches."""
        inst = self._instrument(instrument)
        with self._tail(inst.id) as tail:
            state = tail.lane.state
            assert state is not None
            counters = dict(state.to_json()["counters"])
            counters["sealed_segment"] = tail.checkpoint
            counters["live_segments"] = len(tail.segments())
            counters["live_batches"] = sum(tail.batches.values())
        return counters

    # ------------------------------------------------------------------ the live tail

    def _tail(self, lane: str) -> _Held:
        """The lane's tail brought up to date with the WAL, held (locked) while used."""
        with self._guard:
            lock = self._locks.setdefault(lane, threading.Lock())
        lock.acquire()
        try:
            for _ in range(20):
                if self._extend(lane, self.store.unsealed(lane)):
                    return _Held(self._tails[lane], lock)
            raise StoreError(
                f"the WAL of {lane} changed on every one of 20 reads; retry the query",
                str(self.store.root / "wal" / lane),
            )
        except BaseException:
            self._tails.pop(lane, None)  # half extended: start over next time
            lock.release()
            raise

    def _extend(self, lane: str, u: Unsealed) -> bool:
        """Run what the WAL gained since the tail last saw it; False when a segment vanished
        under us (sealed meanwhile: read the checkpoint again)."""
        inst = self.catalog.instruments.get(lane)
        tail = self._tails.get(lane)
        fresh = (
            tail is None
            or tail.instrument is not inst
            or u.checkpoint < tail.checkpoint
            # The segment being read was sealed: it may have grown after our read, so the
            # lane's state may lack batches. Start again from the checkpoint's state.
            or (
                u.checkpoint > tail.checkpoint
                and tail.current is not None
                and tail.current <= u.checkpoint
            )
        )
        if fresh:
            state = state_of(self.store, lane, u.state)
            tail = self._tails[lane] = _Tail(inst, u.checkpoint, Lane(lane, inst, state))
        assert tail is not None
        if u.checkpoint > tail.checkpoint:
            tail.closed = {n: t for n, t in tail.closed.items() if n > u.checkpoint}
            tail.batches = {n: k for n, k in tail.batches.items() if n > u.checkpoint}
            tail.checkpoint = u.checkpoint
            tail._tables.clear()
        for n, _ in u.segments:
            if n in tail.closed or (tail.current is not None and n < tail.current):
                continue
            if tail.current is not None and n > tail.current:
                tail.closed[tail.current], _ = tail.lane.take()
                tail.current, tail.offset = None, 0
            if tail.current is None:
                tail.current, tail.offset = n, 0
            wal = self.store.read_wal(lane, n, tail.offset)
            if wal is None:
                return False
            if wal.batches:
                tail.lane.feed_wal(wal.batches)
                tail.batches[n] = tail.batches.get(n, 0) + len(wal.batches)
                tail._tables.clear()
            tail.offset = wal.end
            tail.discarded_bytes = wal.discarded_bytes
        return True

    # ------------------------------------------------------------------ internals

    def _snapshot(self, lane: str, names: Iterable[str]) -> _Snapshot:
        """The checkpoint and the live tables ``names`` of a lane, taken together."""
        with self._tail(lane) as tail:
            return _Snapshot(tail.checkpoint, {name: tail.table(name) for name in names})

    def _instrument(self, instrument_id: str) -> Instrument:
        inst = self.catalog.instruments.get(instrument_id)
        if inst is None:
            known = ", ".join(sorted(self.catalog.instruments)) or "none"
            raise InputError(f"unknown instrument {instrument_id!r}; known: {known}")
        return inst

    def _lane(self, lane: str) -> str:
        if lane != UNKNOWN:
            self._instrument(lane)
        return lane

    def _schema(self, table: str, inst: Instrument) -> pa.Schema:
        return telemetry_schema(inst) if table == "telemetry" else SCHEMAS[table]

    def _channels(self, inst: Instrument, channels: list[str] | None) -> list[str]:
        if channels is None:
            return list(inst.channels)
        if isinstance(channels, str):
            raise InputError(f"channels is a list of names, not one string ({channels!r})")
        names = list(channels)
        unknown = [c for c in names if c not in inst.channels]
        if unknown:
            raise InputError(
                f"unknown channel(s) {unknown} of {inst.id}; its channels: {inst.channels}"
            )
        if len(set(names)) != len(names):
            raise InputError(f"channels {names} name a channel twice")
        return names

    def _rows(
        self,
        table: str,
        schema: pa.Schema,
        lane: str,
        column: str,
        start: int,
        stop: int,
        flt: ds.Expression | None,
        last: int | None = None,
    ) -> pa.Table:
        """Rows of [start, stop) in ``column`` order, sealed and live; with ``last``, the newest
        ``last``: the live tail first, then the sealed days newest first until there are enough
        (a day's files hold the rows of that day of ``column``, so the days left are older)."""
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise InputError(f"last must be an integer >= 1, not {last!r}")
        snap = self._snapshot(lane, (table,))
        recent = _filter(snap.tables[table], column, start, stop, flt)
        if last is None:
            sealed = self.store.sealed(
                table, schema, lane, column, start, stop, snap.checkpoint, None, flt
            )
            return _in_order(pa.concat_tables([sealed, recent]), column)
        parts, rows = [recent], recent.num_rows
        first, final = start // DAY_NS, (stop - 1) // DAY_NS
        for day in reversed([d for d in self.store.days(table, lane) if first <= d <= final]):
            if rows >= last:
                break
            lo, hi = max(start, day * DAY_NS), min(stop, (day + 1) * DAY_NS)
            cp = snap.checkpoint
            part = self.store.sealed(table, schema, lane, column, lo, hi, cp, None, flt)
            parts.insert(0, part)
            rows += part.num_rows
        ordered = _in_order(pa.concat_tables(parts), column)
        return ordered.slice(max(ordered.num_rows - last, 0))

    def _telemetry(self, inst: Instrument, columns: list[str], start: int, stop: int) -> pa.Table:
        schema = self._schema("telemetry", inst)
        snap = self._snapshot(inst.id, ("telemetry",))
        sealed = self.store.sealed(
            "telemetry", schema, inst.id, "time", start, stop, snap.checkpoint, columns
        )
        recent = _filter(snap.tables["telemetry"], "time", start, stop).select(columns)
        return _in_order(pa.concat_tables([sealed, recent]), "time")

    def _downsample(
        self, inst: Instrument, names: list[str], start: int, stop: int, n: int, source: QuerySource
    ) -> pa.Table:
        octets = [f.name for f in inst.profile.channel_fields if f.is_octets and f.name in names]
        if octets:  # text and octets have no min, max or mean
            raise InputError(
                f"{octets} of {inst.id} are string, bytes or wide integer channels: they have "
                "no buckets; query them without a bucket count"
            )
        snap = self._snapshot(inst.id, ("telemetry", "rollups"))
        width = (stop - start) / n
        edges = bucket_edges(start, stop, n)
        kept = rollup_widths(inst)
        fits = [w for w in sorted(kept, reverse=True) if w * NS <= width]
        if source == "auto":
            # A rollup bucket across an inner edge can only be put on one side: use rollups
            # when no edge cuts one (edges on rollup boundaries) or the error is small.
            rollup_s = next(
                (
                    w
                    for w in fits
                    if w * NS * ROLLUPS_PER_BUCKET <= width or not np.any(edges % (w * NS))
                ),
                None,
            )
        elif source == "rollups":
            if not fits:
                narrowest = f"the narrowest rollup ({min(kept)} s)" if kept else "any rollup kept"
                raise InputError(
                    f"buckets of {width / NS:g} s are narrower than {narrowest} for "
                    f"{inst.id}: use fewer buckets or source='telemetry'"
                )
            rollup_s = fits[0]
        elif source == "telemetry":
            rollup_s = None
        else:
            raise InputError(f"source {source!r}: use 'auto', 'rollups' or 'telemetry'")
        enums = {f.name for f in inst.profile.channel_fields if f.enum}
        rolled = [c for c in names if c not in enums] if rollup_s else []
        direct = [c for c in names if c not in rolled]
        result: dict[str, Buckets] = {}
        if direct:
            result |= self._buckets_from_samples(inst, snap, direct, start, stop, edges)
        if rolled:
            assert rollup_s is not None
            result |= self._buckets_from_rollups(
                inst, snap, rolled, start, stop, edges, rollup_s * NS
            )
        arrays: list[pa.Array] = [pa.array(edges[:-1], TIME)]
        fields: list[pa.Field] = [pa.field("time", TIME)]
        for name in names:
            b = result[name]
            empty = b.count == 0
            arrays += [
                pa.array(b.count),
                pa.array(b.min, mask=empty),
                pa.array(b.max, mask=empty),
                pa.array(b.mean, mask=empty),
            ]
            fields += [
                pa.field(f"{name}__count", pa.int64()),
                pa.field(f"{name}__min", pa.float64()),
                pa.field(f"{name}__max", pa.float64()),
                pa.field(f"{name}__mean", pa.float64()),
            ]
        served = f"rollups_{rollup_s}s" if rolled else "telemetry"
        schema = pa.schema(fields, metadata={"source": served})
        return pa.Table.from_arrays(arrays, schema=schema)

    def _buckets_from_samples(
        self,
        inst: Instrument,
        snap: _Snapshot,
        names: list[str],
        start: int,
        stop: int,
        edges: np.ndarray,
    ) -> dict[str, Buckets]:
        """Buckets of the telemetry in [start, stop), batch by batch as the files are read
        (samples outside the edges do not count, so no row filter is needed)."""
        schema = self._schema("telemetry", inst)
        columns = ["time", *names]
        batches = itertools.chain(
            self.store.scan(
                "telemetry", schema, inst.id, "time", start, stop, snap.checkpoint, columns
            ),
            snap.tables["telemetry"].select(columns).to_batches(),
        )
        out = {name: Buckets.empty(edges.shape[0] - 1) for name in names}
        with translate("read telemetry of", inst.id):
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                t = _times_of(batch.column(0))
                order = None if np.all(t[1:] >= t[:-1]) else np.argsort(t, kind="stable")
                if order is not None:
                    t = t[order]
                pos = positions(t, edges, start, stop)
                if pos[-1] == pos[0]:
                    continue
                for k, name in enumerate(names, 1):
                    v = _values(batch.column(k))
                    part = from_samples(v if order is None else v[order], pos)
                    out[name] = out[name].add(part)
        return out

    def _buckets_from_rollups(
        self,
        inst: Instrument,
        snap: _Snapshot,
        names: list[str],
        start: int,
        stop: int,
        edges: np.ndarray,
        width_ns: int,
    ) -> dict[str, Buckets]:
        n = edges.shape[0] - 1
        # Whole rollup buckets inside [start, stop): [inner_start, inner_stop).
        inner_start = -(-start // width_ns) * width_ns
        inner_stop = max(stop // width_ns * width_ns, inner_start)
        out = {name: Buckets.empty(n) for name in names}
        if inner_start < inner_stop:
            flt = (ds.field("width_s") == width_ns // NS) & ds.field("channel").isin(names)
            columns = ["channel", "count", "min", "max", "sum", "first", "last"]
            sealed = self.store.sealed(
                "rollups", ROLLUPS, inst.id, "bucket", inner_start, inner_stop,
                snap.checkpoint, columns, flt,
            )  # fmt: skip
            recent = _filter(snap.tables["rollups"], "bucket", inner_start, inner_stop, flt).select(
                columns
            )
            rows = pa.concat_tables([sealed, recent])
            with translate("combine rollups of", inst.id):
                which = pc.index_in(rows.column("channel"), value_set=pa.array(names)).to_numpy(
                    zero_copy_only=False
                )
                first = rows.column("first").cast(pa.int64()).to_numpy()
                last = rows.column("last").cast(pa.int64()).to_numpy()
                idx = bucket_index(first + (last - first) // 2, edges)
                cols = {c: rows.column(c).to_numpy() for c in ("count", "sum", "min", "max")}
            for k, name in enumerate(names):
                sel = which == k
                out[name] = from_rollups(
                    idx[sel],
                    cols["count"][sel],
                    cols["sum"][sel],
                    cols["min"][sel],
                    cols["max"][sel],
                    n,
                )
        # Partial rollup buckets at the outer edges, from telemetry.
        for lo, hi in ((start, min(inner_start, stop)), (max(inner_stop, inner_start), stop)):
            if lo < hi:
                part = self._buckets_from_samples(inst, snap, names, lo, hi, edges)
                out = {name: out[name].add(part[name]) for name in names}
        return out


@dataclass(frozen=True, eq=False)
class _Snapshot:
    checkpoint: int
    tables: dict[str, pa.Table]


class _Held:
    """A lane's tail, locked until the ``with`` block ends."""

    def __init__(self, tail: _Tail, lock: threading.Lock) -> None:
        self.tail, self.lock = tail, lock

    def __enter__(self) -> _Tail:
        return self.tail

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


# ---------------------------------------------------------------------- helpers


def _count(buckets: int) -> int:
    try:
        n = operator.index(buckets)
    except TypeError as exc:
        raise InputError(f"buckets must be an integer >= 1, not {buckets!r}") from exc
    if isinstance(buckets, bool) or n < 1:
        raise InputError(f"buckets must be an integer >= 1, not {buckets!r}")
    return n


def _filter(
    table: pa.Table, column: str, start: int, stop: int, flt: ds.Expression | None = None
) -> pa.Table:
    if table.num_rows == 0:
        return table
    where = (pc.field(column) >= pa.scalar(start, TIME)) & (
        pc.field(column) < pa.scalar(stop, TIME)
    )
    if flt is not None:
        where = where & flt
    with translate("filter", column):
        return table.filter(where)


def _in_order(table: pa.Table, column: str) -> pa.Table:
    """Sorted by ``column`` (stable), without a sort when it already is."""
    if table.num_rows < 2:
        return table.combine_chunks()
    t = table.column(column).cast(pa.int64()).to_numpy()
    if np.all(t[1:] >= t[:-1]):
        return table.combine_chunks()
    return table.take(np.argsort(t, kind="stable"))


def _values(arr: pa.Array) -> np.ndarray:
    """One float64 per row (NaN for null); an array channel's rows are the means of their
    arrays, as the rollups have them. Zero-copy for float64 columns without nulls."""
    if pa.types.is_fixed_size_list(arr.type):
        size = arr.type.list_size
        flat = _values(arr.values.slice(arr.offset * size, len(arr) * size))
        v = flat.reshape(len(arr), size).mean(axis=1) if size else np.full(len(arr), np.nan)
        if arr.null_count:
            v[~arr.is_valid().to_numpy(zero_copy_only=False)] = np.nan
        return v
    if pa.types.is_list(arr.type):  # a variable-length array: the mean of what each row has
        flat = _values(pc.list_flatten(arr))
        rows = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
        sizes = np.bincount(rows, minlength=len(arr))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(rows, flat, minlength=len(arr)) / np.where(sizes, sizes, np.nan)
    if arr.null_count:
        arr = pc.fill_null(arr.cast(pa.float64()), np.nan)
    v = arr.to_numpy(zero_copy_only=False)
    return v if v.dtype == np.float64 else v.astype(np.float64)


def _times_of(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False).view(np.int64)
