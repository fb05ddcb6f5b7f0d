"""Enumerations: the labels of a field's raw values, one value (``5: FAULT``) or an inclusive
range of values (``6..100: NOMINAL``) each, as a profile's ``enum:`` writes them."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ilrs_ops.errors import InputError

_INT = r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|[0-9]+)"
_KEY = re.compile(rf"^\s*({_INT})\s*(?:\.\.\s*({_INT})\s*)?$")
KEY_HINT = "write a raw value (5: FAULT) or an inclusive range of raw values (6..100: NOMINAL)"


def parse_key(key: int | str) -> tuple[int, int]:
    """The inclusive raw range (lo, hi) of one ``enum`` key: ``5`` is (5, 5), ``"6..100"`` is
    (6, 100); InputError for anything else, or a range written high to low."""
    if isinstance(key, int) and not isinstance(key, bool):
        return int(key), int(key)
    m = _KEY.match(key) if isinstance(key, str) else None
    if m is None:
        raise InputError(f"enum key {key!r} is not a raw value or a range; {KEY_HINT}")
    lo = _int(m[1])
    hi = lo if m[2] is None else _int(m[2])
    if lo > hi:
        raise InputError(f"enum range {key!r} runs from high to low; write {hi}..{lo}")
    return lo, hi


def _int(text: str) -> int:
    digits = text.lstrip("+-")
    base = 0 if digits[:2].lower() in ("0x", "0b", "0o") else 10  # 007 is seven, as in YAML
    return int(text, base)


@dataclass(frozen=True)
class State:
    """One entry of an enumeration: raw values lo..hi (inclusive) show as ``label``."""

    lo: int
    hi: int
    label: str


class Enumeration:
    """The states of one enum field, by raw value. Built from a checked profile, where no two
    entries share a raw value; ``get`` finds the state of a value by bisection, so a range of
    a million values costs no more than one value."""

    def __init__(self, mapping: Mapping[int | str, str]) -> None:
        states = [State(*parse_key(k), label) for k, label in mapping.items()]
        self.states: tuple[State, ...] = tuple(sorted(states, key=lambda s: s.lo))
        self._los = [s.lo for s in self.states]

    def get(self, code: int, default: object = None) -> object:
        """The label of raw value ``code``, or ``default`` when no entry covers it."""
        k = bisect.bisect_right(self._los, code) - 1
        if k >= 0 and code <= self.states[k].hi:
            return self.states[k].label
        return default

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int | float) and self.get(code) is not None  # type: ignore[arg-type]

    @property
    def labels(self) -> list[str]:
        """Every label once, sorted."""
        return sorted({s.label for s in self.states})

    def ranges(self, label: str) -> list[tuple[int, int]]:
        """The raw ranges (lo, hi) a label covers, lowest first; empty for an unknown label."""
        return [(s.lo, s.hi) for s in self.states if s.label == label]

    def code(self, label: str) -> int | None:
        """The raw value that stands for ``label`` where one value is needed (the simulator):
        the lowest value it covers."""
        r = self.ranges(label)
        return r[0][0] if r else None

    @property
    def lowest(self) -> int:
        """The lowest raw value of any state (the simulator's quiet default)."""
        return self.states[0].lo
