"""The `ilrs-ops` command line: exit codes and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer.main
from typer.testing import CliRunner

from ilrs_ops import cli
from ilrs_ops.cli import app
from ilrs_ops.ingest import IngestConfig
from ilrs_ops.replay import CHUNK_OCTETS
from ilrs_ops.settings import load_settings
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


def test_an_option_beats_the_environment_which_beats_the_default() -> None:
    env = {"ILRS_BROKER": "127.0.0.1:2"}
    args = ["monitor", "--profiles", str(DATA / "good_profiles")]
    from_env = runner.invoke(app, args, env=env)
    assert from_env.exit_code == 2 and "MQTT broker 127.0.0.1:2" in from_env.output
    given = runner.invoke(app, [*args, "--broker", "127.0.0.1:1"], env=env)
    assert given.exit_code == 2 and "MQTT broker 127.0.0.1:1" in given.output


def test_load_settings_merges_given_values_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ILRS_ROOT", "from-env")
    assert load_settings(root="given").root == "given"
    assert load_settings(root=None).root == "from-env"
    assert load_settings().broker is None  # none given: `up` embeds one, the others use 1883


def test_a_bad_setting_is_a_clear_error_not_a_traceback() -> None:
    args = ["up", "--profiles", str(DATA / "good_profiles")]
    result = runner.invoke(app, args, env={"ILRS_EMBEDDED_PORT": "abc"})
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "setting embedded_port (ILRS_EMBEDDED_PORT): Input should be a valid integer" in (
        result.output
    )


def test_defaults_shown_in_help_are_the_frameworks() -> None:
    assert IngestConfig.segment_messages == cli.SEGMENT_MESSAGES
    assert CHUNK_OCTETS == cli.CHUNK_OCTETS


def help_argvs(command: object, path: list[str]) -> list[list[str]]:
    """``[*path, "--help"]`` for ``command`` and every command under it (a group has
    ``commands``; typer has its own copy of click, so no isinstance check against click's)."""
    found = [[*path, "--help"]]
    for name, sub in getattr(command, "commands", {}).items():
        found += help_argvs(sub, [*path, name])
    return found


def test_help_loads_none_of_the_framework() -> None:
    """`ilrs-ops --help` and every command's --help answer at once: in a fresh interpreter they
    load only the CLI's own modules, not numpy, pyarrow, MQTT, the console or the settings."""
    argvs = help_argvs(typer.main.get_command(app), [])
    assert ["up", "--help"] in argvs and ["profiles", "check", "--help"] in argvs
    code = (
        "import json, sys\n"
        "from ilrs_ops.cli import app\n"
        f"for argv in {argvs!r}:\n"
        "    assert app(argv, prog_name='ilrs-ops', standalone_mode=False) == 0, argv\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(run.stderr.splitlines()[-1]))
    assert "Usage: ilrs-ops replay" in run.stdout
    heavy = {"numpy", "numba", "pyarrow", "aiomqtt", "paho", "fastapi", "uvicorn", "amqtt"}
    heavy |= {"pydantic_settings", "ruamel"}
    assert loaded & heavy == set()
    ours = {m for m in loaded if m == "ilrs_ops" or m.startswith("ilrs_ops.")}
    assert ours == {"ilrs_ops", "ilrs_ops.cli", "ilrs_ops._commands", "ilrs_ops.errors"}


def test_the_command_client_loads_none_of_the_processing() -> None:
    """`ilrs-ops command` and `commands` talk HTTP to the console: their client loads httpx,
    not the codec, NumPy or Arrow the console's commanding service needs (1.1 s before)."""
    code = (
        "import json, sys\n"
        "import ilrs_ops.commanding.client\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(run.stdout.splitlines()[-1]))
    assert "httpx" in loaded
    assert loaded & {"numpy", "numba", "pyarrow", "pydantic", "aiomqtt", "fastapi"} == set()


def test_a_file_import_loads_no_mqtt_nor_the_definition_import() -> None:
    """`ilrs-ops import FILE` reads a file into the store: the modules it loads bring neither
    the MQTT client (replay onto a broker, the ingestor) nor the XTCE/CSV import; those load
    on first use of their names."""
    code = (
        "import json, sys\n"
        "import ilrs_ops.replay, ilrs_ops.store, ilrs_ops.profiles\n"
        "print(json.dumps(sorted(sys.modules)))\n"
        "ilrs_ops.replay.replay_mqtt, ilrs_ops.profiles.import_definition\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after = (set(json.loads(line)) for line in run.stdout.splitlines()[-2:])
    later = {"aiomqtt", "paho", "ilrs_ops.ingest", "ilrs_ops.sources._mqtt"}
    later |= {"ilrs_ops.profiles._import", "ilrs_ops.profiles._draft"}
    assert before & later == set()
    assert later <= after


def _make_n_run(*args: str) -> str:
    """The command `make -n run` would start. Run as a make of its own: under `make test` the
    environment says it is a sub-make, which prints "Entering/Leaving directory" lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(["make", "--no-print-directory", "-n", "run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


def test_make_run_passes_args_to_up() -> None:
    """`make run ARGS="..."` hands its options to `ilrs-ops up` (README, issue 13 defect 13)."""
    assert _make_n_run("ARGS=--http-port 8090 --seed 7").endswith(
        "ilrs-ops up --http-port 8090 --seed 7"
    )
    assert _make_n_run().endswith("ilrs-ops up")


def test_up_has_demo_faults_by_default_and_none_turns_them_off() -> None:
    from ilrs_ops.sim import Faults

    result = runner.invoke(app, ["up", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert cli.UP_FAULTS in result.output and "none" in result.output
    assert Faults.parse(cli.UP_FAULTS).limit > 0
    for off in ("none", "off", "0", "", " None "):
        assert not Faults.parse(off).any, off
