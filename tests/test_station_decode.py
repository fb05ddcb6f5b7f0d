"""Every station profile: the compiled layout and the Numba decoder agree with an independent
pure-Python reference decoder whose bit positions are derived from the profile by hand."""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles import Catalog
from pipelines.decode import decode
from tests.conftest import reference_fields
from tests.reference import decode_packet


def as_bits(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    return a


def test_kernel_matches_reference_on_every_profile(station: Catalog) -> None:
    rng = np.random.default_rng(2026)
    for inst in station:
        size = inst.profile.packet_length
        n = 64
        raw = rng.integers(0, 256, size=n * size, dtype=np.uint8)
        starts = np.arange(n, dtype=np.int64) * size
        out = decode(raw, starts, inst.layout)
        fields = reference_fields(inst.profile)
        data = raw.tobytes()
        for i in (0, 1, 31, 63):
            ref = decode_packet(data[i * size : (i + 1) * size], fields, float_bits=True)
            for name, value in ref.items():
                assert as_bits(out[name][i]).tolist() == value, (inst.id, name, i)
