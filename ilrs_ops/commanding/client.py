"""The command line's side of commanding: a console's commands API over HTTP, and how a
command's stages read in a terminal. ``ilrs-ops command`` and ``ilrs-ops commands`` use it."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from ilrs_ops import wire
from ilrs_ops.errors import IlrsError

#: Seconds between polls of a command's record while waiting for its final stage.
POLL_S = 0.25


class ConsoleCallError(IlrsError):
    """The console refused a call (``status``) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class CommandsClient:
    """The commands API of one console, as one token."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ConsoleCallError(0, f"cannot reach the console at {self.url}: {exc}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                detail = body.get("detail") if isinstance(body, dict) else body
            except ValueError:
                detail = r.text
            raise ConsoleCallError(r.status_code, f"{r.status_code}: {detail}")
        return r.json()

    def definitions(self, instrument: str) -> dict[str, Any]:
        return self.call("GET", f"/api/instruments/{instrument}/commands")  # type: ignore[no-any-return]

    def submit(self, instrument: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send one request, with an id of its own: a retry after a lost answer is the same
        command, never a second one."""
        body = {"instrument": instrument, "command": command, "args": args,
                "id": uuid.uuid4().hex}  # fmt: skip
        try:
            return self.call("POST", "/api/commands", json=body)  # type: ignore[no-any-return]
        except ConsoleCallError as exc:
            if exc.status != 0:
                raise
            return self.call("POST", "/api/commands", json=body)  # type: ignore[no-any-return]

    def history(self, instrument: str | None, state: str | None, limit: int) -> list[dict]:
        params = {k: v for k, v in (("instrument", instrument), ("state", state)) if v}
        doc = self.call("GET", "/api/commands", params={**params, "limit": limit})
        return doc["commands"]  # type: ignore[no-any-return]

    def follow(self, id: str, timeout_s: float) -> Iterator[dict[str, Any]]:
        """The record of command ``id`` each time it reaches a new stage, until final (or
        ``timeout_s`` passed: the last record seen is the last yielded)."""
        seen = 0
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.call("GET", f"/api/commands/{id}")
            if len(doc["stages"]) > seen:
                seen = len(doc["stages"])
                yield doc
            if doc["final"] or time.monotonic() > deadline:
                return
            time.sleep(POLL_S)


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` words as arguments: numbers where they read as numbers, else text (an
    enum label). InputError names a word without ``=``."""
    from ilrs_ops.errors import InputError

    out: dict[str, Any] = {}
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not eq or not name:
            raise InputError(f"{pair!r}: arguments are name=value, e.g. mode=SAFE distance=2.5")
        try:
            number = float(text)
            out[name] = int(number) if number.is_integer() and "." not in text else number
        except ValueError:
            out[name] = text
    return out


def stage_lines(doc: dict[str, Any], shown: int) -> list[str]:
    """Lines for the stages of ``doc`` after the first ``shown``."""
    lines = []
    for s in doc["stages"][shown:]:
        when = dt.datetime.fromtimestamp(s["time_ns"] / wire.NS, dt.UTC)
        text = f"{when:%H:%M:%S}.{when.microsecond // 1000:03d}Z  {s['stage']:<9}  {s['who']}"
        if s["stage"] == wire.SENT and doc.get("seq") is not None:
            text += f"  seq {doc['seq']}  packet {doc.get('packet') or '(hidden)'}"
        if s.get("waiting"):
            text += f"  waiting for {s['waiting']}"
        if s.get("reason"):
            text += f"  at {s.get('at')}: {s['reason']}"
        lines.append(text)
    return lines


def summary(doc: dict[str, Any]) -> str:
    args = " ".join(f"{k}={v}" for k, v in doc["args"].items())
    return f"{doc['id']}  {doc['instrument']} {doc['command']} {args}".rstrip()


def watch(
    client: CommandsClient, doc: dict[str, Any], timeout_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Print each stage of ``doc`` as it comes until it is final; returns the last record."""
    shown = 0
    last = doc
    for last in client.follow(doc["id"], timeout_s):
        for line in stage_lines(last, shown):
            say(line)
        shown = len(last["stages"])
    return last
