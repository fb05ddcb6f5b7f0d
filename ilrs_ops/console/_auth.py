"""Bearer tokens and roles: a tokens file of sha256 hashes (never tokens), principals, scoping.

Tokens file (YAML, or JSON when its name ends in .json)::

    tokens:
      - {name: ops-desk, role: operator, sha256: 9f86d0...}
      - {name: suparco, role: partner, partner: suparco, sha256: 60303a...}
      - {name: wall, role: viewer, sha256: fd61a0...}

Roles: operator (everything), partner (read and export its own partner's instruments only),
viewer (station status only: tiles without values).

Guessing is slowed by ``FailedLogins``: each client address has a bucket of failed
authentications that refills over a window; an empty bucket answers 429 until it refills.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import math
import re
import secrets
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from ilrs_ops.console._errors import ConsoleError
from ilrs_ops.errors import InputError
from ilrs_ops.files import write_atomic
from ilrs_ops.profiles import Instrument

log = logging.getLogger(__name__)

Role = Literal["operator", "partner", "viewer"]
ROLES: tuple[str, ...] = ("operator", "partner", "viewer")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TokenEntry(BaseModel):
    """One line of the tokens file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: Role
    partner: str | None = None
    sha256: str = Field(pattern=_HEX64.pattern)

    @model_validator(mode="after")
    def _partner_iff_partner_role(self) -> TokenEntry:
        if self.role == "partner" and not self.partner:
            raise InputError("role partner needs a partner id (partner: suparco)")
        if self.role != "partner" and self.partner:
            raise InputError(f"role {self.role} takes no partner; drop 'partner'")
        return self


@dataclass(frozen=True)
class Principal:
    """Who is asking. Data-access helpers call ``can_read`` for every instrument they touch."""

    name: str
    role: Role
    partner: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def can_read_partner(self, partner: str) -> bool:
        """Telemetry, values, events and exports of this partner's instruments."""
        return self.role == "operator" or (self.role == "partner" and partner == self.partner)

    def can_read(self, instrument: Instrument) -> bool:
        return self.can_read_partner(instrument.profile.partner)

    def can_see_tile(self, partner: str) -> bool:
        """A status tile (health, counters): viewers see every tile, partners their own."""
        return self.role == "viewer" or self.can_read_partner(partner)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The known tokens; ``principal(token)`` compares hashes in constant time."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = list(entries)

    @classmethod
    def load(cls, path: Path, *, dev: bool = False) -> Tokens:
        """The tokens of ``path``. Outside dev mode a file without tokens, or with the hash of
        an obvious default ("", "changeme", "secret"...), is refused (ConsoleError); a file
        others may read is warned about (it holds hashes, but nobody else needs them)."""
        entries = _read_entries(path)
        if not dev:
            if not entries:
                raise ConsoleError(
                    f"tokens file {path}: no tokens, nobody could log in; add one with "
                    f"`ilrs-ops token NAME --role operator --tokens {path}`"
                )
            weak = [e.name for e in entries if e.sha256 in _DEFAULT_HASHES]
            if weak:
                raise ConsoleError(
                    f"tokens file {path}: {weak} hold an obvious default token; make real ones "
                    "with `ilrs-ops token` (random, 256 bits) and remove these"
                )
        with contextlib.suppress(OSError):
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning(
                    "tokens file %s may be read by others (mode %o); chmod 600 it",
                    path,
                    path.stat().st_mode & 0o777,
                )
        return cls(entries)

    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in self.entries:  # no early exit: the time does not say which entry matched
            if hmac.compare_digest(digest, entry.sha256):
                found = entry
        if found is None:
            return None
        return Principal(found.name, found.role, found.partner)


#: Tokens nobody should run with; their hashes are refused outside dev mode.
_DEFAULTS = ("", "changeme", "change-me", "secret", "password", "token", "admin", "operator",
             "dev", "test", "default", "ilrs", "ilrs-ops")  # fmt: skip
_DEFAULT_HASHES = frozenset(hash_token(t) for t in _DEFAULTS)


