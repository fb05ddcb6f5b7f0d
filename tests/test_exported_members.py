"""The public API of each package is exactly what is meant to be public: one list per package,
so a name added or dropped is a visible change. Tests and other packages import only these."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "ilrs_ops": {
        "IlrsError",
        "__version__",
    },
    "ilrs_ops.backoff": {
        "Backoff",
        "STEPS_S",
    },
    "ilrs_ops.console": {
        "Access",
        "AccessError",
        "AlarmBook",
        "BadRequestError",
        "ConsoleError",
        "ConsoleSettings",
        "FailedLogins",
        "ForbiddenError",
        "MAX_DEPTH",
        "MAX_NODES",
        "MAX_PROFILE_UPLOAD",
        "NotFoundError",
        "Principal",
        "RedactTokens",
        "Role",
        "StationState",
        "Tokens",
        "UnauthorizedError",
        "UnavailableError",
        "Update",
        "create_app",
        "create_token",
        "follow",
        "hash_token",
        "rebuild",
        "serve",
    },
    "ilrs_ops.files": {
        "TEMP_PREFIX",
        "TEMP_SUFFIX",
        "fsync_dir",
        "is_temp",
        "temp_path",
        "write_atomic",
    },
    "ilrs_ops.history": {
        "History",
        "QuerySource",
        "ROLLUPS_PER_BUCKET",
    },
    "ilrs_ops.ingest": {
        "Committed",
        "IngestConfig",
        "Ingestor",
        "LaneMetrics",
        "shard_of",
    },
    "ilrs_ops.processing": {
        "DEDUPE_WINDOW",
        "Lane",
        "MERGE_BATCHES",
        "ProcessState",
        "Processed",
        "Processor",
        "checkpoint_state",
        "merge",
        "packet_time_ns",
        "recover",
        "recover_lane",
        "reject_detail",
        "seal",
        "seal_by_replay",
        "split_batch",
        "state_of",
    },
    "ilrs_ops.profiles": {
        "Calibration",
        "Catalog",
        "CatalogOwner",
        "Derived",
        "Detector",
        "Expression",
        "FieldSpec",
        "HEADER_FIELDS",
        "ID",
        "ID_HINT",
        "Instrument",
        "LimitSet",
        "Limits",
        "Problem",
        "ProcessingPlan",
        "Profile",
        "ProfileError",
        "SimSpec",
        "TimeCode",
        "calibrate",
        "calibration_plan",
        "compile_layout",
        "compile_plans",
        "limit_plan",
        "load_catalog",
        "load_profile",
        "parse",
        "time_fields",
    },
    "ilrs_ops.replay": {
        "CHUNK_OCTETS",
        "ImportSummary",
        "META",
        "Published",
        "Recorder",
        "Recording",
        "RecordingError",
        "ReplayControl",
        "check_name",
        "create_recording",
        "import_packets",
        "list_recordings",
        "publish",
        "read_recording",
        "recordings_dir",
        "replay_direct",
        "replay_into",
        "replay_mqtt",
        "replay_root",
        "resolve_store",
    },
    "ilrs_ops.sim": {
        "Batch",
        "Environment",
        "FAULT_KINDS",
        "Faults",
        "Module",
        "SOC_DAWN",
        "STRAY_APID",
        "SYNODIC_S",
        "Simulator",
    },
    "ilrs_ops.sources": {
        "HOLD_HIGH",
        "HOLD_LOW",
        "Message",
        "Protocol",
        "RECEIVE_MAXIMUM",
        "ReadGate",
        "Source",
        "StoreSource",
        "ack",
        "make_client",
    },
    "ilrs_ops.store": {
        "SCHEMAS",
        "Store",
        "TABLES",
        "UNKNOWN",
        "Unsealed",
        "WAL_SCHEMA",
        "WalSegment",
        "WalWriter",
        "list_segments",
        "read_segment",
        "translate",
        "window",
    },
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_exports_are_the_intended_ones(name: str) -> None:
    package = importlib.import_module(name)
    assert set(package.__all__) == PUBLIC[name]
    assert len(package.__all__) == len(set(package.__all__)), "a name listed twice"
    for attr in package.__all__:
        assert hasattr(package, attr), attr


def test_every_package_is_listed() -> None:
    from tests.conftest import ROOT

    packages = {f"ilrs_ops.{p.parent.name}" for p in (ROOT / "ilrs_ops").glob("*/__init__.py")}
    assert packages - {"ilrs_ops.console._routes"} <= set(PUBLIC)
