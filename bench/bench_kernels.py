"""Throughput of the post-decode kernels: Numba against a vectorised NumPy form and pure Python.

Run: .venv/bin/python bench/bench_kernels.py [n_samples]   (default 10M; pure Python on 100k)
Every Numba result is checked against the NumPy result on the full input and against the
pure-Python reference of the tests on the subset. STA/LTA is a recursive filter: NumPy has no
vectorised form of it (scipy.signal.lfilter would be one; scipy is not a dependency).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilrs_ops.profiles import Calibration, calibration_plan
from ilrs_ops.profiles import calibrate as numpy_calibrate
from pipelines.calibrate import calibrate
from pipelines.detectors import StaLtaPlan, sta_lta
from pipelines.limits import LimitPlan, limit_states, transitions
from pipelines.rollups import rollup
from pipelines.sequence import HALF, MODULUS, OK, check_sequence
from tests.test_detectors import reference as python_sta_lta
from tests.test_limits import ref_states as python_states
from tests.test_limits import ref_transitions as python_transitions
from tests.test_rollups import reference as python_rollup
from tests.test_sequence import reference as python_sequence

N_PYTHON = 100_000


def best(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    out = fn()  # compile / warm caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def python_poly(raw: list[int], coef: list[float]) -> list[float]:
    out = []
    for x in raw:
        x = float(x)
        y = coef[-1] + x * 0.0
        for c in reversed(coef[:-1]):
            y = c + y * x
        out.append(y)
    return out


# --- NumPy forms -------------------------------------------------------------------------------


def numpy_states(v: np.ndarray, plan: LimitPlan, ctx: np.ndarray) -> np.ndarray:
    s = ctx + 1
    ylo, yhi, rlo, rhi = plan.yellow_lo[s], plan.yellow_hi[s], plan.red_lo[s], plan.red_hi[s]
    out = np.zeros(v.shape, np.int8)
    out[(v < ylo) | (v > yhi)] = 1
    out[(v < rlo) | (v > rhi)] = 2
    out[np.isnan(v)] = -1
    return out


def numpy_transitions(states: np.ndarray, prev: int) -> tuple[np.ndarray, ...]:
    full = np.r_[np.int8(prev), states]
    idx = np.flatnonzero(full[1:] != full[:-1])
    return idx, full[idx], states[idx]


def numpy_sequence(seq: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Duplicates by a stable sort on (time, seq); a packet is late when its time is below every
    earlier time's maximum (rejected packets never raise that maximum); gaps between accepted."""
    order = np.lexsort((seq, t))
    ts, ss = t[order], seq[order]
    dup = np.empty(seq.size, bool)
    dup[order] = np.r_[False, (ts[1:] == ts[:-1]) & (ss[1:] == ss[:-1])]
    prior = np.r_[np.iinfo(np.int64).min, np.maximum.accumulate(t)[:-1]]
    late = ~dup & (t < prior)
    flag = np.where(dup, 1, np.where(late, 2, 0)).astype(np.int8)
    acc = np.flatnonzero(flag == OK)
    d = (seq[acc[1:]] - seq[acc[:-1]]) % MODULUS
    gap = (d >= 2) & (d <= HALF)
    return flag, acc[1:][gap], d[gap] - 1


