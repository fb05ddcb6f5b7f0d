"""The operations console: FastAPI app over the live MQTT state and the store, with roles."""

from ilrs_ops.console._app import create_app
from ilrs_ops.console._auth import Principal, Role, Tokens, create_token, hash_token
from ilrs_ops.console._data import Access
from ilrs_ops.console._errors import (
    AccessError,
    BadRequestError,
    ConsoleError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from ilrs_ops.console._serve import serve
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState, Update

__all__ = [
    "Access",
    "AccessError",
    "BadRequestError",
    "ConsoleError",
    "ConsoleSettings",
    "ForbiddenError",
    "NotFoundError",
    "Principal",
    "Role",
    "StationState",
    "Tokens",
    "UnauthorizedError",
    "UnavailableError",
    "Update",
    "create_app",
    "create_token",
    "hash_token",
    "serve",
]
