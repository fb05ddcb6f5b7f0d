"""The `ilrs-ops` command line: exit codes and what it prints."""

from __future__ import annotations

from typer.testing import CliRunner

from ilrs_ops.cli import app
from tests.conftest import DATA, ROOT

runner = CliRunner()


def test_profiles_check_passes_on_the_station() -> None:
    result = runner.invoke(app, ["profiles", "check", str(ROOT / "hardware_profiles")])
    assert result.exit_code == 0, result.output
    assert "profile(s) OK" in result.output


def test_profiles_check_lists_every_problem_and_exits_1() -> None:
    result = runner.invoke(app, ["profiles", "check", str(DATA / "broken_profiles")])
    assert result.exit_code == 1
    text = result.output
    assert "types.yaml:11:" in text and "type 'u65' is not a type" in text
    assert "semantics.yaml:" in text and "length.yaml:" in text and "missing.yaml:" in text
    assert "problem(s) in the profiles" in text


def test_profiles_list_shows_every_instrument(station) -> None:
    result = runner.invoke(app, ["profiles", "list", str(ROOT / "hardware_profiles")])
    assert result.exit_code == 0, result.output
    for inst in station:
        assert inst.id in result.output
        assert f"{inst.profile.apid:#05x}" in result.output


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = runner.invoke(
        app, ["simulate", "--fault", "lmit=0.1", "--profiles", str(DATA / "good_profiles")]
    )
    assert result.exit_code == 2
    assert "bad fault 'lmit=0.1'" in result.output


def test_unreachable_broker_is_a_clear_error() -> None:
    result = runner.invoke(
        app, ["monitor", "--broker", "127.0.0.1:1", "--profiles", str(DATA / "good_profiles")]
    )
    assert result.exit_code == 2
    assert "MQTT broker 127.0.0.1:1" in result.output
