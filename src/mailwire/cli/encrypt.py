"""`mailwire encrypt`: rotate the key that protects stored credentials, or report on it."""

from __future__ import annotations

from typing import Annotated

import typer

from mailwire.cli.options import (
    DatabaseSchema,
    DatabaseUrl,
    DataDir,
    fail,
    run,
    settings_from,
    with_services,
)
from mailwire.services.container import Services


def encrypt(
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Re-encrypt every stored secret under a new key")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    database_schema: DatabaseSchema = None,
) -> None:
    """Show which keys protect stored secrets; with --rotate, move them to a new key.

    Without MAILWIRE_SECRET, --rotate writes a new secret at the top of the data
    directory's secret file (older ones stay for reading) and re-encrypts. With
    MAILWIRE_SECRET, set the new secret there and the old one in
    MAILWIRE_PREVIOUS_SECRETS first, on every node, then run --rotate once.
    """
    settings = settings_from(
        data_dir=data_dir, database_url=database_url, database_schema=database_schema
    )

    async def act(services: Services) -> None:
        keys = services.keys
        if rotate:
            key_id, report = await keys.rotate()
            print(f"current key: {key_id}")
            for old, count in sorted(report.rewritten.items()):
                print(f"re-encrypted {count} secret(s) from key {old}")
            print(f"re-encrypted {report.total} secret(s) in all")
            if report.unreadable:
                fail(f"{report.unreadable} secret(s) could not be decrypted", 1)
        status = await keys.status()
        print(f"current key: {status.current_key_id}")
        for key_id, count in sorted(status.rows_by_key.items()):
            marker = " (current)" if key_id == status.current_key_id else ""
            print(f"key {key_id}: {count} secret(s){marker}")

    run(with_services(settings, act))
