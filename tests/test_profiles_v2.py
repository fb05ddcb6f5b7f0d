"""The 1-bit signed type i1 (values 0 and -1) in a profile: loaded, simulated, processed."""

from __future__ import annotations

import numpy as np
import pytest

from ilrs_ops.profiles import ProfileError
from tests.inline import instrument, process, profile, simulated


def test_i1_is_a_type_with_values_0_and_minus_1() -> None:
    p = profile(
        [
            "{name: polarity, type: i1, sim: {model: cycle, values: [0, -1], period_s: 1}}",
            "{name: spare, type: u7, ignore: true}",
        ],
        13,
    )
    inst = instrument(p)
    assert inst.layout.field_dtype("polarity") == np.int8
    out = process(inst, simulated(inst, 6), 6)
    assert out.telemetry.column("polarity").to_pylist() == [0.0, -1.0] * 3
    with pytest.raises(ProfileError, match=r"i1\.\.i64"):
        profile(["{name: x, type: i0}", "{name: spare, type: u7, ignore: true}"], 13)
