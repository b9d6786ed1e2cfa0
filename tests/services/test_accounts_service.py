"""The account service over a real store: credentials split off, merges, events, 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailwire.domain.accounts import AccountState
from mailwire.domain.events import EventName
from mailwire.errors import NotFoundError
from mailwire.services.accounts import (
    AccountService,
    merge_update,
    public_settings,
    split_credentials,
)
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import settings_for

START = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(settings_for(tmp_path / "data"), clock=clock)
    yield opened
    await opened.close()


@pytest.fixture
def service(store: Store, clock: Clock) -> AccountService:
    return AccountService(store, clock=clock)


def document(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": "alice",
        "name": "Alice",
        "imap": {"host": "h", "port": 993, "auth": {"user": "a", "pass": "p1"}},
        "smtp": {"host": "s", "port": 465, "auth": {"user": "a", "accessToken": "t1"}},
    }
    body.update(extra)
    return body


def test_split_moves_every_secret_out_of_the_settings() -> None:
    settings, credentials = split_credentials(
        document(oauth2={"auth": {"user": "a"}, "accessToken": "o1", "refreshToken": "r1"})
    )

    assert settings["imap"]["auth"] == {"user": "a"}
    assert settings["smtp"]["auth"] == {"user": "a"}
    assert settings["oauth2"] == {"auth": {"user": "a"}}
    assert "account" not in settings
    assert "name" not in settings
    assert credentials == {
        "imap.pass": "p1",
        "imap.accessToken": None,
        "smtp.pass": None,
        "smtp.accessToken": "t1",
        "oauth2.accessToken": "o1",
        "oauth2.refreshToken": "r1",
    }


def test_partial_merge_keeps_what_it_does_not_name() -> None:
    stored, _ = split_credentials(document())

    merged, credentials = merge_update(
        stored, {"imap": {"partial": True, "port": 143, "auth": {"pass": "p2"}}}
    )

    assert merged["imap"] == {"host": "h", "port": 143, "auth": {"user": "a"}}
    assert merged["smtp"] == stored["smtp"]
    assert credentials == {"imap.pass": "p2"}


def test_public_settings_drop_any_stray_secret() -> None:
    leaked = {"imap": {"auth": {"user": "a", "pass": "x"}}, "oauth2": {"refreshToken": "y"}}

    assert public_settings(leaked) == {"imap": {"auth": {"user": "a"}}, "oauth2": {}}


async def test_create_defaults_notify_from_to_now_and_emits_added(
    service: AccountService, store: Store
) -> None:
    account_id, state = await service.create(document())

    account = await service.get(account_id)
    assert (account_id, state) == ("alice", "new")
    assert account.notify_from == START
    assert account.state is AccountState.INIT
    assert await store.accounts.credentials("alice") == {
        "imap.pass": "p1",
        "smtp.accessToken": "t1",
    }
    assert [e.event for e in await store.outbox.read_after(0)] == [EventName.ACCOUNT_ADDED]


async def test_generated_ids_are_distinct(service: AccountService) -> None:
    first, _ = await service.create(document(account=None))
    second, _ = await service.create(document(account=None))

    assert first != second


async def test_update_keeps_unnamed_fields(service: AccountService) -> None:
    await service.create(document(email="a@example.com", notifyFrom=5))

    updated = await service.update("alice", {"name": "Al"})

    assert (updated.name, updated.email, updated.notify_from) == ("Al", "a@example.com", 5)
    assert updated.settings["imap"]["host"] == "h"


async def test_flush_defaults_notify_from_to_now(service: AccountService, clock: Clock) -> None:
    await service.create(document(notifyFrom=5))
    clock.now += 1234

    await service.flush("alice", notify_from=None, imap_indexer=None)

    assert (await service.get("alice")).notify_from == START + 1234


async def test_missing_accounts_raise_account_not_found(service: AccountService) -> None:
    calls = [
        service.get("nobody"),
        service.update("nobody", {"name": "x"}),
        service.delete("nobody"),
        service.reconnect("nobody"),
        service.sync("nobody"),
        service.flush("nobody", notify_from=None, imap_indexer=None),
        service.log_lines("nobody"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as caught:
            await call
        assert caught.value.code == "AccountNotFound"
