"""Compile a checked profile into the per-channel plans of the pipelines after decode:
calibration, limits and detectors, as plain arrays (``pipelines.calibrate``, ``.limits``,
``.detectors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ilrs_ops.errors import InputError, Problem, ProfileError
from ilrs_ops.profiles._schema import Calibration, FieldSpec, Limits, Profile, Range
from pipelines.calibrate import CalPlan
from pipelines.detectors import StaLtaPlan
from pipelines.limits import LimitPlan


@dataclass(frozen=True)
class DetectorPlan:
    """One detector of the profile: its kind, the channel it watches and its parameters."""

    kind: str  # "sta_lta"
    channel: str
    sta_lta: StaLtaPlan


@dataclass(frozen=True, eq=False)
class ProcessingPlan:
    """Everything the pipelines need after decode for one instrument.

    calibrations: every non-ignored field, in packet order (NONE for enum and float fields and
    fields without calibration). limits: every field or derived channel with limits, in profile
    order; context channels are field names, enum labels resolved to their raw ranges. detectors: in
    profile order; the sample rate is the field's ``sample_rate_hz`` for sample arrays, else one
    sample per packet (1 / expected_period_s).
    """

    instrument: str
    calibrations: Mapping[str, CalPlan]
    limits: Mapping[str, LimitPlan]
    detectors: tuple[DetectorPlan, ...]


def compile_plans(profile: Profile) -> ProcessingPlan:
    """Build the processing plan of a checked profile (``load_profile`` output).

    Raises ProfileError for what the profile checks would have rejected (an unknown context
    channel or enum label, detector windows that round to the same number of samples).
    """
    fields = {f.name: f for f in profile.channel_fields}
    problems: list[Problem] = []

    def fail(channel: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(profile.instrument, None, None, message, channel, hint))

    calibrations = {
        f.name: calibration_plan(None if f.enum else f.calibration)
        for f in profile.channel_fields
        if not f.ignore
    }
    limits: dict[str, LimitPlan] = {}
    for name, lim in [(f.name, f.limits) for f in profile.channel_fields] + [
        (d.name, d.limits) for d in profile.derived_channels
    ]:
        if lim is not None:
            try:
                limits[name] = limit_plan(lim, fields)
            except InputError as exc:  # a bad context; anything else is a bug, not a problem
                fail(name, str(exc))
    detectors = []
    for det in profile.detectors:
        src = fields.get(det.channel)
        rate = (
            src.sample_rate_hz
            if src is not None and src.sample_rate_hz is not None
            else 1.0 / profile.expected_period_s
        )
        try:
            plan = StaLtaPlan(det.sta_s, det.lta_s, det.on, det.off, rate)
        except ValueError as exc:
            fail(det.channel, f"detector {det.kind}: {exc}", "lengthen lta_s or shorten sta_s")
            continue
        detectors.append(DetectorPlan(det.kind, det.channel, plan))
    if problems:
        raise ProfileError(problems)
    return ProcessingPlan(
        instrument=profile.instrument,
        calibrations=MappingProxyType(calibrations),
        limits=MappingProxyType(limits),
        detectors=tuple(detectors),
    )


def calibration_plan(cal: Calibration | None) -> CalPlan:
    """The CalPlan of one calibration (None: no calibration)."""
    if cal is None:
        return CalPlan.none()
    if cal.poly is not None:
        return CalPlan.poly(cal.poly)
    if cal.segments is not None:
        return CalPlan.segmented([s.start for s in cal.segments], [s.poly for s in cal.segments])
    if cal.table is not None:
        xs, ys = zip(*cal.table, strict=True)
        return CalPlan.table(xs, ys, cal.outside)
    return CalPlan.none()


def limit_plan(lim: Limits, fields: Mapping[str, FieldSpec]) -> LimitPlan:
    """The LimitPlan of one channel's limits; ``fields`` resolves context channels and labels.

    A ``when`` entry replaces only the colours it gives; the others come from the default set.
    An entry on an enum label is in force while the channel lies in the label's range; a label
    of several entries (``{1: OK, 5..9: OK}``) gives one plan set per range, with the same
    bounds, one after the other, so the first match still picks the entry the profile meant.
    """
    rows = [(*_range(lim.yellow), *_range(lim.red))]
    channels: list[str] = []
    lows: list[float] = []
    highs: list[float] = []
    for ctx in lim.when:
        yellow = ctx.yellow if ctx.yellow is not None else lim.yellow
        red = ctx.red if ctx.red is not None else lim.red
        for lo, hi in _context_ranges(ctx.channel, ctx.equals, fields):
            rows.append((*_range(yellow), *_range(red)))
            channels.append(ctx.channel)
            lows.append(lo)
            highs.append(hi)
    ylo, yhi, rlo, rhi = (np.array(col, np.float64) for col in zip(*rows, strict=True))
    return LimitPlan(
        ylo, yhi, rlo, rhi, tuple(channels), np.array(lows, np.float64), np.array(highs, np.float64)
    )


def _range(r: Range | None) -> tuple[float, float]:
    lo, hi = r if r is not None else (None, None)
    return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))


def _context_ranges(
    channel: str, equals: float | str, fields: Mapping[str, FieldSpec]
) -> list[tuple[float, float]]:
    """The [lo, hi] ranges of ``channel`` where a context is in force: a number is [v, v]."""
    src = fields.get(channel)
    if src is None or src.count is not None or src.ignore:
        raise InputError(f"limit context '{channel}' is not a scalar field of this profile")
    if isinstance(equals, str):
        ranges = src.enumeration.ranges(equals) if src.enumeration is not None else []
        if not ranges:
            raise InputError(f"limit context: '{equals}' is not a state of '{channel}'")
        return [(float(lo), float(hi)) for lo, hi in ranges]
    return [(float(equals), float(equals))]
