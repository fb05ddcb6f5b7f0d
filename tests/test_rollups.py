"""pipelines.rollups against a pure-Python group-by, and merging partial buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.rollups import Rollup, merge_rollups, rollup, rollup_many


def reference(time_ns, values, width):
    """{bucket: [count, min, max, sum, first, last]}, summing in arrival order."""
    out: dict[int, list] = {}
    for t, v in zip(time_ns, values, strict=True):
        t, v = int(t), float(v)
        row = out.setdefault(t // width, [0, math.nan, math.nan, 0.0, t, t])
        row[4], row[5] = min(row[4], t), max(row[5], t)
        if not math.isnan(v):
            row[0] += 1
            row[1] = v if math.isnan(row[1]) else min(row[1], v)
            row[2] = v if math.isnan(row[2]) else max(row[2], v)
            row[3] += v
    return dict(sorted(out.items()))


def as_rows(r: Rollup) -> dict[int, list]:
    assert r.bucket.dtype == r.count.dtype == r.first_ns.dtype == r.last_ns.dtype == np.int64
    assert r.min.dtype == r.max.dtype == r.sum.dtype == np.float64
    cols = [r.count, r.min, r.max, r.sum, r.first_ns, r.last_ns]
    return {int(b): [c[k].item() for c in cols] for k, b in enumerate(r.bucket)}


def assert_rows_equal(got: dict, want: dict, exact_sum: bool = True) -> None:
    assert list(got) == list(want)
    for b in want:
        g, w = got[b], want[b]
        assert g[0] == w[0] and g[4:] == w[4:], b
        np.testing.assert_array_equal(g[1:3], w[1:3])  # NaN where count == 0
        if exact_sum:
            assert g[3] == w[3], b
        else:
            assert g[3] == pytest.approx(w[3], rel=1e-9, abs=1e-6), b


value = st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.integers(-5, 5).map(float))


@st.composite
def batches(draw, max_size=80):
    width = draw(st.sampled_from([1, 7, 1_000, 1_000_000_000, 60 * 10**9]))
    t0 = draw(st.integers(-(10**15), 10**18))
    n = draw(st.integers(0, max_size))
    steps = draw(st.lists(st.integers(-3 * width, 3 * width), min_size=n, max_size=n))
    times = list(np.cumsum(steps, dtype=np.int64) + t0) if n else []
    if draw(st.booleans()):
        times = sorted(times)
    values = draw(st.lists(value, min_size=n, max_size=n))
    return np.array(times, np.int64), np.array(values, np.float64), width


@settings(max_examples=300, deadline=None)
@given(batches())
def test_matches_reference(batch):
    t, v, width = batch
    r = rollup(t, v, width)
    assert r.width_ns == width
    # Within a bucket the samples keep their arrival order (stable sort), so sums are exact.
    assert_rows_equal(as_rows(r), reference(t, v, width))
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_array_equal(r.mean, np.where(r.count > 0, r.sum / r.count, np.nan))
    np.testing.assert_array_equal(r.start_ns, r.bucket * width)


@settings(max_examples=200, deadline=None)
@given(batches(), st.integers(0, 80))
def test_merging_two_halves_equals_the_whole(batch, cut):
    t, v, width = batch
    cut = min(cut, t.size)
    merged = merge_rollups(rollup(t[:cut], v[:cut], width), rollup(t[cut:], v[cut:], width))
    assert_rows_equal(as_rows(merged), as_rows(rollup(t, v, width)), exact_sum=False)


def test_bucket_edges_and_times_before_the_epoch():
    w = 10
    t = np.array([-11, -10, -1, 0, 9, 10, 19, 20], np.int64)
    r = rollup(t, np.arange(8.0), w)
    assert r.bucket.tolist() == [-2, -1, 0, 1, 2]
    assert r.count.tolist() == [1, 2, 2, 2, 1]
    assert r.first_ns.tolist() == [-11, -10, 0, 10, 20]
    assert r.last_ns.tolist() == [-11, -1, 9, 19, 20]
    assert r.start_ns.tolist() == [-20, -10, 0, 10, 20]


def test_nan_is_ignored_but_the_bucket_stays():
    t = np.array([0, 1, 2, 15, 16], np.int64)
    v = np.array([np.nan, 2.0, np.nan, np.nan, np.nan])
    r = rollup(t, v, 10)
    assert r.count.tolist() == [1, 0]
    assert r.min.tolist()[0] == r.max.tolist()[0] == r.mean.tolist()[0] == 2.0
    assert np.isnan(r.min[1]) and np.isnan(r.max[1]) and np.isnan(r.mean[1])
    assert r.sum.tolist() == [2.0, 0.0]
    assert (r.first_ns.tolist(), r.last_ns.tolist()) == ([0, 15], [2, 16])


def test_unsorted_input_and_integer_values():
    t = np.array([25, 3, 14, 1, 22, 9], np.int64)
    v = np.array([5, 1, 3, 2, 4, 6], np.int16)
    r = rollup(t, v, 10)
    assert r.bucket.tolist() == [0, 1, 2]
    assert r.count.tolist() == [3, 1, 2]
    assert r.min.tolist() == [1.0, 3.0, 4.0] and r.max.tolist() == [6.0, 3.0, 5.0]
    assert r.mean.tolist() == [3.0, 3.0, 4.5]
    assert r.first_ns.tolist() == [1, 14, 22] and r.last_ns.tolist() == [9, 14, 25]


def test_empty_and_single():
    e = rollup(np.empty(0, np.int64), np.empty(0), 5)
    assert len(e) == 0 and e.mean.shape == (0,)
    one = rollup(np.array([7], np.int64), np.array([1.5]), 5)
    assert as_rows(one) == {1: [1, 1.5, 1.5, 1.5, 7, 7]}
    assert as_rows(merge_rollups(e, one)) == as_rows(one)
    assert as_rows(merge_rollups(one, e)) == as_rows(one)
    assert len(merge_rollups(e, Rollup.empty(5))) == 0


def test_merge_keeps_the_finite_side_of_an_all_nan_bucket():
    a = rollup(np.array([0, 1], np.int64), np.array([np.nan, np.nan]), 10)
    b = rollup(np.array([5, 30], np.int64), np.array([-3.0, 4.0]), 10)
    m = merge_rollups(a, b)
    assert m.bucket.tolist() == [0, 3]
    assert m.count.tolist() == [1, 1] and m.min.tolist() == [-3.0, 4.0]
    assert m.first_ns.tolist() == [0, 30] and m.last_ns.tolist() == [5, 30]


def test_invalid_input():
    t, v = np.array([1, 2], np.int64), np.array([1.0, 2.0])
    for width in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="width_ns"):
            rollup(t, v, width)
    with pytest.raises(ValueError, match="same length"):
        rollup(t, v[:1], 10)
    with pytest.raises(ValueError, match="same length"):
        rollup(t, np.ones((2, 3)), 10)
    with pytest.raises(TypeError, match="integer"):
        rollup(t.astype(float), v, 10)
    with pytest.raises(ValueError, match="cannot merge"):
        merge_rollups(rollup(t, v, 10), rollup(t, v, 20))


@pytest.mark.parametrize("shuffle", [False, True])
def test_rollup_many_equals_rollup_per_channel_and_width(shuffle: bool) -> None:
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 300 * 10**9, 5000))
    if shuffle:
        t = rng.permutation(t)
    values = [
        rng.normal(size=t.size),
        np.where(rng.random(t.size) < 0.1, np.nan, rng.normal(size=t.size)),
    ]
    widths = [10**9, 60 * 10**9]
    bucket, count, lo, hi, total, first, last, sizes = rollup_many(t, values, widths)
    pos = 0
    for v in values:
        for w, size in zip(widths, [sizes.pop(0) for _ in widths], strict=True):
            ref = rollup(t, v, w)
            block = slice(pos, pos + size)
            np.testing.assert_array_equal(bucket[block], ref.bucket * w)
            np.testing.assert_array_equal(count[block], ref.count)
            np.testing.assert_array_equal(lo[block], ref.min)
            np.testing.assert_array_equal(hi[block], ref.max)
            np.testing.assert_allclose(total[block], ref.sum)
            np.testing.assert_array_equal(first[block], ref.first_ns)
            np.testing.assert_array_equal(last[block], ref.last_ns)
            pos += size
    assert pos == bucket.shape[0]
