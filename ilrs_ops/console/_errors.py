"""The console's errors, under ilrs_ops.errors.IlrsError; the app maps them to HTTP statuses.

IlrsError
└── ConsoleError        the console cannot start: settings or tokens file (says what to do)
    └── AccessError     a request the data layer refuses; ``status`` is its HTTP status
        ├── UnauthorizedError   401: no token, or not a known token
        ├── ForbiddenError      403: the principal's role does not allow it
        ├── NotFoundError       404: no such instrument
        ├── BadRequestError     400: a query parameter that cannot be served (named)
        └── UnavailableError    503: the store cannot read (StoreError), message kept
"""

from __future__ import annotations

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


class UnavailableError(AccessError):
    status = 503
