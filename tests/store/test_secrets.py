"""The secrets vault on a real database: round trips, raw bytes, rotation, row binding."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from mailwire.config import Settings
from mailwire.domain.tokens import Scope, TokenRecord
from mailwire.errors import DecryptionError
from mailwire.store.schema import secrets
from mailwire.store.store import Store, open_store

Factory = Callable[..., Settings]

PLANTED = "Planted-Password-7f3a9c"


async def raw_table_bytes(store: Store, table: str) -> bytes:
    """The bytes the database keeps on disk for `table` (after flushing them there)."""
    database = store.database
    if database.is_sqlite:
        # Committed pages live in the main file or in the write-ahead log: read both.
        path = database.sqlite_path
        assert path is not None
        data = path.read_bytes()
        wal = path.with_name(path.name + "-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")
    async with database.write() as conn:
        await conn.execute(sa.text("CHECKPOINT"))
    async with database.read() as conn:
        relation = f'"{database.schema}".{table}'
        file_path = (
            await conn.execute(sa.text("SELECT pg_relation_filepath(:r)"), {"r": relation})
        ).scalar_one()
        return bytes(
            (
                await conn.execute(sa.text("SELECT pg_read_binary_file(:p)"), {"p": file_path})
            ).scalar_one()
        )


async def test_round_trip_and_delete(store: Store) -> None:
    await store.secrets.put("account", "alice", "imap.pass", PLANTED)
    assert await store.secrets.get("account", "alice", "imap.pass") == PLANTED
    await store.secrets.put("account", "alice", "imap.pass", "changed")
    assert await store.secrets.get("account", "alice", "imap.pass") == "changed"
    assert await store.secrets.delete("account", "alice") == 1
    assert await store.secrets.get("account", "alice", "imap.pass") is None


async def test_put_without_replace_keeps_the_first_value(store: Store) -> None:
    assert await store.secrets.put("app", "x", "secret", "first", replace=False)
    assert not await store.secrets.put("app", "x", "secret", "second", replace=False)
    assert await store.secrets.get("app", "x", "secret") == "first"


async def test_password_never_reaches_the_disk_in_clear(store: Store) -> None:
    await store.secrets.put("account", "alice", "imap.pass", PLANTED)
    raw = await raw_table_bytes(store, "secrets")
    assert b"mw1$" in raw  # the ciphertext is on disk...
    assert PLANTED.encode() not in raw  # ...and the password is not


async def test_raw_bytes_do_show_plain_columns(store: Store) -> None:
    """Control for the test above: the same grep finds text stored in clear."""
    await store.tokens.insert(
        TokenRecord(id="c" * 64, description=f"control {PLANTED}", scopes=frozenset({Scope.API}))
    )
    assert PLANTED.encode() in await raw_table_bytes(store, "access_tokens")


async def test_ciphertext_moved_to_another_row_does_not_decrypt(store: Store) -> None:
    await store.secrets.put("account", "alice", "imap.pass", PLANTED)
    await store.secrets.put("account", "bob", "imap.pass", "bob's")
    async with store.database.write() as conn:
        alice = (
            await conn.execute(sa.select(secrets.c.value).where(secrets.c.ref == "alice"))
        ).scalar_one()
        await conn.execute(secrets.update().where(secrets.c.ref == "bob").values(value=alice))
    with pytest.raises(DecryptionError):
        await store.secrets.get("account", "bob", "imap.pass")


async def test_rotation_with_configured_secrets(make_settings: Factory) -> None:
    old = "old-secret-0123456789"
    new = "new-secret-9876543210"
    first = await open_store(make_settings(secret=old))
    await first.secrets.put("account", "alice", "imap.pass", PLANTED)
    await first.secrets.put("account", "bob", "smtp.pass", "other")
    old_key = first.keys.current().current_key_id
    await first.close()

    rotated = await open_store(make_settings(secret=new, previous_secrets=(old,)))
    # Reads work before the rotation, through the previous key.
    assert await rotated.secrets.get("account", "alice", "imap.pass") == PLANTED
    report = await rotated.secrets.rotate()
    # Two planted secrets plus the store's own key check move off the old key.
    assert report.rewritten == {old_key: 3}
    assert report.unreadable == 0
    assert set(await rotated.secrets.count_by_key()) == {rotated.keys.current().current_key_id}
    await rotated.close()

    # After rotation the old secret is no longer needed.
    only_new = await open_store(make_settings(secret=new))
    assert await only_new.secrets.get("account", "alice", "imap.pass") == PLANTED
    await only_new.close()
