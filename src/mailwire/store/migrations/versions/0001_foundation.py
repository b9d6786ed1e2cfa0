"""Foundation: meta facts, encrypted secrets, access tokens and their rate counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "secrets",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(256), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("scope", "ref", "name", name="pk_secrets"),
    )
    op.create_index("ix_secrets_key_id", "secrets", ["key_id"])
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(256), nullable=True),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("restrictions", sa.JSON, nullable=True),
        sa.Column("permissions", sa.JSON, nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("remote_address", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_ip", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
    )
    op.create_index("ix_access_tokens_account", "access_tokens", ["account"])
    op.create_index("ix_access_tokens_created_at", "access_tokens", ["created_at"])
    op.create_table(
        "token_hits",
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("token_id", "window_start", name="pk_token_hits"),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["access_tokens.id"],
            name="fk_token_hits_token_id_access_tokens",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("token_hits")
    op.drop_index("ix_access_tokens_created_at", table_name="access_tokens")
    op.drop_index("ix_access_tokens_account", table_name="access_tokens")
    op.drop_table("access_tokens")
    op.drop_index("ix_secrets_key_id", table_name="secrets")
    op.drop_table("secrets")
    op.drop_table("meta")
