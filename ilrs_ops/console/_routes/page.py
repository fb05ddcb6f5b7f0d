"""The web page: ``/`` (login box, station tiles, instrument detail), the interactive API docs
``/docs`` (Swagger UI), and their static files.

Buildless: plain HTML, CSS and JS under ``ilrs_ops/console/static/``, with uPlot and Swagger UI
vendored in ``static/vendor/`` (a console in a control room must not depend on a CDN). Nothing
here needs a token; the page asks the API with the token the user types, and the docs' Authorize
button takes one for their "Try it out" calls, so each shows only what that token may see."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from ilrs_ops.console._errors import NotFoundError

STATIC = Path(__file__).resolve().parent.parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["page"], include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The console page."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_NO_CACHE)


@router.get("/docs")
async def docs() -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, from the vendored files only."""
    vendor = "/static/vendor/swagger-ui"
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="ilrs-ops console — API",
        swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
        swagger_css_url=f"{vendor}/swagger-ui.css",
        swagger_favicon_url="data:,",  # no icon: FastAPI's default is fetched from its site
        swagger_ui_parameters={
            "persistAuthorization": False,  # the token stays in the tab, not in localStorage
            "validatorUrl": None,  # Swagger UI would send the schema to swagger.io to check it
            "tryItOutEnabled": False,
            "displayRequestDuration": True,
        },
    )


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
