"""`mailwire serve`: run the API (and, later, workers and servers) until stopped."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from mailwire.cli.options import (
    EXIT_REFUSED,
    DatabaseSchema,
    DatabaseUrl,
    DataDir,
    LogLevel,
    fail,
    settings_from,
)
from mailwire.config import Settings
from mailwire.errors import StartupError
from mailwire.logs import configure_logging


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (MAILWIRE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (MAILWIRE_PORT)")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="Service secret (MAILWIRE_SECRET); prefer the variable, flags show in ps"
        ),
    ] = None,
    log_level: LogLevel = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (MAILWIRE_WORKERS)")] = None,
) -> None:
    """Start Mailwire: REST API on HOST:PORT, store in DATA_DIR or DATABASE_URL."""
    settings = settings_from(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        database_schema=database_schema,
        secret=secret,
        log_level=log_level,
        workers=workers,
    )
    configure_logging(settings.log_level, secrets=settings.secret_values())
    # The server stack (FastAPI, uvicorn) is imported here, not at module level, so
    # that the other commands start without paying for it.
    from mailwire.runtime.serve import run_blocking  # noqa: PLC0415
    from mailwire.runtime.workers import run_workers  # noqa: PLC0415

    try:
        if settings.workers > 1:
            raise typer.Exit(run_workers(settings, on_ready=_announcer(settings)))
        run_blocking(settings, on_ready=_announcer(settings))
    except StartupError as exc:
        fail(str(exc), EXIT_REFUSED)


def _announcer(settings: Settings) -> Callable[[str], None]:
    """A plain-text banner on stdout for people (the logs are JSON on stderr)."""
    flags = ""
    if settings.database_url is not None:
        flags = " --database-url '<your database URL>'"
    elif settings.data_dir != Path("data"):
        flags = f" --data-dir {settings.data_dir}"

    command = _command_name()

    def announce(url: str) -> None:
        print(f"Mailwire is listening on {url}", flush=True)
        print(f"Get an access token with: {command} tokens issue{flags}", flush=True)

    return announce


def _command_name() -> str:
    """How the user can run `mailwire` again: bare if on PATH, else the path they used."""
    invoked = sys.argv[0]
    if os.path.basename(invoked) == "mailwire" and shutil.which("mailwire") != os.path.abspath(
        invoked
    ):
        relative = os.path.relpath(invoked)
        return relative if not relative.startswith("..") else os.path.abspath(invoked)
    return "mailwire"
