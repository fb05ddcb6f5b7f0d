"""A plain MQTT subscriber that runs what the station sends through the same Lane as ingest (no
store) and keeps per-instrument counts and latest values.

Used by `ilrs-ops monitor` to show live station traffic in the terminal.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import aiomqtt
import numpy as np
from rich.table import Table

from ilrs_ops import wire
from ilrs_ops.processing import Lane
from ilrs_ops.profiles import Catalog


@dataclass
class Seen:
    """What has arrived from one instrument."""

    packets: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    latest: dict[str, str] = field(default_factory=dict)

    def rate(self) -> float:
        span = self.last_s - self.first_s
        return (self.packets - 1) / span if self.packets > 1 and span > 0 else 0.0


class Monitor:
    """Decodes every message on ``{root}/tm/#``, routed by topic as ingest routes it."""

    def __init__(self, catalog: Catalog, *, root: str = "ilrs") -> None:
        self.catalog = catalog
        self.root = root
        self.seen: dict[str, Seen] = {i.id: Seen() for i in catalog}
        self.rejected: Counter[str] = Counter()
        self._lanes = {i.id: Lane(i.id, i) for i in catalog}

    async def run(self, client: aiomqtt.Client) -> None:
        await client.subscribe(wire.all_of(self.root, wire.TM), qos=1)
        async for message in client.messages:
            self.feed(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]

    def feed(self, topic: str, frame: bytes) -> None:
        """One message: decoded by its instrument's lane, or counted as of no instrument."""
        now = time.monotonic()
        lane = self._lanes.get(wire.instrument_of(self.root, wire.TM, topic) or "")
        if lane is None:
            self.rejected[wire.UNKNOWN_INSTRUMENT] += 1
            return
        out = lane.feed(np.array([time.time_ns()]), [topic], [frame])
        lane.take()  # nothing is kept: the monitor shows, it does not store
        self.rejected.update(out.quarantine.column("reason").to_pylist())
        if not out.raw.num_rows:
            return
        s = self.seen[lane.id]
        if not s.packets:
            s.first_s = now
        s.packets += out.raw.num_rows
        s.last_s = now
        for name, value in out.latest["values"].items():  # type: ignore[union-attr]
            s.latest[name] = _short(value)

    def table(self) -> Table:
        t = Table(title="ILRS station — live decode", expand=False)
        for col in ("partner", "instrument", "packets", "rate /s", "latest values"):
            t.add_column(col)
        for inst in sorted(self.catalog, key=lambda i: (i.profile.partner, i.id)):
            s = self.seen[inst.id]
            values = ", ".join(f"{k}={v}" for k, v in list(s.latest.items())[:4])
            t.add_row(inst.profile.partner, inst.id, str(s.packets), f"{s.rate():.2f}", values)
        if self.rejected:
            t.caption = "rejected: " + ", ".join(f"{k} {v}" for k, v in self.rejected.items())
        return t


def _short(value: object) -> str:
    """A value for a terminal cell: enum labels as they are, numbers to 4 digits, arrays by
    their mean."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float)]
        return f"{float(np.mean(numbers)):.4g}" if numbers else str(value[:1])
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
