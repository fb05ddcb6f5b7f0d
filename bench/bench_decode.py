"""Decode throughput: the Numba kernel against a vectorised NumPy decoder and pure Python.

Run: .venv/bin/python bench/bench_decode.py [PROFILE.yaml] [n_packets]
Default: the SUPARCO rover housekeeping profile of hardware_profiles/, 1M packets.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.decode import columns_from_raw, decode
from pipelines.encode import encode
from pipelines.layout import FLOAT32, FLOAT64, SIGNED, Layout
from tests.layouts import header_columns, reference_fields
from tests.reference import decode_packet


def random_columns(layout: Layout, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values for every field; good primary headers."""
    cols: dict[str, np.ndarray] = {}
    for f, name in enumerate(layout.names):
        s0, count = int(layout.field_slot[f]), int(layout.field_count[f])
        shape = (n, count) if name in layout.array_fields else (n,)
        kind, width = int(layout.kind[s0]), int(layout.bit_width[s0])
        if kind in (FLOAT32, FLOAT64):
            cols[name] = rng.normal(0, 100, shape).astype(np.float32 if kind == FLOAT32 else None)
        elif kind == SIGNED:
            cols[name] = rng.integers(-(2 ** (width - 1)), 2 ** (width - 1), shape, np.int64)
        else:
            cols[name] = rng.integers(0, 2**width, shape, np.uint64, endpoint=False)
    cols.update(header_columns(layout, n))
    return cols


def numpy_decode(buf: np.ndarray, starts: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Vectorised NumPy: per slot, gather its covering octets into uint64, shift and mask."""
    raw = np.empty((layout.n_slots, starts.shape[0]), np.uint64)
    for s in range(layout.n_slots):
        offset, width = int(layout.bit_offset[s]), int(layout.bit_width[s])
        first, end = offset // 8, offset + width
        nbytes = (end + 7) // 8 - first
        idx = starts + first
        acc = raw[s]
        acc[:] = 0
        row = layout.octet_map[s]
        if (row >= 0).any():  # reordered: gather the image octets from where they travel
            for k in range(nbytes):
                acc <<= np.uint64(8)
                acc |= buf[starts + row[k]]
            acc >>= np.uint64((-end) % 8)
        else:
            drop = (-end) % 8
            for k in range(min(nbytes, 8)):
                acc <<= np.uint64(8)
                acc |= buf[idx + k]
            if nbytes == 9:
                acc <<= np.uint64(8 - drop)
                acc |= buf[idx + 8] >> np.uint8(drop)
            else:
                acc >>= np.uint64(drop)
        if width < 64:
            acc &= np.uint64((1 << width) - 1)
        if layout.kind[s] == SIGNED:
            sign = np.uint64(1 << (width - 1))
            acc ^= sign
            acc -= sign
    return columns_from_raw(raw, layout)


def python_decode(
    buf: np.ndarray, starts: np.ndarray, layout: Layout, fields: list | None = None
) -> dict[str, np.ndarray]:
    """The pure-Python reference, one packet at a time, gathered into typed columns."""
    data = buf.tobytes()
    fields = fields if fields is not None else reference_fields(layout)
    size = layout.packet_length
    packets = [decode_packet(data[s : s + size], fields) for s in starts.tolist()]
    return {
        name: np.array([p[name] for p in packets], layout.field_dtype(name))
        for name in layout.names
    }


def best_of(repeat: int, fn, *args) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def assert_same(a: dict, b: dict, what: str) -> None:
    assert list(a) == list(b), what
    for name in a:
        assert a[name].dtype == b[name].dtype, (what, name)
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{what}: {name}")


def run(
    layout: Layout,
    n: int = 1_000_000,
    n_python: int = 20_000,
    repeat: int = 3,
    fields: list | None = None,
) -> dict:
    """``fields``: the reference's view of the layout (tests/reference.py), when it cannot be
    read back from the layout (sub-fields of reordered fields): from the profile."""
    rng = np.random.default_rng(1)
    buf = encode(layout, random_columns(layout, n, rng), n)
    starts = np.arange(n, dtype=np.int64) * layout.packet_length
    sub = starts[:n_python]

    decode(buf, starts[:10], layout)  # compile (or load the cache) outside the timing
    numpy_decode(buf, starts[:10], layout)

    out_numba = decode(buf, starts, layout)
    assert_same(out_numba, numpy_decode(buf, starts, layout), "numba vs numpy")
    sub_numba = {k: v[:n_python] for k, v in out_numba.items()}
    assert_same(sub_numba, python_decode(buf, sub, layout, fields), "numba vs pure python")

    t_numba = best_of(repeat, decode, buf, starts, layout)
    t_numpy = best_of(repeat, numpy_decode, buf, starts, layout)
    t_python = best_of(1, python_decode, buf, sub, layout, fields)
    rates = {
        "numba": n / t_numba,
        "numpy": n / t_numpy,
        "python": len(sub) / t_python,
    }
    print(
        f"layout: {layout.packet_length} octets, {len(layout.names)} fields, "
        f"{layout.n_slots} slots; {n:,} packets (pure Python on {len(sub):,})"
    )
    for name, rate in rates.items():
        print(f"  {name:<7}{rate:>14,.0f} rows/s")
    print(f"  numba/numpy   {rates['numba'] / rates['numpy']:6.1f}x  (target >= 3)")
    print(f"  numba/python  {rates['numba'] / rates['python']:6.1f}x  (target >= 50)")
    return rates


if __name__ == "__main__":
    from ilrs_ops.profiles import compile_layout, load_profile
    from tests.conftest import reference_fields as profile_fields

    root = Path(__file__).resolve().parents[1]
    path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else root / "hardware_profiles/suparco/rover-1.yaml"
    )
    print(f"profile: {path.relative_to(root) if path.is_relative_to(root) else path}")
    profile = load_profile(path)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    run(compile_layout(profile), n=n, fields=profile_fields(profile))
