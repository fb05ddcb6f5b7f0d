"""Container health check: exit 0 when this container holds an established TCP connection to
the MQTT broker's port (argument 1, default 1883), else 1.

It reads /proc/net/tcp{,6}, so it costs no MQTT connection, no broker user and no import of
ilrs_ops. It shows the process is up and linked to the broker (ingest reconnects with backoff
while the broker is away); a hung event loop with an open socket still passes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ESTABLISHED = "01"


def connected(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> bool:
    """Whether any socket in ``tables`` is ESTABLISHED to remote ``port``."""
    want = f":{port:04X}"
    for table in tables:
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 3 and cols[2].endswith(want) and cols[3] == ESTABLISHED:
                return True
    return False


if __name__ == "__main__":
    sys.exit(0 if connected(int(sys.argv[1]) if len(sys.argv) > 1 else 1883) else 1)
