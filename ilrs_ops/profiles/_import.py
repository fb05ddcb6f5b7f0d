"""Definition import: a partner's XTCE document or ccsdspy CSV made into profile files that
``profiles check`` accepts, with a report of everything that could not be mapped.

``import_definition`` reads and maps (nothing is written), ``write_imported`` writes the files,
all or none. A document that cannot be imported raises DefinitionError (file, line, element).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from ilrs_ops.errors import DefinitionError, InputError, Problem, ProfileError
from ilrs_ops.files import fsync_dir, write_atomic
from ilrs_ops.profiles._checks import check_profile
from ilrs_ops.profiles._draft import (
    CheckOption,
    Draft,
    Finished,
    ImportNote,
    ImportOptions,
    field_data,
    finish,
    header_lines,
    profile_text,
)
from ilrs_ops.profiles._schema import Profile, TimeCode

Format = Literal["xtce", "csv"]
FORMATS: dict[str, Format] = {".xml": "xtce", ".xtce": "xtce", ".csv": "csv"}


@dataclass(frozen=True)
class ImportedProfile:
    """One profile made from the definition: where it goes, its text, what to review in it."""

    path: Path  # relative to the output folder: <partner>/<instrument>.yaml
    text: str
    profile: Profile  # what the text says, checked
    source: str  # the container (XTCE) or file (CSV) it came from
    apid: int
    packet_length: int
    channels: int
    notes: list[ImportNote]
    renamed: dict[str, str]  # the definition's name -> the field's, where more than case changed
    variant_lengths: tuple[int, ...] = ()  # each variant's octets; () without variants

    @property
    def octets(self) -> str:
        """The packet length as the report shows it: ``71``, or each variant's: ``304/4080``."""
        if not self.variant_lengths:
            return str(self.packet_length)
        return "/".join(map(str, self.variant_lengths))


@dataclass
class ImportResult:
    """Every profile made, and the notes that belong to no one profile (skipped containers, the
    sample's other APIDs)."""

    source: Path
    format: Format
    tool: str
    profiles: list[ImportedProfile]
    notes: list[ImportNote] = field(default_factory=list)
    sample: Counter[int] | None = None  # packets per APID in the sample

    def report(self) -> list[str]:
        """Every note, one per line: the document's first, then each profile's; a note that
        many containers share word for word (the clock, lower-cased names) once, naming them."""
        lines = [str(n) for n in self.notes]
        everyone = [n for p in self.profiles for n in p.notes if not n.names]
        shared = Counter((n.construct, n.action) for n in everyone)
        said: set[tuple[str, str]] = set()
        for p in self.profiles:
            for n in p.notes:
                key = (n.construct, n.action)
                if n.names or shared[key] < 2:
                    lines.append(str(n))
                elif key not in said:
                    said.add(key)
                    who = [
                        x.subject.removeprefix("container ")
                        for x in everyone
                        if (x.construct, x.action) == key
                    ]
                    shown = ", ".join(who[:4]) + (", ..." if len(who) > 4 else "")
                    lines.append(
                        f"{self.source.name}: {len(who)} containers ({shown}): "
                        f"{n.construct}; {n.action}"
                    )
        return lines


def parse_time(text: str) -> TimeCode:
    """``--time`` as a TimeCode: ``none``, ``cuc:coarse=4,fine=2``, ``cds:days=2,subms=2``,
    ``cuc:epoch=2000-01-01T11:58:55.816Z`` (keys as in the profile's ``time:``)."""
    code, _, rest = text.strip().partition(":")
    keys: dict[str, object] = {"code": code}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise InputError(
                f"--time {text!r}: {part!r} is not key=value; write e.g. "
                "cds:days=2,subms=2 or cuc:coarse=4,fine=2"
            )
        keys[key.strip()] = int(value) if re.fullmatch(r"-?\d+", value.strip()) else value.strip()
    try:
        return TimeCode.model_validate(keys)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise InputError(
            f"--time {text!r}: {where}: {e['msg']}; write e.g. none, "
            "cds:days=2,subms=2 or cuc:coarse=4,fine=2"
        ) from None


