"""Worker fixtures: a store on SQLite and on PostgreSQL (when configured), and its accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from worker_kit import Accounts

from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import postgres_schema, settings_for


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Settings factory for SQLite, then PostgreSQL when configured."""
    if request.param == "sqlite":
        yield lambda: settings_for(tmp_path / "data")
        return
    async with postgres_schema() as (url, schema):
        yield lambda: settings_for(tmp_path / "data", database_url=url, database_schema=schema)


@pytest.fixture
async def wstore(db_settings: Callable[[], Any]) -> AsyncIterator[Store]:
    opened = await open_store(db_settings())
    yield opened
    await opened.close()


@pytest.fixture
def accounts_(wstore: Store) -> Accounts:
    return Accounts(wstore)
