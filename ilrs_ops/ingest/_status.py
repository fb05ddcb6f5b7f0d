"""Live status per instrument: latest values, limit states, health, counters, as retained JSON.

Health is what an operator sees on a tile: ``critical`` or ``warning`` from the worst limit
state, ``stale`` after 3 missed packet periods, ``offline`` after 30 (and before the first packet).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ilrs_ops.profiles import Instrument

STALE_PERIODS = 3
OFFLINE_PERIODS = 30
_STATE_HEALTH = {2: "critical", 1: "warning"}


@dataclass
class InstrumentStatus:
    """What ingest knows of one instrument right now."""

    instrument: Instrument
    last_recv_s: float | None = None  # wall clock of the last good packet
    last_time_ns: int | None = None  # its packet time
    latest: dict[str, Any] = field(default_factory=dict)  # channel -> value (as Processed.latest)
    states: dict[str, int] = field(default_factory=dict)  # channel -> limit state
    packets: int = 0
    bytes: int = 0
    rejects: dict[str, int] = field(default_factory=dict)

    def health(self, now_s: float) -> str:
        period = self.instrument.profile.expected_period_s
        if self.last_recv_s is None or now_s - self.last_recv_s > OFFLINE_PERIODS * period:
            return "offline"
        if now_s - self.last_recv_s > STALE_PERIODS * period:
            return "stale"
        worst = max(self.states.values(), default=0)
        return _STATE_HEALTH.get(worst, "nominal")

    def to_json(self, now_s: float | None = None) -> bytes:
        """The retained status message of ``ilrs/status/{partner}/{instrument}``."""
        now_s = time.time() if now_s is None else now_s
        p = self.instrument.profile
        units = {f.name: f.units for f in p.fields} | {d.name: d.units for d in p.derived}
        doc = {
            "instrument": p.instrument,
            "partner": p.partner,
            "name": p.name,
            "kind": p.kind,
            "health": self.health(now_s),
            "updated": now_s,
            "last_recv": self.last_recv_s,
            "last_packet_time_ns": self.last_time_ns,
            "expected_period_s": p.expected_period_s,
            "packets": self.packets,
            "bytes": self.bytes,
            "rejects": self.rejects,
            "values": {
                name: {"value": value, "units": units.get(name), "state": self.states.get(name)}
                for name, value in self.latest.items()
            },
        }
        return json.dumps(doc, separators=(",", ":"), default=_jsonable).encode()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
