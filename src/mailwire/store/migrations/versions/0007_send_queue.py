"""Sending: the queue of outgoing messages (`/v1/outbox`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_queue",
        sa.Column("queue_id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=256), nullable=False),
        sa.Column("message_id", sa.String(length=1000), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("gateway", sa.String(length=256), nullable=True),
        sa.Column("idempotency_key", sa.String(length=1024), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("send_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("queue_id"),
    )
    op.create_index("ix_send_queue_account_state", "send_queue", ["account", "state"])
    op.create_index("ix_send_queue_state_created", "send_queue", ["state", "created_at"])
    op.create_index(
        "ux_send_queue_account_idempotency_key",
        "send_queue",
        ["account", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_send_queue_account_idempotency_key", table_name="send_queue")
    op.drop_index("ix_send_queue_state_created", table_name="send_queue")
    op.drop_index("ix_send_queue_account_state", table_name="send_queue")
    op.drop_table("send_queue")
