"""Store fixtures: every store test runs on SQLite and, when configured, on PostgreSQL.

PostgreSQL runs when `MAILWIRE_TEST_DATABASE_URL` is set (CI sets it); each test
gets its own schema, dropped afterwards, so concurrent runs never collide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mailwire.config import Settings
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import postgres_schema, settings_for

Factory = Callable[..., Settings]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Build Settings for this test's database: `make_settings(secret=...)`."""
    if request.param == "sqlite":
        yield lambda **kw: settings_for(tmp_path / "data", **kw)
        return
    async with postgres_schema() as (url, schema):
        yield lambda **kw: settings_for(
            tmp_path / "data", database_url=url, database_schema=schema, **kw
        )


@pytest.fixture
async def store(make_settings: Factory) -> AsyncIterator[Store]:
    opened = await open_store(make_settings())
    yield opened
    await opened.close()
