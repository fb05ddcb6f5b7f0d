"""The public API of each package is exactly what is meant to be public."""

from __future__ import annotations

from types import ModuleType

import pytest

import ilrs_ops.profiles
import ilrs_ops.sim

PUBLIC = {
    ilrs_ops.profiles: {
        "HEADER_FIELDS",
        "ID",
        "ID_HINT",
        "Calibration",
        "Catalog",
        "CatalogOwner",
        "Derived",
        "Detector",
        "Expression",
        "FieldSpec",
        "Instrument",
        "LimitSet",
        "ProcessingPlan",
        "Limits",
        "Problem",
        "Profile",
        "ProfileError",
        "SimSpec",
        "TimeCode",
        "calibrate",
        "compile_layout",
        "compile_plans",
        "load_catalog",
        "load_profile",
        "parse",
        "time_fields",
    },
    ilrs_ops.sim: {
        "FAULT_KINDS",
        "STRAY_APID",
        "Batch",
        "Environment",
        "Faults",
        "Module",
        "Simulator",
    },
}


@pytest.mark.parametrize("package", PUBLIC, ids=lambda m: m.__name__)
def test_exports_are_the_intended_ones(package: ModuleType) -> None:
    assert set(package.__all__) == PUBLIC[package]
    for name in package.__all__:
        assert hasattr(package, name), name
