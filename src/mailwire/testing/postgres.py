"""Test settings and throwaway PostgreSQL schemas.

Tests that touch PostgreSQL get a schema of their own inside the database named
by `MAILWIRE_TEST_DATABASE_URL`, dropped when they finish, so parallel and
repeated runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mailwire.config import Settings

TEST_DATABASE_URL_VARIABLE = "MAILWIRE_TEST_DATABASE_URL"
#: A fixed secret for tests that do not care which one is used (>= 16 characters).
TEST_SECRET = "test-secret-0123456789abcdef"  # noqa: S105 - a test fixture, not a credential


def test_database_url() -> str | None:
    url = os.environ.get(TEST_DATABASE_URL_VARIABLE) or None
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: a data dir, the test secret unless told otherwise."""
    values: dict[str, Any] = {"data_dir": data_dir, "secret": TEST_SECRET, "log_level": "debug"}
    values.update(overrides)
    return Settings(**{k: v for k, v in values.items() if v is not None})


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[tuple[str, str]]:
    """Yield (url, schema) for a fresh schema; skip the test when PostgreSQL is not set."""
    url = test_database_url()
    if url is None:
        pytest.skip(f"{TEST_DATABASE_URL_VARIABLE} is not set")
    schema = f"mw_test_{uuid.uuid4().hex[:16]}"
    try:
        yield url, schema
    finally:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await engine.dispose()
