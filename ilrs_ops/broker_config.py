"""Mosquitto access control generated from the profiles: who may read and write which topics.

``write_broker_config`` writes four files into one folder:

- ``passwords``: a Mosquitto 2 password file (PBKDF2-SHA512 hashes), made by the machine's
  ``mosquitto_passwd -U`` when it is there, else hashed here in the same ``$7$`` format;
- ``acl``: one ``user`` block per user; Mosquitto denies listed users everything not granted;
- ``credentials.env``: the clear passwords, one ``ILRS_MQTT_{USER}={user}:{password}`` line per
  user, mode 0600 (secrets are never logged or printed);
- ``mosquitto.conf``: a listener with ``allow_anonymous false``, the two files, persistence.

Users: one per instrument (its id), which may only write its own ``{root}/tm/{partner}/{id}``
and, when its profile has commands, read its own ``{root}/tc/{partner}/{id}``; ``commander``
(the commanding service) is the only user that may write ``{root}/tc/#``, and reads the status,
events and metrics it verifies commands against (a console that hosts commanding publishes
with this login, not its own); ``ingest`` reads ``{root}/tm/#`` and writes ``{root}/status/#``,
``{root}/events/#`` and ``{root}/metrics/#``; ``console`` reads those three and, since operators
start replays in it, reads and writes ``{root}-replay/#``, as ``replay`` (``ilrs-ops replay``)
does. Passwords
already in ``credentials.env`` are kept for users that remain, so regenerating after a profile
change does not lock running clients out.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ilrs_ops import wire
from ilrs_ops.errors import InputError, Problem, ProfileError, ToolError
from ilrs_ops.profiles import Catalog

__all__ = [
    "COMMANDER",
    "CONSOLE",
    "INGEST",
    "REPLAY",
    "BrokerConfig",
    "BrokerUser",
    "acl_text",
    "broker_users",
    "hash_password",
    "read_credentials",
    "write_broker_config",
]

log = logging.getLogger(__name__)

INGEST = "ingest"
CONSOLE = "console"
REPLAY = "replay"
COMMANDER = "commander"
SERVICE_USERS = (INGEST, CONSOLE, REPLAY, COMMANDER)

PASSWORDS = "passwords"
ACL = "acl"
CREDENTIALS = "credentials.env"
CONF = "mosquitto.conf"

#: Mosquitto 2's ``$7$`` password hash: PBKDF2-HMAC-SHA512, 12 octets of salt, 64 of hash.
PBKDF2_ITERATIONS = 101
_SALT_OCTETS = 12
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ROOT = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_LINE = re.compile(r"^ILRS_MQTT_[A-Z0-9_]+=([^:\s]+):(\S+)$")


@dataclass(frozen=True)
class BrokerUser:
    """One MQTT user and the topic filters it may read (subscribe, receive) and write."""

    name: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


@dataclass
class BrokerConfig:
    """What ``write_broker_config`` wrote. ``passwords`` is in memory only, never logged."""

    folder: Path
    users: list[BrokerUser]
    passwords: dict[str, str] = field(repr=False)
    hashed_by: str  # "mosquitto_passwd" or "python"

    @property
    def conf(self) -> Path:
        return self.folder / CONF

    @property
    def credentials(self) -> Path:
        return self.folder / CREDENTIALS


def broker_users(catalog: Catalog, root: str = "ilrs") -> list[BrokerUser]:
    """The users of a station: the service users, then one per instrument (sorted by id)."""
    if not _ROOT.match(root):
        raise InputError(f"topic root {root!r}: use letters, digits, '_', '.', '-' and '/'")
    replays = f"{root}-replay/#"
    out = [
        BrokerUser(INGEST, read=(f"{root}/tm/#",), write=_outputs(root)),
        BrokerUser(CONSOLE, read=(*_outputs(root), replays), write=(replays,)),
        BrokerUser(REPLAY, read=(replays,), write=(replays,)),
        BrokerUser(COMMANDER, read=_outputs(root), write=(wire.all_of(root, wire.TC),)),
    ]
    for inst in sorted(catalog, key=lambda i: i.id):
        if inst.id in SERVICE_USERS:
            why = f"instrument id {inst.id!r} is reserved for a service user"
            hint = f"use an id other than {', '.join(SERVICE_USERS)}"
            raise ProfileError([Problem(str(inst.path), None, None, why, "instrument", hint)])
        p = inst.profile
        tc = (wire.topic(root, wire.TC, p.partner, inst.id),) if p.commands else ()
        out.append(BrokerUser(inst.id, read=tc, write=(inst.topic(root),)))
    for u in out:
        if not _USER.match(u.name):
            raise InputError(f"user name {u.name!r}: use letters, digits, '_' and '-'")
    names = [_env_name(u.name) for u in out]
    if len(set(names)) != len(names):
        raise InputError("two user names map to the same credentials variable")
    return out


def _outputs(root: str) -> tuple[str, ...]:
    return (f"{root}/status/#", f"{root}/events/#", f"{root}/metrics/#")


def acl_text(users: Iterable[BrokerUser]) -> str:
    """Mosquitto ACL file: no anonymous grants, one block per user, nothing else allowed."""
    lines = [
        "# Generated by `ilrs-ops broker-config` from the instrument profiles: do not edit.",
        "# Mosquitto denies a listed user every topic not granted here (default deny).",
        "",
    ]
    for u in users:
        lines.append(f"user {u.name}")
        both = [t for t in u.read if t in u.write]
        lines += [f"topic readwrite {t}" for t in both]
        lines += [f"topic read {t}" for t in u.read if t not in both]
        lines += [f"topic write {t}" for t in u.write if t not in both]
        lines.append("")
    return "\n".join(lines)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 ``$7$`` hash (PBKDF2-SHA512, 101 iterations) of ``password``."""
    salt = secrets.token_bytes(_SALT_OCTETS) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def read_credentials(path: str | Path) -> dict[str, str]:
    """The passwords of a ``credentials.env`` by user name (InputError on a malformed line)."""
    out: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if not m:
            raise InputError(f"{path}:{n}: not ILRS_MQTT_NAME=user:password")
        out[m[1]] = m[2]
    return out


