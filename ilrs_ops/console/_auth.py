"""Bearer tokens and roles: a tokens file of sha256 hashes (never tokens), principals, scoping.

Tokens file (YAML, or JSON when its name ends in .json)::

    tokens:
      - {name: ops-desk, role: operator, sha256: 9f86d0...}
      - {name: suparco, role: partner, partner: suparco, sha256: 60303a...}
      - {name: wall, role: viewer, sha256: fd61a0...}

Roles: operator (everything), partner (read and export its own partner's instruments only),
viewer (station status only: tiles without values).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from ilrs_ops._fs import write_atomic
from ilrs_ops.console._errors import ConsoleError
from ilrs_ops.profiles import Instrument

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
            raise ValueError("role partner needs a partner id (partner: suparco)")
        if self.role != "partner" and self.partner:
            raise ValueError(f"role {self.role} takes no partner; drop 'partner'")
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
    def load(cls, path: Path) -> Tokens:
        return cls(_read_entries(path))

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


def create_token(path: Path | str, name: str, role: Role, partner: str | None = None) -> str:
    """Add a token to the tokens file at ``path`` (made when missing) and return it: the only
    time it is seen, the file keeps its sha256. Raises ConsoleError for a name already used or
    a bad role/partner."""
    path = Path(path)
    entries = _read_entries(path) if path.exists() else []
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
