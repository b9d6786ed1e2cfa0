"""Webhooks: settings, custom routes, the durable job queue and its controls.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "webhook_routes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("target_url", sa.String(length=2048), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("custom_headers", sa.JSON(), nullable=False),
        sa.Column("filter_fn", sa.Text(), nullable=True),
        sa.Column("map_fn", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("match_count", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("error_log", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_routes")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("ordering_key", sa.String(length=600), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts_made", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_jobs_dedupe_key")),
    )
    op.create_index("ix_jobs_queue_state_run_at", "jobs", ["queue", "state", "run_at"])
    op.create_index("ix_jobs_queue_ordering_key_id", "jobs", ["queue", "ordering_key", "id"])
    op.create_table(
        "queues",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queues")),
    )


def downgrade() -> None:
    op.drop_table("queues")
    op.drop_index("ix_jobs_queue_ordering_key_id", table_name="jobs")
    op.drop_index("ix_jobs_queue_state_run_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("webhook_routes")
    op.drop_table("settings")
