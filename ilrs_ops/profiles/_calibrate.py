"""Raw counts -> engineering units with NumPy, exactly as the profile says.

This is the plain reference form; the Numba pipeline kernels are tested against it.
"""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles._schema import Calibration


def calibrate(cal: Calibration | None, raw: np.ndarray) -> np.ndarray:
    """Apply ``cal`` element-wise to ``raw`` (any shape); no calibration gives the raw value."""
    x = np.asarray(raw, dtype=np.float64)
    if cal is None:
        return x
    if cal.poly is not None:
        return np.polynomial.polynomial.polyval(x, cal.poly)
    if cal.segments is not None:
        starts = np.array([s.start for s in cal.segments])
        which = np.clip(np.searchsorted(starts, x, side="right") - 1, 0, len(starts) - 1)
        out = np.empty_like(x)
        for k, seg in enumerate(cal.segments):
            sel = which == k
            out[sel] = np.polynomial.polynomial.polyval(x[sel], seg.poly)
        return out
    assert cal.table is not None
    xs, ys = np.array(cal.table, dtype=np.float64).T
    nan = np.nan if cal.outside == "nan" else None
    return np.interp(x, xs, ys, left=nan, right=nan)
