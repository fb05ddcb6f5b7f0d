"""The processing chain of one instrument: a batch of frames in, the stored tables out.

``Processor.process`` runs split -> route -> decode -> sequence check -> calibrate -> derived ->
limits -> rollups -> detectors over a whole batch, and carries a ``ProcessState`` from batch to
batch. The output depends only on the frames, their order and the starting state, never on how
the stream was cut into batches (rollup rows aside, which readers combine per bucket), so
recovery is re-running the WAL from a saved state.

Each packet ends in exactly one place: ``raw`` and ``telemetry`` (accepted), or ``quarantine``
with one reason (``ilrs_ops.wire``), in this order of precedence:

1. the frame-level reasons of ``pipelines.frames`` (``truncated``, ``length_past_end``,
   ``bad_version``);
2. ``wrong_apid``: a good packet of another APID on this instrument's topic;
3. ``bad_length``: not the profile's packet length (with a variable-length array: not the
   length its count field gives, or not whole elements to the end of the packet);
3b. ``bad_crc``: the check the profile's ``integrity`` names does not match the packet's octets;
4. ``bad_time``: a time code that is no time (a CDS millisecond of day past 86400999...), or a
   time more than the profile's ``time.future_tolerance_s`` after the packet was received (a
   clock fault: such a packet must not become the latest accepted time, or every good packet
   after it would be out of order);
5. ``duplicate``: the same (sequence count, packet time) as one of the last ``DEDUPE_WINDOW``
   accepted packets (carried across batches, so a QoS 1 redelivery in the next batch is caught);
6. ``out_of_order``: a packet time earlier than the latest accepted time (equal is in order).
   Such packets are quarantined, not stored: telemetry stays in time order and limit
   transitions never go back in time. A repeat of a quarantined packet is out of order again,
   not a duplicate (only accepted packets enter the dedupe window).

That is the profile's ``order: time``. Under ``order: arrival`` (the default without a packet
clock) the clock decides nothing: a ``duplicate`` is the same sequence count and the same
octets (a 64-bit fingerprint of the whole packet) as one of the last ``DEDUPE_WINDOW`` accepted
packets, nothing is ``out_of_order``, and gaps are counted in arrival order.

Events are limit transitions (kind ``limit``), sequence gaps (``gap``: value = packets missing,
detail ``"seq a -> b"``) and detector triggers (``detector``: detail ``"on"``/``"off"``, value
= the STA/LTA ratio, time = the sample's time). Rejects are not events: the quarantine rows and
the state's counters account for them. Events come in the arrival order of the packet that
caused them; within a packet: gap, then limits in channel order, then detectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ilrs_ops import wire
from ilrs_ops.ccsds import (
    cds_to_utc_ns,
    cuc_to_utc_ns,
    tai58_ns_to_utc_ns,
)
from ilrs_ops.errors import InputError
from ilrs_ops.profiles import (
    TIME_KEYS,
    Enumeration,
    Expression,
    Instrument,
    Profile,
    TimeCode,
    compile_plans,
    field_bits,
    parse,
)
from ilrs_ops.schemas import (
    EVENTS,
    QUARANTINE,
    RAW,
    RAW_SUFFIX,
    ROLLUPS,
    STATE_SUFFIX,
    TIME,
    rollup_widths,
    telemetry_schema,
)
from pipelines.calibrate import CalPlan, calibrate
from pipelines.decode import decode, element_counts, field_values
from pipelines.detectors import StaLtaState, sta_lta
from pipelines.frames import APIDS, HEADER_OCTETS, OK, STATUS_NAMES, Packets, split_frames
from pipelines.integrity import WIDTH, checks, fingerprints
from pipelines.layout import Layout
from pipelines.limits import (
    NOMINAL,
    STATE_NAMES,
    channel_states,
    limit_states,
    select_context,
    transitions,
)
from pipelines.rollups import rollup_many
from pipelines.sequence import MODULUS, SequenceResult, check_sequence

#: Accepted packets remembered for dropping duplicates across batches.
DEDUPE_WINDOW = 4096
#: Reason codes inside a batch: 0 accepted, then one per reason.
_REASONS = (
    "",
    *(STATUS_NAMES[k] for k in sorted(STATUS_NAMES) if k != OK),
    wire.WRONG_APID,
    wire.BAD_LENGTH,
    wire.UNKNOWN_VARIANT,
    wire.BAD_CRC,
    wire.BAD_TIME,
    wire.DUPLICATE,
    wire.OUT_OF_ORDER,
)
_CODE = {name: k for k, name in enumerate(_REASONS)}
_STATUS_CODE = np.zeros(max(STATUS_NAMES) + 1, np.int8)
for _status, _name in STATUS_NAMES.items():
    _STATUS_CODE[_status] = _CODE.get(_name, 0)

_STATE_VERSION = 2  # 2: dedupe "key" (1 called it "time_ns" and held times only)
_KIND_RANK = {wire.GAP: 0, wire.LIMIT: 1, wire.DETECTOR: 2}


@dataclass
class ProcessState:
    """Everything one batch hands to the next; ``to_json``/``from_json`` round-trip it exactly.

    last_seq / last_time_ns: the latest accepted packet (None before the first).
    limit_states: the last limit state per limited channel (absent = NOMINAL, no history).
    detectors: STA/LTA state per detector, keyed ``"{kind}:{channel}"``.
    dedupe_key / dedupe_seq: (key, sequence count) of the last DEDUPE_WINDOW accepted
    packets, oldest first; the key is the packet time (``order: time``) or the packet's
    fingerprint as int64 (``order: arrival``).
    frames / octets: received; packets: accepted; rejects: quarantined packets by reason.
    bad_text: per string channel, accepted packets whose text was not valid in its encoding
    (stored with U+FFFD in place of what did not decode; the ``__raw`` column keeps the octets).
    """

    last_seq: int | None = None
    last_time_ns: int | None = None
    limit_states: dict[str, int] = field(default_factory=dict)
    detectors: dict[str, StaLtaState] = field(default_factory=dict)
    dedupe_key: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    dedupe_seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    frames: int = 0
    octets: int = 0
    packets: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    bad_text: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain JSON types only (ints, floats, bools, strings, lists, dicts)."""
        return {
            "version": _STATE_VERSION,
            "last": None if self.last_seq is None else [self.last_seq, self.last_time_ns],
            "limit_states": dict(sorted(self.limit_states.items())),
            "detectors": {
                k: {"sta": s.sta, "lta": s.lta, "triggered": s.triggered, "seen": s.seen}
                for k, s in sorted(self.detectors.items())
            },
            "dedupe": {
                "key": self.dedupe_key.tolist(),
                "seq": self.dedupe_seq.tolist(),
            },
            "counters": {
                "frames": self.frames,
                "octets": self.octets,
                "packets": self.packets,
                "rejects": dict(sorted(self.rejects.items())),
                # Only when there is some: state documents of profiles without strings stay
                # as they were.
                **({"bad_text": dict(sorted(self.bad_text.items()))} if self.bad_text else {}),
            },
        }

    @classmethod
    def from_json(cls, d: dict) -> ProcessState:
        """The state ``to_json`` wrote; InputError saying what is wrong for anything else."""
        try:
            if d.get("version") not in (1, _STATE_VERSION):
                raise InputError(f"state version {d.get('version')!r}, expected {_STATE_VERSION}")
            last = d["last"]
            if last is not None and (len(last) != 2 or not 0 <= int(last[0]) < MODULUS):
                raise InputError(f"last {last!r} is not [seq 0..{MODULUS - 1}, time_ns]")
            limit_states = {str(k): int(v) for k, v in d["limit_states"].items()}
            bad = {k: v for k, v in limit_states.items() if v not in STATE_NAMES}
            if bad:
                raise InputError(f"limit states {bad} are not in {sorted(STATE_NAMES)}")
            detectors = {
                str(k): StaLtaState(
                    float(v["sta"]), float(v["lta"]), bool(v["triggered"]), int(v["seen"])
                )
                for k, v in d["detectors"].items()
            }
            dedupe = d["dedupe"]
            key = dedupe["key" if d["version"] == _STATE_VERSION else "time_ns"]  # 1: times
            t = np.array(key, np.int64).reshape(-1)
            s = np.array(dedupe["seq"], np.int64).reshape(-1)
            if t.shape != s.shape or t.shape[0] > DEDUPE_WINDOW:
                raise InputError("dedupe: key and seq must be lists of the same length")
            c = d["counters"]
            return cls(
                last_seq=None if last is None else int(last[0]),
                last_time_ns=None if last is None else int(last[1]),
                limit_states=limit_states,
                detectors=detectors,
                dedupe_key=t,
                dedupe_seq=s,
                frames=int(c["frames"]),
                octets=int(c["octets"]),
                packets=int(c["packets"]),
                rejects={str(k): int(v) for k, v in c["rejects"].items()},
                bad_text={str(k): int(v) for k, v in c.get("bad_text", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"not a processing state (ProcessState.to_json): {exc!r}") from exc


@dataclass(frozen=True, eq=False)
class Processed:
    """The output of one batch, each table exactly as ``ilrs_ops.schemas`` says.

    rollups: widths ``rollup_widths(instrument)``, rows per channel (profile order), width,
    bucket, for every numeric channel, derived ones included, enum channels excluded; an array
    channel is rolled up as its per-packet mean (the sample arrays are the detectors' to read).
    latest: the last accepted packet of the batch, for the live status (empty when none was
    accepted): ``{"time_ns", "seq", "values": {channel: value}, "states": {channel: state}}``;
    values in engineering units, arrays as lists, enums as their labels (an unknown code as
    itself), NaN as None; states (-1..2) of the channels with limits.
    """

    raw: pa.Table
    telemetry: pa.Table
    events: pa.Table
    rollups: pa.Table
    quarantine: pa.Table
    latest: dict[str, object]


@dataclass(frozen=True)
class _Field:
    name: str
    cal: CalPlan
    enum: Enumeration | None  # labels by raw value, ranges included
    count: int | None
    octets: str | None = None  # string, bytes or a wide integer type (u72..): not a number
    encoding: str = "ascii"


class Processor:
    """The stateful processing chain of one instrument (see the module docstring)."""

    def __init__(self, instrument: Instrument, state: ProcessState | None = None) -> None:
        self.instrument = instrument
        self.state = state if state is not None else ProcessState()
        p = instrument.profile
        self._plan = plan = compile_plans(p)
        self._layout = instrument.layout
        self._apid = p.apid
        self._tables = apid_tables([p])
        # Packet variants: one flat profile and layout each, chosen by the selector's value.
        flats = p.variant_profiles or (p,)
        self._flats = flats
        self._layouts = instrument.variant_layouts or (self._layout,)
        self._length = max(int(f.packet_length or 0) for f in flats)  # the longest packet
        self._var_names = frozenset(f.variable.name for f in flats if f.variable)
        self._variable = next(iter(self._var_names)) if len(flats) == 1 and p.variable else None
        self._varlen = bool(self._var_names) or p.variants is not None  # lengths differ
        self._integrity = [
            _integrity(f, layout) for f, layout in zip(flats, self._layouts, strict=True)
        ]
        self._present: dict[str, np.ndarray] = {}  # channel -> the variants that have it
        if p.variants is not None:
            ranges = [(lo, hi, k) for k, v in enumerate(p.variants.cases) for lo, hi in v.ranges]
            ranges.sort()
            self._sel_lo = np.array([r[0] for r in ranges], np.int64)
            self._sel_hi = np.array([r[1] for r in ranges], np.int64)
            self._sel_variant = np.array([r[2] for r in ranges], np.int64)
            have: dict[str, list[int]] = {}
            for k, (flat, layout) in enumerate(zip(flats, self._layouts, strict=True)):
                names = {*layout.names, *(d.name for d in flat.derived)}
                for name in names:
                    have.setdefault(name, []).append(k)
            self._present = {
                name: np.array(ks, np.int64) for name, ks in have.items() if len(ks) < len(flats)
            }
        self._receive_time = p.time.code == "none"
        self._arrival = p.ordering == "arrival"
        tol = p.time.future_tolerance_s
        self._future_ns = None if tol is None else int(tol * wire.NS)
        self._fields = [
            _Field(
                f.name,
                plan.calibrations[f.name],
                f.enumeration,
                f.count,
                f.type if f.is_octets else None,
                f.encoding,
            )
            for f in p.channel_fields
            if not f.ignore
        ]
        self._derived: list[tuple[str, Expression]] = [
            (d.name, parse(d.expr)) for d in p.derived_channels
        ]
        self.schema = telemetry_schema(instrument)
        self._widths_s = rollup_widths(instrument)
        self._channel_index = {name: k for k, name in enumerate(instrument.channels)}
        self._octets = {f.name: f for f in self._fields if f.octets}
        # The names _engineering gives values of, and those _texts makes text of.
        eng = {f.name for f in self._fields} | {name for name, _ in self._derived}
        self._columns = self._columns_plan(eng, set(self._octets))
        self._rolled = [f.name for f in self._fields if f.enum is None and not f.octets] + [
            name for name, _ in self._derived
        ]
        keys = [f"{d.kind}:{d.channel}" for d in plan.detectors]
        self._detector_keys = [k if keys.count(k) == 1 else f"{k}#{j}" for j, k in enumerate(keys)]
        self._names: dict[str, pa.Array] = {}  # rollup channel columns, see _repeated
        self._sample_offsets = {}
        for det in plan.detectors:
            count = next((f.count for f in self._fields if f.name == det.channel), None) or 1
            step = wire.NS / det.sta_lta.sample_rate_hz
            self._sample_offsets[det.channel] = np.round(np.arange(count) * step).astype(np.int64)

    def process(self, frames: Sequence[bytes], recv_ns: np.ndarray, topic: str) -> Processed:
        """Process the frames that arrived on this instrument's topic, in arrival order;
        ``recv_ns`` is when each arrived (int64 UTC ns). Updates ``self.state``."""
        recv = np.asarray(recv_ns)
        if recv.shape != (len(frames),) or not (recv.dtype.kind in "iu" or recv.size == 0):
            raise InputError(
                f"recv_ns must be one integer time per frame ({len(frames)}), not {recv.shape}"
            )
        recv = recv.astype(np.int64, copy=False)
        buf, frame_start, items = split_batch(frames, *self._tables)
        st = self.state

        # Route: one reason code per item, 0 for a packet that may be accepted.
        code = _STATUS_CODE[items.status]
        ok = code == 0
        code[ok & (items.apid != self._apid)] = _CODE[wire.WRONG_APID]
        ok = code == 0
        notes: dict[int, str] = {}
        counts = np.zeros(len(items), np.int64)  # elements of the variable-length array
        vidx = np.zeros(len(items), np.int64)  # the variant of each packet
        if self.instrument.profile.variants is not None:
            self._route_variants(buf, items, np.flatnonzero(ok), code, counts, vidx, notes)
        elif self._variable is None:
            code[ok & (items.length != self._length)] = _CODE[wire.BAD_LENGTH]
        else:
            self._check_lengths(buf, items, np.flatnonzero(ok), code, counts, notes)
        cand = np.flatnonzero(code == 0)
        if self._integrity[0] is not None and cand.size:
            if len(self._flats) == 1:
                cand = self._check_integrity(buf, items, counts, cand, code, notes)
            else:
                for k in range(len(self._flats)):
                    cand = self._check_integrity(buf, items, counts, cand, code, notes, vidx, k)

        if len(self._flats) == 1:
            raw = decode(
                buf, items.start[cand], self._layout, counts[cand] if self._variable else None
            )
        else:
            raw = self._decode_variants(buf, items, cand, counts, vidx)
        if self._receive_time:  # time code none: the packet is as old as its arrival
            t, bad_time = recv[items.frame[cand]].copy(), {}
        else:
            t, bad_time = _packet_times(self.instrument, raw)
        bad_time = {k: f"invalid time code: {msg}" for k, msg in bad_time.items()}
        if self._future_ns is not None and t.size:
            at_recv = recv[items.frame[cand]]
            for k in np.flatnonzero(t - at_recv > self._future_ns).tolist():
                if k not in bad_time:
                    bad_time[k] = (
                        f"packet time {_iso(int(t[k]))} is {(t[k] - at_recv[k]) / wire.NS:.6g} s "
                        f"after it was received ({_iso(int(at_recv[k]))}), more than the "
                        f"{self._future_ns / wire.NS:g} s of time.future_tolerance_s"
                    )
        if bad_time:
            at = np.fromiter(bad_time, np.int64, len(bad_time))
            code[cand[at]] = _CODE[wire.BAD_TIME]
            keep = np.ones(cand.shape[0], bool)
            keep[at] = False
            raw = {k: v[keep] for k, v in raw.items()}
            notes |= {int(cand[k]): msg for k, msg in bad_time.items()}
            t, cand = t[keep], cand[keep]
        seq = raw["_seq_count"].astype(np.int64)
        if self._arrival:
            key = fingerprints(buf, items.start[cand], items.length[cand]).view(np.int64)
            flag = _classify_arrival(seq, key, st.dedupe_key, st.dedupe_seq)
            top = t  # nothing is out of order, so no latest accepted time is reported
        else:
            key = t
            flag, top = _classify(seq, t, st.last_time_ns, st.dedupe_key, st.dedupe_seq)
        accepted = flag == 0
        if not accepted.all():
            for k in np.flatnonzero(~accepted).tolist():
                what = f"seq {seq[k]} at {_iso(int(t[k]))}"
                if flag[k] == _CODE[wire.OUT_OF_ORDER]:
                    why = f"is before the latest accepted time {_iso(int(top[k]))}"
                elif self._arrival:
                    why = "is the same packet as one already accepted"
                else:
                    why = "was already accepted"
                notes[int(cand[k])] = f"{what} {why}"
            code[cand[~accepted]] = flag[~accepted]
            raw = {k: v[accepted] for k, v in raw.items()}
            t, seq, key, good = t[accepted], seq[accepted], key[accepted], cand[accepted]
        else:
            good = cand
        n = good.shape[0]
        # Per channel of some variants only, the packets that have it (empty without variants).
        present = (
            {name: np.isin(raw["_variant"], ks) for name, ks in self._present.items()}
            if self._present
            else {}
        )

        gaps = self._gaps(seq, t)
        eng = self._engineering(raw, n, counts[good], present)
        text, bad_text = self._texts(eng)
        states, limit_events, last_states = self._limits(eng, t, n, counts[good], present)
        detector_events, detector_states = self._detect(eng, t, present)
        events = [
            _gap_events(gaps.gap_index, gaps.gap_missing, seq, t, st.last_seq),
            *limit_events,
            *detector_events,
        ]

        bad = np.flatnonzero(code != 0)
        out = Processed(
            raw=self._raw_table(buf, items, good, t, recv[items.frame[good]], seq),
            telemetry=self._telemetry_table(t, seq, eng, states, raw, text, counts[good], present),
            events=_events_table(events, self.instrument.channels),
            rollups=self._rollups(eng, t, counts[good], present),
            quarantine=self._quarantine(buf, frame_start, items, bad, code, recv, topic, notes),
            latest=self._latest(t, seq, eng, states, text, counts[good], present),
        )

        # Carry the state only once everything above has succeeded.
        st.detectors.update(detector_states)
        if n:
            st.limit_states.update(last_states)
            st.last_seq, st.last_time_ns = int(seq[-1]), int(t[-1])
            keep = DEDUPE_WINDOW
            st.dedupe_key = np.concatenate([st.dedupe_key, key])[-keep:].copy()
            st.dedupe_seq = np.concatenate([st.dedupe_seq, seq])[-keep:].copy()
        st.frames += len(frames)
        st.octets += int(buf.shape[0])
        st.packets += n
        for name, k in bad_text.items():
            st.bad_text[name] = st.bad_text.get(name, 0) + k
        for k, c in zip(*np.unique(code[bad], return_counts=True), strict=True):
            reason = _REASONS[int(k)]
            st.rejects[reason] = st.rejects.get(reason, 0) + int(c)
        return out

    def _gaps(self, seq: np.ndarray, t: np.ndarray) -> SequenceResult:
        """Sequence gaps among the accepted packets, after the last accepted one. Under
        ``order: arrival`` the packets are ranked by arrival (their count of accepted packets),
        not by their clock."""
        st = self.state
        if not self._arrival:
            last = None if st.last_seq is None else (st.last_seq, st.last_time_ns)
            return check_sequence(seq, t, last)
        last = None if st.last_seq is None else (st.last_seq, st.packets - 1)
        return check_sequence(seq, st.packets + np.arange(seq.shape[0]), last)

    def _check_lengths(
        self,
        buf: np.ndarray,
        items: Packets,
        at: np.ndarray,
        code: np.ndarray,
        counts: np.ndarray,
        notes: dict[int, str],
        k: int = 0,
    ) -> None:
        """Variable-length packets (of variant ``k``): the element count of each item ``at``,
        and ``bad_length`` for those whose length does not fit it."""
        layout, p = self._layouts[k], self._flats[k]
        got, fits = element_counts(buf, items.start[at], items.length[at], layout)
        counts[at] = got
        most, width = layout.var_slots[1:]
        var = p.variable.name if p.variable else ""
        src = p.variable.count_from if p.variable else ""
        what = self._what(k)
        for k in np.flatnonzero(~fits).tolist():
            i = int(at[k])
            code[i] = _CODE[wire.BAD_LENGTH]
            size = int(items.length[i])
            lo, hi = int(layout.lengths(np.array(0))), layout.packet_length
            if size < lo or size > hi or layout.count_field < 0:
                notes[i] = (
                    f"{size} octets, {what} has {lo}..{hi} "
                    f"(0..{most} elements of {width} bits in {var})"
                )
            else:  # the count field lies before the array: readable at count 0
                value = int(decode(buf, items.start[i : i + 1], layout, np.zeros(1))[src][0])
                notes[i] = (
                    f"{src} = {value} needs {int(layout.lengths(np.array(value)))} octets, "
                    f"the packet has {size}"
                    if value <= most
                    else f"{src} = {value} is more than the {most} elements {var} has at most"
                )

    def _what(self, k: int) -> str:
        """``a <id> packet``, or ``a <id> <variant> packet``, for quarantine notes."""
        v = self.instrument.profile.variants
        return f"a {self.instrument.id}{f' {v.cases[k].name}' if v else ''} packet"

    def _route_variants(
        self,
        buf: np.ndarray,
        items: Packets,
        at: np.ndarray,
        code: np.ndarray,
        counts: np.ndarray,
        vidx: np.ndarray,
        notes: dict[int, str],
    ) -> None:
        """Packet variants: the variant each item ``at`` is (its selector's value), then its
        length as that variant's; ``unknown_variant`` for a value that chooses none, with the
        value in the note, and ``bad_length`` for a packet too short to hold the selector."""
        p = self.instrument.profile
        assert p.variants is not None
        sel = p.variants.selector
        layout = self._layouts[0]  # the selector is common: the same bits in every layout
        slot = int(layout.field_slot[layout.field_index(sel)])
        need = (int(layout.bit_offset[slot]) + int(layout.bit_width[slot]) + 7) // 8
        short = items.length[at] < need
        for i in at[short].tolist():
            code[i] = _CODE[wire.BAD_LENGTH]
            notes[i] = (
                f"{int(items.length[i])} octets, too short for the selector {sel} of "
                f"{self.instrument.id} (octets up to {need})"
            )
        at = at[~short]
        value = field_values(buf, items.start[at], layout, sel)
        j = np.searchsorted(self._sel_lo, value, side="right") - 1
        hit = (j >= 0) & (value <= self._sel_hi[np.maximum(j, 0)])
        vidx[at] = np.where(hit, self._sel_variant[np.maximum(j, 0)], -1)
        if not hit.all():
            known = ", ".join(f"{v.name}: {v.value}" for v in p.variants.cases)
            for i, v in zip(at[~hit].tolist(), value[~hit].tolist(), strict=True):
                code[i] = _CODE[wire.UNKNOWN_VARIANT]
                notes[i] = (
                    f"{sel} = {v} chooses no variant of {self.instrument.id} (variants {known})"
                )
        for k, (flat, layout) in enumerate(zip(self._flats, self._layouts, strict=True)):
            mine = at[hit & (vidx[at] == k)]
            if flat.variable is not None:
                self._check_lengths(buf, items, mine, code, counts, notes, k)
                continue
            wrong = mine[items.length[mine] != layout.packet_length]
            code[wrong] = _CODE[wire.BAD_LENGTH]
            for i in wrong.tolist():
                notes[i] = (
                    f"{int(items.length[i])} octets, {self._what(k)} has {layout.packet_length}"
                )

    def _decode_variants(
        self,
        buf: np.ndarray,
        items: Packets,
        cand: np.ndarray,
        counts: np.ndarray,
        vidx: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Decode each variant's packets with its own layout (the kernels run once per variant
        present), into columns of every variant's fields over all of ``cand``: a field's rows
        of packets of another variant are 0 (``present`` masks them later). ``_variant`` holds
        the variant of each packet."""
        v = vidx[cand]
        out: dict[str, np.ndarray] = {"_variant": v}
        n = cand.shape[0]
        for k, layout in enumerate(self._layouts):
            rows = np.flatnonzero(v == k)
            if not rows.size:
                continue
            sel = cand[rows]
            cols = decode(buf, items.start[sel], layout, counts[sel] if layout.variable else None)
            for name, col in cols.items():
                full = out.get(name)
                if full is None:
                    full = out[name] = np.zeros((n, *col.shape[1:]), col.dtype)
                full[rows] = col
        for layout in self._layouts:  # fields of variants absent from the batch
            for name in layout.names:
                if name not in out:
                    is_array = name in layout.array_fields or layout.field_count[
                        layout.field_index(name)] != 1  # fmt: skip
                    shape = (n, int(layout.field_count[layout.field_index(name)]))
                    out[name] = np.zeros(shape if is_array else (n,), layout.field_dtype(name))
        return out

    def _check_integrity(
        self,
        buf: np.ndarray,
        items: Packets,
        counts: np.ndarray,
        cand: np.ndarray,
        code: np.ndarray,
        notes: dict[int, str],
        vidx: np.ndarray | None = None,
        k: int = 0,
    ) -> np.ndarray:
        """Quarantine the candidates (of variant ``k``, with ``vidx``) whose check does not
        match (``bad_crc``); the rest (of every variant)."""
        integrity = self._integrity[k]
        assert integrity is not None
        spec, at, octets, moves = integrity
        every = cand
        if vidx is not None:
            cand = cand[vidx[cand] == k]
        s = items.start[cand]
        if moves:  # after a variable-length array: as far from the end as at the most
            at = items.length[cand] - (self._layouts[k].packet_length - at)
        at = np.broadcast_to(np.asarray(at, np.int64), s.shape)
        computed = checks(buf, s, spec.start, at, spec.check)
        stored = np.zeros(s.shape[0], np.uint64)
        for j in range(octets):  # the check field, big endian
            stored = (stored << np.uint64(8)) | buf[s + at + j].astype(np.uint64)
        bad = np.flatnonzero(computed != stored)
        for k in bad.tolist():
            i = int(cand[k])
            code[i] = _CODE[wire.BAD_CRC]
            digits = 2 + 2 * octets
            notes[i] = (
                f"{spec.check} of octets [{spec.start}, {int(at[k])}) is "
                f"{int(computed[k]):#0{digits}x}, "
                f"field {spec.field} says {int(stored[k]):#0{digits}x}"
            )
        if vidx is not None:
            return np.setdiff1d(every, cand[bad], assume_unique=True) if bad.size else every
        return np.delete(cand, bad) if bad.size else cand

    # ------------------------------------------------------------------ channels

    def _engineering(
        self,
        raw: dict[str, np.ndarray],
        n: int,
        counts: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Calibrated fields (enum codes as int64), then the derived channels (float64). The
        elements a variable-length array does not have are NaN (limits see them as invalid,
        which an array's worst state ignores unless every element is)."""
        eng: dict[str, np.ndarray] = {}
        for f in self._fields:
            if f.octets:  # octets, not a number: the tables turn them into text or binary
                eng[f.name] = raw[f.name]
            elif f.enum:
                eng[f.name] = raw[f.name].astype(np.int64)
            else:
                eng[f.name] = calibrate(raw[f.name], f.cal)
            if f.name in self._var_names and not f.enum:
                eng[f.name][_absent(eng[f.name], counts)] = np.nan
            if f.name in present and eng[f.name].dtype.kind == "f":  # another variant's packet
                eng[f.name][~present[f.name]] = np.nan
        for name, expr in self._derived:
            v = expr.evaluate(eng)
            if v.shape != (n,):
                v = np.broadcast_to(v, (n,))  # a constant expression, or an empty batch
            eng[name] = np.ascontiguousarray(v, np.float64)
            if name in present:
                eng[name] = np.where(present[name], eng[name], np.nan)
        return eng

    def _limits(
        self,
        eng: dict[str, np.ndarray],
        t: np.ndarray,
        n: int,
        counts: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> tuple[dict[str, np.ndarray], list[_Events], dict[str, int]]:
        """The state column of every limited channel, its transitions as events, and its last
        state. A packet whose variable-length array is empty has nothing out of limits:
        nominal. A channel of some variants only is judged over their packets alone (its
        state in the others' rows is NOMINAL and stored as null), so a header packet between
        two waveforms neither raises nor clears a waveform's alarm."""
        states: dict[str, np.ndarray] = {}
        events: list[_Events] = []
        last: dict[str, int] = {}
        for name, plan in self._plan.limits.items():
            rows = np.flatnonzero(present[name]) if name in present else None
            values = eng[name] if rows is None else eng[name][rows]
            m = n if rows is None else rows.shape[0]
            ctx = (
                select_context(
                    plan,
                    {c: eng[c] if rows is None else eng[c][rows] for c in plan.context_channels},
                    m,
                )
                if plan.n_sets > 1
                else None
            )
            per_value = limit_states(values, plan, ctx)
            col = _worst(per_value)
            if name in self._var_names:
                col[(counts if rows is None else counts[rows]) == 0] = NOMINAL
            prev = self.state.limit_states.get(name, NOMINAL)
            tr = transitions(col, prev)
            if col.size:
                last[name] = int(col[-1])
            if rows is not None:
                full = np.full(n, NOMINAL, col.dtype)
                full[rows] = col
                states[name] = full
            else:
                states[name] = col
            if tr.index.size:
                if values.ndim == 2:  # the first element in the packet's worst state
                    worst = per_value[tr.index]
                    value = values[tr.index, worst.argmax(axis=1)]
                else:
                    value = values[tr.index]
                k = tr.index.shape[0]
                packet = tr.index if rows is None else rows[tr.index]
                events.append(
                    _Events(
                        packet=packet,
                        sub=np.zeros(k, np.int64),
                        time=t[packet],
                        kind=wire.LIMIT,
                        channel=np.full(k, self._channel_index[name]),
                        from_state=tr.from_state,
                        to_state=tr.to_state,
                        value=value.astype(np.float64),
                        detail=[
                            f"{STATE_NAMES[int(a)]} -> {STATE_NAMES[int(b)]}"
                            for a, b in zip(tr.from_state, tr.to_state, strict=True)
                        ],
                    )
                )
        return states, events, last

    def _detect(
        self, eng: dict[str, np.ndarray], t: np.ndarray, present: dict[str, np.ndarray]
    ) -> tuple[list[_Events], dict[str, StaLtaState]]:
        """Trigger events of every detector, and each detector's state after the batch (on a
        channel of some variants only: over their packets)."""
        events, after = [], {}
        for key, det in zip(self._detector_keys, self._plan.detectors, strict=True):
            rows = np.flatnonzero(present[det.channel]) if det.channel in present else None
            values = eng[det.channel] if rows is None else eng[det.channel][rows]
            x = values.reshape(-1)  # (n, count) row by row: the samples in time order
            res = sta_lta(x, det.sta_lta, self.state.detectors.get(key))
            after[key] = res.state
            count = 1 if values.ndim == 1 else values.shape[1]
            offsets = self._sample_offsets[det.channel]
            for idx, what in ((res.on_index, "on"), (res.off_index, "off")):
                if not idx.size:
                    continue
                packet, sample = idx // count, idx % count
                if rows is not None:
                    packet = rows[packet]
                k = idx.shape[0]
                events.append(
                    _Events(
                        packet=packet,
                        sub=sample,
                        time=t[packet] + offsets[sample],
                        kind=wire.DETECTOR,
                        channel=np.full(k, self._channel_index.get(det.channel, -1)),
                        from_state=None,
                        to_state=None,
                        value=res.ratio[idx],
                        detail=[what] * k,
                    )
                )
        return events, after

    def _texts(self, eng: dict[str, np.ndarray]) -> tuple[dict[str, pa.Array], dict[str, int]]:
        """The channel column of every string, bytes and wide integer field, and per string
        channel the packets whose text did not decode."""
        columns: dict[str, pa.Array] = {}
        bad: dict[str, int] = {}
        for name, f in self._octets.items():
            v = eng[name]
            if f.octets == "string":
                columns[name], k = text_column(v, f.encoding)
                if k:
                    bad[name] = k
            elif f.octets == "bytes":
                columns[name] = binary_column(v, np.full(v.shape[0], v.shape[1], np.int64))
            else:
                columns[name] = fixed_binary_column(v)
        return columns, bad

    # ------------------------------------------------------------------ tables

    def _raw_table(
        self,
        buf: np.ndarray,
        items: Packets,
        good: np.ndarray,
        t: np.ndarray,
        recv: np.ndarray,
        seq: np.ndarray,
    ) -> pa.Table:
        starts = items.start[good]
        n, size = starts.shape[0], self._length
        if n * size > np.iinfo(np.int32).max:
            raise InputError(
                f"{n} packets of up to {size} octets: more than 2 GiB in one batch; split it"
            )
        if self._varlen:  # each packet its own length: gather by octet index
            lengths = items.length[good]
            ends = np.cumsum(lengths)
            data = buf[
                np.repeat(starts - (ends - lengths), lengths) + np.arange(ends[-1] if n else 0)
            ]
            offsets = np.concatenate([[0], ends]).astype(np.int32)
        elif buf.shape[0] >= size:
            # Every accepted packet has the profile's length: view the buffer as overlapping
            # records of that size starting at every octet, and gather the packets in one copy.
            records = np.ndarray(
                (buf.shape[0] - size + 1,), np.dtype(f"V{size}"), buf.data, strides=(1,)
            )
            data = records[starts].view(np.uint8)
            offsets = np.arange(n + 1, dtype=np.int32) * np.int32(size)
        else:
            data = np.empty(0, np.uint8)
            offsets = np.zeros(n + 1, np.int32)
        binary = pa.Array.from_buffers(
            pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        return pa.Table.from_arrays(
            [
                _times(t),
                _times(recv),
                pa.array(np.full(n, self._apid, np.int16)),
                pa.array(seq.astype(np.int16)),
                binary,
            ],
            schema=RAW,
        )

    def _telemetry_table(
        self,
        t: np.ndarray,
        seq: np.ndarray,
        eng: dict[str, np.ndarray],
        states: dict,
        raw: dict[str, np.ndarray],
        text: dict[str, pa.Array],
        counts: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> pa.Table:
        """The telemetry rows. A channel of some variants only is null in the other
        variants' rows (its value, state and raw value)."""
        columns: list[pa.Array] = []
        for how, name, base, type_ in self._columns:
            has = present.get(base)
            null = None if has is None else pa.array(~has)
            if how == "text":
                col = text[name] if name in text else fixed_binary_column(raw[base])
                if has is not None:
                    col = pc.if_else(pa.array(has), col, pa.scalar(None, col.type))
                columns.append(col)
            elif how == "time":
                columns.append(_times(t))
            elif how == "seq":
                columns.append(pa.array(seq.astype(np.int16)))
            elif how == "state":
                columns.append(pa.array(states[base], mask=None if has is None else ~has))
            else:
                v = raw[base] if how == "raw" else eng[name]
                if pa.types.is_fixed_size_list(type_):
                    flat = pa.array(v.reshape(-1), type=type_.value_type)
                    columns.append(pa.FixedSizeListArray.from_arrays(flat, type=type_, mask=null))
                elif pa.types.is_list(type_):  # the variable-length array: its elements only
                    c = counts if has is None else np.where(has, counts, 0)
                    flat = pa.array(v[~_absent(v, c)], type=type_.value_type)
                    offsets = pa.array(np.concatenate([[0], np.cumsum(c)]).astype(np.int32))
                    columns.append(pa.ListArray.from_arrays(offsets, flat, type=type_, mask=null))
                else:
                    columns.append(pa.array(v, type=type_, mask=None if has is None else ~has))
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _columns_plan(
        self, eng: set[str], text: set[str]
    ) -> list[tuple[str, str, str, pa.DataType]]:
        """How each telemetry column is made: (how, column, channel, type), given the names
        that have engineering values and those that are text. Worked out once per processor:
        per column string tests cost more than the columns of a small batch."""
        out = []
        for f in self.schema:
            base = f.name
            for suffix in (RAW_SUFFIX, STATE_SUFFIX):
                if base.endswith(suffix) and base not in eng:
                    base = base[: -len(suffix)]
            if f.name in text or (f.name.endswith(RAW_SUFFIX) and base in text):
                how = "text"
            elif f.name in ("time", "seq"):
                how = f.name
            elif f.name.endswith(STATE_SUFFIX) and f.name not in eng:
                how = "state"
            elif f.name.endswith(RAW_SUFFIX) and f.name not in eng:
                how = "raw"
            else:
                how = "eng"
            out.append((how, f.name, base, f.type))
        return out

    def _rollups(
        self,
        eng: dict[str, np.ndarray],
        t: np.ndarray,
        counts: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> pa.Table:
        """Rollup rows of every rolled channel; a channel of some variants only over their
        packets alone (a table of its own per such channel, concatenated)."""
        if present:
            parts = [
                self._rollups_of([n for n in self._rolled if n not in present], eng, t, counts)
            ]
            for name in self._rolled:
                if name in present:
                    has = present[name]
                    sub = {name: eng[name][has]}
                    parts.append(self._rollups_of([name], sub, t[has], counts[has]))
            return pa.concat_tables(parts)
        return self._rollups_of(self._rolled, eng, t, counts)

    def _rollups_of(
        self, names: list[str], eng: dict[str, np.ndarray], t: np.ndarray, counts: np.ndarray
    ) -> pa.Table:
        if not t.size or not names or not self._widths_s:
            return _EMPTY["rollups"]
        values = [
            _row_mean(eng[name], counts if name in self._var_names else None) for name in names
        ]
        widths = [w * wire.NS for w in self._widths_s]
        bucket, count, lo, hi, total, first, last, sizes = rollup_many(t, values, widths)
        return pa.Table.from_arrays(
            [
                self._repeated([name for name in names for _ in widths], sizes),
                pa.array(np.repeat(np.array(self._widths_s * len(names), np.int32), sizes)),
                _times(bucket),
                pa.array(count),
                pa.array(lo),
                pa.array(hi),
                pa.array(total),
                _times(first),
                _times(last),
            ],
            schema=ROLLUPS,
        )

    def _repeated(self, names: Sequence[str], times: Sequence[int]) -> pa.Array:
        """A string array of ``names[k]`` repeated ``times[k]`` times: slices of a cached
        column per name, concatenated (ten times faster than Arrow's take, measured)."""
        parts = []
        for name, k in zip(names, times, strict=True):
            column = self._names.get(name)
            if column is None or len(column) < k:
                size = max(k, 2 * len(column or ()), 1024)
                column = pa.array([name], pa.string()).take(pa.array(np.zeros(size, np.int32)))
                self._names[name] = column
            parts.append(column.slice(0, k))
        return pa.concat_arrays(parts)

    def _quarantine(
        self,
        buf: np.ndarray,
        frame_start: np.ndarray,
        items: Packets,
        bad: np.ndarray,
        code: np.ndarray,
        recv: np.ndarray,
        topic: str,
        notes: dict[int, str],
    ) -> pa.Table:
        """One row per rejected item, in arrival order; Python per reject is fine here."""
        if not bad.size:
            return _EMPTY["quarantine"]
        reasons, details, data = [], [], []
        for i in bad.tolist():
            s, length = int(items.start[i]), int(items.length[i])
            item = buf[s : s + length].tobytes()
            reason = _REASONS[int(code[i])]
            reasons.append(reason)
            data.append(item)
            offset = s - int(frame_start[items.frame[i]])
            details.append(notes[i] if i in notes else self._detail(reason, item, offset))
        return pa.Table.from_arrays(
            [
                _times(recv[items.frame[bad]]),
                pa.array([topic] * bad.shape[0], pa.string()),
                pa.array(reasons, pa.string()),
                pa.array(details, pa.string()),
                pa.array(data, pa.binary()),
            ],
            schema=QUARANTINE,
        )

    def _detail(self, reason: str, item: bytes, offset: int) -> str:
        """Why a packet was rejected before decode, from its bytes."""
        framing = reject_detail(reason, item, f"at octet {offset} of its frame")
        if framing is not None:
            return framing
        if reason == wire.WRONG_APID:
            apid = (item[0] & 7) << 8 | item[1]
            return f"APID {apid:#05x} on the topic of {self.instrument.id} (APID {self._apid:#05x})"
        return f"{len(item)} octets, a {self.instrument.id} packet has {self._length}"

    def _latest(
        self,
        t: np.ndarray,
        seq: np.ndarray,
        eng: dict[str, np.ndarray],
        states: dict,
        text: dict[str, pa.Array],
        counts: np.ndarray,
        present: dict[str, np.ndarray],
    ) -> dict[str, object]:
        """The live status of the batch's last packet; a channel of some variants only from
        the last packet that has it (none: left out, so the status keeps its older value)."""
        if not t.size:
            return {}
        enums = {f.name: f.enum for f in self._fields if f.enum}
        values: dict[str, object] = {}
        at: dict[str, int] = {}
        for name, has in present.items():
            where = np.flatnonzero(has)
            if where.size:
                at[name] = int(where[-1])
        for name in self.instrument.channels:
            row = at.get(name, -1)
            if name in present and name not in at:
                continue
            if name in text:  # JSON: the text; octets as hex; a wide integer in decimal
                last = text[name][row].as_py()
                kind = self._octets[name].octets
                values[name] = (
                    last
                    if kind == "string"
                    else last.hex()
                    if kind == "bytes"
                    else str(int.from_bytes(last, "big"))
                )
                continue
            last = eng[name][row]
            v = (last[: counts[row]] if name in self._var_names else last).tolist()
            if name in enums:
                label = enums[name]
                values[name] = (
                    [label.get(c, c) for c in v] if isinstance(v, list) else label.get(v, v)
                )
            else:
                values[name] = _nan_to_none(v)
        return {
            "time_ns": int(t[-1]),
            "seq": int(seq[-1]),
            "values": values,
            "states": {
                name: int(col[at.get(name, -1)])
                for name, col in states.items()
                if name not in present or name in at
            },
        }


# ---------------------------------------------------------------------- helpers

#: Empty tables, made once (Arrow tables never change; making one costs ~20 us per batch).
_EMPTY = {
    "rollups": ROLLUPS.empty_table(),
    "quarantine": QUARANTINE.empty_table(),
    "events": EVENTS.empty_table(),
}


def fixed_binary_column(v: np.ndarray) -> pa.Array:
    """(N, L) uint8 as fixed_size_binary(L): each row's octets exactly, in one copy."""
    v = np.ascontiguousarray(v, np.uint8)
    n, size = v.shape
    return pa.Array.from_buffers(pa.binary(size), n, [None, pa.py_buffer(v)])


def binary_column(v: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """The first ``lengths[i]`` octets of each row of (N, L) uint8 as binary, vectorised."""
    n, size = v.shape
    keep = np.arange(size) < lengths[:, None]
    data = np.ascontiguousarray(v[keep])  # row by row: each row's octets in order
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def text_column(v: np.ndarray, encoding: str) -> tuple[pa.Array, int]:
    """(N, L) uint8 as text (trailing NUL and space padding stripped), and how many rows
    were not text in ``encoding``: those decode with U+FFFD for what does not decode. A batch
    of good text stays vectorised; one with a bad row is decoded row by row in Python (rare:
    a module sending bad text is a fault to be seen, not a rate to be kept up)."""
    size = v.shape[1]
    pad = (v == 0) | (v == 0x20)
    # The length of each row: up to its last octet that is not padding.
    last = size - np.argmax(~pad[:, ::-1], axis=1)
    lengths = np.where(pad.all(axis=1), 0, last).astype(np.int64)
    col = binary_column(v, lengths)
    if encoding == "ascii":
        bad = ((v >= 0x80) & (np.arange(size) < lengths[:, None])).any(axis=1)
    else:
        try:
            return col.cast(pa.string()), 0  # Arrow validates the UTF-8 of the whole column
        except pa.ArrowInvalid:
            bad = np.array([_not_utf8(b) for b in col.to_pylist()], bool)
    if not bad.any():
        return col.view(pa.string()), 0
    texts = col.to_pylist()
    out = [b.decode(encoding, "replace") if b is not None else None for b in texts]
    return pa.array(out, pa.string()), int(bad.sum())


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _classify(
    seq: np.ndarray,
    t: np.ndarray,
    last_time: int | None,
    window_t: np.ndarray,
    window_seq: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reason code per packet (0 accepted, DUPLICATE, OUT_OF_ORDER) and the latest accepted
    time before each packet (the module docstring's rules 4 and 5).

    Rejected packets never raise the latest accepted time (their times are not above it), so
    it is the running maximum of all times before the packet. Only a packet at or below it can
    be a duplicate; those few are decided one by one against the dedupe window, counted in
    accepted packets, exactly as if the whole stream were one batch.
    """
    n = t.shape[0]
    flag = np.zeros(n, np.int8)
    floor = np.iinfo(np.int64).min if last_time is None else last_time
    top = np.empty(n, np.int64)
    if not n:
        return flag, top
    top[0] = floor
    np.maximum.accumulate(t[:-1], out=top[1:])
    np.maximum(top, floor, out=top)
    suspect = t <= top
    if not suspect.any():
        return flag, top
    times = np.unique(t[suspect])
    # Accepted packets a suspect could repeat: those at one of the suspects' times.
    w_sel = np.flatnonzero(np.isin(window_t, times))
    n_window = window_t.shape[0]
    recent = {
        (int(window_seq[j]), int(window_t[j])): int(j) for j in w_sel
    }  # key -> its ordinal among accepted packets (later ones win)
    rejected = 0
    dup, ooo = _CODE[wire.DUPLICATE], _CODE[wire.OUT_OF_ORDER]
    for i in np.flatnonzero(suspect | np.isin(t, times)).tolist():
        ordinal = n_window + i - rejected  # accepted packets before this one
        key = (int(seq[i]), int(t[i]))
        if suspect[i]:
            seen = recent.get(key)
            if seen is not None and seen >= ordinal - DEDUPE_WINDOW:
                flag[i] = dup
                rejected += 1
                continue
            if t[i] < top[i]:
                flag[i] = ooo
                rejected += 1
                continue
        recent[key] = ordinal
    return flag, top


def _classify_arrival(
    seq: np.ndarray, key: np.ndarray, window_key: np.ndarray, window_seq: np.ndarray
) -> np.ndarray:
    """Reason code per packet under ``order: arrival``: DUPLICATE for a repeat of (sequence
    count, fingerprint) among the last DEDUPE_WINDOW accepted packets, else 0.

    Only packets whose pair occurs twice in the window and batch together can be duplicates;
    those few are decided one by one, counted in accepted packets as ``_classify`` does.
    """
    n = seq.shape[0]
    flag = np.zeros(n, np.int8)
    if not n:
        return flag
    m = window_key.shape[0]
    both_seq = np.concatenate([window_seq, seq]).astype(np.uint64)
    mixed = np.concatenate([window_key, key]).view(np.uint64) ^ (
        both_seq * np.uint64(0x9E3779B97F4A7C15)
    )
    _, inverse, counts = np.unique(mixed, return_inverse=True, return_counts=True)
    repeated = counts[inverse.reshape(-1)] > 1
    if not repeated[m:].any():
        return flag
    recent = {(int(window_seq[j]), int(window_key[j])): j for j in np.flatnonzero(repeated[:m])}
    rejected = 0
    for i in np.flatnonzero(repeated[m:]).tolist():
        ordinal = m + i - rejected  # accepted packets before this one
        pair = (int(seq[i]), int(key[i]))
        seen = recent.get(pair)
        if seen is not None and seen >= ordinal - DEDUPE_WINDOW:
            flag[i] = _CODE[wire.DUPLICATE]
            rejected += 1
            continue
        recent[pair] = ordinal
    return flag


@dataclass(frozen=True, eq=False)
class _Events:
    """Events of one kind from one stage, with their sort key (packet, kind, channel, sub)."""

    packet: np.ndarray
    sub: np.ndarray
    time: np.ndarray
    kind: str
    channel: np.ndarray  # index into instrument.channels, -1 for none
    from_state: np.ndarray | None
    to_state: np.ndarray | None
    value: np.ndarray
    detail: list[str]


def _gap_events(
    index: np.ndarray, missing: np.ndarray, seq: np.ndarray, t: np.ndarray, last_seq: int | None
) -> _Events:
    before = np.where(
        index > 0, seq[np.maximum(index - 1, 0)], -1 if last_seq is None else last_seq
    )
    k = index.shape[0]
    return _Events(
        packet=index,
        sub=np.zeros(k, np.int64),
        time=t[index],
        kind=wire.GAP,
        channel=np.full(k, -1),
        from_state=None,
        to_state=None,
        value=missing.astype(np.float64),
        detail=[
            f"seq {a} -> {b}" for a, b in zip(before.tolist(), seq[index].tolist(), strict=True)
        ],
    )


def _events_table(parts: list[_Events], channels: Sequence[str]) -> pa.Table:
    """The events of a batch in order of (packet, kind, channel, sample)."""
    parts = [p for p in parts if p.packet.size]
    if not parts:
        return _EMPTY["events"]
    cat = np.concatenate
    sizes = [p.packet.shape[0] for p in parts]
    order = np.lexsort(
        (
            cat([p.sub for p in parts]),
            cat([p.channel for p in parts]),
            np.repeat([_KIND_RANK[p.kind] for p in parts], sizes),
            cat([p.packet for p in parts]),
        )
    )

    def states(which: str) -> pa.Array:
        cols = [getattr(p, which) for p in parts]
        values = cat(
            [np.zeros(k, np.int8) if c is None else c for k, c in zip(sizes, cols, strict=True)]
        )
        null = np.repeat([c is None for c in cols], sizes)
        return pa.array(values[order], pa.int8(), mask=null[order])

    names = np.array([*channels, None], dtype=object)  # index -1: no channel
    return pa.Table.from_arrays(
        [
            _times(cat([p.time for p in parts])[order]),
            pa.array(
                np.repeat(np.array([p.kind for p in parts], object), sizes)[order], pa.string()
            ),
            pa.array(names[cat([p.channel for p in parts])[order]], pa.string()),
            states("from_state"),
            states("to_state"),
            pa.array(cat([p.value for p in parts])[order], pa.float64()),
            pa.array(np.array([d for p in parts for d in p.detail], object)[order], pa.string()),
        ],
        schema=EVENTS,
    )


def _absent(v: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Where a variable-length array (n, most) has no element: column >= the row's count."""
    return np.arange(v.shape[1]) >= counts[:, None]


def _row_mean(v: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """The mean of each row (a 1-D array as it is): the columns added in order, then divided;
    numpy's ``mean(axis=1)`` over rows of a few elements is several times slower. With
    ``counts`` (a variable-length array, NaN past each count), the mean of the elements a row
    has; NaN for a row of none."""
    if counts is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, np.nansum(v, axis=1) / counts, np.nan)
    if v.ndim == 1:
        return v
    out = v[:, 0].copy()
    for j in range(1, v.shape[1]):
        out += v[:, j]
    out /= v.shape[1]
    return out


def _worst(states: np.ndarray) -> np.ndarray:
    """``channel_states``, column by column: a reduction along rows of a few elements is ten
    times slower in numpy than an element-wise maximum over the columns."""
    if states.ndim == 1 or states.shape[1] > 64:
        return channel_states(states)
    out = states[:, 0].copy()
    for j in range(1, states.shape[1]):
        np.maximum(out, states[:, j], out=out)
    return out


def _times(ns: np.ndarray) -> pa.Array:
    """UTC ns as Arrow timestamps: the int64 array seen as TIME (a third of the cost of
    converting to TIME, on the small batches of live ingest)."""
    return pa.array(np.ascontiguousarray(ns, np.int64)).view(TIME)


def _iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns")) + "Z"


def _nan_to_none(v: object) -> object:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    return None if isinstance(v, float) and v != v else v


def _packet_times(
    inst: Instrument, raw: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[int, str]]:
    """The packet times, and why for each packet whose time code is invalid (by position).

    ``packet_time_ns`` refuses a whole batch for one bad time code; halving the batch until
    the bad packets are alone costs a few calls per bad packet, never one per packet.
    """
    keys = [k for k in raw if k.startswith("_time")] + [
        "_seq_count",
        *inst.profile.time.field_names,
    ]
    n = raw["_seq_count"].shape[0]
    t = np.zeros(n, np.int64)
    bad: dict[int, str] = {}

    def solve(lo: int, hi: int) -> None:
        try:
            t[lo:hi] = packet_time_ns(inst, {k: raw[k][lo:hi] for k in keys})
        except ValueError as exc:
            if hi - lo == 1:
                bad[lo] = str(exc)
            else:
                mid = (lo + hi) // 2
                solve(lo, mid)
                solve(mid, hi)

    if n:
        solve(0, n)
    return t, bad


def split_batch(
    frames: Sequence[bytes], known: np.ndarray | None = None, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, Packets]:
    """Join a batch of frames (MQTT payloads) into one buffer and split it into items.

    Returns the buffer (uint8), where each frame starts in it, and the items
    (``pipelines.frames.split_frames``; ``known``/``lengths`` resync after a bad header).
    """
    sizes = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    ends = np.cumsum(sizes)
    buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
    return buf, ends - sizes, split_frames(buf, ends - sizes, ends, known, lengths)


def _integrity(p: Profile, layout: Layout) -> tuple | None:
    """(check, octet of its field, octets, whether it moves with a variable-length array)."""
    if p.integrity is None:
        return None
    bit, _ = field_bits(p)[p.integrity.field]
    return (p.integrity, bit // 8, WIDTH[p.integrity.check] // 8, layout.moves(p.integrity.field))


def apid_tables(profiles: Iterable[Profile]) -> tuple[np.ndarray, np.ndarray]:
    """The ``known`` and ``lengths`` tables of ``pipelines.frames.split_frames`` for these
    profiles' APIDs: a bad header resyncs on the next packet of one of them, at its packet
    length (any length for a packet with a variable-length array)."""
    known, table = np.zeros(APIDS, np.bool_), np.zeros(APIDS, np.int64)
    for p in profiles:
        fixed = not (p.variable or p.variants)
        known[p.apid], table[p.apid] = True, p.packet_length if fixed else 0
    return known, table


def packet_time_ns(inst: Instrument, raw: dict[str, np.ndarray]) -> np.ndarray:
    """UTC ns of each packet from its time code or time fields (not for code ``none``, whose
    time is the receive time); InputError when one is no time."""
    t = inst.profile.time
    n = raw["_seq_count"].shape[0]
    zeros = np.zeros(n, dtype=np.uint64)
    if t.code == "counter":
        return _counter_ns(t, raw)
    if t.code == "calendar":
        return _calendar_ns(t, raw)
    if t.code == "cuc" and t.epoch is not None:  # a mission epoch: TAI seconds from it
        count = raw["_time_coarse"].astype(np.int64) * wire.NS
        if t.fine:
            count += _fraction_ns(raw["_time_fine"], 8 * t.fine, wire.NS)
        return tai58_ns_to_utc_ns(t.origin_ns() + count)
    if t.code == "cuc":
        return cuc_to_utc_ns(raw["_time_coarse"], raw.get("_time_fine", zeros), t.fine)
    return cds_to_utc_ns(raw["_time_days"], raw["_time_ms"], raw.get("_time_subms", zeros), t.subms)


def _counter_ns(t: TimeCode, raw: dict[str, np.ndarray]) -> np.ndarray:
    """A count of units (plus weeks, plus a binary or decimal fraction) from the epoch, as
    UTC ns."""
    unit_ns = round(t.unit_s * wire.NS)
    count = raw[t.seconds].astype(np.int64) * unit_ns  # type: ignore[index]
    if t.week is not None:
        count += raw[t.week].astype(np.int64) * (604_800 * wire.NS)
    if t.fraction is not None and t.fraction_unit_s is not None:
        frac = raw[t.fraction].astype(np.int64) * round(t.fraction_unit_s * wire.NS)
        if (frac >= unit_ns).any():
            k = int(np.argmax(frac >= unit_ns))
            raise InputError(
                f"fraction {int(raw[t.fraction][k])} (field {t.fraction}) is {frac[k]} ns, "
                f"not below one unit of {unit_ns} ns"
            )
        count += frac
    elif t.fraction is not None:
        count += _fraction_ns(raw[t.fraction], t.fraction_bits or 0, unit_ns)
    if t.scale == "tai":
        return tai58_ns_to_utc_ns(t.origin_ns() + count)
    return t.origin_ns() + count


def _fraction_ns(frac: np.ndarray, bits: int, unit_ns: int) -> np.ndarray:
    """A binary fraction of ``bits`` bits of a unit of ``unit_ns`` ns, rounded to the ns."""
    f = frac.astype(np.uint64)
    if bits <= 32 and unit_ns < 1 << 31:  # the product fits in 63 bits
        return (f.astype(np.int64) * unit_ns + (1 << (bits - 1))) >> bits
    # Wide fractions: exact in Python integers (rare: a few such fields per packet).
    return np.array([(int(x) * unit_ns + (1 << (bits - 1))) >> bits for x in f.tolist()], np.int64)


def _calendar_ns(t: TimeCode, raw: dict[str, np.ndarray]) -> np.ndarray:
    """Year, day of year, hour, minute, second (and microsecond) fields as UTC ns."""
    get = {k: raw[getattr(t, k)].astype(np.int64) for k in TIME_KEYS["calendar"] if getattr(t, k)}
    y, d = get["year"], get["doy"]
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    limits = {"doy": (1, 365 + leap), "hour": (0, 23), "minute": (0, 59), "second": (0, 60),
              "usec": (0, 999_999), "year": (1, 9999)}  # fmt: skip
    for key, v in get.items():
        lo, hi = limits[key]
        bad = (v < lo) | (v > hi)
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(f"{key} {int(v[k])} is not a {key} (field {getattr(t, key)})")
    days = (y - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64) + d - 1
    secs = days * 86_400 + get["hour"] * 3600 + get["minute"] * 60 + get["second"]
    return secs * wire.NS + get.get("usec", np.zeros_like(y)) * 1000


def reject_detail(reason: str, item: bytes, where: str) -> str | None:
    """Why a frame-level item (``pipelines.frames`` status) was rejected, read from its bytes;
    ``where`` says where it sat. None for reasons decided after the split."""
    if reason == wire.TRUNCATED:
        return f"{len(item)} octets {where}, fewer than a {HEADER_OCTETS}-octet header"
    if len(item) < HEADER_OCTETS:  # garbage cut short by a resync on the next packet
        return f"{len(item)} octets {where} before the next packet: not a packet header"
    apid = (item[0] & 7) << 8 | item[1]
    if reason == wire.LENGTH_PAST_END:
        total = (item[4] << 8 | item[5]) + 7
        return (
            f"length field says {total} octets, {len(item)} up to the next packet or the end "
            f"({where})"
        )
    if reason == wire.BAD_VERSION:
        return f"version {item[0] >> 5}, not 0 ({where}; APID field {apid:#05x})"
    return None
