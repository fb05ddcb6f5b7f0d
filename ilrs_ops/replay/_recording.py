"""Recordings: stores of their own under ``{data}/recordings/{name}/``, described by
``recording.json`` (where the data came from, when, and how many packets of what)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ilrs_ops.errors import IlrsError, InputError, StoreError

Origin = Literal["imported", "recorded", "replayed"]
ORIGINS = ("imported", "recorded", "replayed")
META = "recording.json"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class RecordingError(IlrsError):
    """A recording that cannot be made or read: a bad or taken name, a corrupt recording.json."""


@dataclass
class Recording:
    """What ``recording.json`` holds. ``source`` is the file imported or the store replayed;
    ``window`` the [start, stop) replayed (UTC ns, None for all); ``packets`` the packets
    accepted per instrument, ``rejects`` the quarantined ones by instrument and reason."""

    name: str
    origin: Origin
    created: str
    source: str
    path: Path
    window: tuple[int | None, int | None] = (None, None)
    instruments: list[str] = field(default_factory=list)
    packets: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc.pop("path")
        doc["window"] = list(self.window)
        return doc

    def finish(
        self,
        instruments: list[str],
        packets: Mapping[str, int],
        rejects: Mapping[str, Mapping[str, int]],
    ) -> None:
        """Record what went in (instruments, accepted packets, rejects by reason) and save."""
        self.instruments = list(instruments)
        self.packets = {k: int(v) for k, v in sorted(packets.items()) if v}
        self.rejects = {k: dict(sorted(v.items())) for k, v in sorted(rejects.items()) if v}
        self.save()

    def save(self) -> None:
        """Write recording.json atomically enough for a single writer (temp file, rename)."""
        tmp = self.path / (META + ".tmp")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
            tmp.replace(self.path / META)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path / META}: {exc}", str(self.path)) from exc


def recordings_dir(data: Path | str) -> Path:
    return Path(data) / "recordings"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise RecordingError(
            f"recording name {name!r}: use 1-64 of a-z, 0-9, '_', '-', '.', starting with a "
            "letter or digit (e.g. rover-tvac-2026-11)"
        )
    return name


def create_recording(data: Path | str, name: str, origin: Origin, source: str) -> Recording:
    """A new, empty recording (its folder and recording.json); refuses a name already taken."""
    check_name(name)
    if origin not in ORIGINS:
        raise InputError(f"origin {origin!r}: use one of {ORIGINS}")
    path = recordings_dir(data) / name
    if path.exists():
        raise RecordingError(
            f"recording {name!r} exists ({path}); choose another --name/--to or delete it"
        )
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    rec = Recording(name=name, origin=origin, created=created, source=source, path=path)
    rec.save()
    return rec


def read_recording(path: Path) -> Recording:
    """The recording in folder ``path`` (RecordingError when recording.json is unreadable)."""
    try:
        doc = json.loads((path / META).read_text())
        return Recording(
            name=str(doc["name"]),
            origin=doc["origin"],
            created=str(doc["created"]),
            source=str(doc["source"]),
            path=path,
            window=tuple(doc.get("window") or (None, None)),  # type: ignore[arg-type]
            instruments=list(doc.get("instruments", [])),
            packets={str(k): int(v) for k, v in doc.get("packets", {}).items()},
            rejects={
                str(k): {str(r): int(c) for r, c in v.items()}
                for k, v in doc.get("rejects", {}).items()
            },
            extra=dict(doc.get("extra", {})),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecordingError(f"{path / META} is not a readable recording: {exc}") from exc


def list_recordings(data: Path | str) -> list[Recording]:
    """The recordings under ``{data}/recordings``, by name; folders without recording.json
    are not recordings and are left out."""
    folder = recordings_dir(data)
    if not folder.is_dir():
        return []
    return [read_recording(p) for p in sorted(folder.iterdir()) if (p / META).is_file()]


def resolve_store(data: Path | str, text: str) -> Path:
    """``--from``: a recording name under ``{data}/recordings``, or the folder of a store."""
    by_name = recordings_dir(data) / text
    if _NAME_RE.match(text) and (by_name / META).is_file():
        return by_name
    path = Path(text)
    if path.is_dir():
        return path
    names = ", ".join(r.name for r in list_recordings(data)) or "none"
    raise RecordingError(
        f"--from {text!r} is neither a recording of {data} (recordings: {names}) nor a folder"
    )
