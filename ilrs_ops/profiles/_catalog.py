"""All instrument profiles of a station: loaded together, unique by instrument id and APID."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ilrs_ops.errors import InputError, Problem, ProfileError
from ilrs_ops.profiles._compile import compile_layout
from ilrs_ops.profiles._load import iter_profile_files, key_position, load_profile
from ilrs_ops.profiles._schema import Profile
from pipelines.layout import Layout


@dataclass(frozen=True, eq=False)
class Instrument:
    """One loaded profile with where it came from and its compiled layout."""

    profile: Profile
    path: Path

    @property
    def id(self) -> str:
        return self.profile.instrument

    def topic(self, root: str = "ilrs") -> str:
        """The MQTT topic its telemetry travels on, under ``root`` (tests use their own root)."""
        return f"{root}/tm/{self.profile.partner}/{self.profile.instrument}"  # wire.topic

    @cached_property
    def layout(self) -> Layout:
        """The packet layout; with variants, the first variant's (``variant_layouts``)."""
        if self.profile.variants is not None:
            return self.variant_layouts[0]
        return compile_layout(self.profile)

    @cached_property
    def variant_layouts(self) -> tuple[Layout, ...]:
        """One layout per variant, in profile order; empty without variants."""
        return tuple(compile_layout(v) for v in self.profile.variant_profiles)

    def field_dtype(self, name: str) -> np.dtype:
        """The dtype field ``name`` decodes to, in whichever layout has it."""
        for layout in self.variant_layouts or (self.layout,):
            if name in layout.names:
                return layout.field_dtype(name)
        raise InputError(f"{name!r} is not a field of {self.id}")

    @property
    def channels(self) -> list[str]:
        """Names an operator sees: non-ignored fields, then derived channels."""
        p = self.profile
        return [f.name for f in p.channel_fields if not f.ignore] + [
            d.name for d in p.derived_channels
        ]


@dataclass(frozen=True, eq=False)
class Catalog:
    """The station's instruments by id and by APID."""

    instruments: dict[str, Instrument]

    @cached_property
    def by_apid(self) -> dict[int, Instrument]:
        return {i.profile.apid: i for i in self.instruments.values()}

    def __len__(self) -> int:
        return len(self.instruments)

    def __iter__(self):  # noqa: ANN204 - Iterator[Instrument]
        return iter(self.instruments.values())


class CatalogOwner:
    """The catalog in force in one process, and the one place that changes it.

    A reload or an upload makes a new (immutable) Catalog and hands it to ``replace``; every
    reader (lanes, history, the console, replays) reads ``current`` when it needs it, and
    ``subscribe`` tells those that must act on a change (an ingestor adding a lane).
    """

    def __init__(self, catalog: Catalog) -> None:
        self._current = catalog
        self._subscribers: list[Callable[[Catalog], None]] = []
        self._lock = threading.Lock()

    @property
    def current(self) -> Catalog:
        return self._current

    def replace(self, catalog: Catalog) -> None:
        """Put ``catalog`` in force and tell every subscriber, in the order they subscribed."""
        with self._lock:
            self._current = catalog
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(catalog)

    def subscribe(self, callback: Callable[[Catalog], None]) -> Callable[[], None]:
        """Call ``callback(new)`` after each ``replace``; returns the function that stops it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    @classmethod
    def of(cls, catalog: Catalog | CatalogOwner) -> CatalogOwner:
        """``catalog`` itself when it is an owner, else a new owner of it."""
        return catalog if isinstance(catalog, CatalogOwner) else cls(catalog)


def load_catalog(paths: str | Path | Iterable[str | Path]) -> Catalog:
    """Load every profile under ``paths`` (one folder or file, or several); raise ProfileError
    listing all problems of all files."""
    roots = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    problems: list[Problem] = []
    loaded: list[Instrument] = []
    for path in iter_profile_files(roots):
        try:
            loaded.append(Instrument(load_profile(path), path))
        except ProfileError as exc:
            problems.extend(exc.problems)
    problems.extend(_cross_file_problems(loaded, roots))
    if problems:
        raise ProfileError(problems)
    return Catalog({i.id: i for i in loaded})


def _cross_file_problems(loaded: list[Instrument], roots: list[Path]) -> list[Problem]:
    problems: list[Problem] = []
    first_id: dict[str, Instrument] = {}
    first_apid: dict[int, Instrument] = {}
    for inst in loaded:
        p = inst.profile
        if (other := first_id.setdefault(p.instrument, inst)) is not inst:
            problems.append(
                Problem(
                    str(inst.path),
                    *key_position(inst.path, "instrument"),
                    f"instrument id '{p.instrument}' is already used by {other.path}",
                    hint="give each instrument its own id",
                )
            )
        if (other := first_apid.setdefault(p.apid, inst)) is not inst:
            problems.append(
                Problem(
                    str(inst.path),
                    *key_position(inst.path, "apid"),
                    f"APID {p.apid:#05x} is already used by {other.path} ({other.id})",
                    hint="give each instrument its own APID",
                )
            )
        for i, c in enumerate(p.commands):
            target = c.sim.target if c.sim is not None else None
            if target is not None and target not in {x.profile.instrument for x in loaded}:
                problems.append(
                    Problem(
                        str(inst.path),
                        *key_position(inst.path, "commands", i, "sim", "target"),
                        f"command '{c.name}' switches '{target}', which no profile here is",
                        hint="name an instrument id of these profiles, or load its profile too",
                    )
                )
        folder = inst.path.parent
        if folder not in roots and folder.name != p.partner:
            problems.append(
                Problem(
                    str(inst.path),
                    *key_position(inst.path, "partner"),
                    f"partner '{p.partner}' does not match its folder '{folder.name}'",
                    hint=f"move the file to {folder.parent / p.partner}/",
                )
            )
    return problems
