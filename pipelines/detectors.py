"""Event detectors on one channel's samples; ``sta_lta`` is the classic seismic trigger.

Recursive (exponential) STA/LTA on the squared signal, as in seismology's ``recursive_sta_lta``
(Withers et al. 1998): with ``n_sta = round(sta_s * rate)`` and ``n_lta = round(lta_s * rate)``
samples (at least 1),

    sta = x**2 / n_sta + (1 - 1 / n_sta) * sta
    lta = x**2 / n_lta + (1 - 1 / n_lta) * lta
    ratio = sta / lta            (0 when lta == 0)

starting from sta = lta = 0. The ratio is 0 until ``n_lta`` samples have been seen (the LTA
window has filled once), so nothing triggers while the averages warm up. The trigger turns on at
the first sample whose ratio is above ``on`` and off at the first sample after it whose ratio is
below ``off``. A NaN sample leaves the averages and the trigger alone and gets a NaN ratio.

The state (sta, lta, triggered, samples seen) is carried from batch to batch, so a signal cut
into batches gives exactly the ratios and events of the whole signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit


@dataclass(frozen=True)
class StaLtaPlan:
    """Trigger parameters: windows in seconds, thresholds on the ratio, the channel's rate."""

    sta_s: float
    lta_s: float
    on: float
    off: float
    sample_rate_hz: float

    def __post_init__(self) -> None:
        for name in ("sta_s", "lta_s", "on", "off", "sample_rate_hz"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
                raise ValueError(f"sta_lta {name} must be a positive number, not {v!r}")
        if self.n_sta >= self.n_lta:
            raise ValueError(
                f"the STA window ({self.n_sta} samples) must be shorter than the LTA window "
                f"({self.n_lta} samples)"
            )
        if self.off > self.on:
            raise ValueError(f"off {self.off} must not be above on {self.on}")

    @property
    def n_sta(self) -> int:
        return max(1, round(self.sta_s * self.sample_rate_hz))

    @property
    def n_lta(self) -> int:
        return max(1, round(self.lta_s * self.sample_rate_hz))


@dataclass(frozen=True)
class StaLtaState:
    """What one batch hands to the next."""

    sta: float = 0.0
    lta: float = 0.0
    triggered: bool = False
    seen: int = 0


class StaLtaResult(NamedTuple):
    ratio: np.ndarray  # float64[N]
    on_index: np.ndarray  # int64: samples where the trigger turned on
    off_index: np.ndarray  # int64: samples where it turned off
    state: StaLtaState


@njit(cache=True, nogil=True)
def _sta_lta_kernel(
    x: np.ndarray,
    n_sta: int,
    n_lta: int,
    on: float,
    off: float,
    sta: float,
    lta: float,
    triggered: bool,
    seen: int,
    ratio: np.ndarray,
    on_index: np.ndarray,
    off_index: np.ndarray,
) -> tuple[int, int, float, float, bool, int]:
    """Returns (n_on, n_off, sta, lta, triggered, seen)."""
    c_sta = 1.0 / n_sta
    c_lta = 1.0 / n_lta
    k_sta = 1.0 - c_sta
    k_lta = 1.0 - c_lta
    n_on = n_off = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if np.isnan(v):
            ratio[i] = np.nan
            continue
        e = v * v
        sta = c_sta * e + k_sta * sta
        lta = c_lta * e + k_lta * lta
        seen += 1
        r = 0.0
        if seen >= n_lta and lta > 0.0:
            r = sta / lta
        ratio[i] = r
        if triggered:
            if r < off:
                triggered = False
                off_index[n_off] = i
                n_off += 1
        elif r > on:
            triggered = True
            on_index[n_on] = i
            n_on += 1
    return n_on, n_off, sta, lta, triggered, seen


def sta_lta(x: np.ndarray, plan: StaLtaPlan, state: StaLtaState | None = None) -> StaLtaResult:
    """Run the trigger over ``x`` (1-D samples at ``plan.sample_rate_hz``) after ``state``."""
    if not isinstance(x, np.ndarray) or x.ndim != 1:
        raise TypeError("x must be a 1-D numpy array (flatten array channels sample by sample)")
    if x.dtype.kind not in "iuf":
        raise TypeError(f"x must be numeric, not {x.dtype}")
    if not isinstance(plan, StaLtaPlan):
        raise TypeError(f"plan must be a StaLtaPlan, not {type(plan).__name__}")
    state = StaLtaState() if state is None else state
    if not (state.sta >= 0 and state.lta >= 0 and state.seen >= 0):
        raise ValueError(f"invalid STA/LTA state {state}")
    x = np.ascontiguousarray(x, np.float64 if x.dtype != np.float32 else np.float32)
    n = x.shape[0]
    ratio = np.empty(n, np.float64)
    # on and off alternate, so each happens at most (n + 1) // 2 times; untouched pages of
    # np.empty cost nothing, and the few events are copied out.
    on_index = np.empty((n + 1) // 2, np.int64)
    off_index = np.empty((n + 1) // 2, np.int64)
    n_on, n_off, sta, lta, triggered, seen = _sta_lta_kernel(
        x,
        plan.n_sta,
        plan.n_lta,
        float(plan.on),
        float(plan.off),
        float(state.sta),
        float(state.lta),
        bool(state.triggered),
        int(state.seen),
        ratio,
        on_index,
        off_index,
    )
    return StaLtaResult(
        ratio,
        on_index[:n_on].copy(),
        off_index[:n_off].copy(),
        StaLtaState(float(sta), float(lta), bool(triggered), int(seen)),
    )
