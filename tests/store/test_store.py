"""Opening the store: migrations, the secret file, and refusals that protect the data."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailwire.config import Settings
from mailwire.errors import DataDirError, SecretMismatchError, StoreUnavailableError
from mailwire.store import rotation
from mailwire.store.keys import RELOAD_CHECK_INTERVAL_S
from mailwire.store.migrate import HEAD_REVISION, current_revision, head_revision
from mailwire.store.secret_file import read_secret_file
from mailwire.store.store import Store, open_store
from mailwire.testing.ports import find_free_port
from mailwire.testing.postgres import settings_for

Factory = Callable[..., Settings]


def test_head_revision_constant_matches_the_migration_files() -> None:
    assert head_revision() == HEAD_REVISION


async def test_migrations_reach_head_and_are_idempotent(make_settings: Factory) -> None:
    for _ in range(2):
        store = await open_store(make_settings())
        assert await current_revision(store.database) == head_revision()
        await store.close()


async def test_refuses_a_different_secret_for_existing_data(make_settings: Factory) -> None:
    store = await open_store(make_settings(secret="the-first-secret-value"))
    await store.secrets.put("account", "alice", "imap.pass", "pw")
    await store.close()
    with pytest.raises(SecretMismatchError, match="cannot decrypt"):
        await open_store(make_settings(secret="a-completely-different-one"))


async def test_previous_secret_is_enough_to_start(make_settings: Factory) -> None:
    await (await open_store(make_settings(secret="the-first-secret-value"))).close()
    store = await open_store(
        make_settings(
            secret="the-second-secret-value", previous_secrets=("the-first-secret-value",)
        )
    )
    await store.close()


async def test_concurrent_first_starts_with_different_secrets_cannot_both_win(
    make_settings: Factory,
) -> None:
    results = await asyncio.gather(
        open_store(make_settings(secret="node-one-secret-value")),
        open_store(make_settings(secret="node-two-secret-value")),
        return_exceptions=True,
    )
    opened = [r for r in results if isinstance(r, Store)]
    refused = [r for r in results if isinstance(r, SecretMismatchError)]
    for store in opened:
        await store.close()
    assert len(opened) == 1, results
    assert len(refused) == 1, results


async def test_generates_a_private_secret_file_on_first_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", secret=None)
    store = await open_store(settings)
    await store.secrets.put("account", "alice", "imap.pass", "pw")
    await store.close()
    secret_file = tmp_path / "data" / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "mailwire.db").stat().st_mode) == 0o600
    # A restart reads the same file and the same data.
    again = await open_store(settings)
    assert await again.secrets.get("account", "alice", "imap.pass") == "pw"
    await again.close()


async def test_refuses_to_regenerate_a_lost_secret_file(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", secret=None)
    await (await open_store(settings)).close()
    (tmp_path / "data" / "secret").unlink()
    with pytest.raises(SecretMismatchError, match="missing"):
        await open_store(settings)
    assert not (tmp_path / "data" / "secret").exists()


async def test_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(DataDirError, match="not a directory"):
        await open_store(settings_for(tmp_path / "data"))


async def test_refuses_a_corrupt_database(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mailwire.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataDirError, match="not a database"):
        await open_store(settings_for(tmp_path / "data"))


async def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{find_free_port()}/test"
    with pytest.raises(StoreUnavailableError, match="cannot use the database"):
        await open_store(settings_for(tmp_path / "data", database_url=url))


async def test_running_store_follows_a_file_rotation(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", secret=None)
    running = await open_store(settings)
    await running.secrets.put("account", "alice", "imap.pass", "before")
    old_key = running.keys.current().current_key_id

    operator = await open_store(settings)
    new_key, report = await rotation.rotate(operator)
    await operator.secrets.put("account", "bob", "imap.pass", "after")
    await operator.close()
    assert new_key != old_key
    assert report.rewritten[old_key] == 2  # alice's password and the key check
    secrets_in_file = read_secret_file(tmp_path / "data" / "secret")
    assert secrets_in_file is not None
    assert len(secrets_in_file) == 2

    # The running store meets the new key id on read and reloads: no failed read.
    assert await running.secrets.get("account", "alice", "imap.pass") == "before"
    assert await running.secrets.get("account", "bob", "imap.pass") == "after"
    await asyncio.sleep(RELOAD_CHECK_INTERVAL_S)
    await running.secrets.put("account", "carol", "imap.pass", "later")
    assert running.keys.current().current_key_id == new_key
    assert set(await running.secrets.count_by_key()) == {new_key}
    await running.close()


async def test_refuses_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a directory should be")
    with pytest.raises(DataDirError, match="not usable"):
        await open_store(settings_for(tmp_path / "file" / "data"))


async def test_many_first_starts_at_once_all_succeed(make_settings: Factory) -> None:
    # A new SQLite file is switched to WAL by whichever connection comes first;
    # the others must wait for it rather than fail with "database is locked". The
    # race is timing-dependent (seen once under full-suite load): this is a stress
    # guard, not a deterministic reproduction.
    settings = make_settings()
    stores = await asyncio.gather(*(open_store(settings) for _ in range(8)))
    for store in stores:
        await store.close()


async def test_migrations_build_exactly_the_declared_schema(make_settings: Factory) -> None:
    # Migrations are written by hand; compare what they built with schema.py so
    # that a column added to one and not the other fails here, on both databases.
    store = await open_store(make_settings())
    try:
        async with store.database.read() as conn:
            differences = await conn.run_sync(_schema_differences)
    finally:
        await store.close()
    assert differences == []


def _schema_differences(connection: sa.Connection) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mailwire.store.schema import metadata

    context = MigrationContext.configure(connection)
    return [
        diff
        for diff in compare_metadata(context, metadata)
        # The variant type renders differently from what the database reports.
        if not (isinstance(diff, list) and diff and diff[0][0] == "modify_type")
    ]
