"""Profile loading: good profiles compile; every mistake is named with file, line and field.

Broken profiles under tests/data/broken_profiles carry ``# expect: FIELD | TEXT | HINT`` on the
line where the error must point, so the expected locations are written next to the mistakes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ilrs_ops.profiles import ProfileError, calibrate, compile_layout, load_catalog, load_profile

DATA = Path(__file__).parent / "data"
BROKEN = sorted((DATA / "broken_profiles" / "acme").glob("*.yaml"))
EXPECT = re.compile(r"^(?P<field>[^|]+?)\s*\|\s*(?P<text>[^|]+?)\s*\|\s*(?P<hint>.+?)\s*$")


def expectations(path: Path) -> list[tuple[int, str | None, str, str | None]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        for part in line.split("# expect:")[1:]:  # several mistakes may share a line
            m = EXPECT.search(part.strip())
            assert m, f"{path}:{lineno}: bad expect marker"
            field = None if m["field"] == "-" else m["field"]
            hint = None if m["hint"] == "-" else m["hint"]
            out.append((lineno, field, m["text"], hint))
    return out


@pytest.mark.parametrize("path", [p for p in BROKEN if expectations(p)], ids=lambda p: p.stem)
def test_each_mistake_is_reported_at_its_line_with_field_and_hint(path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    problems = info.value.problems
    expected = expectations(path)
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    # Problems come sorted by line, then column; markers on one line are in column order.
    for (line, field, text, hint), problem in zip(expected, problems, strict=True):
        assert problem.file == str(path)
        assert problem.line == line, str(problem)
        assert problem.field == field, str(problem)
        assert text in problem.message, str(problem)
        if hint is not None:
            assert problem.hint is not None and hint in problem.hint, str(problem)
        assert str(problem).startswith(f"{path}:{line}:")


def test_duplicate_ids_and_apids_name_both_files() -> None:
    good = DATA / "good_profiles" / "acme" / "rover.yaml"
    dup = DATA / "broken_profiles" / "acme" / "dup_apid.yaml"
    with pytest.raises(ProfileError) as info:
        load_catalog([good, dup])
    text = str(info.value)
    assert "instrument id 'acme-rover-1' is already used by" in text
    assert "APID 0x2a1 is already used by" in text
    assert all(str(good) in str(p) and str(dup) in str(p) for p in info.value.problems)
    # Each names the line and column of the clashing key in the second file.
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 13), (6, 7)]
    assert str(info.value.problems[1]).startswith(f"{dup}:6:7: APID 0x2a1")


def test_partner_must_match_its_folder() -> None:
    with pytest.raises(
        ProfileError, match=r"\.yaml:2:10: partner 'acme' does not match its folder 'wrong-folder'"
    ):
        load_catalog([DATA / "broken_profiles"])


def test_all_files_are_checked_not_just_the_first() -> None:
    with pytest.raises(ProfileError) as info:
        load_catalog([DATA / "broken_profiles"])
    files = {Path(p.file).name for p in info.value.problems}
    assert {
        "types.yaml",
        "semantics.yaml",
        "length.yaml",
        "yaml_syntax.yaml",
        "missing.yaml",
    } <= files


def test_good_profile_compiles_to_bit_exact_layout() -> None:
    profile = load_profile(DATA / "good_profiles" / "acme" / "rover.yaml")
    layout = compile_layout(profile)
    # Offsets computed by hand: 48-bit primary header, 48-bit CUC, then the fields in order.
    expect = {
        "_apid": (5, 11),
        "_seq_count": (18, 14),
        "_time_coarse": (48, 32),
        "_time_fine": (80, 16),
        "mode": (96, 8),
        "batt_v": (104, 12),
        "pad": (116, 4),
        "batt_i": (120, 16),
        "wheel_temp": (136, 16),
        "heater_on": (232, 1),
        "thermistor": (233, 7),
        "odo": (240, 24),
    }
    for name, (offset, width) in expect.items():
        slot = layout.field_slot[layout.field_index(name)]
        assert (layout.bit_offset[slot], layout.bit_width[slot]) == (offset, width), name
    wheel = layout.field_slot[layout.field_index("wheel_temp")]
    assert list(layout.bit_offset[wheel : wheel + 6]) == [136 + 16 * k for k in range(6)]
    assert layout.packet_length * 8 == 264
    assert layout.array_fields == {"wheel_temp"}


def test_calibrations_match_hand_computed_values() -> None:
    profile = load_profile(DATA / "good_profiles" / "acme" / "rover.yaml")
    f = {x.name: x for x in profile.fields}
    assert calibrate(f["batt_v"].calibration, np.array([2800]))[0] == pytest.approx(28.0)
    # Table: linear between (0, -50) and (64, 10); clamped past the last point.
    got = calibrate(f["thermistor"].calibration, np.array([0, 32, 64, 96, 127]))
    assert got == pytest.approx([-50.0, -20.0, 10.0, 10.0 + 80.0 * 32 / 63, 90.0])
    # Segments: 0.1 m/count below 1000, then 100 + 0.2 x from 1000 on.
    got = calibrate(f["odo"].calibration, np.array([0, 999, 1000, 2000]))
    assert got == pytest.approx([0.0, 99.9, 300.0, 500.0])


def test_hardware_profiles_of_the_station_load() -> None:
    catalog = load_catalog([Path(__file__).parents[1] / "hardware_profiles"])
    partners = {i.profile.partner for i in catalog}
    assert len(catalog) >= 12 and len(partners) >= 7


def test_a_copy_with_other_fields_computes_its_cached_properties_afresh() -> None:
    profile = load_profile(DATA / "good_profiles" / "acme" / "rover.yaml")
    assert profile.channel_fields  # computed and cached on the original
    first = profile.fields[0]
    fewer = profile.model_copy(update={"fields": profile.fields[1:]})
    assert [f.name for f in fewer.channel_fields] == [f.name for f in profile.fields[1:]]
    assert len(profile.channel_fields) == len(profile.fields)  # the original keeps its own
    plain = first.model_copy(update={"enum": None})
    assert plain.enumeration is None
    before = plain.enumeration  # cached as None on the copy
    labelled = plain.model_copy(update={"type": "u8", "enum": {0: "OFF", 1: "ON"}})
    assert before is None and labelled.enumeration is not None
    assert labelled.enumeration.get(1) == "ON"
