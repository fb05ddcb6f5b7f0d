"""Fuzzing with Hypothesis: bad frames never break processing and every octet is accounted for;
mutated profiles always give a located ProfileError, never a traceback.

The default runs are small (the file takes well under 40 s); the ``slow`` variants run many more
examples (CI runs them).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ilrs_ops import wire
from ilrs_ops.errors import ProfileError
from ilrs_ops.processing import Processor
from ilrs_ops.profiles import Catalog, load_catalog, load_profile
from ilrs_ops.sim import Environment, Faults, Module
from tests.conftest import DATA

ROOT = Path(__file__).parents[1]
PROFILES = ROOT / "hardware_profiles"
#: Test profiles with every feature of the language (clocks in fields, order by arrival, every
#: integrity check kind, sub-fields, enum ranges, byte orders, i1) and the real missions'
#: profiles, fuzzed with the station's own.
V2_PROFILES = ROOT / "tests" / "data" / "v2_profiles"
ROOTS = (PROFILES, V2_PROFILES, DATA / "missions")
STATION: Catalog = load_catalog(ROOTS)
IDS = sorted(STATION.instruments)
PROFILE_FILES = sorted(p for root in ROOTS for p in root.rglob("*.yaml"))
START_NS = 1_790_000_000 * 10**9

#: Every reason a packet may be quarantined for (README, "Store").
REASONS = set(wire.REASONS)

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ frames and processing


@cache
def valid_packets(instrument: str) -> tuple[bytes, ...]:
    """Good simulator packets of one instrument (no faults), in time order."""
    m = Module(STATION.instruments[instrument], Environment(epoch_ns=0), seed=3, start_ns=START_NS)
    return tuple(m.next_batch(12).packets)


@cache
def faulty_packets(instrument: str) -> tuple[bytes, ...]:
    """Simulator packets with every fault kind the simulator knows, at a high rate."""
    m = Module(
        STATION.instruments[instrument],
        Environment(epoch_ns=0),
        seed=4,
        start_ns=START_NS,
        faults=Faults.parse("all=0.3"),
    )
    # A module may go silent (dropout): fall back to good packets rather than none.
    return tuple(m.next_batch(16).packets) or valid_packets(instrument)


@st.composite
def piece(draw: st.DrawFn, instrument: str) -> bytes:
    """One piece of a frame: a packet (good, faulty, another instrument's), mangled or not, or
    plain random bytes."""
    kind = draw(st.sampled_from(["good", "faulty", "other", "random", "header"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "header":  # a plausible header with random length and version bits
        return draw(st.binary(min_size=6, max_size=6)) + draw(st.binary(max_size=64))
    pool = {
        "good": valid_packets(instrument),
        "faulty": faulty_packets(instrument),
        "other": valid_packets(draw(st.sampled_from(IDS))),
    }[kind]
    pkt = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["flip", "truncate", "splice", "extend", "length", "time"]))
        if how == "flip" and pkt:
            i = draw(st.integers(0, len(pkt) - 1))
            pkt[i] ^= draw(st.integers(1, 255))
        elif how == "truncate":
            pkt = pkt[: draw(st.integers(0, len(pkt)))]
        elif how == "splice":
            other = draw(st.sampled_from(pool))
            cut = draw(st.integers(0, len(pkt)))
            pkt = pkt[:cut] + other[draw(st.integers(0, len(other))) :]
        elif how == "extend":
            pkt += draw(st.binary(max_size=20))
        elif how == "time" and len(pkt) > 6:  # the time code just after the primary header
            at = draw(st.integers(6, min(len(pkt), 16) - 1))
            pkt[at] = draw(st.sampled_from([0xFF, 0x00, 0x80, draw(st.integers(0, 255))]))
        elif how == "length" and len(pkt) >= 6:
            pkt[4:6] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    return bytes(pkt)


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """An instrument and a batch of frames for its topic: each frame one or more pieces, with
    whole frames repeated (redelivery) and shuffled (reordering)."""
    instrument = draw(st.sampled_from(IDS))
    frames = draw(
        st.lists(
            st.lists(piece(instrument), min_size=0, max_size=4).map(b"".join),
            min_size=0,
            max_size=8,
        )
    )
    if frames and draw(st.booleans()):
        frames += draw(st.lists(st.sampled_from(frames), max_size=3))
    return instrument, draw(st.permutations(frames))


def check_processing(instrument: str, frames_list: list[list[bytes]]) -> set[str]:
    """Process batch after batch with one Processor: no exception, and every octet in raw or
    quarantine, each quarantine row with a known reason. Returns the outcomes seen."""
    inst = STATION.instruments[instrument]
    proc = Processor(inst)
    topic = inst.topic("ilrs")
    total_in = 0
    seen: set[str] = set()
    for k, frames in enumerate(frames_list):
        recv = START_NS + np.arange(len(frames), dtype=np.int64) + k * 1000
        out = proc.process(frames, recv, topic)
        octets = sum(len(f) for f in frames)
        total_in += octets
        raw_octets = sum(len(b) for b in out.raw.column("data").to_pylist())
        q_octets = sum(len(b) for b in out.quarantine.column("data").to_pylist())
        assert raw_octets + q_octets == octets
        reasons = set(out.quarantine.column("reason").to_pylist())
        assert reasons <= REASONS
        seen |= reasons | ({"accepted"} if out.raw.num_rows else set())
        assert out.raw.num_rows == out.telemetry.num_rows
        sizes = [len(b) for b in out.raw.column("data").to_pylist()]
        if inst.variant_layouts:  # packet variants: as long as one of the variants' packets
            ranges = [(int(x.lengths(np.array(0))), x.packet_length) for x in inst.variant_layouts]
            assert all(any(lo <= n <= hi for lo, hi in ranges) for n in sizes)
        elif inst.layout.variable:  # each as long as its array: between empty and the most
            shortest = int(inst.layout.lengths(np.array(0)))
            assert all(shortest <= n <= inst.profile.packet_length for n in sizes)
        else:
            assert all(n == inst.profile.packet_length for n in sizes)
    st_ = proc.state
    assert st_.octets == total_in
    assert set(st_.rejects) <= REASONS
    return seen


def record(seen: set[str]) -> None:
    for outcome in sorted(seen):
        event(outcome)


@pytest.mark.parametrize("instrument", IDS)
def test_every_profile_takes_its_own_good_and_faulty_packets(instrument: str) -> None:
    """Deterministic sweep over EVERY station profile (Hypothesis picks profiles at random)."""
    good, faulty = list(valid_packets(instrument)), list(faulty_packets(instrument))
    other = list(valid_packets(IDS[(IDS.index(instrument) + 1) % len(IDS)]))
    late = bytearray(good[-1])
    if STATION.instruments[instrument].profile.time.code == "cds":
        late[8] = 0xFF  # millisecond of day far past 86400999: no time
    first = [good[:4], [b"".join(good[4:8])], faulty, other, [b"", b"\x00", good[0][:-1]]]
    seen = check_processing(instrument, [*first, good[:4], [bytes(late)]])
    assert {"accepted", "wrong_apid", "truncated", "length_past_end", "duplicate"} <= seen
    if STATION.instruments[instrument].profile.time.code == "cds":
        assert "bad_time" in seen


@FAST
@given(st.lists(batches(), min_size=1, max_size=3))
def test_fuzz_processing_accounts_for_every_octet(runs: list[tuple[str, list[bytes]]]) -> None:
    for instrument, frames in runs:
        record(check_processing(instrument, [frames]))


@FAST
@given(st.sampled_from(IDS), st.lists(st.binary(max_size=400), max_size=6))
def test_fuzz_random_bytes(instrument: str, frames: list[bytes]) -> None:
    record(check_processing(instrument, [frames]))


@pytest.mark.slow
@SLOW
@given(st.sampled_from(IDS), st.lists(batches(), min_size=1, max_size=4))
def test_fuzz_processing_slow(instrument: str, runs: list[tuple[str, list[bytes]]]) -> None:
    # Several batches through ONE processor: the state carried between batches is fuzzed too.
    record(check_processing(instrument, [frames for _, frames in runs]))
    for other, frames in runs:
        record(check_processing(other, [frames]))


# ------------------------------------------------------------------ profile loader


@cache
def profile_text(path: Path) -> str:
    return path.read_text()


NUMBER_SWAPS = ["0", "-1", "1e400", "nan", "0x7ff", "99999999999999999999", "3.5", "''", "[]", "{}"]
LINE_GARBAGE = [
    "? [a, b]",
    "[{a: 1}]: 1",
    "-",
    ":",
    "- - -",
    "  x: [1, 2",
    "? ",
    "&a",
    "*a",
    "!!int x",
    "x: !!bool y",
    "\t",
    "{",
    "'",
    '"',
]


@st.composite
def mutated_profile(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(PROFILE_FILES))
    lines = profile_text(path).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(
            st.sampled_from(
                ["delete", "duplicate", "swap", "chars", "number", "garbage", "indent", "truncate"]
            )
        )
        if not lines:
            lines = [draw(st.text(max_size=40))]
        i = draw(st.integers(0, len(lines) - 1))
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "chars":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.text(min_size=1, max_size=5)) + line[at:]
        elif how == "number":
            nums = list(re.finditer(r"-?\d+(\.\d+)?", lines[i]))
            if nums:
                m = draw(st.sampled_from(nums))
                new = draw(
                    st.one_of(
                        st.sampled_from(NUMBER_SWAPS),
                        st.integers(-(2**70), 2**70).map(str),
                        st.text(alphabet="abcxyz", min_size=1, max_size=4),
                    )
                )
                lines[i] = lines[i][: m.start()] + new + lines[i][m.end() :]
        elif how == "garbage":
            lines.insert(i, draw(st.sampled_from(LINE_GARBAGE)) + "\n")
        elif how == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        elif how == "truncate":
            text = "".join(lines)
            lines = [text[: draw(st.integers(0, len(text)))]]
    return path, "".join(lines)


#: Problems without a line are allowed only about the whole file.
WHOLE_FILE = ("not valid YAML", "file larger", "cannot read")


def check_loader(path: Path, text: str) -> None:
    try:
        load_profile(path, text=text)
        event("loaded")
    except ProfileError as exc:
        assert exc.problems, "a ProfileError with no problem in it"
        event("ProfileError" if exc.problems[0].line else "ProfileError without line")
        n_lines = text.count("\n") + 1
        for p in exc.problems:
            assert p.file == str(path), p
            if p.line is None:
                assert p.message.startswith(WHOLE_FILE), f"no line for {p}"
            else:
                assert isinstance(p.line, int) and 1 <= p.line <= n_lines + 1, p
                assert p.column is None or p.column >= 1, p
            assert str(p).startswith(str(path))


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_unmutated_profiles_load(path: Path) -> None:
    load_profile(path, text=profile_text(path))


YAML_CONSTRUCTION_BUGS = [
    "[{a: 1}]: 1\n",  # TypeError: unhashable type: 'CommentedMap'
    "instrument: x\n? [[1]]\n",  # TypeError: unhashable type: 'CommentedSeq'
    "!!int x\n",  # ValueError: invalid literal for int() with base 10: 'x'
    "a: !!float x\n",  # ValueError: could not convert string to float: 'x'
    "a: !!bool x\n",  # KeyError: 'x'
    "a: !!set 1\n",  # AttributeError: 'ScalarNode' object has no attribute 'flow_style'
]


@pytest.mark.parametrize("text", YAML_CONSTRUCTION_BUGS)
def test_yaml_construction_errors_are_profile_errors(text: str) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("x.yaml", text=text)
    assert all(p.file == "x.yaml" and p.line is not None for p in info.value.problems)


@pytest.mark.filterwarnings("error")
def test_reused_anchor_is_a_profile_error() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("x.yaml", text="a: &x 1\nb: &x 2\n")
    assert any(p.line == 2 for p in info.value.problems)


def test_control_character_is_located() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("x.yaml", text="a: \x01\n")
    assert [(p.line, p.column) for p in info.value.problems] == [(1, 4)]


@FAST
@given(mutated_profile())
def test_fuzz_profile_loader(case: tuple[Path, str]) -> None:
    check_loader(*case)


@FAST
@given(st.sampled_from(PROFILE_FILES), st.text(max_size=200))
def test_fuzz_profile_loader_random_text(path: Path, text: str) -> None:
    check_loader(path, text)


@pytest.mark.slow
@SLOW
@given(mutated_profile())
def test_fuzz_profile_loader_slow(case: tuple[Path, str]) -> None:
    check_loader(*case)
