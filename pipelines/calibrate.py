"""Raw counts -> engineering units for whole columns: polynomial, segmented or table calibration.

The semantics are those of the NumPy reference in ``ilrs_ops.profiles`` (tested against it):

- polynomial: ``c[0] + c[1] x + ...``, evaluated by Horner from the highest coefficient exactly
  as ``numpy.polynomial.polynomial.polyval`` does (so results are bit-identical, and a non-finite
  raw value gives NaN).
- segmented: segment ``k`` applies for ``starts[k] <= x < starts[k + 1]``; raw values below the
  first start use the first segment, values from the last start on use the last segment.
- table: linear interpolation between points ``(x[k], y[k])`` of strictly increasing ``x``, as
  ``numpy.interp``; raw values outside ``[x[0], x[-1]]`` are clamped to the end values, or NaN
  when the plan says ``outside="nan"``.
- none: the raw value as float64.

Integer raw values are converted to float64 inside the kernels (as ``astype(float64)`` would).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

#: Calibration kinds.
NONE, POLY, SEGMENTS, TABLE = 0, 1, 2, 3
KIND_NAMES = ("none", "poly", "segments", "table")

#: Raw dtypes the kernels take as they are (each compiles once); others go through float64.
_KERNEL_DTYPES = frozenset(
    np.dtype(t) for t in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8")
)


def _empty() -> np.ndarray:
    return np.empty(0)


@dataclass(frozen=True, eq=False)
class CalPlan:
    """How one field's raw values become engineering units; build it with the class methods.

    kind: NONE, POLY, SEGMENTS or TABLE.
    starts / ncoef / coef (POLY, SEGMENTS): per segment its first raw value, its number of
    coefficients, and its coefficients lowest degree first in a zero-padded matrix
    ``(n_segments, max_ncoef)``; a polynomial is one segment starting at -inf.
    x / y / outside_nan (TABLE): the points, and NaN (rather than the end value) outside them.
    The constructor checks the arrays and raises ValueError when they do not describe a plan.
    """

    kind: int
    starts: np.ndarray = field(default_factory=_empty)  # float64[n_segments]
    ncoef: np.ndarray = field(default_factory=_empty)  # int64[n_segments]
    coef: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # [n_segments, max_ncoef]
    x: np.ndarray = field(default_factory=_empty)  # float64[n_points]
    y: np.ndarray = field(default_factory=_empty)  # float64[n_points]
    outside_nan: bool = False

    def __post_init__(self) -> None:
        for name, dtype in (
            ("starts", np.float64),
            ("ncoef", np.int64),
            ("coef", np.float64),
            ("x", np.float64),
            ("y", np.float64),
        ):
            a = np.array(getattr(self, name), dtype, order="C", ndmin=1)
            a.flags.writeable = False  # a plan is shared by every batch; nobody changes it
            object.__setattr__(self, name, a)
        if self.kind not in (NONE, POLY, SEGMENTS, TABLE):
            raise ValueError(f"calibration kind {self.kind} is not NONE, POLY, SEGMENTS or TABLE")
        if self.kind in (POLY, SEGMENTS):
            self._check_segments()
        if self.kind == TABLE:
            self._check_table()

    def _check_segments(self) -> None:
        n = self.starts.shape[0]
        if self.starts.ndim != 1 or n == 0:
            raise ValueError("a polynomial or segmented calibration needs at least one segment")
        if self.coef.ndim != 2 or self.coef.shape[0] != n or self.ncoef.shape != (n,):
            raise ValueError(
                f"coef must be ({n}, max_ncoef) and ncoef ({n},) for {n} segment(s); "
                f"got {self.coef.shape} and {self.ncoef.shape}"
            )
        if np.any(self.ncoef < 1) or np.any(self.ncoef > self.coef.shape[1]):
            raise ValueError(f"ncoef {self.ncoef.tolist()} must lie in 1..{self.coef.shape[1]}")
        if self.kind == POLY and n != 1:
            raise ValueError("a polynomial calibration is one segment; use SEGMENTS")
        if np.isnan(self.starts).any() or np.any(np.diff(self.starts) <= 0):
            raise ValueError(f"segment starts {self.starts.tolist()} are not strictly increasing")

    def _check_table(self) -> None:
        if self.x.ndim != 1 or self.x.shape != self.y.shape or self.x.shape[0] < 2:
            raise ValueError("a table needs x and y of the same length, at least 2 points")
        if np.isnan(self.x).any() or np.any(np.diff(self.x) <= 0):
            raise ValueError(f"table x {self.x.tolist()} is not strictly increasing")

    @classmethod
    def none(cls) -> CalPlan:
        """No calibration: the raw value as float64."""
        return cls(NONE)

    @classmethod
    def poly(cls, coef: Sequence[float] | np.ndarray) -> CalPlan:
        """``coef[0] + coef[1] x + coef[2] x**2 + ...``."""
        c = np.asarray(coef, np.float64)
        if c.ndim != 1 or c.shape[0] == 0:
            raise ValueError("a polynomial needs at least one coefficient")
        return cls(POLY, np.array([-np.inf]), np.array([c.shape[0]]), c[None, :])

    @classmethod
    def segmented(
        cls, starts: Sequence[float] | np.ndarray, polys: Sequence[Sequence[float]]
    ) -> CalPlan:
        """Polynomial ``polys[k]`` from ``starts[k]`` up to the next start."""
        if len(polys) != len(starts) or not polys or any(len(p) == 0 for p in polys):
            raise ValueError("segmented: one non-empty coefficient list per start")
        width = max(len(p) for p in polys)
        coef = np.zeros((len(polys), width))
        for k, p in enumerate(polys):
            coef[k, : len(p)] = p
        return cls(SEGMENTS, np.asarray(starts), np.array([len(p) for p in polys]), coef)

    @classmethod
    def table(
        cls,
        x: Sequence[float] | np.ndarray,
        y: Sequence[float] | np.ndarray,
        outside: str = "clamp",
    ) -> CalPlan:
        """Linear interpolation through ``(x[k], y[k])``; ``outside`` is "clamp" or "nan"."""
        if outside not in ("clamp", "nan"):
            raise ValueError(f"outside {outside!r} is not 'clamp' or 'nan'")
        return cls(TABLE, x=np.asarray(x), y=np.asarray(y), outside_nan=outside == "nan")


@njit(cache=True, nogil=True)
def _poly_kernel(raw: np.ndarray, coef: np.ndarray, out: np.ndarray) -> None:
    """Horner as numpy's polyval: ``y = c[-1] + x * 0`` (NaN for non-finite x), then down."""
    top = coef.shape[0] - 1
    c_top = coef[top]
    for i in range(raw.shape[0]):
        x = np.float64(raw[i])
        y = c_top + x * 0.0
        for k in range(top - 1, -1, -1):
            y = coef[k] + y * x
        out[i] = y


