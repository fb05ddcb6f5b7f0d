"""Raw counts -> engineering units with NumPy, exactly as the profile says, and back.

This is the plain reference form; the Numba pipeline kernels are tested against it. The way
back (``RawConverter``) is what the simulator sends and what a command's arguments carry.
"""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles._schema import Calibration, FieldSpec


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


class RawConverter:
    """Engineering units -> the raw counts that calibrate back nearest to them."""

    def __init__(self, field: FieldSpec) -> None:
        self.field = field
        self.is_float = field.base == "f"
        self.is_octets = field.is_octets
        if self.is_float or self.is_octets:
            return
        if field.base == "u":
            lo, hi = 0, (1 << field.width) - 1
        else:
            lo, hi = -(1 << (field.width - 1)), (1 << (field.width - 1)) - 1
        self.lo, self.hi = lo, hi
        self.identity = field.calibration is None
        if not self.identity:
            # Invert any calibration numerically: calibrate a grid of raw values, sort, search.
            grid = np.unique(np.linspace(lo, hi, num=min(hi - lo + 1, 1 << 17)).round())
            eng = calibrate(field.calibration, grid)
            ok = np.isfinite(eng)
            order = np.argsort(eng[ok], kind="stable")
            self._eng = eng[ok][order]
            self._raw = grid[ok][order]

    def __call__(self, eng: np.ndarray) -> np.ndarray:
        if self.is_octets:  # already the octets
            return np.asarray(eng, np.uint8)
        if self.is_float:
            return np.asarray(eng, dtype=np.float32 if self.field.width == 32 else np.float64)
        if self.identity:
            return np.clip(np.round(eng), self.lo, self.hi).astype(np.int64)
        # Interpolate between the neighbouring grid points, then take the best of the nearest
        # three raw counts: exact to one count even where the grid is coarser than a count.
        i = np.clip(np.searchsorted(self._eng, eng), 1, len(self._eng) - 1)
        e0, e1 = self._eng[i - 1], self._eng[i]
        r0, r1 = self._raw[i - 1], self._raw[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(e1 != e0, (eng - e0) / (e1 - e0), 0.0)
        guess = np.round(r0 + np.clip(frac, 0.0, 1.0) * (r1 - r0))
        options = np.clip(guess[..., None] + np.array([-1.0, 0.0, 1.0]), self.lo, self.hi)
        error = np.abs(calibrate(self.field.calibration, options) - np.asarray(eng)[..., None])
        best = np.take_along_axis(options, np.nanargmin(error, axis=-1)[..., None], axis=-1)
        return best[..., 0].astype(np.int64)
