"""Downsampling arithmetic of History: N equal time buckets over [start, stop), filled from
samples or from rollup rows, combined the way ``ilrs_ops.schemas.ROLLUPS`` says (sum counts and
sums, min of mins, max of maxes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bucket_edges(start_ns: int, stop_ns: int, n: int) -> np.ndarray:
    """``n + 1`` edges; bucket i is [edges[i], edges[i + 1]). Exact integer arithmetic, so the
    buckets differ in width by at most 1 ns when the span is not a multiple of ``n``."""
    span = stop_ns - start_ns
    return np.array([start_ns + (i * span) // n for i in range(n + 1)], np.int64)


def bucket_index(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bucket of each time (all inside [edges[0], edges[-1]))."""
    n = edges.shape[0] - 1
    span = int(edges[-1]) - int(edges[0])
    if span % n == 0:
        return (t - edges[0]) // (span // n)
    return np.searchsorted(edges, t, side="right") - 1


@dataclass(eq=False)
class Buckets:
    """count (non-NaN samples), sum, min and max per bucket; min/max NaN where count is 0."""

    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Buckets:
        return cls(np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan), np.full(n, np.nan))

    def add(self, other: Buckets) -> Buckets:
        return Buckets(
            self.count + other.count,
            self.sum + other.sum,
            np.fmin(self.min, other.min),
            np.fmax(self.max, other.max),
        )

    @property
    def mean(self) -> np.ndarray:
        out = np.full(self.sum.shape, np.nan)
        np.divide(self.sum, self.count, out=out, where=self.count > 0)
        return out


def positions(t: np.ndarray, edges: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Where each bucket's samples start in ``t`` (sorted ascending), for the samples in
    [lo, hi) only: bucket i is ``t[pos[i]:pos[i + 1]]``."""
    return np.searchsorted(t, np.clip(edges, lo, hi), side="left")


def from_samples(v: np.ndarray, pos: np.ndarray) -> Buckets:
    """Buckets of samples ``v`` split at ``pos`` (``positions``); NaN samples do not count."""
    n = pos.shape[0] - 1
    out = Buckets.empty(n)
    first, last = int(pos[0]), int(pos[-1])
    if last <= first:
        return out
    v = v[first:last]
    sizes = np.diff(pos)
    nonempty = sizes > 0
    starts = pos[:-1][nonempty] - first
    nan = np.isnan(v)
    if nan.any():
        valid = ~nan
        out.count[nonempty] = np.add.reduceat(valid, starts, dtype=np.int64)
        out.sum[nonempty] = np.add.reduceat(np.where(valid, v, 0.0), starts)
        out.min[nonempty] = np.fmin.reduceat(v, starts)
        out.max[nonempty] = np.fmax.reduceat(v, starts)
    else:
        out.count[nonempty] = sizes[nonempty]
        out.sum[nonempty] = np.add.reduceat(v, starts)
        out.min[nonempty] = np.minimum.reduceat(v, starts)
        out.max[nonempty] = np.maximum.reduceat(v, starts)
    return out


def from_rollups(
    idx: np.ndarray, count: np.ndarray, total: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int
) -> Buckets:
    """Buckets of rollup rows already assigned to bucket ``idx`` (0 <= idx < n)."""
    out = Buckets.empty(n)
    if idx.size == 0:
        return out
    if idx.size > 1 and np.any(idx[1:] < idx[:-1]):
        order = np.argsort(idx, kind="stable")
        idx, count, total, lo, hi = idx[order], count[order], total[order], lo[order], hi[order]
    present, starts = np.unique(idx, return_index=True)
    out.count[present] = np.add.reduceat(count, starts)
    out.sum[present] = np.add.reduceat(total, starts)
    out.min[present] = np.fmin.reduceat(lo, starts)
    out.max[present] = np.fmax.reduceat(hi, starts)
    return out
