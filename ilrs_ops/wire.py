"""What crosses a process boundary, defined once: topics, reject reasons, event kinds, the status
document and its health rules, event JSON. Ingest, the console, replays and the simulator all
import these names; none spells them itself.

Topics (MQTT, under a topic root, ``ilrs`` by default):

    {root}/tm/{partner}/{instrument}       telemetry frames, QoS 1, from the station
    {root}/tc/{partner}/{instrument}       telecommand packets, QoS 1, from the commanding service
    {root}/status/{partner}/{instrument}   retained status document, from ingest
    {root}/events/{partner}/{instrument}   one event JSON per message, from ingest
    {root}/metrics/ingest/{shard}          retained metrics of one ingest shard
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: the CLI's console client imports this module, lightly
    from ilrs_ops.profiles import Instrument

#: Nanoseconds per second: every time on the wire and in the store is UTC ns since 1970.
NS = 1_000_000_000

# ---------------------------------------------------------------------- topics

TM, TC, STATUS, EVENTS, METRICS = "tm", "tc", "status", "events", "metrics"


def topic(root: str, kind: str, partner: str, instrument: str) -> str:
    """``{root}/{kind}/{partner}/{instrument}`` for kind tm, tc, status or events."""
    return f"{root}/{kind}/{partner}/{instrument}"


def all_of(root: str, kind: str) -> str:
    """The subscription filter of every topic of ``kind`` under ``root``."""
    return f"{root}/{kind}/#"


def metrics_topic(root: str, shard: int) -> str:
    return f"{root}/{METRICS}/ingest/{shard}"


#: How often an ingest shard publishes its metrics document (``updated``: its wall clock); a
#: reader takes a shard whose document is older than STALE_PERIODS of these as stale.
METRICS_INTERVAL_S = 2.0


def instrument_of(root: str, kind: str, name: str) -> str | None:
    """The instrument id (last level) of a ``{root}/{kind}/...`` topic; None for any other."""
    prefix = f"{root}/{kind}/"
    return name[len(prefix) :].rpartition("/")[2] if name.startswith(prefix) else None


# ---------------------------------------------------------------------- reject reasons

# Why a packet (or a message) is in quarantine: every rejected octet has exactly one of these.
TRUNCATED = "truncated"  # fewer octets than a primary header
LENGTH_PAST_END = "length_past_end"  # the length field runs past the end of the frame
BAD_VERSION = "bad_version"  # the version bits are not 0
WRONG_APID = "wrong_apid"  # a good packet of another APID on an instrument's topic
BAD_LENGTH = "bad_length"  # not the profile's packet length
UNKNOWN_VARIANT = "unknown_variant"  # a selector value that chooses none of the profile's variants
BAD_CRC = "bad_crc"  # the packet's CRC or checksum does not match its octets
BAD_TIME = "bad_time"  # a time code that is no time
DUPLICATE = "duplicate"  # the same (sequence count, time) as a recently accepted packet
OUT_OF_ORDER = "out_of_order"  # earlier than the latest accepted packet time
UNKNOWN_INSTRUMENT = "unknown_instrument"  # a topic that names no instrument
UNKNOWN_APID = "unknown_apid"  # an imported packet whose APID no profile has
REASONS = (
    TRUNCATED,
    LENGTH_PAST_END,
    BAD_VERSION,
    WRONG_APID,
    BAD_LENGTH,
    UNKNOWN_VARIANT,
    BAD_CRC,
    BAD_TIME,
    DUPLICATE,
    OUT_OF_ORDER,
    UNKNOWN_INSTRUMENT,
    UNKNOWN_APID,
)

# ---------------------------------------------------------------------- telecommands

# Why a module rejects a telecommand: the labels its ``commanding.error`` enum gives them.
TC_NONE = "NONE"  # nothing rejected yet
TC_BAD_CHECKSUM = "BAD_CHECKSUM"  # the packet's CRC does not match its octets
TC_BAD_LENGTH = "BAD_LENGTH"  # not the length of the command its opcode names
TC_UNKNOWN_OPCODE = "UNKNOWN_OPCODE"
TC_BAD_ARGUMENT = "BAD_ARGUMENT"  # an argument outside its range or enum
TC_BAD_APID = "BAD_APID"  # not this module's TC APID, or not a TC packet
TC_REJECTIONS = (
    TC_NONE,
    TC_BAD_CHECKSUM,
    TC_BAD_LENGTH,
    TC_UNKNOWN_OPCODE,
    TC_BAD_ARGUMENT,
    TC_BAD_APID,
)

# The stages of a command, in the order they can happen; the last five are final.
REQUESTED, QUEUED, APPROVED, SENT, RECEIVED, EXECUTED = (
    "requested", "queued", "approved", "sent", "received", "executed"
)  # fmt: skip
COMPLETED, FAILED, TIMED_OUT, REJECTED, CANCELLED = (
    "completed", "failed", "timed_out", "rejected", "cancelled"
)  # fmt: skip
FINAL_STAGES = (COMPLETED, FAILED, TIMED_OUT, REJECTED, CANCELLED)
COMMAND_STAGES = (REQUESTED, QUEUED, APPROVED, SENT, RECEIVED, EXECUTED, *FINAL_STAGES)

# ---------------------------------------------------------------------- event kinds

LIMIT = "limit"  # a limit transition (ingest)
GAP = "gap"  # a sequence gap: value = packets missing (ingest)
DETECTOR = "detector"  # a detector trigger on/off (ingest)
ACK = "ack"  # an operator acknowledged an alarm (console)
SHELVE = "shelve"  # an operator shelved an alarm until a time (console)
UNSHELVE = "unshelve"
PROFILE = "profile"  # a profile was uploaded (console)
DASHBOARD = "dashboard"  # a dashboard showing the instrument was made, changed or deleted
EVENT_KINDS = (LIMIT, GAP, DETECTOR, ACK, SHELVE, UNSHELVE, PROFILE, DASHBOARD)


def event_json(row: dict[str, Any], instrument: str) -> bytes:
    """One event row (``schemas.EVENTS`` as a dict, ``time`` as int ``time_ns``) as the JSON
    published on ``{root}/events/{partner}/{instrument}``."""
    return json.dumps({**row, "instrument": instrument}, default=str).encode()


# ---------------------------------------------------------------------- health

NOMINAL, WARNING, CRITICAL, STALE, OFFLINE = "nominal", "warning", "critical", "stale", "offline"
HEALTHS = (NOMINAL, WARNING, CRITICAL, STALE, OFFLINE)
#: An instrument is stale after this many missed packet periods, offline after OFFLINE_PERIODS
#: (and before its first packet).
STALE_PERIODS = 3
OFFLINE_PERIODS = 30
_STATE_HEALTH = {2: CRITICAL, 1: WARNING}


def silence_health(last_recv_s: float | None, period_s: float, now_s: float) -> str | None:
    """``offline`` or ``stale`` by the time since the last good packet; None while it is fresh."""
    if last_recv_s is None or now_s - last_recv_s > OFFLINE_PERIODS * period_s:
        return OFFLINE
    if now_s - last_recv_s > STALE_PERIODS * period_s:
        return STALE
    return None


def aged_health(
    reported: str | None, last_recv_s: float | None, period_s: float, now: float
) -> str:
    """Health as ingest reported it, aged by a reader too: a dead ingestor leaves its last
    retained status behind, which must not stay green."""
    if reported is None:
        return OFFLINE
    silent = silence_health(last_recv_s, period_s, now)
    if silent == OFFLINE or (silent == STALE and reported in (NOMINAL, WARNING, CRITICAL, STALE)):
        return silent
    return reported


@dataclass
class InstrumentStatus:
    """What ingest knows of one instrument right now; ``to_json`` is its status document.

    Health is what an operator sees on a tile: ``critical`` or ``warning`` from the worst limit
    state, ``stale`` after STALE_PERIODS missed packet periods, ``offline`` after OFFLINE_PERIODS.
    """

    instrument: Instrument
    last_recv_s: float | None = None  # wall clock of the last good packet
    last_time_ns: int | None = None  # its packet time
    latest: dict[str, Any] = field(default_factory=dict)  # channel -> value (Processed.latest)
    states: dict[str, int] = field(default_factory=dict)  # channel -> limit state
    packets: int = 0
    bytes: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    gaps: int = 0  # sequence gaps seen (gap events)
    missing: int = 0  # packets those gaps left out, by sequence count

    def health(self, now_s: float) -> str:
        period = self.instrument.profile.expected_period_s
        silent = silence_health(self.last_recv_s, period, now_s)
        if silent is not None:
            return silent
        return _STATE_HEALTH.get(max(self.states.values(), default=0), NOMINAL)

    def to_json(self, now_s: float | None = None) -> bytes:
        """The retained document of ``{root}/status/{partner}/{instrument}``."""
        now_s = time.time() if now_s is None else now_s
        p = self.instrument.profile
        units = {f.name: f.units for f in p.channel_fields} | {
            d.name: d.units for d in p.derived_channels
        }
        doc = {
            "instrument": p.instrument,
            "partner": p.partner,
            "name": p.name,
            "kind": p.kind,
            "health": self.health(now_s),
            "updated": now_s,
            "last_recv": self.last_recv_s,
            "last_packet_time_ns": self.last_time_ns,
            "expected_period_s": p.expected_period_s,
            "packets": self.packets,
            "bytes": self.bytes,
            "rejects": self.rejects,
            "gaps": self.gaps,
            "missing": self.missing,
            "values": {
                name: {"value": value, "units": units.get(name), "state": self.states.get(name)}
                for name, value in self.latest.items()
            },
        }
        return json.dumps(doc, separators=(",", ":"), default=_jsonable).encode()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
