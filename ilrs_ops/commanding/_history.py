"""Command history, event-sourced: a command's record is a fold over its stage rows
(``schemas.COMMANDS``), so a restarted service rebuilds the same records from the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ilrs_ops import wire
from ilrs_ops.schemas import COMMANDS


@dataclass
class Record:
    """One command, as far as its stages have gone."""

    id: str
    instrument: str
    partner: str
    command: str
    args: dict[str, Any]
    raw: dict[str, Any]
    hazardous: bool
    sensitive: tuple[str, ...]
    requested_by: str
    requested_role: str
    requested_ns: int
    stage: str = wire.REQUESTED
    waiting: str | None = None  # queued: "approval" or "hold"
    approved_by: str | None = None
    seq: int | None = None
    packet: str | None = None  # hex
    baseline: dict[str, Any] = field(default_factory=dict)  # ack counters when it was sent
    failed_stage: str | None = None
    reason: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.stage in wire.FINAL_STAGES

    def at(self, stage: str) -> int | None:
        """When the command reached ``stage`` (ns), if it did."""
        return next((s["time_ns"] for s in self.stages if s["stage"] == stage), None)

    def json(self, *, show_args: bool = True) -> dict[str, Any]:
        """The record for the API and the WebSocket; ``show_args`` False hides the arguments
        marked sensitive (viewers)."""
        doc = {
            "id": self.id,
            "instrument": self.instrument,
            "partner": self.partner,
            "command": self.command,
            "args": dict(self.args),
            "raw": dict(self.raw),
            "hazardous": self.hazardous,
            "sensitive": list(self.sensitive),
            "state": self.stage,
            "waiting": self.waiting,
            "final": self.final,
            "requested_by": self.requested_by,
            "requested_role": self.requested_role,
            "requested_ns": self.requested_ns,
            "approved_by": self.approved_by,
            "seq": self.seq,
            "packet": self.packet,
            "failed_stage": self.failed_stage,
            "reason": self.reason,
            "stages": list(self.stages),
        }
        return doc if show_args else redacted(doc)


def redacted(doc: dict[str, Any]) -> dict[str, Any]:
    """A record's JSON (``Record.json``) with its sensitive arguments and packet hidden."""
    hide = set(doc.get("sensitive") or ())
    if not hide:
        return doc

    def hidden(values: dict[str, Any]) -> dict[str, Any]:
        return {k: ("(hidden)" if k in hide else v) for k, v in values.items()}

    return {**doc, "args": hidden(doc["args"]), "raw": hidden(doc["raw"]), "packet": None}


def row(time_ns: int, id: str, stage: str, who: str, detail: dict[str, Any]) -> pa.Table:
    """One stage as a one-row ``commands`` table."""
    text = json.dumps(detail, separators=(",", ":"), sort_keys=True, default=str)
    return pa.Table.from_pylist(
        [{"time": time_ns, "id": id, "stage": stage, "who": who, "detail": text}], schema=COMMANDS
    )


def fold(records: dict[str, Record], time_ns: int, id: str, stage: str, who: str,
         detail: dict[str, Any]) -> Record | None:  # fmt: skip
    """Apply one stage to ``records``; returns the record it changed (None for a stage of an
    unknown command, or one after its final stage: both are ignored)."""
    if stage == wire.REQUESTED:
        if id in records:
            return None
        rec = Record(
            id=id,
            instrument=detail["instrument"],
            partner=detail["partner"],
            command=detail["command"],
            args=detail.get("args", {}),
            raw=detail.get("raw", {}),
            hazardous=bool(detail.get("hazardous")),
            sensitive=tuple(detail.get("sensitive", ())),
            requested_by=who,
            requested_role=detail.get("role", ""),
            requested_ns=time_ns,
        )
        records[id] = rec
    else:
        found = records.get(id)
        if found is None or found.final:
            return None
        rec = found
        rec.stage = stage
        rec.waiting = detail.get("waiting") if stage == wire.QUEUED else None
        if stage == wire.APPROVED:
            rec.approved_by = who
        elif stage == wire.SENT:
            rec.seq, rec.packet = detail.get("seq"), detail.get("packet")
            rec.baseline = detail.get("baseline", {})
        elif stage in (wire.FAILED, wire.TIMED_OUT, wire.REJECTED, wire.CANCELLED):
            rec.failed_stage = detail.get("at")
            rec.reason = detail.get("reason")
    entry = {"stage": stage, "time_ns": time_ns, "who": who}
    entry |= {k: detail[k] for k in ("reason", "at", "waiting") if detail.get(k) is not None}
    rec.stages.append(entry)
    return rec


def rows_of(table: pa.Table) -> list[tuple[int, str, str, str, dict[str, Any]]]:
    """A ``commands`` table as (time_ns, id, stage, who, detail) tuples, in its order."""
    times = table.column("time").cast(pa.int64()).to_pylist()
    cols = [table.column(n).to_pylist() for n in ("id", "stage", "who", "detail")]
    out = []
    for t, id, stage, who, text in zip(times, *cols, strict=True):
        try:
            detail = json.loads(text) if text else {}
        except ValueError:
            detail = {}
        out.append((t, id, stage, who, detail if isinstance(detail, dict) else {}))
    return out
