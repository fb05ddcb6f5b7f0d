"""Console settings from the environment (``ILRS_CONSOLE_*``) or arguments; read once, at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ilrs_ops.errors import InputError
from ilrs_ops.settings import broker_login


class ConsoleSettings(BaseSettings):
    """Where the console reads from and who may use it.

    Outside dev mode a tokens file is required: without one, construction fails with a
    ValidationError that says so (and the app refuses a file without tokens, or with an obvious
    default token). In dev mode without a tokens file an operator token is made
    at start and logged once.
    """

    model_config = SettingsConfigDict(env_prefix="ILRS_CONSOLE_", frozen=True)

    broker_host: str = Field("127.0.0.1", description="MQTT broker the ingestors publish to")
    broker_port: int = Field(1883, ge=1, le=65535)
    broker_user: str | None = Field(None, description="MQTT user name; none = anonymous")
    broker_password: SecretStr | None = Field(None, description="the MQTT user's password")
    commander_user: str | None = Field(
        None, description="MQTT user that publishes {root}/tc/# (commands); none: broker_user"
    )
    commander_password: SecretStr | None = Field(None, description="that user's password")
    root: str = Field("ilrs", description="topic root: {root}/status/{partner}/{instrument}")
    data: Path = Field(Path("ilrs-data"), description="folder of the telemetry store")
    archive: str | None = Field(
        None,
        description="where sealed tables go: none = Parquet files under data; a path or "
        "s3://bucket/prefix = Delta Lake tables (docs/ARCHIVE.md); a store keeps its first",
    )
    profiles: Path = Field(Path("hardware_profiles"), description="folder of instrument profiles")
    tokens: Path | None = Field(None, description="tokens file (YAML or JSON) of hashed tokens")
    dev: bool = Field(False, description="dev mode: without a tokens file, make an operator token")
    http_host: str = Field("127.0.0.1", description="address the console listens on")
    http_port: int = Field(8000, ge=0, le=65535, description="port (0: any free port)")
    ws_queue: int = Field(256, ge=1, description="messages a WebSocket client may fall behind")
    events_kept: int = Field(1000, ge=1, description="recent events kept in memory")
    max_rows: int = Field(
        200_000, ge=1, description="rows a telemetry query may return without max_points"
    )
    auth_failures: int = Field(
        10, ge=1, description="failed authentications a client address may make at once (429 after)"
    )
    simulation: str | None = Field(
        None, description="what is simulated, shown on the page (ilrs-ops up); None: a real station"
    )
    sim_epoch_ns: int | None = Field(
        None, description="the simulator's environment epoch (UTC ns): lunar day/night in the clock"
    )
    sim_time_scale: float = Field(1.0, gt=0, description="the simulator's lunar cycle speed-up")
    auth_window_s: float = Field(
        60.0, gt=0, description="seconds in which a client address gets its auth_failures back"
    )

    @property
    def broker_login(self) -> dict[str, str | None]:
        """``username`` and ``password`` keywords for the console's MQTT clients."""
        return broker_login(self.broker_user, self.broker_password)

    @property
    def commander_login(self) -> dict[str, str | None]:
        """``username`` and ``password`` of the commanding service's uplink client."""
        if self.commander_user is None:
            return self.broker_login
        return broker_login(self.commander_user, self.commander_password)

    @model_validator(mode="after")
    def _tokens_outside_dev(self) -> ConsoleSettings:
        if not self.dev and self.tokens is None:
            raise InputError(  # a ValueError: pydantic makes it a ValidationError
                "no tokens file: set ILRS_CONSOLE_TOKENS (or tokens=) to a tokens file made "
                "with ilrs_ops.console.create_token, or run in dev mode (ILRS_CONSOLE_DEV=1), "
                "which makes a one-off operator token"
            )
        return self
