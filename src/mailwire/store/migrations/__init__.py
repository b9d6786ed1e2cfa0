"""Alembic environment and revisions, applied programmatically on start."""