def write_broker_config(
    catalog: Catalog,
    out: str | Path,
    *,
    root: str = "ilrs",
    port: int = 1883,
    bind: str | None = None,
    persistence_location: str | Path | None = None,
    passwords: Mapping[str, str] | None = None,
    mosquitto_passwd: str | bool | None = True,
    run_as: str | None = None,
) -> BrokerConfig:
    """Write passwords, acl, credentials.env and mosquitto.conf into ``out``.

    ``passwords``: fixed passwords by user (the rest are kept from an existing credentials.env
    or made fresh). ``mosquitto_passwd``: True finds the binary on the PATH, a str is its path,
    False/None hashes in Python. ``run_as``: the ``user`` Mosquitto runs as when started as
    root (it drops to ``mosquitto`` by default, which must then own the 0600 passwords file).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    users = broker_users(catalog, root)
    names = [u.name for u in users]
    known = read_credentials(folder / CREDENTIALS) if (folder / CREDENTIALS).exists() else {}
    given = dict(passwords or {})
    unknown = sorted(given.keys() - set(names))
    if unknown:
        raise InputError(f"passwords given for unknown users {unknown}")
    chosen = {n: given.get(n) or known.get(n) or secrets.token_urlsafe(24) for n in names}
    bad = [n for n, p in chosen.items() if not re.fullmatch(r"\S+", p)]
    if bad:
        raise InputError(f"passwords of {bad} are empty or contain white space")

    _write_secret(
        folder / CREDENTIALS,
        "# MQTT credentials generated by `ilrs-ops broker-config`: keep secret (mode 0600).\n"
        + "".join(f"ILRS_MQTT_{_env_name(n)}={n}:{chosen[n]}\n" for n in names),
    )
    exe = _passwd_exe(mosquitto_passwd)
    pw_file = folder / PASSWORDS
    if exe:
        # Clear text in a 0600 file, hashed in place by mosquitto_passwd -U.
        _write_secret(pw_file, "".join(f"{n}:{chosen[n]}\n" for n in names))
        done = subprocess.run(
            [exe, "-U", str(pw_file)], capture_output=True, text=True, check=False
        )
        hashed = pw_file.read_text()
        if done.returncode != 0 or any(":$" not in ln for ln in hashed.splitlines()):
            pw_file.unlink(missing_ok=True)
            raise ToolError(
                f"{exe} -U failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
            )
    else:
        _write_secret(pw_file, "".join(f"{n}:{hash_password(chosen[n])}\n" for n in names))
    _write_text(folder / ACL, acl_text(users))
    persist = Path(persistence_location or folder / "data").absolute()
    persist.mkdir(parents=True, exist_ok=True)
    listener = f"listener {port}" + (f" {bind}" if bind else "")
    _write_text(
        folder / CONF,
        "# Generated by `ilrs-ops broker-config`: authenticated clients, profile-based ACLs.\n"
        f"{listener}\n"
        "allow_anonymous false\n"
        f"password_file {pw_file.absolute()}\n"
        f"acl_file {(folder / ACL).absolute()}\n"
        + (f"user {run_as}\n" if run_as else "")
        + "persistence true\n"
        f"persistence_location {str(persist).rstrip('/')}/\n"
        "autosave_interval 30\n",
    )
    log.info(
        "broker config for %d users (%d instruments) in %s",
        len(users),
        len(users) - len(SERVICE_USERS),
        folder,
    )
    return BrokerConfig(folder, users, chosen, "mosquitto_passwd" if exe else "python")


def _env_name(user: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", user.upper())


def _passwd_exe(choice: str | bool | None) -> str | None:
    if choice is True:
        return shutil.which("mosquitto_passwd") or (
            "/usr/bin/mosquitto_passwd" if os.access("/usr/bin/mosquitto_passwd", os.X_OK) else None
        )
    return choice or None


def _write_secret(path: Path, text: str) -> None:
    """Write a file that is 0600 from its first byte (never readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
