"""The simulated station: physically plausible modules publishing CCSDS telemetry over MQTT."""

from ilrs_ops.sim._environment import Environment
from ilrs_ops.sim._faults import KINDS as FAULT_KINDS
from ilrs_ops.sim._faults import Faults
from ilrs_ops.sim._publish import Simulator
from ilrs_ops.sim._station import STRAY_APID, Batch, Module

__all__ = ["FAULT_KINDS", "STRAY_APID", "Batch", "Environment", "Faults", "Module", "Simulator"]
