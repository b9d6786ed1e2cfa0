"""AccountStateStore: ownership checks, events in the same transaction, the dedup rules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mailwire.domain.accounts import AccountState
from mailwire.domain.events import Event, EventName
from mailwire.store.account_states import AccountStateStore
from mailwire.store.schema import accounts
from mailwire.store.store import Store


async def insert_account(store: Store, account_id: str, owner: str | None) -> None:
    async with store.database.write() as conn:
        await conn.execute(
            accounts.insert().values(
                id=account_id,
                name=account_id,
                email=None,
                kind="imap",
                settings={},
                state="init",
                last_error=None,
                notify_from=0,
                created_at=0,
                updated_at=0,
                initialized=False,
                revision=0,
                sync_seq=0,
                owner=owner,
                lease_expires=None if owner is None else 2**40,
            )
        )


async def row(store: Store, account_id: str) -> sa.RowMapping:
    async with store.database.read() as conn:
        result = await conn.execute(accounts.select().where(accounts.c.id == account_id))
        return result.one()._mapping


async def names(store: Store) -> list[str]:
    return [str(event.event) for event in await store.outbox.read_after(0)]


AUTH_FAIL: dict[str, Any] = {"response": "no", "serverResponseCode": "AUTHENTICATIONFAILED"}


async def test_transition_writes_state_and_events_only_for_the_owner(store: Store) -> None:
    await insert_account(store, "a", owner="n1")
    mine = AccountStateStore(store.database, "n1")
    theirs = AccountStateStore(store.database, "n2")
    event = Event("a", EventName.CONNECT_ERROR, {"serverResponseCode": "X"})
    assert not await theirs.transition("a", AccountState.CONNECTING, events=[event])
    assert (await row(store, "a"))["state"] == "init"
    assert await mine.transition("a", AccountState.CONNECTING, events=[event])
    assert (await row(store, "a"))["state"] == "connecting"
    assert await names(store) == ["connectError"]
    assert not await mine.transition("missing", AccountState.CONNECTING)


async def test_errors_are_not_raised_twice_for_the_same_code(store: Store) -> None:
    await insert_account(store, "a", owner="n1")
    states = AccountStateStore(store.database, "n1")
    error_state = AccountState.AUTHENTICATION_ERROR
    assert await states.failed("a", error_state, EventName.AUTHENTICATION_ERROR, AUTH_FAIL)
    await states.transition("a", AccountState.CONNECTING)
    again = {**AUTH_FAIL, "response": "different words"}
    assert not await states.failed("a", error_state, EventName.AUTHENTICATION_ERROR, again)
    refused = {"response": "refused", "serverResponseCode": "ECONNREFUSED"}
    assert await states.failed("a", AccountState.CONNECT_ERROR, EventName.CONNECT_ERROR, refused)
    assert await names(store) == ["authenticationError", "connectError"]
    current = await row(store, "a")
    assert current["state"] == "connectError"
    assert current["last_error"] == refused


async def test_authentication_success_first_time_and_after_errors_only(store: Store) -> None:
    await insert_account(store, "a", owner="n1")
    states = AccountStateStore(store.database, "n1")
    assert await states.authenticated("a", "alice")
    assert not await states.authenticated("a", "alice")  # a clean reconnect
    await states.failed("a", AccountState.CONNECT_ERROR, EventName.CONNECT_ERROR, AUTH_FAIL)
    assert await states.authenticated("a", "alice")
    assert await names(store) == [
        "authenticationSuccess",
        "connectError",
        "authenticationSuccess",
    ]
    events = await store.outbox.read_after(0)
    assert events[0].data == {"user": "alice"}
    assert (await row(store, "a"))["state"] == "syncing"


async def test_account_initialized_once(store: Store) -> None:
    await insert_account(store, "a", owner="n1")
    states = AccountStateStore(store.database, "n1")
    assert await states.connected("a")
    assert not await states.connected("a")
    current = await row(store, "a")
    assert current["initialized"] is True
    assert current["state"] == "connected"
    assert current["sync_time"] is not None
    events = await store.outbox.read_after(0)
    assert [(e.event, e.data) for e in events] == [
        (EventName.ACCOUNT_INITIALIZED, {"initialized": True})
    ]
