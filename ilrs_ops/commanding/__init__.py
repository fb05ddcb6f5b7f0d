"""Commanding: telecommands defined in the profiles, checked, queued, approved, sent, verified
against telemetry and recorded as events."""

from ilrs_ops.commanding._codec import Codec, Read, Telecommands, describe, tc_profile, value_range
from ilrs_ops.commanding._history import Record, redacted
from ilrs_ops.commanding._service import Actor, Commander, RefusedError
from ilrs_ops.commanding._uplink import CommandLinkError, Uplink

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
