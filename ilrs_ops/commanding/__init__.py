"""Commanding: telecommands defined in the profiles, checked, queued, approved, sent, verified
against telemetry and recorded as events."""

from ilrs_ops.commanding._codec import Codec, Read, Telecommands, describe, tc_profile, value_range

__all__ = ["Codec", "Read", "Telecommands", "describe", "tc_profile", "value_range"]