class FailedLogins:
    """Failed authentications per client address, as token buckets: each address may fail
    ``limit`` times at once, and one more time every ``window_s / limit`` seconds after.
    ``check`` says how long a client must wait (0: it may try); ``failed`` counts a failure.
    Successes cost nothing and are never slowed. At most ``max_clients`` addresses are kept
    (the one that failed least recently is forgotten first), so many addresses cannot grow
    memory without bound. Thread-safe: sync dependencies run in the threadpool."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0 or max_clients < 1:
            raise InputError("limit and max_clients must be >= 1, window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._rate = limit / window_s  # failures given back per second
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # level, at
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, client: str, now: float) -> float:
        level, at = self._buckets.get(client, (float(self.limit), now))
        return min(float(self.limit), level + (now - at) * self._rate)

    def _wait(self, level: float) -> int:
        return 0 if level >= 1 else max(1, math.ceil((1 - level) / self._rate))

    def check(self, client: str) -> int:
        """Whole seconds ``client`` must wait before its next try; 0 when it may try now."""
        with self._lock:
            if client not in self._buckets:
                return 0
            return self._wait(self._level(client, self._clock()))

    def failed(self, client: str) -> int:
        """Count a failed authentication of ``client``; returns ``check`` after it."""
        with self._lock:
            now = self._clock()
            level = max(0.0, self._level(client, now) - 1)
            self._buckets[client] = (level, now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            wait = self._wait(level)
        if wait and level < 1 <= level + 1:  # the failure that emptied the bucket: say so once
            log.warning(
                "authentication: %d failures from %s; refused for %d s", self.limit, client, wait
            )
        return wait


class RedactTokens(logging.Filter):
    """Blanks tokens in log records: uvicorn's access log and WebSocket lines show the path
    with its query (``/api/live?token=``), and at debug level the WebSocket handshake's headers
    (``Sec-WebSocket-Protocol: bearer, <token>``). The record's message is rendered, cleaned,
    and kept without arguments."""

    _SECRETS = re.compile(r"([?&]token=|\bbearer[,\s]\s*)[^\s&,\"']+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken record: leave it to the handler's error path
            return True
        if self._SECRETS.search(message):
            record.msg, record.args = self._SECRETS.sub(r"\1[redacted]", message), ()
        return True


#: The server's loggers that may show a request's query string or headers.
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error", "websockets.server")


def create_token(
    path: Path | str,
    name: str,
    role: Role,
    partner: str | None = None,
    *,
    replace: bool = False,
) -> str:
    """Add a token to the tokens file at ``path`` (made when missing) and return it: the only
    time it is seen, the file keeps its sha256. Raises ConsoleError for a name already used
    (unless ``replace``: the old token of that name stops working) or a bad role/partner."""
    path = Path(path)
    entries = _read_entries(path) if path.exists() else []
    if replace:
        entries = [e for e in entries if e.name != name]
    if any(e.name == name for e in entries):
        raise ConsoleError(f"{path}: a token named {name!r} exists; pick another name")
    token = secrets.token_urlsafe(32)
    try:
        entry = TokenEntry(name=name, role=role, partner=partner, sha256=hash_token(token))
    except ValidationError as exc:
        raise ConsoleError(f"token {name!r}: {_first_error(exc)}") from exc
    entries.append(entry)
    _write_entries(path, entries)
    return token


def _read_entries(path: Path) -> list[TokenEntry]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConsoleError(
            f"tokens file {path}: cannot read it ({exc.strerror}); make one with "
            "ilrs_ops.console.create_token"
        ) from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
    except (ValueError, YAMLError) as exc:
        raise ConsoleError(f"tokens file {path}: not valid {_kind(path)}: {exc}") from exc
    if isinstance(doc, dict):
        doc = doc.get("tokens")
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise ConsoleError(f"tokens file {path}: expected a list under 'tokens:'")
    entries = []
    for k, item in enumerate(doc):
        try:
            entries.append(TokenEntry.model_validate(item))
        except ValidationError as exc:
            raise ConsoleError(f"tokens file {path}: entry {k + 1}: {_first_error(exc)}") from exc
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ConsoleError(f"tokens file {path}: a name is used twice; names are unique")
    return entries


def _write_entries(path: Path, entries: list[TokenEntry]) -> None:
    doc = {"tokens": [e.model_dump(exclude_none=True) for e in entries]}
    if path.suffix == ".json":
        text = json.dumps(doc, indent=2) + "\n"
    else:
        buf = io.StringIO()
        yaml = YAML(typ="safe")
        yaml.default_flow_style = None
        yaml.dump(doc, buf)
        text = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write(text.encode()), mode=0o600)


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]
