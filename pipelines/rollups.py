"""Per-bucket min/max/mean/count of one channel over fixed time buckets, and merging them.

Bucket ``b`` covers ``[b * width_ns, (b + 1) * width_ns)`` (start inclusive, stop exclusive):
aligned to the Unix epoch, ``b = floor(t / width_ns)``, also before 1970. NaN values are
ignored by min/max/sum/mean and not counted in ``count``; a bucket whose samples are all NaN is
still present (count 0, NaN statistics). ``first_ns``/``last_ns`` are the earliest and latest
sample times in the bucket, NaN samples included (they say what time the bucket covers).

Input need not be sorted: when the buckets of a batch do not come in order, the wrapper sorts
the samples by bucket (a stable argsort) before the single-pass kernel; in-order input is not
copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True, eq=False)
class Rollup:
    """One row per bucket present, in increasing bucket order."""

    width_ns: int
    bucket: np.ndarray  # int64: floor(t / width_ns)
    count: np.ndarray  # int64: non-NaN samples
    min: np.ndarray  # float64, NaN when count == 0
    max: np.ndarray  # float64
    sum: np.ndarray  # float64 (0 when count == 0): kept so that merging stays exact
    first_ns: np.ndarray  # int64
    last_ns: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.bucket.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """sum / count; NaN for a bucket without a valid sample."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / self.count, np.nan)

    @property
    def start_ns(self) -> np.ndarray:
        """Start of each bucket (inclusive); it ends at start_ns + width_ns (exclusive)."""
        return self.bucket * self.width_ns

    @classmethod
    def empty(cls, width_ns: int) -> Rollup:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(width_ns, i, i.copy(), f, f.copy(), f.copy(), i.copy(), i.copy())


@njit(cache=True, nogil=True)
def _bucket_kernel(time_ns: np.ndarray, width_ns: int, out: np.ndarray) -> tuple[bool, int]:
    """``out[i] = floor(t[i] / width)``; returns (buckets non-decreasing, number of runs)."""
    ordered, runs = True, 0
    width = np.uint64(width_ns)
    b = start = 0
    for i in range(time_ns.shape[0]):
        t = time_ns[i]
        # Still in the bucket of the previous sample (the common case) needs no division:
        # with wrap-around subtraction, t is in [start, start + width) iff t - start < width.
        if i == 0 or np.uint64(t - start) >= width:
            b = t // width_ns
            if b * width_ns > t:  # floor for negative times, whatever the division rounds to
                b -= 1
            start = b * width_ns
        out[i] = b
        if i == 0 or b != out[i - 1]:
            runs += 1
            if i > 0 and b < out[i - 1]:
                ordered = False
    return ordered, runs


@njit(cache=True, nogil=True)
def _count_runs(bucket: np.ndarray) -> int:
    runs = 0
    for i in range(bucket.shape[0]):
        if i == 0 or bucket[i] != bucket[i - 1]:
            runs += 1
    return runs


@njit(cache=True, nogil=True)
def _rollup_kernel(
    bucket: np.ndarray,
    time_ns: np.ndarray,
    values: np.ndarray,
    out_bucket: np.ndarray,
    out_count: np.ndarray,
    out_min: np.ndarray,
    out_max: np.ndarray,
    out_sum: np.ndarray,
    out_first: np.ndarray,
    out_last: np.ndarray,
) -> None:
    """One row per run of equal buckets (the input is grouped by bucket); the accumulators are
    locals, written out once per run."""
    n = bucket.shape[0]
    i = k = 0
    while i < n:
        b = bucket[i]
        count = 0
        lo, hi, total = np.inf, -np.inf, 0.0
        first = last = time_ns[i]
        while i < n and bucket[i] == b:
            t, v = time_ns[i], values[i]
            if t < first:
                first = t
            if t > last:
                last = t
            if not np.isnan(v):
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
                total += v
                count += 1
            i += 1
        out_bucket[k] = b
        out_count[k] = count
        out_min[k] = lo if count else np.nan
        out_max[k] = hi if count else np.nan
        out_sum[k] = total
        out_first[k] = first
        out_last[k] = last
        k += 1


def rollup(time_ns: np.ndarray, values: np.ndarray, width_ns: int) -> Rollup:
    """Roll ``values`` (1-D) at ``time_ns`` (int64 ns since 1970) into buckets of ``width_ns``."""
    width_ns = _check_width(width_ns)
    t = np.asarray(time_ns)
    v = np.asarray(values)
    if t.ndim != 1 or v.shape != t.shape:
        raise ValueError("time_ns and values must be 1-D arrays of the same length")
    if t.size and t.dtype.kind not in "iu":
        raise TypeError("time_ns must be an integer array")
    if v.dtype.kind not in "iufb":
        raise TypeError(f"values must be numeric, not {v.dtype}")
    if t.size == 0:
        return Rollup.empty(width_ns)
    t = np.ascontiguousarray(t, np.int64)
    v = np.ascontiguousarray(v, np.float64)
    b = np.empty(t.shape[0], np.int64)
    ordered, runs = _bucket_kernel(t, width_ns, b)
    if not ordered:
        order = np.argsort(b, kind="stable")
        b, t, v = b[order], t[order], v[order]
        runs = _count_runs(b)
    out = _alloc(runs)
    _rollup_kernel(b, t, v, *out)
    return Rollup(width_ns, *out)


