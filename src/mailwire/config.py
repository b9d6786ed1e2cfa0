"""Configuration: one typed `Settings`, read once at start and passed down.

Values come from `MAILWIRE_*` environment variables, overridden by command-line
flags of the same names (`mailwire serve --port 3001` beats `MAILWIRE_PORT`).
This is the only module that reads `os.environ`. A bad value never produces a
traceback: `load_settings` raises `ConfigError`, whose message names the
setting in one line, and the CLI turns it into exit code 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mailwire.errors import ConfigError

ENV_PREFIX = "MAILWIRE_"
#: Variables under this prefix belong to the test suite and are not settings.
TEST_ENV_PREFIX = "MAILWIRE_TEST_"

LogLevel = Literal["debug", "info", "warning", "error"]

#: SQLAlchemy drivers Mailwire runs on; plain `postgresql://` URLs are upgraded to asyncpg.
_SQLITE_PREFIX = "sqlite+aiosqlite://"
_POSTGRES_PREFIX = "postgresql+asyncpg://"
_POSTGRES_ALIASES = ("postgresql://", "postgres://")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: A DNS name (RFC 1123 labels); what other nodes would dial to reach this one.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")

#: A secret shorter than this is too easy to guess for a key that guards every credential.
MIN_SECRET_LENGTH = 16


def _split_list(value: object) -> object:
    """Accept comma- or whitespace-separated lists from the environment."""
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return value


class Settings(BaseSettings):
    """Everything Mailwire can be told at start. Field names map to `MAILWIRE_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
        case_sensitive=False,
    )

    host: str = Field("127.0.0.1", min_length=1, max_length=255)
    port: int = Field(3000, ge=1, le=65535)
    data_dir: Path = Path("data")
    database_url: str | None = None
    database_schema: str | None = None
    secret: SecretStr | None = None
    previous_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    log_level: LogLevel = "info"
    workers: int = Field(1, ge=1, le=64)
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    max_body_size: int = Field(1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    shutdown_timeout: float = Field(10.0, gt=0, le=600)
    #: The internal listener every process runs so other nodes can forward requests
    #: for the accounts it owns (see `api.forwarding`). The host is also the address
    #: the other nodes dial, so it must name one interface, never 0.0.0.0 or ::.
    node_host: str = Field("127.0.0.1", min_length=1, max_length=255)
    #: 0 picks a free port per process; otherwise worker i of `--workers N` uses
    #: node_port + i, so the range node_port .. node_port + N - 1 must be free.
    node_port: int = Field(0, ge=0, le=65535)
    #: Outbound requests made for users (webhooks, routes) may reach loopback,
    #: private and link-local addresses; cloud metadata stays closed (see `net.egress`).
    webhook_allow_private: bool = False
    #: Networks (CIDR) and host names (`hooks.internal`, `*.corp.example`) those
    #: requests may reach even though they are not public.
    webhook_allow: Annotated[tuple[str, ...], NoDecode] = ()
    #: Seconds one webhook attempt may take (connect, response and body), as the
    #: reference's EENGINE_WEBHOOK_TIMEOUT; a slower receiver's attempt is retried.
    webhook_timeout: float = Field(30.0, gt=0, le=600)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("previous_secrets", "trusted_proxies", "webhook_allow", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for alias in _POSTGRES_ALIASES:
            if value.startswith(alias):
                return _POSTGRES_PREFIX + value[len(alias) :]
        if value.startswith((_SQLITE_PREFIX, _POSTGRES_PREFIX)):
            return value
        raise ValueError(
            f"must start with {_SQLITE_PREFIX} or {_POSTGRES_PREFIX} (or postgresql://)"
        )

    @field_validator("database_schema")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEMA_NAME.fullmatch(value):
            raise ValueError("must be a lowercase SQL identifier (letters, digits, _)")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_secret_length(value)
        return value

    @field_validator("previous_secrets")
    @classmethod
    def _previous(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for secret in value:  # they were once MAILWIRE_SECRET, so the same rule held
            _check_secret_length(secret)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # raises ValueError on bad input
        return value

    @field_validator("webhook_allow")
    @classmethod
    def _webhook_allow(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        checked: list[str] = []
        for entry in value:
            wildcard = entry.startswith("*.")
            name = entry.removeprefix("*.").rstrip(".").lower()
            try:
                checked.append(str(ipaddress.ip_network(entry, strict=False)))
                continue
            except ValueError:
                pass
            # A last label of digits or 0x-hex is an IPv4 number in disguise, not a name.
            numeric = re.fullmatch(r"[0-9]+|0x[0-9a-f]*", name.rpartition(".")[2])
            if not _HOST_NAME.fullmatch(name) or numeric:
                raise ValueError(f"{entry!r} is neither a network (CIDR) nor a host name")
            checked.append(f"*.{name}" if wildcard else name)
        return tuple(checked)

    @field_validator("node_host")
    @classmethod
    def _node_host(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            if not _HOST_NAME.fullmatch(value):
                raise ValueError("must be an IP address or a host name") from None
            return value
        if address.is_unspecified:
            raise ValueError(
                "must be an address the other nodes can reach, not a wildcard (0.0.0.0, ::)"
            )
        return value

    @field_validator("node_port")
    @classmethod
    def _node_port(cls, value: int, info: ValidationInfo) -> int:
        workers = info.data.get("workers", 1)  # validated first: declared earlier
        if value and value + workers - 1 > 65535:
            raise ValueError(f"leaves no room for {workers} workers (one port each, up to 65535)")
        return value

    # ------------------------------------------------------------------ derived values

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite in the data directory."""
        if self.database_url is not None:
            return self.database_url
        return f"{_SQLITE_PREFIX}/{self.database_path.resolve()}"

    @property
    def database_path(self) -> Path:
        """Where the embedded SQLite database lives when no DATABASE_URL is set."""
        return self.data_dir / "mailwire.db"

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith(_SQLITE_PREFIX)

    def secret_values(self) -> list[str]:
        """Configured secrets in clear, for the log masker to scrub wherever they appear."""
        values = [secret.get_secret_value() for secret in self.previous_secrets]
        if self.secret is not None:
            values.append(self.secret.get_secret_value())
        return values


def _check_secret_length(secret: SecretStr) -> None:
    if len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings` from the environment plus explicit overrides (`None` means unset).

    Raises `ConfigError` naming the first bad setting, e.g. `MAILWIRE_PORT: ...`.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    _reject_unknown_variables(os.environ)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise _config_error(exc, flags=set(given)) from None


def _reject_unknown_variables(environ: Mapping[str, str]) -> None:
    """A misspelt variable (MAILWIRE_SECERT) must not be ignored silently."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in sorted(environ):
        upper = name.upper()
        ours = upper.startswith(ENV_PREFIX) and not upper.startswith(TEST_ENV_PREFIX)
        if ours and upper not in known:
            raise ConfigError(upper, "is not a known setting (check the spelling)")


def _config_error(exc: ValidationError, *, flags: set[str]) -> ConfigError:
    error = exc.errors(include_url=False, include_input=False)[0]
    location = [str(part) for part in error["loc"]]
    field = location[0] if location else "settings"
    # Name the setting the way the operator gave it: as a flag or as a variable.
    name = f"--{field.replace('_', '-')}" if field in flags else f"{ENV_PREFIX}{field.upper()}"
    if error["type"] == "extra_forbidden":
        return ConfigError(name, "is not a known setting")
    # Never echo the rejected value: it may be a secret.
    message = str(error["msg"]).removeprefix("Value error, ")
    return ConfigError(name, message)
