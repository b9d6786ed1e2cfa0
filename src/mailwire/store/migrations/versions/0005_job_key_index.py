"""Jobs: the per-key index carries the state, so finding a key's next blocked job is a seek.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Promoting the next job of a key looked at every job the key ever had (the state
was only in the table row); with the state in the index it reads one entry.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_jobs_queue_ordering_key_id", table_name="jobs")
    op.create_index(
        "ix_jobs_queue_ordering_key_state_id", "jobs", ["queue", "ordering_key", "state", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_queue_ordering_key_state_id", table_name="jobs")
    op.create_index("ix_jobs_queue_ordering_key_id", "jobs", ["queue", "ordering_key", "id"])
