"""A plain MQTT subscriber that decodes what the station sends and keeps per-instrument counts.

Used by `ilrs-ops monitor` and `ilrs-ops up` to show live station traffic in the terminal.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import aiomqtt
import numpy as np
from rich.table import Table

from ilrs_ops.profiles import Catalog
from ilrs_ops.telemetry import decode_frames


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
    """Decodes every message on ``{root}/tm/#`` with the catalog's profiles."""

    def __init__(self, catalog: Catalog, *, root: str = "ilrs") -> None:
        self.catalog = catalog
        self.root = root
        self.seen: dict[str, Seen] = {i.id: Seen() for i in catalog}
        self.rejected: Counter[str] = Counter()

    async def run(self, client: aiomqtt.Client) -> None:
        await client.subscribe(f"{self.root}/tm/#", qos=1)
        async for message in client.messages:
            self.feed(bytes(message.payload))  # type: ignore[arg-type]

    def feed(self, frame: bytes) -> None:
        now = time.monotonic()
        decoded, rejected = decode_frames(self.catalog, [frame])
        self.rejected.update(rejected.counts())
        for d in decoded:
            s = self.seen[d.instrument.id]
            if not s.packets:
                s.first_s = now
            s.packets += len(d)
            s.last_s = now
            enums = {f.name: f.enum for f in d.instrument.profile.fields if f.enum}
            for name, v in d.engineering().items():
                last = np.asarray(v)[-1]
                if name in enums:
                    s.latest[name] = enums[name].get(int(last), str(int(last)))
                else:
                    s.latest[name] = f"{float(last.mean()):.4g}"

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
