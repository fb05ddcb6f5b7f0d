"""The packet inspector's reads: recent raw and quarantined packets of one instrument (or of the
station's unknown topics), each as hex with its header and fields decoded by the instrument's
profile (``processing.inspect_packet``: the Processor on a one-packet batch).

Scoping is ``Access.instrument`` (a partner reads its own instruments); viewers see no packets,
the unknown topics are for operators. Time windows are [start, stop), UTC ns since 1970.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pyarrow as pa

from ilrs_ops import wire
from ilrs_ops.console._data import Access, iso, reading, split_list, window
from ilrs_ops.console._errors import BadRequestError, ForbiddenError
from ilrs_ops.processing import FieldView, inspect_packet
from ilrs_ops.profiles import Instrument
from ilrs_ops.store import UNKNOWN

#: Packets one request may decode (each is a Processor run: about 2 ms).
MAX_PACKETS = 200
PacketKind = Literal["all", "raw", "quarantine"]


def hex_apid(apid: int | None) -> str | None:
    """0x2a1: three hex digits, as the profiles and the page write APIDs."""
    return None if apid is None else f"{apid:#05x}"


def _viewer_refused(access: Access) -> None:
    if access.principal.role == "viewer":
        raise ForbiddenError(
            "viewers see station status only: packets carry raw bytes and values, which need "
            "an operator or partner token"
        )


def _reasons(reason: str | None) -> list[str] | None:
    names = split_list(reason)
    if names is not None:
        bad = [r for r in names if r not in wire.REASONS]
        if bad:
            raise BadRequestError(
                f"reason: unknown {bad}; use some of {list(wire.REASONS)}", "reason"
            )
    return names


def packets(
    access: Access,
    instrument_id: str,
    kind: PacketKind,
    limit: int,
    start: str | None,
    stop: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The newest ``limit`` packets of the instrument in [start, stop) (default: the last hour),
    newest first by receive time: accepted ones (``raw``, by packet time), quarantined ones
    (by receive time) or both."""
    _viewer_refused(access)
    inst = access.instrument(instrument_id)
    reasons = _reasons(reason)
    if reasons is not None and kind == "raw":
        raise BadRequestError(
            "reason filters quarantined packets: use kind=quarantine or kind=all", "reason"
        )
    start_ns, stop_ns = window(start, stop)
    raw = q = None
    with reading(f"packets of {inst.id}"):
        if kind != "quarantine" and reasons is None:
            raw = access.history.raw(inst.id, start_ns, stop_ns, last=limit)
        if kind != "raw":
            q = access.history.quarantine(inst.id, start_ns, stop_ns, reasons, last=limit)
    # Newest first within each table, then by receive time (a stable sort: a frame's packets,
    # received together, stay newest first).
    rows = [_raw_row(inst, r) for r in _rows(raw)[::-1]]
    rows += [_quarantine_row(inst, r) for r in _rows(q)[::-1]]
    rows.sort(key=lambda r: r["recv_ns"], reverse=True)
    p = inst.profile
    return {
        "instrument": inst.id,
        "partner": p.partner,
        "name": p.name,
        "apid": p.apid,
        "apid_hex": hex_apid(p.apid),
        "kind": kind,
        "start_ns": start_ns,
        "stop_ns": stop_ns,
        "limit": limit,
        "truncated": len(rows) > limit,
        "packets": rows[:limit],
    }


def unknown_packets(
    access: Access, limit: int, start: str | None, stop: str | None
) -> dict[str, Any]:
    """Messages on telemetry topics that name no instrument (quarantined as
    ``unknown_instrument``), newest first; operators only."""
    _viewer_refused(access)
    access.require_operator("the unknown-topic quarantine")
    start_ns, stop_ns = window(start, stop)
    with reading("the unknown-topic quarantine"):
        q = access.history.quarantine(UNKNOWN, start_ns, stop_ns, last=limit)
    rows = [_quarantine_row(None, r) for r in _rows(q)[::-1]]
    return {"start_ns": start_ns, "stop_ns": stop_ns, "limit": limit, "packets": rows}


# ---------------------------------------------------------------------- rows


def _rows(table: pa.Table | None) -> list[dict[str, Any]]:
    """Rows as dicts, times as int ns (pyarrow's datetimes stop at microseconds)."""
    if table is None:
        return []
    cols = {
        name: (
            table.column(name).cast(pa.int64()).to_pylist()
            if pa.types.is_timestamp(table.schema.field(name).type)
            else table.column(name).to_pylist()
        )
        for name in table.column_names
    }
    return [{name: cols[name][k] for name in cols} for k in range(table.num_rows)]


def _raw_row(inst: Instrument, r: dict[str, Any]) -> dict[str, Any]:
    return _packet(inst, "raw", r["data"], r["recv"], r["time"], inst.topic())


def _quarantine_row(inst: Instrument | None, r: dict[str, Any]) -> dict[str, Any]:
    row = _packet(inst, "quarantine", r["data"], r["recv"], None, r["topic"])
    row |= {"reason": r["reason"], "detail": r["detail"], "topic": r["topic"]}
    return row


def _packet(
    inst: Instrument | None,
    kind: str,
    data: bytes,
    recv_ns: int,
    time_ns: int | None,
    topic: str,
) -> dict[str, Any]:
    view = inspect_packet(inst, data, recv_ns, topic)
    head = {f.name: f.raw for f in view.header}
    t = time_ns if time_ns is not None else view.time_ns
    return {
        "kind": kind,
        "time_ns": t,
        "time": iso(t),
        "recv_ns": recv_ns,
        "recv": iso(recv_ns),
        "apid": head.get("apid"),
        "apid_hex": hex_apid(head.get("apid")),  # type: ignore[arg-type]
        "seq": head.get("seq_count"),
        "length": view.length,
        "hex": data.hex(),
        "variant": view.variant,
        "header": [_field(f) for f in view.header],
        "fields": [_field(f) for f in view.fields],
        "decode_error": view.error,
        "reason": None,
        "detail": None,
        "topic": None,
    }


def _field(f: FieldView) -> dict[str, Any]:
    out = dataclasses.asdict(f)
    out["spans"] = [list(s) for s in f.spans]
    # The octets it touches, [first, stop): what the page highlights in the hex.
    out["octets"] = [f.spans[0][0] // 8, (f.spans[-1][1] + 7) // 8] if f.spans else None
    return out
