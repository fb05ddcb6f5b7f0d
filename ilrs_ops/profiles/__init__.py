"""Partner instrument profiles: YAML files validated, located on error, compiled to layouts;
partners' XTCE and ccsdspy CSV definitions imported as profiles."""

from ilrs_ops import lazy
from ilrs_ops.errors import Problem, ProfileError
from ilrs_ops.profiles._calibrate import RawConverter, calibrate
from ilrs_ops.profiles._catalog import Catalog, CatalogOwner, Instrument, load_catalog
from ilrs_ops.profiles._checks import field_bits
from ilrs_ops.profiles._compile import HEADER_FIELDS, compile_layout, time_fields
from ilrs_ops.profiles._enum import Enumeration
from ilrs_ops.profiles._expr import Expression, parse
from ilrs_ops.profiles._load import load_profile
from ilrs_ops.profiles._plan import ProcessingPlan, calibration_plan, compile_plans, limit_plan
from ilrs_ops.profiles._schema import (
    ID,
    ID_HINT,
    REST,
    TIME_KEYS,
    Argument,
    Calibration,
    Command,
    Commanding,
    CommandSim,
    Condition,
    Derived,
    Detector,
    FieldSpec,
    Integrity,
    Limits,
    LimitSet,
    Profile,
    SimSpec,
    TimeCode,
    epoch_utc_ns,
)

__all__ = [
    "HEADER_FIELDS",
    "ID",
    "ID_HINT",
    "REST",
    "TIME_KEYS",
    "Argument",
    "Calibration",
    "Catalog",
    "CatalogOwner",
    "CheckOption",
    "Command",
    "CommandSim",
    "Commanding",
    "Condition",
    "Derived",
    "Detector",
    "Enumeration",
    "Expression",
    "FieldSpec",
    "ImportNote",
    "ImportOptions",
    "ImportResult",
    "ImportedProfile",
    "Instrument",
    "Integrity",
    "LimitSet",
    "Limits",
    "Problem",
    "ProcessingPlan",
    "Profile",
    "ProfileError",
    "RawConverter",
    "SimSpec",
    "TimeCode",
    "calibrate",
    "calibration_plan",
    "compile_layout",
    "compile_plans",
    "epoch_utc_ns",
    "field_bits",
    "import_definition",
    "limit_plan",
    "load_catalog",
    "load_profile",
    "parse",
    "parse_integrity",
    "parse_time",
    "time_fields",
    "write_imported",
]


#: Names loaded on first use: the definition import (its drafts and YAML writing) is needed
#: by `profiles import` only, not by every command that loads profiles.
_LAZY = {
    **dict.fromkeys(("CheckOption", "ImportNote", "ImportOptions"), "ilrs_ops.profiles._draft"),
    **dict.fromkeys(
        (
            "ImportResult",
            "ImportedProfile",
            "import_definition",
            "parse_integrity",
            "parse_time",
            "write_imported",
        ),
        "ilrs_ops.profiles._import",
    ),
}


__getattr__ = lazy.attributes(__name__, _LAZY)
