"""Sealing and recovery: a lane's processed segment into the store, and the WAL an earlier run
left re-run through a Lane from its checkpoint, so a crash loses nothing acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

import pyarrow as pa

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.processing._lane import Lane
from ilrs_ops.processing._processor import ProcessState
from ilrs_ops.profiles import Catalog, Instrument
from ilrs_ops.store import UNKNOWN, Store

log = logging.getLogger(__name__)


def checkpoint_state(store: Store, lane: str) -> tuple[int, ProcessState | None]:
    """The lane's last sealed segment and the processing state after it (None before any)."""
    segment, doc = store.checkpoint(lane)
    return segment, state_of(store, lane, doc)


def state_of(store: Store, lane: str, doc: dict | None) -> ProcessState | None:
    """The processing state of a checkpoint document of ``lane``; StoreError if it is none."""
    if doc is None:
        return None
    try:
        return ProcessState.from_json(doc)
    except InputError as exc:
        raise StoreError(
            f"the checkpoint of {lane} in {store.root / 'state'} holds no processing state "
            f"({exc}); restore it from a backup, or delete it to rebuild the state from the "
            "WAL left (sealed data is not reprocessed)",
            str(store.root / "state" / f"{lane}.json"),
        ) from exc


def seal(
    store: Store,
    lane: str,
    instrument: Instrument | None,
    segment: int,
    tables: Mapping[str, pa.Table],
    state: ProcessState | None,
) -> None:
    """Seal ``segment`` of ``lane`` with its processed tables and the state after it. WAL
    segments before it that are not sealed yet (a seal that failed earlier) are sealed first,
    by re-running them, so the checkpoint never passes a segment that was not sealed."""
    if instrument is not None and state is None:
        raise InputError(f"sealing {lane} segment {segment}: give the state after it too")
    sealed, _ = store.checkpoint(lane)
    for n, _ in store.unsealed(lane).segments:
        if sealed < n < segment:
            seal_by_replay(store, lane, instrument, n)
    store.seal(lane, segment, tables, state.to_json() if state is not None else None)


def seal_by_replay(store: Store, lane: str, instrument: Instrument | None, segment: int) -> None:
    """Seal one WAL segment by re-running it through a Lane from the checkpoint state (older
    unsealed segments first, the same way)."""
    sealed, _ = store.checkpoint(lane)
    for n, _ in store.unsealed(lane).segments:
        if sealed < n < segment:
            seal_by_replay(store, lane, instrument, n)
    _, state = checkpoint_state(store, lane)
    replayed = Lane(lane, instrument, state)
    wal = store.read_wal(lane, segment)
    if wal is not None:
        if wal.discarded_bytes:
            log.warning(
                "%s: %d bytes of a torn last batch discarded (never acknowledged)",
                wal.path,
                wal.discarded_bytes,
            )
        replayed.feed_wal(wal.batches)
    tables, after = replayed.take()
    store.seal(lane, segment, tables, after.to_json() if after is not None else None)


def recover_lane(store: Store, lane: str, instrument: Instrument | None) -> ProcessState | None:
    """Seal what the lane's WAL holds (torn tails dropped); returns the state to go on from."""
    store.discard_sealed(lane)
    for n, _ in store.unsealed(lane).segments:
        seal_by_replay(store, lane, instrument, n)
    return checkpoint_state(store, lane)[1]


def recover(
    store: Store, catalog: Catalog, lanes: Collection[str] | None = None
) -> dict[str, ProcessState]:
    """Seal what a previous run left in the WAL of every lane of ``catalog`` (and the unknown
    lane), remove leftover temp files, and return the processing state of every instrument to
    continue from. A WAL of an instrument no profile describes is left alone, with a warning.

    ``lanes``: only these (an ingest shard's), leaving the others' WAL and temp files to the
    shards that own them and may be running beside this one in the same store."""
    store.remove_temp_files(lanes)
    if lanes is None or UNKNOWN in lanes:  # who keeps the unknown lane speaks for the strays
        for name in sorted(set(store.wal_lanes()) - {*catalog.instruments, UNKNOWN}):
            log.warning(
                "WAL of %r left unsealed in %s: no profile of that instrument is loaded",
                name,
                store.root / "wal" / name,
            )
    states: dict[str, ProcessState] = {}
    for inst in catalog:
        if lanes is None or inst.id in lanes:
            states[inst.id] = recover_lane(store, inst.id, inst) or ProcessState()
    if lanes is None or UNKNOWN in lanes:
        recover_lane(store, UNKNOWN, None)
    return states
