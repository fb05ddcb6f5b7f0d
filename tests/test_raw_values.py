"""Raw values kept exactly: beside each channel's engineering value (float64) the telemetry keeps
``{field}__raw`` in the field's own type, so a u64 above 2**53, an i64 near its limits and a
float32 signalling NaN come back with exactly the bits the packet carried."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa

from ilrs_ops.processing import Processor
from tests.test_time_sources import TOPIC, UNIX, profile, with_time

FIELDS = [
    "{name: big, type: u64}",
    "{name: neg, type: i64}",
    "{name: nan32, type: f32}",
    "{name: volts, type: u12, calibration: {poly: [0, 0.001]}}",
    "{name: spare, type: u4, ignore: true}",
]


def test_raw_columns_keep_the_packet_bits(tmp_path: Path) -> None:
    inst = profile(tmp_path, "time: {code: none}", FIELDS, 22)
    cases = [(2**64 - 1, -(2**63), 0x7F800001, 4095), (2**53 + 1, 2**63 - 1, 0xFFC00123, 7)]
    pkts = []
    for big, neg, nan32, volts in cases:
        head = struct.pack(">QqIH", big, neg, nan32, volts << 4)
        pkts.append(with_time(inst, head))
    out = Processor(inst).process(pkts, np.array([UNIX, UNIX + 1]), TOPIC)
    tm = out.telemetry
    assert tm.schema.field("big__raw").type == pa.uint64()
    assert tm.schema.field("neg__raw").type == pa.int64()
    assert tm.schema.field("nan32__raw").type == pa.float32()
    assert tm.schema.field("volts__raw").type == pa.uint16()
    assert "spare__raw" not in tm.column_names  # spare bits are never stored
    assert tm.column("big__raw").to_pylist() == [c[0] for c in cases]
    assert tm.column("neg__raw").to_pylist() == [c[1] for c in cases]
    bits = tm.column("nan32__raw").to_numpy().view(np.uint32)
    assert bits.tolist() == [c[2] for c in cases]  # signalling NaN and its payload intact
    assert tm.column("volts__raw").to_pylist() == [4095, 7]
    assert tm.column("volts").to_pylist() == [4.095, 0.007]  # engineering value beside it
    assert tm.column("big").to_pylist()[1] == float(2**53)  # what float64 alone would keep
