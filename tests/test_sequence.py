"""pipelines.sequence against a pure-Python loop: duplicates, time order, gaps, wrap-around."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.sequence import DUPLICATE, MODULUS, OK, OUT_OF_ORDER, check_sequence


def reference(seq, time_ns, last=None):
    """The rules of the module docstring, one packet at a time."""
    seen = {last} if last is not None else set()
    flags, gaps = [], []
    for i, (s, t) in enumerate(zip(seq, time_ns, strict=True)):
        s, t = int(s), int(t)
        if (s, t) in seen:
            flags.append(DUPLICATE)
            continue
        seen.add((s, t))
        if last is not None and t < last[1]:
            flags.append(OUT_OF_ORDER)
            continue
        if last is not None:
            d = (s - last[0]) % MODULUS
            if 2 <= d <= MODULUS // 2:
                gaps.append((i, d - 1))
        flags.append(OK)
        last = (s, t)
    return flags, gaps, last


def run(seq, time_ns, last=None):
    r = check_sequence(np.array(seq, np.int64), np.array(time_ns, np.int64), last)
    assert r.flag.dtype == np.int8
    assert r.gap_index.dtype == r.gap_missing.dtype == np.int64
    return (
        r.flag.tolist(),
        list(zip(r.gap_index.tolist(), r.gap_missing.tolist(), strict=True)),
        r.last,
    )


@st.composite
def streams(draw):
    """Packets of one instrument as they arrive: mostly in order, with losses, wraps, repeats
    (QoS 1 redelivery), late packets and counter resets."""
    n = draw(st.integers(0, 60))
    s = draw(st.integers(0, MODULUS - 1))
    t = draw(st.integers(-(10**12), 10**18))
    packets = []
    for _ in range(n):
        what = draw(st.sampled_from(["next"] * 6 + ["lose", "repeat", "late", "reset", "same"]))
        if what == "repeat" and packets:
            packets.append(draw(st.sampled_from(packets)))
            continue
        if what == "late" and packets:
            ps, pt = draw(st.sampled_from(packets))
            packets.append(((ps + 1) % MODULUS, pt - draw(st.integers(0, 5))))
            continue
        step = {"lose": draw(st.integers(2, MODULUS - 1)), "reset": MODULUS - s, "same": 0}
        s = (s + step.get(what, 1)) % MODULUS
        t += draw(st.sampled_from([0, 1, 1_000_000_000]))
        packets.append((s, t))
    return packets


@settings(max_examples=400, deadline=None)
@given(
    streams(),
    st.one_of(st.none(), st.tuples(st.integers(0, MODULUS - 1), st.integers(-(2**62), 2**62))),
)
def test_matches_reference(packets, last):
    seq = [p[0] for p in packets]
    time_ns = [p[1] for p in packets]
    if last is not None and packets:
        last = (last[0], time_ns[0] + last[1] % 7 - 3)  # near the batch, so it can repeat
    assert run(seq, time_ns, last) == reference(seq, time_ns, last)


def test_large_batch_with_hash_table_matches_reference():
    rng = np.random.default_rng(7)
    n = 20_000
    seq = (np.arange(n) + 16_000) % MODULUS
    t = np.arange(n, dtype=np.int64) * 1_000_000_000 // 50
    keep = rng.random(n) > 0.01  # 1 % lost
    seq, t = seq[keep], t[keep]
    extra = rng.integers(0, seq.size, 300)  # redeliveries and late arrivals
    pos = np.sort(rng.integers(0, seq.size, 300))
    seq = np.insert(seq, pos, seq[extra])
    t = np.insert(t, pos, t[extra])
    assert run(seq, t) == reference(seq, t)


def test_wrap_around():
    t = [10, 20, 30, 40, 50]
    assert run([16382, 16383, 0, 1, 2], t) == ([OK] * 5, [], (2, 50))
    # 16382 -> 1 misses 16383 and 0.
    assert run([16382, 1], [10, 20]) == ([OK, OK], [(1, 2)], (1, 20))
    # Across the batch boundary, from the carried packet.
    assert run([0, 2], [20, 30], last=(16383, 10)) == ([OK, OK], [(1, 1)], (2, 30))
    assert run([3], [20], last=(16380, 10)) == ([OK], [(0, 6)], (3, 20))


def test_half_modulus_rule():
    # Forward by 8192 is a gap of 8191; forward by 8193 is a step back of 8191: no gap.
    assert run([0, 8192], [1, 2])[1] == [(1, 8191)]
    assert run([0, 8193], [1, 2])[1] == []
    # A counter reset: no gap, and counting restarts from the new packet.
    assert run([5000, 0, 1, 3], [1, 2, 3, 4]) == ([OK] * 4, [(3, 1)], (3, 4))
    # The same count with a new time is accepted without a gap.
    assert run([7, 7], [1, 2]) == ([OK, OK], [], (7, 2))


def test_duplicates_and_out_of_order():
    seq = [1, 2, 1, 3, 2, 4, 5]
    t = [10, 20, 10, 30, 15, 40, 40]
    # The repeat of (1, 10) is a duplicate even though its time is also early; (2, 15) is late.
    assert run(seq, t) == (
        [OK, OK, DUPLICATE, OK, OUT_OF_ORDER, OK, OK],
        [],
        (5, 40),
    )
    # A late packet is not accepted: it neither moves the count nor hides a later gap.
    assert run([1, 9, 3], [10, 20, 15]) == ([OK, OK, OUT_OF_ORDER], [(1, 7)], (9, 20))
    # A packet repeated after being late is a duplicate of it.
    assert run([1, 2, 5, 5], [10, 20, 5, 5]) == ([OK, OK, OUT_OF_ORDER, DUPLICATE], [], (2, 20))
    # The carried packet itself comes again (QoS 1 redelivery of the previous batch's last).
    assert run([4, 5], [40, 50], last=(4, 40)) == ([DUPLICATE, OK], [], (5, 50))
    assert run([3], [40], last=(4, 40)) == ([OK], [], (3, 40))  # same time, other count


def test_empty_and_single():
    assert run([], []) == ([], [], None)
    assert run([], [], last=(5, 100)) == ([], [], (5, 100))
    assert run([5], [100]) == ([OK], [], (5, 100))
    assert run([5], [99], last=(5, 100)) == ([OUT_OF_ORDER], [], (5, 100))


def test_invalid_input():
    with pytest.raises(ValueError, match=r"0\.\.16383"):
        check_sequence(np.array([16384]), np.array([0]))
    with pytest.raises(ValueError, match=r"0\.\.16383"):
        check_sequence(np.array([1]), np.array([0]), last=(-1, 0))
    with pytest.raises(ValueError, match="same length"):
        check_sequence(np.array([1, 2]), np.array([0]))
    with pytest.raises(TypeError, match="integer"):
        check_sequence(np.array([1.0]), np.array([0]))


def test_a_last_time_outside_int64_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"last time .* is not an int64 ns time"):
        check_sequence(np.array([1], np.int64), np.array([5], np.int64), (0, 2**63))
