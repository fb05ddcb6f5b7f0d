"""Settings from the environment (``ILRS_*``) and the command line; read once, at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ilrs_ops.errors import InputError


class Settings(BaseSettings):
    """Where things are. Command-line options override these; these override the defaults."""

    model_config = SettingsConfigDict(env_prefix="ILRS_", frozen=True)

    profiles: Path = Field(Path("hardware_profiles"), description="folder of instrument profiles")
    broker: str | None = Field(None, description="host:port of an MQTT broker; none = embedded")
    broker_user: str | None = Field(None, description="MQTT user name; none = anonymous")
    broker_password: SecretStr | None = Field(None, description="the MQTT user's password")
    commander_user: str | None = Field(
        None, description="MQTT user of the commanding service (the console's uplink)"
    )
    commander_password: SecretStr | None = Field(None, description="that user's password")
    embedded_port: int = Field(
        1884, description="port of the embedded broker (1883 is often taken)"
    )
    root: str = Field("ilrs", description="topic root: {root}/tm/{partner}/{instrument}")
    data: Path = Field(Path("ilrs-data"), description="folder of the telemetry store")
    archive: str | None = Field(
        None,
        description="where sealed tables go: none = Parquet files under data; a path or "
        "s3://bucket/prefix = Delta Lake tables (docs/ARCHIVE.md); a store keeps its first",
    )

    @property
    def broker_login(self) -> dict[str, str | None]:
        return broker_login(self.broker_user, self.broker_password)


def load_settings(**given: object) -> Settings:
    """The settings: ``ILRS_*`` from the environment, with ``given`` (the command line's values)
    in force over them; None counts as not given. This is the one place the two are merged.

    A bad value is an InputError that names the setting, its variable and what is wrong.
    """
    try:
        # Init arguments beat the environment in pydantic-settings.
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise InputError("; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())) from exc


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    """One validation error as the setting and the variable an operator would fix."""
    if not loc:
        return f"settings: {msg}"
    field = str(loc[0])
    return f"setting {field} ({Settings.model_config['env_prefix']}{field.upper()}): {msg}"


def broker_login(user: str | None, password: SecretStr | None) -> dict[str, str | None]:
    """``username`` and ``password`` keywords for an MQTT client (the secret revealed here
    only, where it is handed to the client)."""
    return {"username": user, "password": password.get_secret_value() if password else None}


def parse_broker(text: str) -> tuple[str, int]:
    """``host:port`` (or ``host``, port 1883) -> (host, port); InputError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 1883
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"broker {text!r} is not host:port (e.g. 127.0.0.1:1883)")
    return host, int(port)
