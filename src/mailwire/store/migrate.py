"""Apply Alembic migrations on start, safely when several processes or nodes start at once.

PostgreSQL: the upgrade runs under a transaction-scoped advisory lock, so the
first node migrates and the others wait, then find nothing to do. SQLite: the
write transaction (BEGIN IMMEDIATE) serialises processes the same way.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mailwire.store.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Arbitrary constant naming Mailwire's migration lock among PostgreSQL advisory locks.
_ADVISORY_LOCK_KEY = 0x4D41494C57495245  # "MAILWIRE"


def _config(connection: sa.Connection, schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return script.get_current_head()


async def migrate(database: Database) -> None:
    """Bring the schema to the newest revision."""
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


def _upgrade(connection: sa.Connection, schema: str | None) -> None:
    command.upgrade(_config(connection, schema), "head")


async def current_revision(database: Database) -> str | None:
    async with database.read() as conn:
        return await conn.run_sync(_current)


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
