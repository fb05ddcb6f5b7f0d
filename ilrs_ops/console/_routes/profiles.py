"""Profile upload: a partner puts the YAML profile of one of its instruments; ingest's watcher
puts it in force without a restart.

``PUT /api/profiles/{partner}/{instrument}`` with the YAML text as the body (at most 256 KiB,
413 beyond). Operators may write any partner's folder, a partner only its own (403), viewers
none. ``partner`` and ``instrument`` must be profile ids (400: no path tricks). The text is
checked as ``profiles check`` does (422 with every problem: file, line, column, field,
message, hint), must name the same partner and instrument as the URL, and must not take an
instrument id or APID of another profile (422). It is then written atomically (temp, fsync,
rename, directory fsync) to ``{profiles}/{partner}/{instrument}.yaml`` (or over the file that
already holds that instrument), recorded as a ``profile`` event (audit; also sent to the
WebSocket clients that may read the instrument), and the console's own catalog is reloaded
(its WebSocket clients get the new tiles). ``GET`` of the same path returns the stored text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

from ilrs_ops.console._audit import record
from ilrs_ops.console._auth import Principal
from ilrs_ops.console._deps import Console, ConsoleDep, PrincipalDep
from ilrs_ops.console._errors import BadRequestError, ForbiddenError, NotFoundError, responses
from ilrs_ops.console._state import Update
from ilrs_ops.errors import Problem, ProfileError
from ilrs_ops.files import write_atomic
from ilrs_ops.profiles import ID, ID_HINT, Catalog, load_catalog, load_profile

router = APIRouter(
    prefix="/api/profiles",
    tags=["profiles"],
    responses=responses(400, 401, 403, 404, 413, 429, 503),
)

MAX_PROFILE_UPLOAD = 256 * 1024
#: YAML nodes an upload may expand to (aliases counted in full: no "billion laughs") and how
#: deep it may nest (the loader recurses); the station's largest profile has about 550 nodes.
MAX_NODES = 100_000
MAX_DEPTH = 64
_ID = re.compile(ID)
_write_lock = threading.Lock()  # one upload at a time: the clash check and the write together


class ProblemJson(BaseModel):
    file: str
    line: int | None
    column: int | None
    field: str | None
    message: str
    hint: str | None


class ProblemsBody(BaseModel):
    """422: the profile is refused; every problem with where and what."""

    detail: str
    problems: list[ProblemJson]


_YAML_BODY = {
    "requestBody": {
        "required": True,
        "description": f"the profile's YAML text (docs/profiles.md), at most "
        f"{MAX_PROFILE_UPLOAD // 1024} KiB",
        "content": {"application/yaml": {"schema": {"type": "object"}}},
    }
}


def _check_ids(partner: str, instrument: str) -> None:
    for name, value in (("partner", partner), ("instrument", instrument)):
        if not _ID.match(value):
            raise BadRequestError(f"{name} {value!r} is not a profile id: {ID_HINT}", name)


def _may_write(principal: Principal, partner: str) -> None:
    if principal.is_operator or (principal.role == "partner" and principal.partner == partner):
        return
    raise ForbiddenError(
        f"{principal.role} {principal.name!r} may not upload profiles of partner {partner!r}"
    )


def _problems(problems: list[Problem]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"{len(problems)} problem(s) in the profile",
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "field": p.field,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in problems
            ],
        },
        status_code=422,
    )


def _shape(shown: str, text: str) -> Problem | None:
    """A problem when the YAML would expand past MAX_NODES or nest past MAX_DEPTH, found from
    the parser's events alone (nothing is built). Syntax errors are left to the loader."""
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    stack: list[list[Any]] = []  # open collections: [nodes so far, anchor]
    total = 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, CollectionStartEvent):
                stack.append([1, event.anchor])
                total += 1
                if len(stack) > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else None
                    return Problem(shown, line, None, f"nested deeper than {MAX_DEPTH} levels")
                continue
            if isinstance(event, CollectionEndEvent) and stack:
                n, anchor = stack.pop()
            elif isinstance(event, ScalarEvent):
                n, anchor = 1, event.anchor
                total += 1
            elif isinstance(event, AliasEvent):
                n, anchor = sizes.get(event.anchor, 1), None
                total += n
            else:
                continue
            if anchor:
                sizes[anchor] = n
            if stack:
                stack[-1][0] += n
            if total > MAX_NODES:
                return Problem(
                    shown, None, None, f"expands to more than {MAX_NODES} YAML nodes",
                    hint="a profile needs no aliases (*name) of large parts",
                )  # fmt: skip
    except YAMLError:
        return None  # load_profile says where
    return None