def parse_integrity(text: str) -> CheckOption:
    """``--integrity`` as a CheckOption: ``sum16:field=packet_checksum``, with ``start=N`` for a
    check that does not begin at the primary header (keys as in the profile's ``integrity:``;
    ``field`` is the definition's name of the parameter)."""
    from pipelines.integrity import KINDS

    check, _, rest = text.strip().partition(":")
    keys: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in ("field", "start"):
            raise InputError(
                f"--integrity {text!r}: {part!r} is not field=NAME or start=N; write e.g. "
                "sum16:field=packet_checksum"
            )
        keys[key.strip()] = value.strip()
    if check not in KINDS:
        raise InputError(f"--integrity {text!r}: {check!r} is not a check; use one of {KINDS}")
    if not keys.get("field"):
        raise InputError(
            f"--integrity {text!r}: name the parameter holding it, e.g. {check}:field=crc"
        )
    try:
        start = int(keys.get("start", "0"), 0)
    except ValueError:
        raise InputError(f"--integrity {text!r}: start must be an octet number") from None
    if start < 0:
        raise InputError(f"--integrity {text!r}: start must be 0 or more")
    return CheckOption(check, keys["field"], start)


def read_sample(
    path: Path, prefix_octets: int = 0
) -> tuple[dict[int, Counter[int]], list[ImportNote]]:
    """Packets of a raw packet file by APID and length (octets), split as ingest splits them
    (``prefix_octets`` before each packet skipped, as `ilrs-ops import --prefix-octets` does),
    and a note on the items that are no packet (cut, bad version)."""
    import numpy as np

    from pipelines.frames import APIDS, OK, STATUS_NAMES, split_frames

    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"--sample {path}: cannot read: {exc.strerror or exc}") from None
    if not data.size:
        raise InputError(f"--sample {path}: the file is empty")
    none_known = np.zeros(APIDS, np.bool_), np.zeros(APIDS, np.int64)
    items = split_frames(
        data, np.array([0]), np.array([data.size]), *none_known, prefix=prefix_octets
    )
    ok = items.status == OK
    by_apid: dict[int, Counter[int]] = {}
    for apid, length in zip(items.apid[ok].tolist(), items.length[ok].tolist(), strict=True):
        by_apid.setdefault(apid, Counter())[length] += 1
    bad = Counter(STATUS_NAMES[int(s)] for s in items.status[~ok])
    notes = []
    if bad:
        what = ", ".join(f"{n} {reason}" for reason, n in sorted(bad.items()))
        notes.append(
            ImportNote(path.name, "sample", f"items that are no packet ({what})", "not counted")
        )
    return by_apid, notes