def _alloc(n: int) -> tuple[np.ndarray, ...]:
    i, f = np.int64, np.float64
    return (
        np.empty(n, i),  # bucket
        np.empty(n, i),  # count
        np.empty(n, f),  # min
        np.empty(n, f),  # max
        np.empty(n, f),  # sum
        np.empty(n, i),  # first_ns
        np.empty(n, i),  # last_ns
    )


def _check_width(width_ns: int) -> int:
    if isinstance(width_ns, bool) or not isinstance(width_ns, int | np.integer) or width_ns <= 0:
        raise ValueError(f"width_ns must be a positive integer, not {width_ns!r}")
    return int(width_ns)


@njit(cache=True, nogil=True)
def _merge_kernel(
    a_bucket: np.ndarray,
    a_count: np.ndarray,
    a_min: np.ndarray,
    a_max: np.ndarray,
    a_sum: np.ndarray,
    a_first: np.ndarray,
    a_last: np.ndarray,
    b_bucket: np.ndarray,
    b_count: np.ndarray,
    b_min: np.ndarray,
    b_max: np.ndarray,
    b_sum: np.ndarray,
    b_first: np.ndarray,
    b_last: np.ndarray,
    out_bucket: np.ndarray,
    out_count: np.ndarray,
    out_min: np.ndarray,
    out_max: np.ndarray,
    out_sum: np.ndarray,
    out_first: np.ndarray,
    out_last: np.ndarray,
) -> int:
    """Two-pointer merge of two tables sorted by unique bucket; returns the rows written."""
    na, nb = a_bucket.shape[0], b_bucket.shape[0]
    i = j = k = 0
    while i < na or j < nb:
        take_a = j >= nb or (i < na and a_bucket[i] <= b_bucket[j])
        take_b = i >= na or (j < nb and b_bucket[j] <= a_bucket[i])
        if take_a and take_b:
            out_bucket[k] = a_bucket[i]
            out_count[k] = a_count[i] + b_count[j]
            out_sum[k] = a_sum[i] + b_sum[j]
            # NaN (an empty side) loses against a number, as np.fmin/np.fmax.
            lo, hi = a_min[i], a_max[i]
            if np.isnan(lo) or b_min[j] < lo:
                lo = b_min[j]
            if np.isnan(hi) or b_max[j] > hi:
                hi = b_max[j]
            out_min[k], out_max[k] = lo, hi
            out_first[k] = min(a_first[i], b_first[j])
            out_last[k] = max(a_last[i], b_last[j])
            i += 1
            j += 1
        elif take_a:
            out_bucket[k], out_count[k], out_sum[k] = a_bucket[i], a_count[i], a_sum[i]
            out_min[k], out_max[k] = a_min[i], a_max[i]
            out_first[k], out_last[k] = a_first[i], a_last[i]
            i += 1
        else:
            out_bucket[k], out_count[k], out_sum[k] = b_bucket[j], b_count[j], b_sum[j]
            out_min[k], out_max[k] = b_min[j], b_max[j]
            out_first[k], out_last[k] = b_first[j], b_last[j]
            j += 1
        k += 1
    return k


_COLUMNS = ("bucket", "count", "min", "max", "sum", "first_ns", "last_ns")


def merge_rollups(a: Rollup, b: Rollup) -> Rollup:
    """Combine two rollups of one channel with the same width (e.g. the stored partial buckets
    and a new batch's): buckets in both are merged, the others kept; sorted by bucket."""
    if not isinstance(a, Rollup) or not isinstance(b, Rollup):
        raise TypeError("merge_rollups takes two Rollup tables")
    if a.width_ns != b.width_ns:
        raise ValueError(f"cannot merge buckets of {a.width_ns} ns with buckets of {b.width_ns} ns")
    for r in (a, b):
        if r.bucket.size > 1 and np.any(np.diff(r.bucket) <= 0):
            raise ValueError("a rollup's buckets must be unique and increasing")
    out = _alloc(len(a) + len(b))
    k = _merge_kernel(
        *(np.ascontiguousarray(getattr(a, c)) for c in _COLUMNS),
        *(np.ascontiguousarray(getattr(b, c)) for c in _COLUMNS),
        *out,
    )
    return Rollup(a.width_ns, *(x[:k].copy() for x in out))


def rollup_many(
    t: np.ndarray, values: Sequence[np.ndarray], widths_ns: Sequence[int]
) -> tuple[np.ndarray | list[int], ...]:
    """``rollup`` of every channel at every width, as one set of columns (rows by channel, then
    width, then bucket; bucket as its start in ns) and the row count of each (channel, width).

    The channels share their times, so each width's buckets are computed once and every
    channel's rows are written straight into the output columns: three times faster than a
    rollup per channel and a concatenation (measured, 1M packets of 17 channels). Times out of
    order are sorted first (stably, as ``rollup`` does).
    """
    t = np.asarray(t, np.int64)
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        t = t[order]
        values = [np.asarray(v)[order] for v in values]
    buckets = []
    for width in widths_ns:
        b = np.empty(t.shape[0], np.int64)
        _, runs = _bucket_kernel(t, _check_width(width), b)
        buckets.append((width, b, runs))
    total = sum(runs for _, _, runs in buckets) * len(values)
    cols = [np.empty(total, d) for d in (np.int64, np.int64, *[np.float64] * 3, np.int64, np.int64)]
    sizes: list[int] = []
    pos = 0
    for v in values:
        x = np.ascontiguousarray(v, np.float64)
        for width, b, runs in buckets:
            end = pos + runs
            _rollup_kernel(b, t, x, *(c[pos:end] for c in cols))
            cols[0][pos:end] *= width
            sizes.append(runs)
            pos = end
    return (*cols, sizes)
