"""Commanding: telecommands defined in the profiles, checked, queued, approved, sent, verified
against telemetry and recorded as events.

The names below load on first use (PEP 562): ``ilrs-ops command`` needs only ``client`` (an
HTTP client of the console), not the codec and service with NumPy and Arrow under them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilrs_ops import lazy

if TYPE_CHECKING:
    from ilrs_ops.commanding._codec import (
        Codec,
        Read,
        Telecommands,
        describe,
        tc_profile,
        value_range,
    )
    from ilrs_ops.commanding._history import Record, redacted
    from ilrs_ops.commanding._service import Actor, Commander, RefusedError
    from ilrs_ops.commanding._uplink import CommandLinkError, Uplink

_WHERE = {
    "Actor": "_service",
    "Codec": "_codec",
    "CommandLinkError": "_uplink",
    "Commander": "_service",
    "Read": "_codec",
    "Record": "_history",
    "RefusedError": "_service",
    "Telecommands": "_codec",
    "Uplink": "_uplink",
    "describe": "_codec",
    "redacted": "_history",
    "tc_profile": "_codec",
    "value_range": "_codec",
}

__all__ = [
    "Actor",
    "Codec",
    "CommandLinkError",
    "Commander",
    "Read",
    "Record",
    "RefusedError",
    "Telecommands",
    "Uplink",
    "describe",
    "redacted",
    "tc_profile",
    "value_range",
]


__getattr__ = lazy.attributes(__name__, {k: f"{__name__}.{m}" for k, m in _WHERE.items()})
