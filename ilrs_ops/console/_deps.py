"""The app's shared objects and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ilrs_ops.console._auth import Principal, Tokens
from ilrs_ops.console._data import Access
from ilrs_ops.console._errors import UnauthorizedError
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState
from ilrs_ops.profiles import Catalog
from ilrs_ops.store import Store


@dataclass(eq=False)
class Console:
    """Everything one app instance holds; ``app.state.console``."""

    settings: ConsoleSettings
    catalog: Catalog
    store: Store
    state: StationState
    tokens: Tokens

    def access(self, principal: Principal) -> Access:
        return Access(principal, self.catalog, self.store, self.state, self.settings.max_rows)


def get_console(conn: HTTPConnection) -> Console:
    return conn.app.state.console  # type: ignore[no-any-return]


ConsoleDep = Annotated[Console, Depends(get_console)]


def get_store(console: ConsoleDep) -> Store:
    return console.store


def get_state(console: ConsoleDep) -> StationState:
    return console.state


StoreDep = Annotated[Store, Depends(get_store)]
StateDep = Annotated[StationState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="a token from the console's tokens file")


def get_principal(
    console: ConsoleDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("no token: send Authorization: Bearer <token>")
    principal = console.tokens.principal(credentials.credentials)
    if principal is None:
        raise UnauthorizedError("unknown token")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_access(console: ConsoleDep, principal: PrincipalDep) -> Access:
    return console.access(principal)


AccessDep = Annotated[Access, Depends(get_access)]
