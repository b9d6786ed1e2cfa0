"""Account rows and credentials on SQLite and PostgreSQL: one transaction per change."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from mailwire.config import Settings
from mailwire.domain.accounts import CREDENTIAL_SCOPE, AccountKind, AccountState
from mailwire.domain.events import Event, EventName
from mailwire.store.accounts import AccountValues
from mailwire.store.schema import accounts, mailboxes, secrets
from mailwire.store.store import Store, open_store

START = 1_700_000_000_000
PASSWORD = "planted-Pa55word-7f3a"  # searched for in the database

IMAP = {"host": "imap.example.com", "port": 993, "secure": True, "auth": {"user": "alice"}}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(make_settings: Callable[..., Settings], clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(make_settings(), clock=clock)
    yield opened
    await opened.close()


def values(name: str = "Alice", **settings: Any) -> AccountValues:
    return AccountValues(
        name=name, email="alice@example.com", settings=settings or {"imap": IMAP}, notify_from=1
    )


def added(account: str) -> list[Event]:
    return [Event(account=account, event=EventName.ACCOUNT_ADDED, data={"account": account})]


async def test_create_then_get(store: Store) -> None:
    result = await store.accounts.create_or_update(
        "alice", values(), {"imap.pass": PASSWORD}, events_if_new=added("alice")
    )

    assert result == "new"
    account = await store.accounts.get("alice")
    assert account is not None
    assert account.name == "Alice"
    assert account.kind is AccountKind.IMAP
    assert account.state is AccountState.INIT
    assert (account.revision, account.sync_seq, account.initialized) == (0, 0, False)
    assert account.created_at == START
    assert await store.accounts.credentials("alice") == {"imap.pass": PASSWORD}
    events = await store.outbox.read_after(0)
    assert [(e.account, e.event, dict(e.data)) for e in events] == [
        ("alice", EventName.ACCOUNT_ADDED, {"account": "alice"})
    ]


async def test_create_again_is_an_update_that_replaces_credentials(
    store: Store, clock: Clock
) -> None:
    await store.accounts.create_or_update("alice", values(), {"imap.pass": PASSWORD})
    clock.now += 1000

    result = await store.accounts.create_or_update(
        "alice", values("Alice B"), {"imap.accessToken": "tok"}, events_if_new=added("alice")
    )

    assert result == "existing"
    account = await store.accounts.get("alice")
    assert account is not None
    assert (account.name, account.revision, account.updated_at) == ("Alice B", 1, START + 1000)
    assert await store.accounts.credentials("alice") == {"imap.accessToken": "tok"}
    assert await store.outbox.read_after(0) == []


async def test_send_only_and_disabled_accounts_start_unset(store: Store) -> None:
    smtp = {"host": "smtp.example.com", "port": 587}
    await store.accounts.create_or_update("s", values(smtp=smtp), {})
    await store.accounts.create_or_update("d", values(imap={**IMAP, "disabled": True}), {})

    sending, disabled = await store.accounts.get("s"), await store.accounts.get("d")

    assert sending is not None
    assert disabled is not None
    assert (sending.kind, sending.state) == (AccountKind.SENDING, AccountState.UNSET)
    assert (disabled.kind, disabled.state) == (AccountKind.IMAP, AccountState.UNSET)


async def test_password_is_never_in_clear_columns(store: Store) -> None:
    await store.accounts.create_or_update(
        "alice", values(), {"imap.pass": PASSWORD, "smtp.pass": PASSWORD}
    )

    async with store.database.read() as conn:
        row = (await conn.execute(accounts.select())).one()
        stored = (await conn.execute(sa.select(secrets.c.value))).scalars().all()
    assert PASSWORD not in json.dumps([str(value) for value in row])
    assert all(PASSWORD not in value for value in stored)


async def test_update_bumps_revision_and_keeps_worker_columns(store: Store, clock: Clock) -> None:
    await store.accounts.create_or_update("alice", values(), {"imap.pass": PASSWORD})
    await _worker_sets(store, "alice", state="connected", sync_time=START + 5, initialized=True)
    clock.now += 10

    updated = await store.accounts.update(
        "alice", lambda account: values("Renamed", **account.settings)
    )

    assert updated is not None
    assert (updated.name, updated.revision, updated.updated_at) == ("Renamed", 1, START + 10)
    assert updated.state is AccountState.CONNECTED
    assert (updated.sync_time, updated.initialized) == (START + 5, True)


async def test_new_imap_settings_or_password_reset_the_state(store: Store) -> None:
    await store.accounts.create_or_update("alice", values(), {"imap.pass": "old"})
    await _worker_sets(store, "alice", state="authenticationError", last_error={"response": "x"})

    await store.accounts.update(
        "alice", lambda account: values(**account.settings), {"imap.pass": "new"}
    )
    after_password = await store.accounts.get("alice")
    await _worker_sets(store, "alice", state="connected")
    await store.accounts.update("alice", lambda _: values(imap={**IMAP, "disabled": True}))
    after_disable = await store.accounts.get("alice")

    assert after_password is not None
    assert (after_password.state, after_password.last_error) == (AccountState.INIT, None)
    assert await store.accounts.credentials("alice") == {"imap.pass": "new"}
    assert after_disable is not None
    assert after_disable.state is AccountState.UNSET


async def test_update_of_a_missing_account_answers_none(store: Store) -> None:
    assert await store.accounts.update("nobody", lambda _: values()) is None
    assert await store.accounts.get("nobody") is None


async def test_update_can_remove_one_credential(store: Store) -> None:
    await store.accounts.create_or_update("alice", values(), {"imap.pass": "p", "smtp.pass": "q"})

    await store.accounts.update(
        "alice", lambda account: values(**account.settings), {"smtp.pass": None}
    )

    assert await store.accounts.credentials("alice") == {"imap.pass": "p"}


async def test_unknown_credential_names_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown credential"):
        await store.accounts.create_or_update("alice", values(), {"imap.password": "p"})
    assert not await store.accounts.exists("alice")


async def test_list_filters_and_pages(store: Store, clock: Clock) -> None:
    for index, (account, name) in enumerate(
        [("a1", "Ann"), ("b_2", "Bob"), ("c3", "Carol"), ("d4", "Dan 100%")]
    ):
        clock.now = START + index
        await store.accounts.create_or_update(account, values(name), {})
    await _worker_sets(store, "c3", state="connected")

    first = await store.accounts.list(page=0, page_size=2)
    second = await store.accounts.list(page=1, page_size=2)
    connected = await store.accounts.list(page=0, page_size=10, state=AccountState.CONNECTED)
    by_name = await store.accounts.list(page=0, page_size=10, query="CAR")
    underscore = await store.accounts.list(page=0, page_size=10, query="_")
    percent = await store.accounts.list(page=0, page_size=10, query="%")
    by_email = await store.accounts.list(page=0, page_size=10, query="@EXAMPLE")

    assert (first.total, [a.id for a in first.accounts]) == (4, ["a1", "b_2"])
    assert [a.id for a in second.accounts] == ["c3", "d4"]
    assert [a.id for a in connected.accounts] == ["c3"]
    assert [a.id for a in by_name.accounts] == ["c3"]
    assert [a.id for a in underscore.accounts] == ["b_2"]
    assert [a.id for a in percent.accounts] == ["d4"]
    assert by_email.total == 4


async def test_delete_cascades_and_records_the_event(store: Store) -> None:
    await store.accounts.create_or_update("alice", values(), {"imap.pass": PASSWORD})
    await _add_mailbox(store, "alice", "INBOX")
    await store.account_logs.append("alice", [(START, "c", "A1 NOOP")])
    gone = [Event(account="alice", event=EventName.ACCOUNT_DELETED, data={"account": "alice"})]

    assert await store.accounts.delete("alice", events=gone) is True
    assert await store.accounts.delete("alice", events=gone) is False

    assert await store.accounts.get("alice") is None
    assert await store.secrets.get(CREDENTIAL_SCOPE, "alice", "imap.pass") is None
    assert await store.account_logs.read("alice") == []
    async with store.database.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(mailboxes))).scalar() == 0
    assert [e.event for e in await store.outbox.read_after(0)] == [EventName.ACCOUNT_DELETED]


async def test_reconnect_sync_and_flush(store: Store) -> None:
    await store.accounts.create_or_update("alice", values(), {})
    await store.accounts.create_or_update("bob", values(), {})
    await _add_mailbox(store, "alice", "INBOX")
    await _add_mailbox(store, "bob", "INBOX")

    assert await store.accounts.request_reconnect("alice")
    assert await store.accounts.request_sync("alice")
    assert await store.accounts.flush("alice", notify_from=42, imap_indexer="fast")
    assert not await store.accounts.request_reconnect("nobody")
    assert not await store.accounts.request_sync("nobody")
    assert not await store.accounts.flush("nobody", notify_from=42)

    account = await store.accounts.get("alice")
    assert account is not None
    assert (account.revision, account.sync_seq, account.notify_from) == (2, 1, 42)
    assert account.settings["imapIndexer"] == "fast"
    async with store.database.read() as conn:
        left = (await conn.execute(sa.select(mailboxes.c.account))).scalars().all()
    assert left == ["bob"]


async def _worker_sets(store: Store, account: str, **columns: Any) -> None:
    async with store.database.write() as conn:
        await conn.execute(accounts.update().where(accounts.c.id == account).values(**columns))


async def _add_mailbox(store: Store, account: str, path: str) -> None:
    async with store.database.write() as conn:
        await conn.execute(
            mailboxes.insert().values(
                account=account,
                path=path,
                name=path,
                flags=[],
                subscribed=True,
                messages=0,
                created_at=START,
            )
        )


async def test_config_signature_changes_with_configuration_only(store: Store, clock: Clock) -> None:
    """Delivery caches account webhook settings until this signature changes."""
    empty = await store.accounts.config_signature()
    await store.accounts.create_or_update("alice", values(), {"imap.pass": PASSWORD})
    created = await store.accounts.config_signature()
    assert created != empty
    await _worker_sets(store, "alice", state="connected", sync_time=START + 5)
    assert await store.accounts.config_signature() == created  # worker columns: no change
    await store.accounts.update(
        "alice", lambda account: values(**{**account.settings, "webhooks": "https://x.test/"})
    )
    edited = await store.accounts.config_signature()
    assert edited != created
    await store.accounts.delete("alice")
    clock.now += 10
    await store.accounts.create_or_update("alice", values(), {"imap.pass": PASSWORD})
    # Deleted and made again with the same id and revision: still a new signature.
    assert await store.accounts.config_signature() not in (edited, created)
