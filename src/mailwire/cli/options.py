"""Command-line options shared by several commands, and the error-to-exit-code mapping."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from mailwire.config import Settings, load_settings
from mailwire.errors import ConfigError, MailwireError, StartupError
from mailwire.services.container import Services
from mailwire.store.store import open_store

T = TypeVar("T")

#: Exit codes: 2 means Mailwire refused to start or was told something invalid.
EXIT_FAILURE = 1
EXIT_REFUSED = 2

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (MAILWIRE_DATA_DIR, default ./data)"),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (MAILWIRE_DATABASE_URL)"),
]
DatabaseSchema = Annotated[
    str | None,
    typer.Option("--database-schema", help="PostgreSQL schema (MAILWIRE_DATABASE_SCHEMA)"),
]
LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", help="debug, info, warning or error (MAILWIRE_LOG_LEVEL)"),
]


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment plus the flags given; exits 2 on a bad value."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        fail(str(exc), EXIT_REFUSED)


async def with_services(settings: Settings, action: Callable[[Services], Awaitable[T]]) -> T:
    """Open the store, run one action on the services, and close the store again."""
    store = await open_store(settings)
    try:
        return await action(Services.build(store))
    finally:
        await store.close()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning Mailwire errors into one line and an exit code."""
    try:
        return asyncio.run(coroutine)
    except StartupError as exc:
        fail(str(exc), EXIT_REFUSED)
    except MailwireError as exc:
        fail(str(exc), EXIT_FAILURE)


def fail(message: str, code: int) -> NoReturn:
    print(f"mailwire: error: {message}", file=sys.stderr)
    raise typer.Exit(code)
