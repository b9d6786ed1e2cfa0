"""Apply Alembic migrations on start, safely when several processes or nodes start at once.

PostgreSQL: the upgrade runs under a transaction-scoped advisory lock, so the
first node migrates and the others wait, then find nothing to do. SQLite: the
write transaction (BEGIN IMMEDIATE) serialises processes the same way.

Every start (and every CLI command) opens the store, and importing Alembic
costs about a third of a second, so a schema already at `HEAD_REVISION` is
recognised with one query and Alembic is loaded only when there is work to do.
A test keeps `HEAD_REVISION` equal to the newest revision file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from mailwire.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: The newest revision in `migrations/versions`; update it with each new revision.
HEAD_REVISION = "0007"
#: Arbitrary constant naming Mailwire's migration lock among PostgreSQL advisory locks.
_ADVISORY_LOCK_KEY = 0x4D41494C57495245  # "MAILWIRE"


async def migrate(database: Database) -> None:
    """Bring the schema to the newest revision."""
    if await current_revision(database) == HEAD_REVISION:
        return
    async with database.write() as conn:
        if not database.is_sqlite:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
            if database.schema is not None:
                # Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against a race.
                # The name was validated as a plain identifier by Settings.
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
        await conn.run_sync(_upgrade, database.schema)


async def current_revision(database: Database) -> str | None:
    """The revision recorded in the database, or None for an empty one."""
    try:
        async with database.read() as conn:
            if not await conn.run_sync(_has_version_table):
                return None
            value = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except DBAPIError:
        return None  # e.g. the schema does not exist yet
    return None if value is None else str(value)


def head_revision() -> str | None:
    """The newest revision among the migration files, as Alembic computes it."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see the module docstring

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _has_version_table(connection: sa.Connection) -> bool:
    return sa.inspect(connection).has_table("alembic_version")


def _config(connection: sa.Connection, schema: str | None) -> Config:
    from alembic.config import Config  # noqa: PLC0415 - see the module docstring

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _upgrade(connection: sa.Connection, schema: str | None) -> None:
    from alembic import command  # noqa: PLC0415 - see the module docstring

    command.upgrade(_config(connection, schema), "head")
