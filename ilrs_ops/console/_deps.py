"""The app's shared objects and the FastAPI dependencies that hand them to routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ilrs_ops.console._auth import FailedLogins, Principal, Tokens
from ilrs_ops.console._data import Access
from ilrs_ops.console._errors import ConsoleError, TooManyRequestsError, UnauthorizedError
from ilrs_ops.console._settings import ConsoleSettings
from ilrs_ops.console._state import StationState
from ilrs_ops.history import History
from ilrs_ops.profiles import Catalog, CatalogOwner
from ilrs_ops.store import Store

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Console:
    """Everything one app instance holds; ``app.state.console``."""

    settings: ConsoleSettings
    catalogs: CatalogOwner  # the one owner: an upload replaces the catalog through it
    store: Store  # where the console's own events go (acks, shelves, uploads)
    history: History  # every read of telemetry, events and counters
    state: StationState
    tokens: Tokens
    logins: FailedLogins

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.current

    def reload_tokens(self) -> bool:
        """Read the tokens file again (it changed): the new tokens are in force for the next
        request, and a removed one stops working. A file that cannot be used is logged and
        the tokens in force stay. Returns whether the new file was taken."""
        path = self.settings.tokens
        if path is None:
            return False
        try:
            tokens = Tokens.load(path, dev=self.settings.dev)
        except ConsoleError as exc:
            log.error("tokens file not reloaded, the tokens in force stay: %s", exc)
            return False
        self.tokens = tokens
        log.info("tokens file %s reloaded: %d tokens", path, len(tokens.entries))
        return True

    def authenticate(self, token: str, client: str) -> Principal | None:
        """The principal of ``token``, or None for an unknown one (counted against ``client``,
        its address). TooManyRequestsError while the client has failed too often: its token is
        then not even looked at. A known token is never slowed."""
        wait = self.logins.check(client)
        if wait:
            raise TooManyRequestsError(
                f"too many failed authentications from {client}; retry in {wait} s", wait
            )
        principal = self.tokens.principal(token)
        if principal is None:
            self.logins.failed(client)
        return principal

    def access(self, principal: Principal) -> Access:
        return Access(principal, self.catalog, self.history, self.state, self.settings.max_rows)


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


def client_address(conn: HTTPConnection) -> str:
    """The peer's address (behind a proxy: what uvicorn's --proxy-headers makes of it)."""
    return conn.client.host if conn.client is not None else "unknown"


def get_principal(
    conn: HTTPConnection,
    console: ConsoleDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("no token: send Authorization: Bearer <token>")
    principal = console.authenticate(credentials.credentials, client_address(conn))
    if principal is None:
        raise UnauthorizedError("unknown token")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_access(console: ConsoleDep, principal: PrincipalDep) -> Access:
    return console.access(principal)


AccessDep = Annotated[Access, Depends(get_access)]
