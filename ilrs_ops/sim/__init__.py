"""The simulated station: physically plausible modules publishing CCSDS telemetry over MQTT."""

from ilrs_ops.sim._environment import SOC_DAWN, SYNODIC_S, Environment
from ilrs_ops.sim._faults import KINDS as FAULT_KINDS
from ilrs_ops.sim._faults import Faults
from ilrs_ops.sim._publish import Simulator
from ilrs_ops.sim._station import STRAY_APID, Batch, Module

__all__ = [
    "FAULT_KINDS",
    "SOC_DAWN",
    "STRAY_APID",
    "SYNODIC_S",
    "Batch",
    "Environment",
    "Faults",
    "Module",
    "Simulator",
]