def _target(folder: Path, catalog: Catalog, partner: str, instrument: str) -> Path:
    """Where the profile goes: over the file already holding the instrument in this partner's
    folder, else ``{partner}/{instrument}.yaml``."""
    existing = catalog.instruments.get(instrument)
    if existing is not None and existing.path.parent.resolve() == (folder / partner).resolve():
        return existing.path
    return folder / partner / f"{instrument}.yaml"


def _upload(
    console: Console, principal: Principal, partner: str, instrument: str, data: bytes
) -> dict[str, Any] | JSONResponse:
    folder = console.settings.profiles
    shown = f"{partner}/{instrument}.yaml"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _problems([Problem(shown, None, None, f"not UTF-8 text: {exc}")])
    shape = _shape(shown, text)
    if shape is not None:
        return _problems([shape])
    try:
        profile = load_profile(shown, text)
    except ProfileError as exc:
        return _problems(exc.problems)
    wrong = [
        Problem(shown, None, None, f"{key} is {got!r}, but the upload is for {want!r}",
                field=key, hint=f"upload to /api/profiles/{profile.partner}/{profile.instrument}"
                if key == "instrument" else f"set {key}: {want}")
        for key, got, want in (("partner", profile.partner, partner),
                               ("instrument", profile.instrument, instrument))
        if got != want
    ]  # fmt: skip
    if wrong:
        return _problems(wrong)
    with _write_lock:
        try:
            on_disk = load_catalog([folder])
        except ProfileError:
            on_disk = console.catalog  # the folder is broken elsewhere: check what is loaded
        path = _target(folder, on_disk, partner, instrument)
        clashes = []
        for other in on_disk:
            if other.path.resolve() == path.resolve():
                continue
            where = f"{other.profile.partner}/{other.path.name}"
            if other.id == instrument:
                message = f"instrument id '{instrument}' is already used by {where}"
                hint = "give each instrument its own id"
                clashes.append(Problem(shown, None, None, message, "instrument", hint))
            if other.profile.apid == profile.apid:
                message = f"APID {profile.apid:#05x} is already used by {where} ({other.id})"
                hint = "give each instrument its own APID"
                clashes.append(Problem(shown, None, None, message, "apid", hint))
        if clashes:
            return _problems(clashes)
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: f.write(data), mode=0o644)
        with contextlib.suppress(ProfileError):
            catalog = load_catalog([folder])
            console.catalogs.replace(catalog)
    digest = hashlib.sha256(data).hexdigest()
    detail = {"partner": partner, "path": shown, "sha256": digest, "bytes": len(data),
              "apid": profile.apid, "replaced": existed}  # fmt: skip
    event = None
    if instrument in console.catalog.instruments:
        event = record(console.store, principal, instrument, "profile", None, detail)
    return {"instrument": instrument, "partner": partner, "path": shown, "sha256": digest,
            "bytes": len(data), "replaced": existed, "event": event}  # fmt: skip


@router.put(
    "/{partner}/{instrument}",
    response_model=None,
    responses={422: {"model": ProblemsBody, "description": "the profile is refused"}},
    openapi_extra=_YAML_BODY,
)
async def upload_profile(
    request: Request,
    console: ConsoleDep,
    principal: PrincipalDep,
    partner: str,
    instrument: str,
) -> dict[str, Any] | JSONResponse:
    """Upload the YAML profile of ``instrument`` of ``partner`` (body: the file's text)."""
    _check_ids(partner, instrument)
    _may_write(principal, partner)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_PROFILE_UPLOAD:
        return _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PROFILE_UPLOAD:
            return _too_large()
        chunks.append(chunk)
    data = b"".join(chunks)
    done = await asyncio.to_thread(_upload, console, principal, partner, instrument, data)
    if isinstance(done, dict) and done["event"] is not None:  # to open pages, as it happens
        event = {**done["event"], "partner": partner}
        console.state.publish(Update("event", instrument, partner, event))
    return done


def _too_large() -> JSONResponse:
    return JSONResponse(
        {"detail": f"profile larger than {MAX_PROFILE_UPLOAD // 1024} KiB"}, status_code=413
    )


@router.get(
    "/{partner}/{instrument}",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/yaml": {"schema": {"type": "object"}}}}},
)
def get_profile(
    console: ConsoleDep, principal: PrincipalDep, partner: str, instrument: str
) -> PlainTextResponse:
    """The stored YAML text of a profile (operators: any; partners: their own)."""
    _check_ids(partner, instrument)
    if not principal.can_read_partner(partner):
        raise ForbiddenError(
            f"{principal.role} {principal.name!r} may not read profiles of partner {partner!r}"
        )
    folder = console.settings.profiles
    path = _target(folder, console.catalog, partner, instrument)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no profile {partner}/{instrument}", "instrument") from None
    return PlainTextResponse(data, media_type="application/yaml")
