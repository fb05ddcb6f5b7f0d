"""Profiles written inline in a test: a fixed header, the test's fields, loaded (and checked)
like a file, and run through the simulator and the processor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ilrs_ops.processing import Processed, Processor
from ilrs_ops.profiles import Instrument, Profile, load_profile
from ilrs_ops.sim import Environment, Module

START_NS = 1_790_000_000 * 10**9
HEAD = """\
instrument: acme-x
partner: acme
name: test
kind: power
apid: {apid}
packet_length: {length}
expected_period_s: 1.0
time: {time}
fields:
"""


def profile_text(
    fields: list[str], length: int, *, time: str = "{code: cuc, coarse: 4, fine: 2}",
    apid: int = 0x522, tail: str = "",
) -> str:  # fmt: skip
    """A profile's YAML: ``fields`` are flow mappings, one per list item."""
    head = HEAD.format(apid=f"{apid:#05x}", length=length, time=time)
    return head + "".join(f"  - {f}\n" for f in fields) + tail


def profile(fields: list[str], length: int, **kw: object) -> Profile:
    """The profile of ``profile_text``, loaded as ``x.yaml`` (ProfileError if it is wrong)."""
    return load_profile("x.yaml", text=profile_text(fields, length, **kw))  # type: ignore[arg-type]


def instrument(p: Profile) -> Instrument:
    return Instrument(p, Path("x.yaml"))


def simulated(inst: Instrument, n: int, seed: int = 5, **kw: object) -> bytes:
    """``n`` packets of the simulator, back to back."""
    m = Module(inst, Environment(epoch_ns=0), seed=seed, start_ns=START_NS, **kw)  # type: ignore[arg-type]
    return b"".join(m.next_batch(n).packets)


def process(inst: Instrument, data: bytes, n: int) -> Processed:
    """One frame of ``n`` packets through a new Processor: every one accepted."""
    out = Processor(inst).process([data], np.array([START_NS + n * 10**9]), inst.topic())
    assert out.quarantine.num_rows == 0, out.quarantine.column("reason").to_pylist()
    assert out.telemetry.num_rows == n
    return out
