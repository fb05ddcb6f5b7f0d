"""Import a file of raw concatenated CCSDS space packets (an instrument's test-campaign dump)
into a recording: read in chunks, split, routed by APID, processed per instrument, sealed.

Where each item goes: a good packet of a routed APID to its instrument's ``Processor`` (which
accepts it or quarantines it as ``bad_length``, ``bad_time``, ``duplicate``, ``out_of_order``);
a good packet of any other APID to ``_unknown`` as ``unknown_apid``; an item whose header is
not a packet header or runs past the end of the file (``bad_version``, ``truncated``,
``length_past_end``) to ``_unknown`` too, since such a header cannot be trusted to name an
instrument. The import never stops at a bad packet, and the result does not depend on the
chunk size: a packet cut by a chunk end is carried over to the next chunk.

``prefix_octets``: files whose every packet follows a fixed number of octets that are not part
of it (a recorder's marker: Europa Clipper SUDA's files have 4). They are skipped, neither
decoded nor quarantined; a bad item is quarantined with its prefix, and octets at the end too
few for a prefix and a header are ``truncated``. A file that has no such prefix, read as if it
had, puts every header in the wrong place: its items fail the framing or the profile's checks
and are quarantined; only a real packet that the resync lands on whole is decoded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ilrs_ops import wire
from ilrs_ops.errors import InputError
from ilrs_ops.processing import apid_tables, reject_detail
from ilrs_ops.profiles import Instrument
from ilrs_ops.replay._recorder import Recorder
from ilrs_ops.schemas import QUARANTINE
from pipelines.frames import HEADER_OCTETS, OK, STATUS_NAMES, TRUNCATED, split_frames

CHUNK_OCTETS = 8 << 20


@dataclass
class ImportSummary:
    """Items by APID field (-1: too short to have one), packets decoded per instrument,
    quarantined items by reason, and the prefixes skipped (``prefix_octets`` each)."""

    octets: int = 0
    prefixes: int = 0
    by_apid: Counter[int] = field(default_factory=Counter)
    decoded: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def items(self) -> int:
        return sum(self.by_apid.values())


def import_packets(
    path: Path | str,
    recorder: Recorder,
    routes: Mapping[int, Instrument],
    *,
    chunk_octets: int = CHUNK_OCTETS,
    recv_ns: int | None = None,
    progress: Callable[[int], None] | None = None,
    prefix_octets: int = 0,
) -> ImportSummary:
    """Import the packets of ``path``; ``routes`` maps APIDs to the instruments to decode them
    with. ``recv_ns`` (default: now) is the receive time of every packet (a file has none of
    its own); ``progress`` is called with the octets read after each chunk; ``prefix_octets``
    precede every packet and are skipped (see the module docstring). Seals at the end."""
    if chunk_octets < 1:
        raise InputError(f"chunk_octets must be >= 1, not {chunk_octets}")
    if prefix_octets < 0:
        raise InputError(f"prefix_octets must be >= 0, not {prefix_octets}")
    path = Path(path)
    recv = np.array([time.time_ns() if recv_ns is None else recv_ns], np.int64)
    topic = f"file:{path.name}"
    summary = ImportSummary()
    carry = b""
    base = 0  # file offset of carry[0]
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with f:
        while True:
            try:
                fresh = f.read(chunk_octets)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
            eof = not fresh
            data = carry + fresh
            if not data:
                break
            used = _chunk(data, base, eof, routes, recorder, recv, topic, summary, prefix_octets)
            carry, base = data[used:], base + used
            summary.octets += len(fresh)
            if progress is not None and fresh:
                progress(len(fresh))
            if eof:
                break
    recorder.close()
    return summary


def _chunk(
    data: bytes,
    base: int,
    eof: bool,
    routes: Mapping[int, Instrument],
    recorder: Recorder,
    recv: np.ndarray,
    topic: str,
    summary: ImportSummary,
    prefix: int,
) -> int:
    """Process the whole items of ``data``; returns the octets used (the rest is carried)."""
    buf = np.frombuffer(data, np.uint8)
    tables = apid_tables(inst.profile for inst in routes.values())
    items = split_frames(buf, np.array([0]), np.array([buf.shape[0]]), *tables, prefix=prefix)
    n = len(items)
    if n and not eof:
        # The last item may be a packet (or its prefix) the chunk end cut: carry it over whole.
        s, length = int(items.start[-1]), int(items.length[-1])
        status = int(items.status[-1])
        h = s + (prefix if status != OK else 0)  # a bad item starts at its prefix
        declared = None if status == TRUNCATED else (int(buf[h + 4]) << 8 | int(buf[h + 5])) + 7
        if declared is None or declared > length - (h - s):
            n -= 1
    if not n:
        return 0
    start, length = items.start[:n], items.length[:n]
    apid, status = items.apid[:n], items.status[:n]
    summary.by_apid.update(apid.tolist())
    if prefix:
        summary.prefixes += int(np.count_nonzero(status == OK))
    routed = (status == OK) & np.isin(apid, np.fromiter(routes, np.int64, len(routes)))
    for a in np.unique(apid[routed]).tolist():
        inst = routes[a]
        mine = routed & (apid == a)
        frame = buf[_octets(start[mine], length[mine])].tobytes()
        out = recorder.process(inst.id, [frame], recv, topic)
        summary.decoded[inst.id] += out.raw.num_rows
        if out.quarantine.num_rows:
            summary.quarantined.update(out.quarantine.column("reason").to_pylist())
    bad = np.flatnonzero(~routed)
    if bad.size:
        reasons, details, packets = [], [], []
        for i in bad.tolist():
            s, k = int(start[i]), int(length[i])
            item = data[s : s + k]
            reason = wire.UNKNOWN_APID if status[i] == OK else STATUS_NAMES[int(status[i])]
            reasons.append(reason)
            details.append(_detail(reason, item, base + s, eof and i == n - 1, prefix))
            packets.append(item)
        summary.quarantined.update(reasons)
        recorder.quarantine(
            pa.Table.from_arrays(
                [
                    pa.array(np.repeat(recv, bad.size), QUARANTINE.field("recv").type),
                    pa.array([topic] * bad.size, pa.string()),
                    pa.array(reasons, pa.string()),
                    pa.array(details, pa.string()),
                    pa.array(packets, pa.binary()),
                ],
                schema=QUARANTINE,
            )
        )
    return int(start[n - 1] + length[n - 1])


def _octets(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The buffer indices of the items ``start``/``length``, in order (items need not touch:
    a prefix lies between them)."""
    ends = np.cumsum(length)
    return np.repeat(start - (ends - length), length) + np.arange(ends[-1] if ends.size else 0)


def _detail(reason: str, item: bytes, offset: int, last: bool, prefix: int) -> str:
    where = f"at octet {offset} of the file{' (its end)' if last else ''}"
    if reason == wire.TRUNCATED and prefix:
        return (f"{len(item)} octets {where}, fewer than a {prefix}-octet prefix and a "
                f"{HEADER_OCTETS}-octet header")  # fmt: skip
    if prefix and reason in (wire.BAD_VERSION, wire.LENGTH_PAST_END):
        where = f"{where}, after its {prefix}-octet prefix {item[:prefix].hex()}"
        item = item[prefix:]
    framing = reject_detail(reason, item, where)
    if framing is not None:
        return framing
    apid = (item[0] & 7) << 8 | item[1]
    return f"APID {apid:#05x} {where}: no profile imported has it"
