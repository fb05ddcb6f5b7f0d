"""The one exception tree of ilrs-ops; third-party errors are translated into it at the boundary.

IlrsError
├── ProfileError      one or more mistakes in instrument profiles (file, line, column, hint)
├── ExpressionError   a derived-channel expression that is not in the safe language
├── BrokerError       the MQTT broker cannot be reached or refused us
├── StoreError        the store cannot read or write: disk full, not writable, corrupt files
├── InputError        a bad argument or value (a window, a channel name, a speed); also a
│   │                 ValueError, so argument checks read the Python way
│   ├── DefinitionError  a partner's packet definition (XTCE, ccsdspy CSV) that cannot be
│   │                    imported: the file, the line and the element or column
│   └── CommandError     a command that cannot be sent as asked: an unknown instrument or
│                        command, an argument out of range or of the wrong type (named)
├── ToolError         an external program ilrs-ops runs (mosquitto_passwd) failed
├── RecordingError    (ilrs_ops.replay) a recording that cannot be made or read
├── RefusedError      (ilrs_ops.commanding) a command request refused; ``status`` its HTTP
│                     status (403 not allowed, 404 unknown, 409 not now, 422 bad argument)
├── CommandLinkError  (ilrs_ops.commanding) the broker did not take a telecommand
├── ConsoleCallError  (ilrs_ops.commanding.client) a console refused the CLI's call
├── WorkerError       (ilrs_ops.ingest) an ingest shard of ``--workers N`` refused to run
└── ConsoleError      (ilrs_ops.console) bad console settings or tokens; its AccessError
                      subclasses map to HTTP 400/401/403/404/409/413/422/429/503

Anything else raised is a bug: the console answers it with a logged 500, not a 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass


class IlrsError(Exception):
    """Base of every error ilrs-ops raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One mistake in one profile file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    message: str
    field: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        what = f"field '{self.field}': " if self.field else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}: {what}{self.message}{hint}"


class ProfileError(IlrsError):
    """Instrument profiles that cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ExpressionError(IlrsError):
    """A derived-channel expression outside the safe language, with the offending part."""

    def __init__(self, message: str, column: int | None = None, hint: str | None = None) -> None:
        self.column = column
        self.hint = hint
        super().__init__(message)


class BrokerError(IlrsError):
    """The MQTT broker could not be reached, or it refused the connection or a publish."""


class StoreError(IlrsError):
    """The store cannot read or write its files (disk full, not writable, corrupt, held by another
    process); the message names the path and what to do. ``path`` is that path, when there is one.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class InputError(IlrsError, ValueError):
    """A bad argument or value handed to ilrs-ops (a query window, a channel name, a replay
    speed...); the message says which one and what to give instead."""


class DefinitionError(InputError):
    """A partner's packet definition (an XTCE document, a ccsdspy CSV) that cannot be imported as
    a profile: not XML, no packets, an unknown data type. ``file``, ``line`` (None when the
    document has no lines to point at) and ``element`` (the XML element or CSV column) say where.
    """

    def __init__(
        self,
        file: str,
        line: int | None,
        message: str,
        *,
        element: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.element = element
        where = file if line is None else f"{file}:{line}"
        what = f"{element}: " if element else ""
        super().__init__(f"{where}: {what}{message}" + (f"; {hint}" if hint else ""))


class CommandError(InputError):
    """A command request that cannot become a packet: ``argument`` names the argument at fault
    (None when the instrument or command itself is unknown)."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        self.argument = argument
        super().__init__(message)


class ToolError(IlrsError):
    """An external program ilrs-ops runs failed; the message has its exit status and output."""