def import_definition(
    source: Path | str,
    opts: ImportOptions,
    *,
    format: Format | None = None,
    sample: Path | str | None = None,
    sample_prefix_octets: int = 0,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Map the XTCE or CSV ``source`` to profiles (none written); ``format`` defaults by the
    file's suffix; ``sample`` is a raw packet file whose real lengths are compared with the
    definition's (``sample_prefix_octets`` before each of its packets skipped). Raises
    DefinitionError on a document that cannot be imported."""
    source = Path(source)
    fmt = format or FORMATS.get(source.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{source.name}: cannot tell the format from the suffix "
            f"{source.suffix!r}; give --format xtce or --format csv"
        )
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    if sample_prefix_octets < 0:
        raise InputError(f"--prefix-octets must be 0 or more, not {sample_prefix_octets}")
    lengths, notes = (
        read_sample(Path(sample), sample_prefix_octets) if sample is not None else ({}, [])
    )
    if fmt == "xtce":
        from ilrs_ops.profiles._import_xtce import read_xtce

        reading = read_xtce(source, opts)
        drafts, tool = reading.drafts, reading.tool
        notes = reading.notes + notes
    else:
        from ilrs_ops.profiles._import_csv import read_csv

        drafts, tool = [read_csv(source, opts.apid)], "ccsdspy CSV format"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    ids = _identities(drafts, opts, source)
    made: list[ImportedProfile] = []
    problems = []
    for draft, (instrument, name) in zip(drafts, ids, strict=True):
        done = finish(
            draft,
            opts,
            instrument=instrument,
            name=name,
            lengths=lengths.get(draft.apid) if sample is not None else None,
        )
        if isinstance(done, ImportNote):
            notes.append(done)
            continue
        header = header_lines(
            done,
            kind=fmt.upper() if fmt == "xtce" else "ccsdspy CSV",
            source=source,
            digest=digest,
            tool=tool,
            when=when,
            sample=_sample_words(Path(sample).name, lengths.get(draft.apid)) if sample else None,
        )
        text = profile_text(done, header)
        rel = Path(opts.partner) / f"{instrument}.yaml"
        checked = _check(done, rel)
        if isinstance(checked, list):
            problems += checked
            continue
        made.append(_imported(done, rel, text, checked))
    if problems:
        raise ProfileError(problems)  # a mapping the checks refuse: the import's own bug
    if not made:
        raise DefinitionError(
            str(source), None, "no profile could be made: " + "; ".join(str(n) for n in notes[-3:])
        )
    if sample is not None:
        for apid in sorted(set(lengths) - {p.apid for p in made}):
            n = sum(lengths[apid].values())
            notes.append(
                ImportNote(
                    Path(sample).name,
                    f"APID {apid}",
                    f"{n} packet(s) in the sample",
                    "no profile for them: they will be unknown_apid",
                )
            )
    counts = Counter({a: sum(c.values()) for a, c in lengths.items()}) if sample else None
    return ImportResult(source, fmt, tool, made, notes, counts)


def _sample_words(name: str, lengths: Counter[int] | None) -> str:
    if not lengths:
        return f"The sample {name} has no packet of this APID"
    seen = ", ".join(f"{n} of {length} octets" for length, n in sorted(lengths.items()))
    return f"The sample {name} has {sum(lengths.values())} packet(s) of this APID: {seen}"


def _check(done: Finished, rel: Path) -> Profile | list[Problem]:
    """The profile of ``done`` as the checks see it, or what they say against it (a mapping
    that is wrong). The data is checked, not its YAML text: ruamel's round-trip reader would
    take most of an import's time; tests/test_profile_import.py checks that the text loads as
    this same profile."""
    data = done.data | {"fields": [field_data(f) for f in done.fields]}
    if done.variants:
        data["variants"] = done.variants_data()
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(str(rel), None, None, f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors()
        ]
    found = [
        Problem(str(rel), None, None, f"{'.'.join(map(str, loc))}: {msg}", hint=hint)
        for loc, msg, hint in check_profile(profile)
    ]
    return found or profile


def _imported(done: Finished, rel: Path, text: str, profile: Profile) -> ImportedProfile:
    return ImportedProfile(
        path=rel,
        text=text,
        profile=profile,
        source=done.draft.source,
        apid=done.draft.apid,
        packet_length=done.data.get("packet_length") or max(v.packet_length for v in done.variants),
        channels=done.channels,
        variant_lengths=tuple(v.packet_length for v in done.variants),
        notes=done.notes,
        renamed=done.renamed,
    )


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def _identities(drafts: list[Draft], opts: ImportOptions, source: Path) -> list[tuple[str, str]]:
    """(instrument id, human name) of each draft: as given when there is one draft, else the
    given ones (or the partner) as a prefix to the container's name; unique."""
    one = len(drafts) == 1
    out: list[tuple[str, str]] = []
    taken: set[str] = set()
    for d in drafts:
        if one and opts.instrument:
            ident = opts.instrument
        else:
            ident = f"{opts.instrument or opts.partner}-{_slug(d.source) or d.apid}"
        ident = ident[:63].strip("-")
        base, k = ident, 2
        while ident in taken:
            ident = f"{base[:60]}-{k}"
            k += 1
        taken.add(ident)
        title = d.title or d.source
        given = opts.name if one else f"{opts.name} {d.source}"
        out.append((ident, given if opts.name else title))
    return out


def write_imported(result: ImportResult, out: Path | str, *, force: bool = False) -> list[Path]:
    """Write every profile of ``result`` under ``out`` (``<partner>/<instrument>.yaml``): none
    when one of them exists already (unless ``force``) or a folder cannot be made."""
    out = Path(out)
    paths = [out / p.path for p in result.profiles]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise InputError(
            f"{', '.join(existing[:5])}{' ...' if len(existing) > 5 else ''} "
            "exist(s) already; choose another --out, or --force to replace"
        )
    try:
        for folder in sorted({p.parent for p in paths}):
            folder.mkdir(parents=True, exist_ok=True)
        for path, p in zip(paths, result.profiles, strict=True):
            data = p.text.encode()
            write_atomic(path, lambda f, data=data: f.write(data), sync_dir=False)
        for folder in sorted({p.parent for p in paths}):
            fsync_dir(folder)
    except OSError as exc:
        raise InputError(f"cannot write the profiles under {out}: {exc}") from exc
    return paths