@njit(cache=True, nogil=True)
def _segments_kernel(
    raw: np.ndarray, starts: np.ndarray, ncoef: np.ndarray, coef: np.ndarray, out: np.ndarray
) -> None:
    """Segment = the last with ``starts[k] <= x`` (binary search), or the first; then Horner."""
    n_seg = starts.shape[0]
    for i in range(raw.shape[0]):
        x = np.float64(raw[i])
        lo, hi = 0, n_seg
        while lo < hi:
            mid = (lo + hi) >> 1
            if starts[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
        s = max(lo - 1, 0)
        top = ncoef[s] - 1
        y = coef[s, top] + x * 0.0
        for k in range(top - 1, -1, -1):
            y = coef[s, k] + y * x
        out[i] = y


@njit(cache=True, nogil=True)
def _table_kernel(
    raw: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    slopes: np.ndarray,
    left: float,
    right: float,
    out: np.ndarray,
) -> None:
    """``numpy.interp`` step by step, its fallback for non-finite slopes included."""
    n = xs.shape[0]
    for i in range(raw.shape[0]):
        x = np.float64(raw[i])
        if np.isnan(x):
            out[i] = x
        elif x > xs[n - 1]:
            out[i] = right
        elif x < xs[0]:
            out[i] = left
        else:
            lo, hi = 0, n  # binary search for the last xs[j] <= x
            while lo < hi:
                mid = (lo + hi) >> 1
                if xs[mid] <= x:
                    lo = mid + 1
                else:
                    hi = mid
            j = lo - 1
            if j == n - 1 or xs[j] == x:
                out[i] = ys[j]
            else:
                slope = slopes[j]
                y = slope * (x - xs[j]) + ys[j]
                if np.isnan(y):
                    y = slope * (x - xs[j + 1]) + ys[j + 1]
                    if np.isnan(y) and ys[j] == ys[j + 1]:
                        y = ys[j]
                out[i] = y


def calibrate(raw: np.ndarray, cal: CalPlan) -> np.ndarray:
    """Apply ``cal`` element-wise to ``raw`` (1-D, or 2-D for array fields); a new float64 array.

    ``raw`` may be any integer or float dtype, as decoded.
    """
    if not isinstance(raw, np.ndarray) or raw.ndim not in (1, 2):
        raise TypeError("raw must be a 1-D or 2-D numpy array")
    if raw.dtype.kind not in "iuf":
        raise TypeError(f"raw must be an integer or float array, not {raw.dtype}")
    if not isinstance(cal, CalPlan):
        raise TypeError(f"cal must be a CalPlan, not {type(cal).__name__}")
    # A signalling NaN from the wire sets the "invalid" flag when widened: it is data, not an error.
    if cal.kind == NONE:
        with np.errstate(invalid="ignore"):
            return raw.astype(np.float64)
    flat = np.ascontiguousarray(raw).reshape(-1)
    if flat.dtype not in _KERNEL_DTYPES:  # float16, non-native byte order
        with np.errstate(invalid="ignore"):
            flat = flat.astype(np.float64)
    out = np.empty(flat.shape[0], np.float64)
    if cal.kind == POLY:
        _poly_kernel(flat, cal.coef[0, : cal.ncoef[0]], out)
    elif cal.kind == SEGMENTS:
        _segments_kernel(flat, cal.starts, cal.ncoef, cal.coef, out)
    else:
        left = np.nan if cal.outside_nan else cal.y[0]
        right = np.nan if cal.outside_nan else cal.y[-1]
        slopes = np.diff(cal.y) / np.diff(cal.x)  # as numpy.interp computes them
        _table_kernel(flat, cal.x, cal.y, slopes, left, right, out)
    return out.reshape(raw.shape)
