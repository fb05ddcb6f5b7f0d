"""One simulated module per instrument profile: values -> raw counts -> CCSDS packets (+ faults).

Packet k of an instrument is stamped ``start + k * period``, and every value follows from that
time, the seed and the instrument id, so a run is reproducible whatever the wall clock does.
A module with commands also executes telecommands (``command``): it acknowledges each in its
next packets and holds the channels the command sets; command faults draw from their own
generator, so when commands arrive never changes the telemetry's random values.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ilrs_ops import wire
from ilrs_ops.ccsds import SEQ_COUNT_MODULO, utc_ns_to_cds, utc_ns_to_cuc, utc_ns_to_tai58_ns
from ilrs_ops.commanding import Read, Telecommands
from ilrs_ops.profiles import (
    REST,
    Command,
    FieldSpec,
    Instrument,
    Profile,
    RawConverter,
    TimeCode,
    calibrate,
    field_bits,
)
from ilrs_ops.sim._environment import Environment
from ilrs_ops.sim._faults import TC_KINDS, Faults
from ilrs_ops.sim._models import NS, Channel
from pipelines.encode import encode
from pipelines.integrity import WIDTH, checks
from pipelines.layout import Layout

#: Faults drawn per packet, at most one each, so every fault stays countable on the ground.
PACKET_FAULTS = ("dropout", "gap", "corrupt", "truncate", "wrong_apid", "duplicate", "reorder")
#: An APID that no profile may use (the schema stops at 0x7FD), for wrong-APID faults.
STRAY_APID = 0x7FE

# What became of a telecommand at the module (``Handled.outcome``).
EXECUTED = "executed"  # accepted and its effect applied
UNEXECUTED = "unexecuted"  # accepted, but (a tc_unexecuted fault) its effect never happens
REJECTED = "rejected"  # acknowledged as rejected, with a reason in the error field
LOST = "lost"  # never reached the module (a tc_lost fault): no acknowledgement
UNPOWERED = "unpowered"  # the module's supply is switched off: nobody there to hear it


@dataclass(frozen=True)
class Handled:
    """A telecommand as the module handled it: the outcome, and the packet as it read it."""

    outcome: str
    read: Read | None = None

    @property
    def target(self) -> str | None:
        """The instrument whose supply an executed command switches (``sim.target``)."""
        c = self.read.command if self.read is not None else None
        if self.outcome != EXECUTED or c is None or c.sim is None:
            return None
        return c.sim.target


@dataclass
class Batch:
    """Packets ready to publish, each as its own bytes, in sending order."""

    packets: list[bytes]
    times_ns: np.ndarray  # nominal time of each generated packet (before faults)


class Module:
    """A simulated station module: makes the packets of one instrument, batch after batch."""

    def __init__(
        self,
        instrument: Instrument,
        env: Environment,
        *,
        seed: int,
        start_ns: int,
        faults: Faults | None = None,
    ) -> None:
        self.instrument = instrument
        self.profile = p = instrument.profile
        self.env = env
        self.start_ns = start_ns
        self.period_ns = round(p.expected_period_s * NS)
        self.faults = faults or Faults()
        self.rng = np.random.default_rng([seed, zlib.crc32(p.instrument.encode())])
        self.channels = {f.name: Channel(f, env, self.rng) for f in p.channel_fields}
        self._loads = {f.name: f.sim.loads for f in p.channel_fields if f.sim and f.sim.loads}
        self.raw = {f.name: RawConverter(f) for f in p.channel_fields}
        self.index = 0  # packets generated so far
        self.injected: Counter[str] = Counter()
        self._excursion: tuple[str, int, float] | None = None  # channel, until ns, value
        self._silent_until_ns = -1
        self._held: bytes | None = None  # a packet held back to be sent out of order
        # Commanding: the acknowledgement the module sends, the channels commands hold.
        self.telecommands = Telecommands(p) if p.commands else None
        self.tc_rng = np.random.default_rng([seed, zlib.crc32(p.instrument.encode()), 1])
        self.accepted = self.rejected = self.last_seq = 0
        self.error = wire.TC_NONE
        self.holds: dict[str, float] = {}  # channel -> engineering value (enum: its code)
        self.powered = True  # the module's own power state (its ``power`` commands)
        self.supplied = True  # its supply (another module's ``power`` command with a target)
        self._off_after_ack = False  # powered off: one more packet carries the acknowledgement
        self.unsent = 0  # packets that fell due while the module was off

    def times(self, n: int) -> np.ndarray:
        """Nominal times of the next ``n`` packets."""
        k = np.arange(self.index, self.index + n, dtype=np.int64)
        return self.start_ns + k * self.period_ns

    def values(self, t_ns: np.ndarray) -> dict[str, np.ndarray]:
        """Engineering values of every field for packets at ``t_ns`` (limit faults applied)."""
        vals = {name: ch.generate(t_ns) for name, ch in self.channels.items()}
        for name, value in self.holds.items():
            vals[name] = np.full(vals[name].shape, value)
        for name, loads in self._loads.items():  # a supply carries the outlets that are on
            if name not in self.holds:
                vals[name] = vals[name] + sum(a * (vals[o] != 0) for o, a in loads.items())
        self._apply_excursion(vals, t_ns)
        if self.telecommands is not None:
            self._acknowledge(vals, t_ns.shape[0])
        return vals

    @property
    def transmitting(self) -> bool:
        return self.powered and self.supplied

    # ------------------------------------------------------------------ telecommands

    def command(self, packet: bytes) -> Handled:
        """Execute one TC packet: check it, count it in the acknowledgement the next packets
        carry, and apply its effect (``sim``) unless a fault says otherwise."""
        if self.telecommands is None or not self.supplied:
            return Handled(UNPOWERED)
        fault = self._draw_tc_fault()
        if fault is not None:
            self.injected[fault] += 1
        if fault == "tc_lost":
            return Handled(LOST)
        read = self.telecommands.read(packet)
        if fault == "tc_rejected":  # garbled on the uplink: the CRC no longer matches
            read = Read(read.seq, reason=wire.TC_BAD_CHECKSUM, detail="garbled (fault)")
        seq = read.seq if read.seq >= 0 else _seq_of(packet)
        if read.reason != wire.TC_NONE or read.command is None:
            self.rejected += 1
            self.last_seq = self.last_seq if seq is None else seq
            self.error = read.reason
            return Handled(REJECTED, read)
        self.accepted += 1
        self.last_seq = read.seq
        self.error = wire.TC_NONE
        if fault == "tc_unexecuted":
            return Handled(UNEXECUTED, read)
        self._execute(read)
        return Handled(EXECUTED, read)

    def switch(self, on: bool) -> None:
        """Switch the module's supply (another module's command): off, it falls silent at once
        and hears no commands; on, it resumes where its clock is."""
        self.supplied = on

    def _execute(self, read: Read) -> None:
        c, args = read.command, read.args or {}
        assert c is not None
        if c.sim is None:
            return
        fields = {f.name: f for f in self.profile.channel_fields}
        for name, value in c.sim.set.items():
            if isinstance(value, str) and value.startswith("$"):
                value = args[value[1:]]
            self.holds[name] = _engineering(fields[name], value, c)
        if c.sim.power is not None and c.sim.target is None:
            if c.sim.power == "off":
                self._off_after_ack = self.powered
            else:
                self.powered, self._off_after_ack = True, False

    def _acknowledge(self, vals: dict[str, np.ndarray], n: int) -> None:
        link = self.profile.link
        fields = {f.name: f for f in self.profile.channel_fields}
        counters = (
            (link.accepted, self.accepted),
            (link.rejected, self.rejected),
            (link.last_seq, self.last_seq),
        )
        for name, count in counters:
            vals[name] = np.full(n, float(count % (1 << fields[name].width)))
        if link.error is not None:
            states = fields[link.error].enumeration
            code = states.code(self.error) if states is not None else None
            vals[link.error] = np.full(n, float(code or 0))

    def _draw_tc_fault(self) -> str | None:
        if not self.faults.any_tc:
            return None
        r = self.tc_rng.random()
        for kind in TC_KINDS:
            r -= getattr(self.faults, kind)
            if r < 0:
                return kind
        return None

    def encode(self, t_ns: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
        """Packets carrying ``values`` at ``t_ns`` (n * packet_length octets, unless the packet
        has a variable-length array: then as long as its count field says, or at its most for
        an array to the rest of the packet)."""
        n = t_ns.shape[0]
        seq = (np.arange(self.index, self.index + n) % SEQ_COUNT_MODULO).astype(np.int64)
        p = self.profile
        if p.variants is None:
            return self._encode(p, self.instrument.layout, t_ns, values, seq)
        # Packet variants: the variants take turns, each packet carrying the lowest selector
        # value of its variant; every variant's packets are encoded with its own layout.
        k = np.arange(self.index, self.index + n) % len(p.variants.cases)
        parts: list[np.ndarray] = [np.empty(0, np.uint8)] * n
        for j, (flat, layout) in enumerate(
            zip(p.variant_profiles, self.instrument.variant_layouts, strict=True)
        ):
            rows = np.flatnonzero(k == j)
            if not rows.size:
                continue
            mine = {name: v[rows] for name, v in values.items() if name in layout.names}
            selector = (p.variants.selector, p.variants.cases[j].ranges[0][0])
            buf = self._encode(flat, layout, t_ns[rows], mine, seq[rows], selector)
            at = 0
            for i in rows.tolist():
                size = (int(buf[at + 4]) << 8 | int(buf[at + 5])) + 7
                parts[i] = buf[at : at + size]
                at += size
        return np.concatenate(parts) if n else np.empty(0, np.uint8)

    def _encode(
        self,
        p: Profile,
        layout: Layout,
        t_ns: np.ndarray,
        values: dict[str, np.ndarray],
        seq: np.ndarray,
        selector: tuple[str, int] | None = None,
    ) -> np.ndarray:
        """Packets of one layout (of ``p``, the profile or one variant's flat profile)."""
        n = t_ns.shape[0]
        cols: dict[str, np.ndarray] = {
            "_version": np.zeros(n, np.int64),
            "_type": np.zeros(n, np.int64),
            "_sec_hdr": np.ones(n, np.int64),
            "_apid": np.full(n, p.apid, np.int64),
            "_seq_flags": np.full(n, 3, np.int64),
            "_seq_count": seq,
            "_length": np.full(n, p.packet_length - 7, np.int64),
        }
        if p.time.code == "cuc" and p.time.epoch is not None:
            count = utc_ns_to_tai58_ns(t_ns) - p.time.origin_ns()
            scale = 1 << (8 * p.time.fine)
            coarse, rest = np.divmod(count, NS)
            cols["_time_coarse"] = coarse % (1 << (8 * p.time.coarse))
            if p.time.fine:
                cols["_time_fine"] = np.minimum((rest * scale + NS // 2) // NS, scale - 1)
        elif p.time.code == "cuc":
            coarse, fine = utc_ns_to_cuc(t_ns, p.time.fine)
            cols["_time_coarse"] = coarse % (1 << (8 * p.time.coarse))
            if p.time.fine:
                cols["_time_fine"] = fine
        elif p.time.code == "cds":
            days, ms, subms = utc_ns_to_cds(t_ns, p.time.subms)
            cols |= {"_time_days": days, "_time_ms": ms}
            if p.time.subms:
                cols["_time_subms"] = subms
        for name, v in values.items():
            cols[name] = self.raw[name](v)
        if selector is not None:  # a variant's packets: its raw selector value
            cols[selector[0]] = np.full(n, selector[1], np.int64)
        # A clock in fields: the fields carry the time, rolling over as a narrow counter does.
        widths = {f.name: f.width for f in p.channel_fields}
        for name, v in time_columns(p.time, t_ns).items():
            cols[name] = v % (1 << widths[name]) if widths[name] < 63 else v
        counts = None
        if p.variable is not None:
            counts = np.full(n, layout.var_slots[1], np.int64)
            if p.variable.count_from != REST:  # the count field's value, as far as it fits
                counts = np.clip(np.asarray(cols[p.variable.count_from], np.int64), 0, counts)
                cols[p.variable.count_from] = counts
            cols["_length"] = layout.lengths(counts) - 7
        buf = encode(layout, cols, n, counts)
        if p.integrity is not None:  # the module's own CRC or checksum, as real ones send it
            lengths = cols["_length"] + 7
            starts = np.cumsum(lengths) - lengths
            at = np.full(n, field_bits(p)[p.integrity.field][0] // 8)
            if layout.moves(p.integrity.field):  # after the variable-length array
                at += lengths - p.packet_length
            value = checks(buf, starts, p.integrity.start, at, p.integrity.check)
            octets = WIDTH[p.integrity.check] // 8
            for j in range(octets):
                buf[starts + at + j] = (value >> np.uint64(8 * (octets - 1 - j))) & np.uint64(0xFF)
        return buf

    def next_batch(self, n: int) -> Batch:
        """The next ``n`` packets as they leave the module, faults included; none while it is
        off (after a ``power: off``, the first packet still goes: it carries the ack)."""
        t = self.times(n)
        if not self.transmitting:
            self.index += n
            self.unsent += n
            return Batch([], t)
        buf = self.encode(t, self.values(t))
        self.index += n
        out: list[bytes] = []
        at = 0
        sending = n
        if self._off_after_ack:
            self.powered, self._off_after_ack = False, False
            sending = 1
            self.unsent += n - 1
        for i in range(sending):
            size = (int(buf[at + 4]) << 8 | int(buf[at + 5])) + 7  # its length field
            out.extend(self._faulty(bytes(buf[at : at + size]), int(t[i])))
            at += size
        return Batch(out, t)

    def flush(self) -> list[bytes]:
        """The packet held back for reordering, if any: sent when the module stops."""
        held, self._held = self._held, None
        return [held] if held is not None else []

    def _apply_excursion(self, vals: dict[str, np.ndarray], t_ns: np.ndarray) -> None:
        f = self.faults
        if f.limit <= 0 or not t_ns.size:
            return
        if self._excursion is None or self._excursion[1] < t_ns[0]:
            self._excursion = None
            if self.rng.random() < f.limit * t_ns.size:
                self._excursion = self._pick_excursion(int(t_ns[0]))
        if self._excursion is not None:
            name, until, value = self._excursion
            sel = t_ns <= until
            vals[name][sel] = value

    def _pick_excursion(self, t0: int) -> tuple[str, int, float] | None:
        """A limited channel and a value past its red (else yellow) limit that the raw can carry."""
        candidates = []
        for fs in self.profile.channel_fields:
            pair = fs.limits and (fs.limits.red or fs.limits.yellow)
            if not pair or fs.ignore:
                continue
            lo, hi = pair
            span = abs((hi or 0.0) - (lo or 0.0)) or 1.0
            for target, past in ((hi, 1.0), (lo, -1.0)):
                if target is None:
                    continue
                value = target + past * 0.2 * span
                back = calibrate(fs.calibration, self.raw[fs.name](np.array([value])))[0]
                if (back - target) * past > 0:  # still past the limit after raw rounding/clipping
                    candidates.append((fs.name, float(back)))
        if not candidates:
            return None
        name, value = candidates[int(self.rng.integers(len(candidates)))]
        self.injected["limit"] += 1
        return name, t0 + round(self.faults.limit_s * NS), value

    def _faulty(self, pkt: bytes, t_ns: int) -> list[bytes]:
        """What becomes of one packet on its way out: itself, or at most one fault."""
        f = self.faults
        if not f.any:
            return [pkt]
        if t_ns < self._silent_until_ns:
            self.injected["dropped"] += 1
            return []
        fault = self._draw_fault()
        if fault == "reorder" and self._held is not None:
            fault = None  # one packet out of order at a time, so each swap is countable
        if fault:
            self.injected[fault] += 1
        if fault in ("dropout", "gap"):
            self.injected["dropped"] += 1
            if fault == "dropout":
                self._silent_until_ns = t_ns + round(f.dropout_s * NS)
            return []
        if fault == "corrupt":
            pkt = bytes([pkt[0] | (int(self.rng.integers(1, 8)) << 5)]) + pkt[1:]
        elif fault == "truncate":
            pkt = pkt[: int(self.rng.integers(1, len(pkt)))]
        elif fault == "wrong_apid":
            word = (pkt[0] << 8 | pkt[1]) & ~0x7FF | STRAY_APID
            pkt = word.to_bytes(2, "big") + pkt[2:]
        out = [pkt, pkt] if fault == "duplicate" else [pkt]
        if self._held is not None:
            out.append(self._held)  # the held packet goes out after its successor
            self._held = None
        elif fault == "reorder":
            self._held, out = pkt, []
        return out

    def _draw_fault(self) -> str | None:
        r = self.rng.random()
        for kind in PACKET_FAULTS:
            r -= getattr(self.faults, kind)
            if r < 0:
                return kind
        return None


def _seq_of(packet: bytes) -> int | None:
    """The sequence count of a packet too short to be read, if it has one."""
    return int.from_bytes(packet[2:4], "big") & 0x3FFF if len(packet) >= 4 else None


def _engineering(field: FieldSpec, value: float | str, c: Command) -> float:
    """A value a command sets a channel to, as the channel's models make them: an enum label
    as its code, anything else as a number."""
    if isinstance(value, str):
        states = field.enumeration
        code = states.code(value) if states is not None else None
        if code is None:  # an argument's label on a channel without that state: its raw code
            arg = next((a for a in c.arguments if a.enum and value in a.enum.values()), None)
            labels = arg.as_field().enumeration if arg is not None else None
            code = labels.code(value) if labels is not None else None
        return float(code or 0)
    return float(value)


def time_columns(t: TimeCode, t_ns: np.ndarray) -> dict[str, np.ndarray]:
    """The raw values of a counter or calendar time's fields for packet times ``t_ns``."""
    if t.code == "counter":
        count = (utc_ns_to_tai58_ns(t_ns) if t.scale == "tai" else t_ns) - t.origin_ns()
        out = {}
        if t.week is not None:
            out[t.week], count = np.divmod(count, 604_800 * NS)
        unit_ns = round(t.unit_s * NS)
        whole, rest = np.divmod(count, unit_ns)
        out[t.seconds] = whole  # type: ignore[index]
        if t.fraction is not None and t.fraction_unit_s is not None:
            out[t.fraction] = rest // round(t.fraction_unit_s * NS)
        elif t.fraction is not None and t.fraction_bits:
            scale = 1 << t.fraction_bits
            frac = [(int(r) * scale + unit_ns // 2) // unit_ns for r in rest.tolist()]
            out[t.fraction] = np.minimum(np.array(frac, np.uint64), np.uint64(scale - 1))
        return out
    if t.code == "calendar":
        day = t_ns // (86_400 * NS)
        d = day.astype("datetime64[D]")
        year = d.astype("datetime64[Y]")
        sec = (t_ns // NS) % 86_400
        out = {
            t.year: year.astype(np.int64) + 1970,
            t.doy: (d - year.astype("datetime64[D]")).astype(np.int64) + 1,
            t.hour: sec // 3600,
            t.minute: sec // 60 % 60,
            t.second: sec % 60,
        }
        if t.usec is not None:
            out[t.usec] = t_ns % NS // 1000
        return {k: v for k, v in out.items() if k is not None}
    return {}
