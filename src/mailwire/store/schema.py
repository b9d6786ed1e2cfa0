"""Table definitions (SQLAlchemy Core), the single source for queries and migrations.

Conventions: times are integer milliseconds since the epoch (UTC), which sort and
compare the same on SQLite and PostgreSQL; JSON columns hold small documents
(scopes, restrictions); secrets never appear in any table but `secrets`, and
there only as ciphertext (`mailwire.store.cipher`).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Small instance-wide facts: schema checks, the key verifier, settings later on.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Every credential Mailwire holds, encrypted. A row is addressed by the owner's
#: kind (`scope`, e.g. "account"), the owner's id (`ref`) and the field (`name`);
#: the same triple is the ciphertext's associated data, so a value copied into
#: another row does not decrypt there. `key_id` lets rotation find stale rows.
secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("key_id", sa.String(16), nullable=False, index=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: API access tokens. The token itself is never stored: `id` is its SHA-256.
access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(256), nullable=True, index=True),
    sa.Column("description", sa.String(1024), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("restrictions", sa.JSON, nullable=True),
    sa.Column("permissions", sa.JSON, nullable=True),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("remote_address", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_ip", sa.String(64), nullable=True),
)

#: Fixed-window request counters for tokens with a rate limit. Kept in the store,
#: not in memory, so that the limit holds across worker processes and nodes.
token_hits = sa.Table(
    "token_hits",
    metadata,
    sa.Column(
        "token_id",
        sa.String(64),
        sa.ForeignKey("access_tokens.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
)
