"""The audit trail: every state-changing action (ack, shelve, unshelve, profile upload,
dashboard change) is an event in the store (``kind`` the action, ``detail`` JSON with who,
role, partner and the action's own fields) and a log line on ``ilrs_ops.console.audit``.
Nothing else is kept: the store is the record, so a restarted console lists the same trail."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pyarrow as pa

from ilrs_ops.console._auth import Principal
from ilrs_ops.console._data import iso, reading
from ilrs_ops.schemas import EVENTS
from ilrs_ops.store import Store

log = logging.getLogger("ilrs_ops.console.audit")

AUDIT_KINDS = ("ack", "shelve", "unshelve", "profile", "dashboard")


def record(
    store: Store,
    principal: Principal,
    instrument: str,
    kind: str,
    channel: str | None,
    detail: dict[str, Any],
    time_ns: int | None = None,
) -> dict[str, Any]:
    """Write one action as an event of ``instrument`` (durable before it returns) and log it;
    returns the event as a JSON row (``time_ns``, ``kind``, ``channel``, ``detail`` parsed)."""
    t = time.time_ns() if time_ns is None else time_ns
    doc = {"who": principal.name, "role": principal.role, "partner": principal.partner, **detail}
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    table = pa.Table.from_pylist(
        [{"time": t, "kind": kind, "channel": channel, "from_state": None, "to_state": None,
          "value": None, "detail": text}],
        schema=EVENTS,
    )  # fmt: skip
    with reading(f"recording {kind} of {instrument}"):
        store.append_events(instrument, table)
    log.info(
        "audit: %s (%s) %s %s%s: %s",
        principal.name,
        principal.role,
        kind,
        instrument,
        f"/{channel}" if channel else "",
        text,
    )
    return {
        "time_ns": t,
        "time": iso(t),
        "kind": kind,
        "instrument": instrument,
        "channel": channel,
        "detail": doc,
    }


def parse_detail(text: str | None) -> dict[str, Any]:
    """The detail JSON of a console event ({} when missing or not an object)."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
