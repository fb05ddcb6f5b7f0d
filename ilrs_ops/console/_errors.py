"""The console's errors, under ilrs_ops.errors.IlrsError; the app maps them to HTTP statuses.

IlrsError
└── ConsoleError        the console cannot start: settings or tokens file (says what to do)
    └── AccessError     a request the data layer refuses; ``status`` is its HTTP status
        ├── UnauthorizedError   401: no token, or not a known token
        ├── ForbiddenError      403: the principal's role does not allow it
        ├── NotFoundError       404: no such instrument
        ├── BadRequestError     400: a query parameter that cannot be served (named)
        ├── TooLargeError       413: a request body over the route's limit
        ├── TooManyRequestsError 429: too many failed authentications from this client
        ├── UnavailableError    503: the store cannot read (StoreError), message kept
        ├── ConflictError       409: (``_alarms``) an alarm action that does not fit its state
        ├── ReplayConflictError 409: (``_replays``) a taken target, a replay state against it
        ├── ReplayInputError    422: (``_replays``) a bad recording name, nothing to replay
        ├── DashboardConflictError 409: (``_dashboards``) a save against a stale version
        └── DashboardInputError 422: (``_dashboards``) a widget's unknown instrument or channel

Bad input from the store and the rest of ilrs-ops is an InputError, which ``_data.reading``
makes a BadRequestError; any other exception is a bug: a 500 ``internal error``, logged.

``responses(...)`` documents these answers in the OpenAPI (body ``ErrorBody``), so clients and
schema-driven tests know every status a route may give.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ilrs_ops.errors import IlrsError


class ConsoleError(IlrsError):
    """The console cannot start as configured; the message names the setting or file."""


class AccessError(ConsoleError):
    """A request refused by the data layer; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, parameter: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message)


class UnauthorizedError(AccessError):
    status = 401


class ForbiddenError(AccessError):
    status = 403


class NotFoundError(AccessError):
    status = 404


class BadRequestError(AccessError):
    status = 400


class TooLargeError(AccessError):
    status = 413


class TooManyRequestsError(AccessError):
    """429; ``retry_after`` (whole seconds) goes out as the Retry-After header."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class UnavailableError(AccessError):
    status = 503


class ErrorBody(BaseModel):
    """The body of every refusal the console makes itself."""

    detail: str = Field(description="what was wrong and what to do")
    parameter: str | None = Field(None, description="the parameter at fault, when there is one")


class ValidationBody(BaseModel):
    """FastAPI's own 422: a body or parameter that does not fit the declared types."""

    detail: list[dict[str, Any]] = Field(description="one entry per problem: loc, msg, type")


_WHY = {
    400: "a parameter that cannot be served (named in ``parameter``)",
    401: "no token, or not a known token",
    403: "the token's role does not allow it",
    404: "no such instrument, channel or file",
    409: "the action does not fit the present state",
    413: "the body is larger than the route allows",
    429: "too many failed authentications from this client; see Retry-After",
    503: "the store cannot be read",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these refusals, each with an ``ErrorBody``."""
    return {s: {"model": ErrorBody, "description": _WHY[s]} for s in statuses}
