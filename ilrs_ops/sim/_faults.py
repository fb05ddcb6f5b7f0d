"""Fault injection for the simulator: what can go wrong between a module and the ground.

Rates are probabilities per packet (``limit`` and ``dropout`` start an episode that lasts a while),
and per telecommand for the ``tc_`` kinds. Every injected fault is counted, so tests can check that
the ground accounts for each one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

from ilrs_ops.errors import InputError

#: What turns every fault off.
NONE = ("", "none", "off", "0")
#: Faults of the telemetry a module sends, drawn per packet.
TM_KINDS = ("limit", "dropout", "gap", "duplicate", "reorder", "corrupt", "truncate", "wrong_apid")
#: Faults of the telecommands a module receives, drawn per command (at most one each).
TC_KINDS = ("tc_lost", "tc_rejected", "tc_unexecuted")
KINDS = TM_KINDS + TC_KINDS


@dataclass(frozen=True)
class Faults:
    """Per-packet probabilities of each fault (0 = never)."""

    limit: float = 0.0  # push a limited channel past its red (or yellow) limit
    dropout: float = 0.0  # the module goes silent (stale, then offline)
    gap: float = 0.0  # a few packets lost: their sequence counts are skipped
    duplicate: float = 0.0  # a packet sent twice
    reorder: float = 0.0  # a packet swapped with the next one
    corrupt: float = 0.0  # the version bits flipped: not a valid space packet
    truncate: float = 0.0  # the packet cut short
    wrong_apid: float = 0.0  # an APID that no profile has
    tc_lost: float = 0.0  # a telecommand never reaches the module: no acknowledgement at all
    tc_rejected: float = 0.0  # a telecommand garbled on the uplink: rejected as BAD_CHECKSUM
    tc_unexecuted: float = 0.0  # a telecommand acknowledged, but its effect never happens
    limit_s: float = 5.0  # how long an excursion lasts
    dropout_s: float = 20.0  # how long a dropout lasts

    def __post_init__(self) -> None:
        for k in KINDS:
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"fault rate {k}={v} is not a probability; use 0..1")
        if self.limit_s <= 0 or self.dropout_s <= 0:
            raise InputError("limit_s and dropout_s must be > 0 seconds")

    @property
    def any(self) -> bool:
        """Whether any telemetry fault is on (commands have their own draw, ``any_tc``)."""
        return any(getattr(self, k) > 0 for k in TM_KINDS)

    @property
    def any_tc(self) -> bool:
        return any(getattr(self, k) > 0 for k in TC_KINDS)

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``"limit=0.01,gap=0.005"``; ``"all=0.01"`` sets every telemetry kind (commands'
        faults only by name, e.g. ``tc_lost=0.1``: a demo with all=... still commands);
        ``""``, ``"none"``, ``"off"`` and ``"0"`` none."""
        if text.strip().lower() in NONE:
            return cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, val = part.partition("=")
            key = key.strip()
            if not sep or (key not in known and key != "all"):
                raise InputError(
                    f"bad fault {part!r}; write kind=rate with kinds {', '.join(KINDS)} or all, "
                    "e.g. limit=0.01,gap=0.005"
                )
            try:
                rate = float(val)
            except ValueError:
                raise InputError(f"bad fault rate in {part!r}: {val!r} is not a number") from None
            for k in TM_KINDS if key == "all" else (key,):
                values[k] = rate
        return cls(**values)


#: Counts of injected faults, by kind, per instrument: the ground truth for tests.
Injected = Counter[tuple[str, str]]
