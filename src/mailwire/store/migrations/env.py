"""Alembic environment: always driven programmatically by `mailwire.store.migrate`.

The caller passes an open synchronous connection in `config.attributes`; there
is no alembic.ini and no URL here, so the same code serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from mailwire.store.schema import metadata

connection = context.config.attributes["connection"]
schema = context.config.attributes.get("schema")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=schema,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
