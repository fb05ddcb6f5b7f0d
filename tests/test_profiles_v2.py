"""The profile language as a whole: the 1-bit signed type, and random profiles that use i1,
enum ranges, byte orders, sub-fields, strings, blobs, wide integers and 2-D arrays together,
loaded and checked, encoded with pipelines.encode and decoded back exactly as an independent
reference says, their labels and limit contexts as the generated enumerations say. Each
feature on its own: test_enum_ranges.py, test_byte_orders.py, test_subfields.py,
test_octets_and_axes.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ilrs_ops.profiles import Profile, ProfileError, compile_layout, compile_plans, load_profile
from pipelines.decode import decode
from pipelines.encode import encode
from pipelines.limits import select_context
from tests.conftest import reference_fields
from tests.inline import HEAD, instrument, process, profile, simulated
from tests.reference import decode_packet, encode_packet


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


# ------------------------------------------------------------------ random profiles

LABELS = [f"S{k}" for k in range(10)]


def raw_range(base: str, width: int) -> tuple[int, int]:
    if base == "u":
        return 0, (1 << width) - 1
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


@st.composite
def enums(draw: st.DrawFn, base: str, width: int) -> list[tuple[int, int, str]]:
    """Disjoint values and ranges inside the raw range, each with a label (labels repeat)."""
    lo, hi = raw_range(base, width)
    cuts = sorted(set(draw(st.lists(st.integers(lo, hi), min_size=1, max_size=8))))
    entries = []
    for k, a in enumerate(cuts):
        b = cuts[k + 1] - 1 if k + 1 < len(cuts) else hi
        b = draw(st.integers(a, min(b, a + 1000)))
        entries.append((a, b, draw(st.sampled_from(LABELS[:4]))))
    return entries


def enum_yaml(entries: list[tuple[int, int, str]]) -> str:
    return (
        "{" + ", ".join(f"{a if a == b else f'{a}..{b}'}: {label}" for a, b, label in entries) + "}"
    )


@st.composite
def random_profiles(draw: st.DrawFn) -> tuple[str, dict]:
    """A profile text with i1, enum ranges, byte orders, sub-fields, strings, blobs, wide
    integers and 2-D arrays, and its enums."""
    lines: list[str] = []
    parents: list[tuple[str, str, int]] = []
    enum_of: dict[str, list] = {}
    bit = 96
    for i in range(draw(st.integers(1, 7))):
        name = f"f{i}"
        choice = draw(
            st.sampled_from(
                ["u", "i", "i1", "order", "little", "enum", "f", "string", "bytes", "wide", "axes"]
            )
        )
        for _ in range(draw(st.integers(0, 2)) if parents else 0):  # sub-fields so far
            parent, _, p_width = draw(st.sampled_from(parents))
            width = draw(st.integers(1, min(p_width, 16)))
            at = draw(st.integers(0, p_width - width))
            kind = draw(st.sampled_from(["u", "i"]))
            extra = ""
            if draw(st.booleans()):
                entries = draw(enums(kind, width))
                enum_of[f"{name}s{len(lines)}"] = entries
                extra = f", enum: {enum_yaml(entries)}"
            line = f"{{name: {name}s{len(lines)}, type: {kind}{width}, of: {parent}, bit: {at}"
            lines.append(line + extra + "}")
        extra = ""
        if choice in ("string", "bytes", "wide"):  # octets: never a parent, any bit offset
            length = draw(st.integers(1, 12)) if choice != "wide" else draw(st.integers(9, 20))
            typed = f"u{8 * length}" if choice == "wide" else f"{choice}, length: {length}"
            if choice == "string" and draw(st.booleans()):
                typed += ", encoding: utf-8"
            lines.append(f"{{name: {name}, type: {typed}}}")
            bit += 8 * length
            continue
        if choice == "axes":  # one channel per axis, interleaved or planar: never a parent
            base = draw(st.sampled_from(["u", "i", "f"]))
            width = draw(st.sampled_from([32, 64])) if base == "f" else draw(st.integers(1, 24))
            count, n_axes = draw(st.integers(1, 5)), draw(st.integers(1, 3))
            axes = ", ".join("xyz"[:n_axes])
            planar = ", planar: true" if draw(st.booleans()) else ""
            if width in (16, 32, 64) and not bit % 8 and draw(st.booleans()):
                planar += ", endian: little"  # each element of each axis reversed
            lines.append(
                f"{{name: {name}, type: {base}{width}, count: {count}, axes: [{axes}]{planar}}}"
            )
            bit += width * count * n_axes
            continue
        if choice in ("order", "little"):
            base = draw(st.sampled_from(["u", "i", "f"]))
            widths = [32, 64] if base == "f" else [16, 24, 32, 40, 48, 56, 64]
            width = draw(st.sampled_from(widths))
            digits = "".join(draw(st.permutations([str(k) for k in range(1, width // 8 + 1)])))
            order = (
                "little" if choice == "little" else draw(st.sampled_from([f'"{digits}"', digits]))
            )
            extra = f", endian: {order}"
            if bit % 8:
                lines.append(f"{{name: pad{i}, type: u{8 - bit % 8}, ignore: true}}")
                bit += 8 - bit % 8
        elif choice == "f":
            base, width = "f", draw(st.sampled_from([32, 64]))
        elif choice == "i1":
            base, width = "i", 1
        elif choice == "enum":
            base, width = draw(st.sampled_from(["u", "i"])), draw(st.integers(1, 20))
            entries = draw(enums(base, width))
            enum_of[name] = entries
            extra = f", enum: {enum_yaml(entries)}"
        else:
            base, width = choice, draw(st.integers(1, 64))
        lines.append(f"{{name: {name}, type: {base}{width}{extra}}}")
        if base != "f":
            parents.append((name, base, width))
        bit += width
    if bit % 8:
        lines.append(f"{{name: spare, type: u{8 - bit % 8}, ignore: true}}")
        bit += 8 - bit % 8
    if enum_of:  # a limit context on a label of the first enum
        name, entries = next(iter(enum_of.items()))
        lines.append(
            f"{{name: watched, type: u8, limits: {{yellow: [0, 100], when: "
            f"[{{channel: {name}, equals: {entries[0][2]}, yellow: [0, 50]}}]}}}}"
        )
        bit += 8
    head = HEAD.format(apid="0x522", length=bit // 8, time="{code: cuc, coarse: 4, fine: 2}")
    text = head + "".join(f"  - {line}\n" for line in lines)
    return text, enum_of


def random_columns(draw: st.DrawFn, p: Profile, layout, n: int) -> dict[str, np.ndarray]:
    """Raw values for every field (and the header and time fields), each inside its type."""
    cols: dict[str, np.ndarray] = {}
    specs = {f.name: f for f in p.channel_fields}
    for f_index, name in enumerate(layout.names):
        slot = int(layout.field_slot[f_index])
        width = int(layout.bit_width[slot])
        shape = (n, int(layout.field_count[f_index])) if name in layout.array_fields else (n,)
        size = int(np.prod(shape))
        spec = specs.get(name)
        if spec is not None and spec.base == "f":
            bits = draw(st.lists(st.integers(0, 2**width - 1), min_size=size, max_size=size))
            cols[name] = (
                np.array(bits, np.uint64 if width == 64 else np.uint32)
                .view(np.float64 if width == 64 else np.float32)
                .reshape(shape)
            )
            continue
        base = spec.base if spec is not None and not spec.is_octets else "u"
        lo, hi = raw_range(base, width)
        values = draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size))
        cols[name] = np.array(values, object).reshape(shape)
    return cols


def bits_of(a: np.ndarray) -> list:
    if a.dtype.kind == "f":
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64).tolist()
    return a.tolist()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_profiles_round_trip_through_encode_and_decode(data: st.DataObject) -> None:
    text, enum_of = data.draw(random_profiles())
    p = load_profile("random.yaml", text=text)
    layout = compile_layout(p)
    n = data.draw(st.integers(1, 4))
    cols = random_columns(data.draw, p, layout, n)
    buf = encode(layout, cols, n)
    size = p.packet_length
    out = decode(buf, np.arange(n) * size, layout)
    ref = reference_fields(p)  # the bit positions derived from the profile by hand
    names = [f[0] for f in ref]
    for i in range(n):
        packet = buf[i * size : (i + 1) * size].tobytes()
        values = {k: bits_of(np.asarray(cols[k][i : i + 1]).astype(out[k].dtype))[0] for k in names}
        assert packet == encode_packet(values, ref, size)
        want = decode_packet(packet, ref, float_bits=True)
        for k in names:
            assert bits_of(out[k][i : i + 1])[0] == want[k], k
    parents = {f.of for f in p.fields if f.of is not None}
    for f in p.channel_fields:  # what is not overwritten by a sub-field decodes to what was given
        if f.name not in parents and not any(
            g.of == f.of and g.of is not None and p.fields.index(g) > p.fields.index(f)
            for g in p.fields
        ):
            assert bits_of(out[f.name]) == bits_of(
                np.asarray(cols[f.name]).astype(out[f.name].dtype)
            )
    for name, entries in enum_of.items():
        states = next(f for f in p.fields if f.name == name).enumeration
        for code in out[name].tolist():
            label = next((lab for a, b, lab in entries if a <= code <= b), None)
            assert states.get(code) == label
    if enum_of:
        name, entries = next(iter(enum_of.items()))
        plan = compile_plans(p).limits["watched"]
        ctx = select_context(plan, {name: out[name].astype(np.float64)}, n)
        label = entries[0][2]
        inside = [
            any(a <= c <= b for a, b, lab in entries if lab == label) for c in out[name].tolist()
        ]
        assert [c >= 0 for c in ctx.tolist()] == inside
