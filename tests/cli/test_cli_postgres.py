"""`mailwire tokens issue|list|revoke` on PostgreSQL (when `MAILWIRE_TEST_DATABASE_URL` is set).

Each test works in a schema of its own, dropped at teardown, so runs sharing
the database never meet.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

DATABASE_URL = os.environ.get("MAILWIRE_TEST_DATABASE_URL", "")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not DATABASE_URL, reason="MAILWIRE_TEST_DATABASE_URL is not set"),
]


def _asyncpg_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


async def _query(sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(_asyncpg_url(DATABASE_URL), timeout=10)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"mw_cli_{uuid.uuid4().hex[:16]}"
    yield name
    asyncio.run(_query(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture
def on_postgres(cli: Cli, schema: str, data_dir: Path) -> Cli:
    """`cli` with the PostgreSQL URL and this test's schema; the secret file goes to data_dir."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(
            *args,
            "--database-url",
            DATABASE_URL,
            "--database-schema",
            schema,
            "--data-dir",
            str(data_dir),
        )

    return run


@pytest.mark.slow
def test_issue_list_revoke_on_postgres(on_postgres: Cli, schema: str, data_dir: Path) -> None:
    issued = on_postgres("tokens", "issue", "--scope", "api", "--account", "pg-user")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    token_id = hashlib.sha256(token.encode()).hexdigest()

    listing = on_postgres("tokens", "list")

    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split("\t")[:3] == [token_id, "pg-user", "api"]
    assert token not in listing.stdout
    # The tables live in this test's schema, and hold the hash, never the token.
    ids = asyncio.run(_query(f'SELECT id FROM "{schema}".access_tokens'))
    assert [row["id"] for row in ids] == [token_id]
    assert (data_dir / "secret").exists()
    assert not (data_dir / "mailwire.db").exists()

    revoked = on_postgres("tokens", "revoke", token)

    assert revoked.returncode == 0, revoked.stderr
    assert on_postgres("tokens", "list").stdout == ""


@pytest.mark.slow
def test_schemas_keep_installations_apart(on_postgres: Cli, cli: Cli, data_dir: Path) -> None:
    issued = on_postgres("tokens", "issue")
    assert issued.returncode == 0, issued.stderr
    other_schema = f"mw_cli_{uuid.uuid4().hex[:16]}"
    try:
        other = cli(
            "tokens",
            "list",
            "--database-url",
            DATABASE_URL,
            "--database-schema",
            other_schema,
            "--data-dir",
            str(data_dir),
        )
    finally:
        asyncio.run(_query(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE'))

    assert other.returncode == 0, other.stderr
    assert other.stdout == ""
