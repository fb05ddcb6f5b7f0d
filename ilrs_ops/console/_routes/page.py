"""The web page: ``/`` (login box, station tiles, instrument detail) and its static files.

Buildless: plain HTML, CSS and JS under ``ilrs_ops/console/static/``, with uPlot vendored in
``static/vendor/``. Nothing here needs a token; the page asks the API with the token the user
types, so it shows only what that token may see."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ilrs_ops.console._errors import NotFoundError

STATIC = Path(__file__).resolve().parent.parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["page"], include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The console page."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_NO_CACHE)


@router.get("/static/{path:path}")
async def static(path: str) -> FileResponse:
    """A file of the page (scripts, styles, vendored libraries); nothing outside ``static/``."""
    try:
        file = (STATIC / path).resolve()
        found = file.is_relative_to(STATIC) and file.is_file()
    except (OSError, ValueError):  # a name too long for the system, a NUL byte
        found = False
    if not found:
        raise NotFoundError(f"no static file {path[:200]!r}", "path")
    return FileResponse(file, headers=_NO_CACHE)
