"""Read one profile file: YAML with positions (ruamel), pydantic validation, semantic checks.

Every problem is reported with file, line and column, all at once, never just the first.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.reader import ReaderError

from ilrs_ops.errors import Problem, ProfileError
from ilrs_ops.profiles._checks import check_parts, check_profile
from ilrs_ops.profiles._schema import ID_HINT, NAME_HINT, Profile

Loc = tuple[str | int, ...]


@dataclass
class Positions:
    """Where each key and list item of a file stands, and the name of each field entry."""

    at: dict[Loc, tuple[int, int]] = dc_field(default_factory=lambda: {(): (1, 1)})
    names: dict[Loc, str] = dc_field(default_factory=dict)


MAX_PROFILE_BYTES = 1 << 20
SECTIONS = ("fields", "derived", "detectors")


def load_profile(path: str | Path, text: str | None = None) -> Profile:
    """Load and check one profile; raise ProfileError listing every mistake in it."""
    path = Path(path)
    name = str(path)
    if text is None:
        try:
            if path.stat().st_size > MAX_PROFILE_BYTES:
                raise ProfileError([Problem(name, None, None, "file larger than 1 MiB")])
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError([Problem(name, None, None, f"cannot read: {exc}")]) from exc
    return _checked(name, text)


@functools.lru_cache(maxsize=512)
def _checked(name: str, text: str) -> Profile:
    """The profile of ``text``, remembered (profiles are frozen): a catalog is loaded again on
    every change of its folder, and the round-trip YAML reader, which gives the positions,
    takes about 35 ms a profile; only the changed file is read anew. Problems are not
    remembered (an exception is raised each time)."""
    data, positions = _parse_yaml(name, text)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(name, positions, e["loc"], _message(e)) for e in exc.errors()]
        problems += [_problem(name, positions, *found) for found in check_parts(data)]
        if isinstance(data, dict) and "packet_length" not in data and "variants" not in data:
            # Optional in the schema (variants give their own), required here.
            problems.append(
                _problem(
                    name, positions, (), ("'packet_length' is required", "add 'packet_length: ...'")
                )
            )
        raise ProfileError(sorted(problems, key=_order)) from None
    problems = [
        _problem(name, positions, loc, msg, hint) for loc, msg, hint in check_profile(profile)
    ]
    if problems:
        raise ProfileError(sorted(problems, key=_order))
    return profile


def key_position(path: Path, *key: str | int) -> tuple[int | None, int | None]:
    """Line and column of a key of a profile that loaded, top-level or a path of keys and list
    indices (for problems found across files, such as two profiles with one APID); (None, None)
    if it cannot be read again."""
    try:
        _, positions = _parse_yaml(str(path), path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ProfileError):
        return None, None
    return positions.at.get(key, (None, None))


def _parse_yaml(name: str, text: str) -> tuple[Any, Positions]:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ReusedAnchorWarning)
            doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        msg = f"not valid YAML: {exc.problem or exc.context}"
        raise ProfileError([Problem(name, line, col, msg)]) from None
    except ReaderError as exc:  # a character YAML does not allow, at a known offset
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        msg = f"not valid YAML: character {exc.character!r} is not allowed"
        raise ProfileError([Problem(name, line, col, msg)]) from None
    except ReusedAnchorWarning as exc:
        lines = re.findall(r"line (\d+), column (\d+)", str(exc))
        line, col = (int(lines[-1][0]), int(lines[-1][1])) if lines else (None, None)
        msg = "not valid YAML: an anchor (&name) is defined twice"
        raise ProfileError(
            [Problem(name, line, col, msg, hint="give each anchor its own name")]
        ) from None
    except YAMLError as exc:
        raise ProfileError([Problem(name, None, None, f"not valid YAML: {exc}")]) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # ruamel's constructor fails without a position on tags it cannot apply (!!int x)
        # and on lists or mappings used as keys; point at the first such construct.
        line = _first_line(text, ("!!", "? ", "[", "{")) or 1
        msg = f"not valid YAML: a value cannot be built ({type(exc).__name__}: {exc})"
        hint = "remove YAML tags (!!int, !!set...) and use plain words or numbers as keys"
        raise ProfileError([Problem(name, line, None, msg, hint=hint)]) from None
    if not isinstance(doc, CommentedMap):
        what = "empty" if doc is None else f"a {type(doc).__name__}"
        msg = f"the file is {what}, not a mapping"
        raise ProfileError([Problem(name, 1, 1, msg, hint="start with 'instrument: <id>'")])
    positions = Positions()
    return _plain(doc, (), positions), positions


def _first_line(text: str, marks: tuple[str, ...]) -> int | None:
    """The first line (1-based) holding one of ``marks`` outside a comment."""
    for n, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0]
        if any(m in code for m in marks):
            return n
    return None


def _plain(node: Any, loc: Loc, positions: Positions) -> Any:
    """Convert ruamel nodes to plain Python, recording where each key and item stands."""
    if isinstance(node, CommentedMap):
        out = {}
        if len(loc) >= 2 and loc[-2] in SECTIONS and isinstance(node.get("name"), str):
            positions.names[loc] = str(node["name"])
        for key, value in node.items():
            line, col = node.lc.value(key) if _is_scalar(value) else node.lc.key(key)
            positions.at[(*loc, str(key))] = (line + 1, col + 1)
            out[key] = _plain(value, (*loc, str(key)), positions)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            line, col = node.lc.item(i)
            positions.at[(*loc, i)] = (line + 1, col + 1)
            out_list.append(_plain(value, (*loc, i), positions))
        return out_list
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, CommentedMap | CommentedSeq)


_BOUNDS = {  # pydantic error type: (what is wrong, what to write)
    "greater_than_equal": ("below the minimum", ">="),
    "less_than_equal": ("above the maximum", "<="),
    "greater_than": ("not above", ">"),
    "less_than": ("not below", "<"),
}


def _message(err: Any) -> tuple[str, str | None]:
    kind, msg, loc = err["type"], err["msg"], err["loc"]
    key = str(loc[-1]) if loc else ""
    if kind == "missing":
        return f"'{key}' is required", f"add '{key}: ...'"
    if kind == "extra_forbidden":
        return f"'{key}' is not a known key", "check the spelling against the profile format"
    if kind == "string_pattern_mismatch":
        hint = NAME_HINT if key in ("name", "channel") else ID_HINT
        return f"{err['input']!r} is not a valid {key}", hint
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        what, _, hint = text.partition("; ")
        return what, hint or None
    if kind in _BOUNDS:
        bound = next(iter(err.get("ctx", {}).values()), "?")
        wrong, right = _BOUNDS[kind]
        return f"{err['input']!r} is {wrong} {bound}", f"use a value {right} {bound}"
    if kind == "literal_error":
        return f"{err['input']!r} is not allowed here", msg.replace("Input should be", "use")
    return f"{msg} (got {err.get('input')!r})", None


def _problem(
    file: str,
    positions: Positions,
    loc: Loc,
    message: str | tuple[str, str | None],
    hint: str | None = None,
) -> Problem:
    if isinstance(message, tuple):
        message, hint = message
    loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    line, col = _locate(positions, loc)
    return Problem(file, line, col, message, field=_field_name(positions, loc), hint=hint)


def _order(p: Problem) -> tuple[int, int]:
    return (p.line or 0, p.column or 0)


def _locate(positions: Positions, loc: Loc) -> tuple[int, int]:
    for n in range(len(loc), -1, -1):
        if loc[:n] in positions.at:
            return positions.at[loc[:n]]
    return positions.at[()]


def _field_name(positions: Positions, loc: Loc) -> str | None:
    """The field, derived channel or detector a location is in (``fields[3]`` -> its name)."""
    for n in range(len(loc) - 1, 0, -1):  # the innermost: a variant's field inside variants
        if loc[n - 1] in SECTIONS and isinstance(loc[n], int):
            return positions.names.get(loc[: n + 1], f"{loc[n - 1]}[{loc[n]}]")
    return None


def iter_profile_files(paths: list[Path]) -> Iterator[Path]:
    """Profile files under the given files and folders, sorted, for stable reports."""
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml"))
        else:
            yield p
