"""The operations console: FastAPI app over the live MQTT state and the store, with roles."""

from ilrs_ops.console._alarms import AlarmBook, rebuild
from ilrs_ops.console._app import create_app
from ilrs_ops.console._auth import (
    FailedLogins,
    Principal,
    RedactTokens,
    Role,
    Tokens,
    create_token,
    hash_token,
)
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
from ilrs_ops.console._live import follow
from ilrs_ops.console._routes.profiles import MAX_DEPTH, MAX_NODES, MAX_PROFILE_UPLOAD
from ilrs_ops.console._serve import serve
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState, Update

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PROFILE_UPLOAD",
    "Access",
    "AccessError",
    "AlarmBook",
    "BadRequestError",
    "ConsoleError",
    "ConsoleSettings",
    "FailedLogins",
    "ForbiddenError",
    "NotFoundError",
    "Principal",
    "RedactTokens",
    "Role",
    "StationState",
    "Tokens",
    "UnauthorizedError",
    "UnavailableError",
    "Update",
    "create_app",
    "create_token",
    "follow",
    "hash_token",
    "rebuild",
    "serve",
]
