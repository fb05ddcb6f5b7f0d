"""A store (or recording) as a Source: its sealed raw packets in packet-time order, as the
messages a replay publishes or feeds straight to its lanes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.profiles import Catalog
from ilrs_ops.schemas import TIME
from ilrs_ops.sources._source import Message
from ilrs_ops.store import Store

#: The widest window: all of a store.
ALL = (-(2**63), 2**63 - 1)


class StoreSource:
    """The sealed raw packets of a store (or recording), all instruments merged in packet time
    order, each under ``{root}/tm/{partner}/{instrument}``, ``bundle`` packets per message.

    Only accepted packets are in ``raw``: what was quarantined on the way in is not replayed.
    Window [start_ns, stop_ns): start inclusive, stop exclusive, by packet time.
    """

    def __init__(
        self,
        path: Path | str,
        catalog: Catalog,
        *,
        root: str = "ilrs",
        instruments: Iterable[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        bundle: int = 1,
        batch: int = 4096,
    ) -> None:
        if bundle < 1:
            raise InputError(f"bundle must be >= 1 packet per message, not {bundle}")
        self.path = Path(path)
        if not (self.path / "raw").is_dir():
            raise StoreError(f"{self.path} holds no sealed raw packets (no raw/ folder)")
        self.catalog = catalog
        self.root = root
        self.bundle = bundle
        self.batch = batch
        self.start_ns = ALL[0] if start_ns is None else int(start_ns)
        self.stop_ns = ALL[1] if stop_ns is None else int(stop_ns)
        stored = sorted(
            p.name.partition("=")[2] for p in (self.path / "raw").iterdir() if p.is_dir()
        )
        if instruments is None:
            self.instruments = [i for i in stored if i in catalog.instruments]
        else:
            self.instruments = list(dict.fromkeys(instruments))
            unknown = [i for i in self.instruments if i not in catalog.instruments]
            if unknown:
                raise InputError(
                    f"unknown instrument(s) {unknown}; known: {sorted(catalog.instruments)}"
                )
        self.total = self._count()

    def _count(self) -> int:
        """Messages the source will give: per instrument, its packets in bundles."""
        total = 0
        where = (ds.field("time") >= pa.scalar(self.start_ns, TIME)) & (
            ds.field("time") < pa.scalar(self.stop_ns, TIME)
        )
        for inst in self.instruments:
            folder = self.path / "raw" / f"instrument={inst}"
            if folder.is_dir():
                try:
                    n = ds.dataset(folder, format="parquet").count_rows(filter=where)
                except (pa.ArrowException, OSError) as exc:
                    raise StoreError(f"cannot read {folder}: {exc}", str(folder)) from exc
                total += -(-n // self.bundle)
        return total

    def __aiter__(self) -> AsyncIterator[list[Message]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[Message]]:
        it = self.messages()
        try:
            while True:
                batch = await asyncio.to_thread(_take, it, self.batch)
                if not batch:
                    return
                yield batch
        finally:
            it.close()

    def messages(self) -> Iterator[Message]:
        """The messages, synchronously (a generator; reads the store as it goes)."""
        with Store(self.path) as store:
            streams = {
                inst: store.raw_batches(inst, self.start_ns, self.stop_ns)
                for inst in self.instruments
            }
            topics = {i: self.catalog.instruments[i].topic(self.root) for i in self.instruments}
            held: dict[str, list[bytes]] = {i: [] for i in self.instruments}
            last: dict[str, int] = {}
            for inst, t, data in _merge(streams):
                if self.bundle == 1:
                    yield Message(t, topics[inst], data)
                    continue
                group = held[inst]
                group.append(data)
                last[inst] = t
                if len(group) == self.bundle:
                    held[inst] = []
                    yield Message(t, topics[inst], b"".join(group))
            for inst in sorted(last, key=last.__getitem__):  # the last, partial bundles
                if held[inst]:
                    yield Message(last[inst], topics[inst], b"".join(held[inst]))


def _take(it: Iterator[Message], n: int) -> list[Message]:
    out = []
    for m in it:
        out.append(m)
        if len(out) == n:
            break
    return out


def _merge(streams: dict[str, Iterator[pa.RecordBatch]]) -> Iterator[tuple[str, int, bytes]]:
    """(instrument, time, packet) of every stream, in time order (ties: stream order); each
    stream is in time order already."""
    names = list(streams)
    bufs: dict[str, tuple[np.ndarray, list[bytes]]] = {}
    done: set[str] = set()
    while True:
        for name in names:
            if name not in done and name not in bufs:
                batch = next(streams[name], None)
                if batch is None:
                    done.add(name)
                else:
                    t = batch.column("time").cast(pa.int64()).to_numpy()
                    bufs[name] = (t, batch.column("data").to_pylist())
        if not bufs:
            return
        # Everything at or before the earliest buffer end can go: nothing later may precede it.
        cutoff = min(int(t[-1]) for t, _ in bufs.values())
        times, which, packets = [], [], []
        for k, name in enumerate(names):
            if name not in bufs:
                continue
            t, data = bufs[name]
            n = int(np.searchsorted(t, cutoff, side="right"))
            times.append(t[:n])
            which.append(np.full(n, k))
            packets.append(data[:n])
            if n == t.shape[0]:
                del bufs[name]
            else:
                bufs[name] = (t[n:], data[n:])
        t_all = np.concatenate(times)
        w_all = np.concatenate(which)
        flat = [p for part in packets for p in part]
        for i in np.lexsort((w_all, t_all)).tolist():
            yield names[w_all[i]], int(t_all[i]), flat[i]
