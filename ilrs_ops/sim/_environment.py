"""The lunar surface environment every simulated module shares: sun and battery state.

Stateless functions of time, so that any packet's values follow from its time and the seed.
"""

from __future__ import annotations

import numpy as np

from ilrs_ops.errors import InputError

#: Synodic month: one lunar day plus one lunar night, each about 14.77 Earth days.
SYNODIC_S = 29.530589 * 86400.0
#: Lowest battery state of charge at the end of the night (RTG and heaters keep the base alive).
SOC_DAWN = 0.35
#: Fraction of the cycle it takes the arrays to refill the battery after dawn.
RECHARGE = 0.08


class Environment:
    """Maps packet times (UTC ns) to lunar phase, sun elevation and battery state of charge.

    ``time_scale`` compresses the lunar cycle for demos: 10000 makes a day+night about 4 minutes.
    ``phase0`` is the phase at ``epoch_ns``: 0 = sunrise, 0.25 = local noon, 0.5 = sunset.
    """

    def __init__(self, *, epoch_ns: int, time_scale: float = 1.0, phase0: float = 0.1) -> None:
        if time_scale <= 0:
            raise InputError(f"time_scale must be > 0, not {time_scale}")
        self.epoch_ns = epoch_ns
        self.time_scale = time_scale
        self.phase0 = phase0

    def phase(self, t_ns: np.ndarray, lag_h: float = 0.0) -> np.ndarray:
        """Fraction of the synodic cycle in [0, 1), ``lag_h`` lunar hours behind the sun."""
        elapsed = (np.asarray(t_ns, dtype=np.float64) - self.epoch_ns) * 1e-9 * self.time_scale
        return np.mod(self.phase0 + (elapsed - lag_h * 3600.0) / SYNODIC_S, 1.0)

    def terminator(self, t_ns: int) -> tuple[bool, str, int]:
        """At ``t_ns``: whether it is lunar day at the site, the next terminator ("sunset" or
        "sunrise") and when it comes (UTC ns), at this environment's time scale."""
        p = float(self.phase(np.array([t_ns]))[0])
        day = p < 0.5
        left = (0.5 if day else 1.0) - p  # of the cycle, to sunset (0.5) or sunrise (1.0)
        wall_s = left * SYNODIC_S / self.time_scale
        return day, "sunset" if day else "sunrise", t_ns + round(wall_s * 1e9)

    def sun(self, t_ns: np.ndarray, lag_h: float = 0.0) -> np.ndarray:
        """Sine of the sun's elevation at the south-pole site, clipped to [0, 1] (0 at night)."""
        return np.clip(np.sin(2.0 * np.pi * self.phase(t_ns, lag_h)), 0.0, 1.0)

    def state_of_charge(self, t_ns: np.ndarray) -> np.ndarray:
        """Battery state of charge in [SOC_DAWN, 1]: quick recharge after dawn, slow night drain."""
        p = self.phase(t_ns)
        charging = SOC_DAWN + (1.0 - SOC_DAWN) * np.minimum(p / RECHARGE, 1.0)
        draining = 1.0 - (1.0 - SOC_DAWN) * (p - 0.5) / 0.5
        return np.where(p < 0.5, charging, draining)