def numpy_rollup(t: np.ndarray, v: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    b = t // width
    if np.any(b[1:] < b[:-1]):
        order = np.argsort(b, kind="stable")
        b, t, v = b[order], t[order], v[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    valid = ~np.isnan(v)
    return (
        b[starts],
        np.add.reduceat(valid.astype(np.int64), starts),
        np.fmin.reduceat(v, starts),
        np.fmax.reduceat(v, starts),
        np.add.reduceat(np.where(valid, v, 0.0), starts),
        np.minimum.reduceat(t, starts),
        np.maximum.reduceat(t, starts),
    )


# --- runs ----------------------------------------------------------------------------------------

ROWS: list[tuple[str, int, float, float | None, float | None]] = []


def record(name: str, n: int, numba_s: float, numpy_s: float | None, python_rate: float | None):
    ROWS.append((name, n, n / numba_s, n / numpy_s if numpy_s else None, python_rate))


def python_rate(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def bench_calibrate(n: int, rng: np.random.Generator) -> None:
    noise = rng.integers(-2048, 2048, n).astype(np.int16)  # random order: the worst case
    slow = (2000 * np.sin(np.arange(n) * 1e-4)).astype(np.int16)  # a sensor's slow swing
    table = Calibration(table=[(x, 100 - x / 40) for x in range(-2000, 2100, 250)])
    segments = [{"start": s, "poly": [s, 0.5, 1e-5]} for s in (-1000, 0, 500, 1500)]
    for name, cal, raw in [
        ("calibrate poly (deg 3)", Calibration(poly=[1.0, 0.01, 1e-6, 1e-9]), noise),
        ("calibrate table (17 pts, random raw)", table, noise),
        ("calibrate table (17 pts, slow signal)", table, slow),
        ("calibrate segments (4, random raw)", Calibration(segments=segments), noise),
    ]:
        plan = calibration_plan(cal)
        t_nb, got = best(lambda plan=plan, raw=raw: calibrate(raw, plan))
        t_np, want = best(lambda cal=cal, raw=raw: numpy_calibrate(cal, raw))
        np.testing.assert_array_equal(got, want)
        py = None
        if cal.poly is not None:
            poly = cal.poly
            py = python_rate(lambda p=poly: python_poly(noise[:N_PYTHON].tolist(), p), N_PYTHON)
            assert python_poly(noise[:1000].tolist(), poly) == got[:1000].tolist()
        record(name, n, t_nb, t_np, py)


def bench_limits(n: int, rng: np.random.Generator) -> None:
    # A slow swing through the limits with a little noise (realistic transitions), some NaN.
    v = 30.0 + 7.0 * np.sin(np.arange(n) * (2 * np.pi / 1e6)) + rng.normal(0.0, 0.05, n)
    v[rng.random(n) < 1e-5] = np.nan
    plan = LimitPlan(
        np.array([24.0, 20.0]), np.array([33.0, 35.0]), np.array([22.0, 18.0]),
        np.array([34.5, 36.0]), ("sun_state",), np.array([0.0]),
    )  # fmt: skip
    ctx = np.where((np.arange(n) // 100_000) % 2 == 0, -1, 0).astype(np.int64)
    t_nb, got = best(lambda: limit_states(v, plan, ctx))
    t_np, want = best(lambda: numpy_states(v, plan, ctx))
    np.testing.assert_array_equal(got, want)
    sub = slice(0, N_PYTHON)
    py = python_rate(lambda: python_states(v[sub], plan, ctx[sub]), N_PYTHON)
    np.testing.assert_array_equal(python_states(v[:1000], plan, ctx[:1000]), got[:1000])
    record("limit states (2 sets)", n, t_nb, t_np, py)

    t_nb, tr = best(lambda: transitions(got, 0))
    t_np, (idx, frm, to) = best(lambda: numpy_transitions(got, 0))
    assert np.array_equal(tr.index, idx) and np.array_equal(tr.from_state, frm)
    assert np.array_equal(tr.to_state, to)
    states = got[sub]
    py = python_rate(lambda: python_transitions(states.tolist(), 0), N_PYTHON)
    record(f"limit transitions ({tr.index.size} in batch)", n, t_nb, t_np, py)


def bench_sequence(n: int, rng: np.random.Generator) -> None:
    t = np.arange(n, dtype=np.int64) * 20_000_000 + 1_900_000_000 * 10**9
    seq = np.arange(n, dtype=np.int64) % MODULUS
    keep = rng.random(n) > 0.001
    seq, t = seq[keep], t[keep]
    cases = [("in order, 0.1% lost", seq, t)]
    k = seq.size // 1000  # 0.1 % repeated (QoS 1 redelivery) or late
    pos = np.sort(rng.integers(1, seq.size, k))
    src = np.maximum(pos - rng.integers(1, 50, k), 0)
    cases.append(("+0.1% repeats", np.insert(seq, pos, seq[src]), np.insert(t, pos, t[src])))
    for label, s, tt in cases:
        t_nb, r = best(lambda s=s, tt=tt: check_sequence(s, tt))
        t_np, (flag, gi, gm) = best(lambda s=s, tt=tt: numpy_sequence(s, tt))
        assert np.array_equal(r.flag, flag) and np.array_equal(r.gap_index, gi)
        assert np.array_equal(r.gap_missing, gm)
        py = python_rate(lambda s=s, tt=tt: python_sequence(s[:N_PYTHON], tt[:N_PYTHON]), N_PYTHON)
        pf, _, _ = python_sequence(s[:5000], tt[:5000])
        assert pf == check_sequence(s[:5000], tt[:5000]).flag.tolist()
        record(f"sequence ({label})", s.size, t_nb, t_np, py)


def bench_rollups(n: int, rng: np.random.Generator) -> None:
    t = np.arange(n, dtype=np.int64) * 20_000_000 + 1_900_000_000 * 10**9  # 50 Hz
    v = rng.normal(0.0, 1.0, n)
    v[rng.random(n) < 0.001] = np.nan
    width = 10**9
    shuffled = rng.permutation(n)
    late = np.arange(n)
    k = np.flatnonzero(rng.random(n) < 0.001)  # 0.1 % arrive up to 5 s late
    late = np.insert(
        np.delete(late, k), np.minimum(k + rng.integers(1, 250, k.size), n - k.size), k
    )
    for label, tt, vv in [
        ("sorted", t, v),
        ("0.1% late", t[late], v[late]),
        ("shuffled", t[shuffled], v[shuffled]),
    ]:
        t_nb, r = best(lambda tt=tt, vv=vv: rollup(tt, vv, width))
        t_np, want = best(lambda tt=tt, vv=vv: numpy_rollup(tt, vv, width))
        cols = (r.bucket, r.count, r.min, r.max, r.sum, r.first_ns, r.last_ns)
        for k, (a, b) in enumerate(zip(cols, want, strict=True)):
            if k == 4:
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
            else:
                np.testing.assert_array_equal(a, b)
        py = python_rate(
            lambda tt=tt, vv=vv: python_rollup(tt[:N_PYTHON], vv[:N_PYTHON], width), N_PYTHON
        )
        record(f"rollups 1 s buckets ({label})", n, t_nb, t_np, py)


def bench_sta_lta(n: int, rng: np.random.Generator) -> None:
    plan = StaLtaPlan(sta_s=2.0, lta_s=60.0, on=4.0, off=1.5, sample_rate_hz=50.0)
    x = rng.normal(0.0, 2.0, n)
    t_nb, _ = best(lambda: sta_lta(x, plan))
    ratio, _, _, _ = python_sta_lta(x[:N_PYTHON], plan.n_sta, plan.n_lta, plan.on, plan.off)
    np.testing.assert_array_equal(sta_lta(x[:N_PYTHON], plan).ratio, ratio)
    py = python_rate(
        lambda: python_sta_lta(x[:N_PYTHON], plan.n_sta, plan.n_lta, plan.on, plan.off), N_PYTHON
    )
    record("sta/lta (2 s / 60 s at 50 Hz)", n, t_nb, None, py)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    rng = np.random.default_rng(0)
    bench_calibrate(n, rng)
    bench_limits(n, rng)
    bench_sequence(min(n, 2_000_000), rng)
    bench_rollups(n, rng)
    bench_sta_lta(n, rng)
    print(f"{'kernel':40} {'rows':>10} {'numba rows/s':>13} {'numpy rows/s':>13} {'x numpy':>8} "
          f"{'python rows/s':>14} {'x python':>9}")  # fmt: skip
    for name, rows, nb, npy, py in ROWS:
        print(
            f"{name:40} {rows:>10,} {nb:>13.3g} "
            f"{(f'{npy:.3g}' if npy else '-'):>13} {(f'{nb / npy:.1f}' if npy else '-'):>8} "
            f"{(f'{py:.3g}' if py else '-'):>14} {(f'{nb / py:.0f}' if py else '-'):>9}"
        )


if __name__ == "__main__":
    main()
