"""The sync engine against the real Dovecot: index, events exactly once, resync, resets.

A second client (imaplib, in a thread) changes the mailbox the way a user's
mail program would while `AccountSync` runs; the outbox must then hold exactly
the events those changes call for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import imaplib
import secrets
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from imap_kit import Opener, running_sync
from mailwire.backends.imap import sync
from mailwire.backends.imap.folder import Index
from mailwire.domain.accounts import Account
from mailwire.domain.events import EventName, StoredEvent
from mailwire.domain.messages import decode_message_id
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store
from mailwire.testing.dovecot import Dovecot, MailUser

WAIT_S = 20.0


def _message(subject: str, body: str = "hello") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    message.set_content(body)
    return bytes(message)


@pytest.fixture
def user(dovecot: Dovecot) -> MailUser:
    return dovecot.add_user(f"sync-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


async def _account(store: Store, dovecot: Dovecot, user: MailUser, **extra: Any) -> Account:
    settings = {
        "imap": {
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "secure": False,
            "auth": {"user": user.name},
        },
        **extra,
    }
    values = AccountValues(name=user.name, email=None, settings=settings, notify_from=_now_ms())
    await store.accounts.create_or_update(user.name, values, {"imap.pass": user.password})
    account = await store.accounts.get(user.name)
    assert account is not None
    return account


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


class Client:
    """A user's mail program: imaplib in a worker thread."""

    def __init__(self, dovecot: Dovecot, user: MailUser) -> None:
        self._dovecot = dovecot
        self._user = user

    async def run(self, action: Callable[[imaplib.IMAP4], Any]) -> Any:
        def work() -> Any:
            client = imaplib.IMAP4(self._dovecot.host, self._dovecot.imap_port)
            try:
                client.login(self._user.name, self._user.password)
                return action(client)
            finally:
                client.logout()

        return await asyncio.to_thread(work)

    async def append(self, folder: str, raw: bytes) -> None:
        def action(client: imaplib.IMAP4) -> None:
            status, _ = client.append(
                folder, "", imaplib.Time2Internaldate(dt.datetime.now(dt.UTC)), raw
            )
            assert status == "OK"

        await self.run(action)


async def _events(store: Store, account: str) -> list[StoredEvent]:
    return [event for event in await store.outbox.read_after(0) if event.account == account]


async def _wait_for(
    store: Store, account: str, predicate: Callable[[list[StoredEvent]], bool]
) -> list[StoredEvent]:
    async with asyncio.timeout(WAIT_S):
        while True:
            events = await _events(store, account)
            if predicate(events):
                return events
            await asyncio.sleep(0.1)


def _named(events: list[StoredEvent], name: EventName) -> list[StoredEvent]:
    return [event for event in events if event.event == name]


async def test_initial_index_is_silent_and_lists_special_folders(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    old = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    for number in range(3):
        dovecot.deliver(user.name, _message(f"old {number}"), internaldate=old)
    dovecot.deliver(user.name, _message("sent one"), folder="Sent", internaldate=old)
    account = await _account(store, dovecot, user)
    async with running_sync(store, account, user):
        mailboxes = {mailbox.path: mailbox for mailbox in await store.index.mailboxes(account.id)}
    assert mailboxes["INBOX"].special_use == "\\Inbox"
    assert mailboxes["INBOX"].messages == 3
    assert mailboxes["Sent"].special_use == "\\Sent"
    assert mailboxes["Sent"].messages == 1
    assert mailboxes["INBOX"].uid_validity is not None
    assert _named(await _events(store, account.id), EventName.MESSAGE_NEW) == []


async def test_changes_raise_each_event_once(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    dovecot.deliver(
        user.name, _message("before"), internaldate=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    account = await _account(store, dovecot, user)
    client = Client(dovecot, user)
    async with running_sync(store, account, user):
        await client.append("INBOX", _message("fresh news"))
        events = await _wait_for(
            store, account.id, lambda e: len(_named(e, EventName.MESSAGE_NEW)) >= 1
        )
        new = _named(events, EventName.MESSAGE_NEW)[0]
        assert new.path == "INBOX"
        assert new.special_use == "\\Inbox"
        assert new.data["subject"] == "fresh news"
        assert new.data["from"] == {"name": "Ann Example", "address": "ann@example.com"}
        assert new.data["unseen"] is True
        key = decode_message_id(new.data["id"])
        assert key is not None
        assert key.uid == new.data["uid"]

        def flag(c: imaplib.IMAP4) -> None:
            c.select("INBOX")
            c.uid("STORE", str(new.data["uid"]), "+FLAGS", "(\\Flagged \\Seen)")

        await client.run(flag)
        events = await _wait_for(
            store, account.id, lambda e: bool(_named(e, EventName.MESSAGE_UPDATED))
        )
        updated = _named(events, EventName.MESSAGE_UPDATED)[0]
        assert updated.data["id"] == new.data["id"]
        assert set(updated.data["changes"]["flags"]["added"]) == {"\\Flagged", "\\Seen"}

        def move(c: imaplib.IMAP4) -> None:
            c.select("INBOX")
            c.uid("MOVE", str(new.data["uid"]), "Archive")

        await client.run(move)
        events = await _wait_for(
            store,
            account.id,
            lambda e: (
                bool(_named(e, EventName.MESSAGE_DELETED))
                and any(x.path == "Archive" for x in _named(e, EventName.MESSAGE_NEW))
            ),
        )
        deleted = _named(events, EventName.MESSAGE_DELETED)
        assert [(d.data["id"], d.path) for d in deleted] == [(new.data["id"], "INBOX")]
        archived = [x for x in _named(events, EventName.MESSAGE_NEW) if x.path == "Archive"]
        assert len(archived) == 1
        assert archived[0].special_use == "\\Archive"
        assert archived[0].data["id"] != new.data["id"]
        await asyncio.sleep(1.0)
        settled = await _events(store, account.id)
    names = [event.event for event in settled]
    assert names.count(EventName.MESSAGE_NEW) == 2
    assert names.count(EventName.MESSAGE_UPDATED) == 1
    assert names.count(EventName.MESSAGE_DELETED) == 1


async def test_resync_after_reconnect_announces_nothing_twice(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    account = await _account(store, dovecot, user)
    client = Client(dovecot, user)
    async with running_sync(store, account, user):
        await client.append("INBOX", _message("one"))
        await _wait_for(store, account.id, lambda e: len(_named(e, EventName.MESSAGE_NEW)) == 1)
    # While nobody watches: one more message, and the first one is deleted.
    await client.append("INBOX", _message("two"))

    def delete_first(c: imaplib.IMAP4) -> None:
        c.select("INBOX")
        c.store("1", "+FLAGS", "(\\Deleted)")
        c.expunge()

    await client.run(delete_first)
    async with running_sync(store, account, user):
        events = await _events(store, account.id)
    new = _named(events, EventName.MESSAGE_NEW)
    assert [event.data["subject"] for event in new] == ["one", "two"]
    assert len(_named(events, EventName.MESSAGE_DELETED)) == 1
    inbox = next(m for m in await store.index.mailboxes(account.id) if m.path == "INBOX")
    assert inbox.messages == 1


async def test_uidvalidity_change_resets_the_folder_silently(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    client = Client(dovecot, user)

    def make_folder(c: imaplib.IMAP4) -> None:
        c.create("Projects")

    await client.run(make_folder)
    await client.append("Projects", _message("p1"))
    # Created after p1 arrived, so p1 predates notifyFrom: indexed without an event.
    await asyncio.sleep(1.1)
    account = await _account(store, dovecot, user)
    async with running_sync(store, account, user):
        pass
    before = next(m for m in await store.index.mailboxes(account.id) if m.path == "Projects")

    def recreate(c: imaplib.IMAP4) -> None:
        c.delete("Projects")
        c.create("Projects")

    await client.run(recreate)
    await client.append("Projects", _message("p2"))
    await client.append("Projects", _message("p3"))
    async with running_sync(store, account, user):
        after = next(m for m in await store.index.mailboxes(account.id) if m.path == "Projects")
        events = await _events(store, account.id)
    resets = _named(events, EventName.MAILBOX_RESET)
    assert len(resets) == 1
    assert resets[0].data["reason"] == "uidValidityChange"
    assert resets[0].data["prevUidValidity"] == str(before.uid_validity)
    assert after.uid_validity != before.uid_validity
    assert after.messages == 2
    assert [e for e in _named(events, EventName.MESSAGE_NEW) if e.path == "Projects"] == []


@pytest.mark.parametrize("subconnections", [["\\Sent"], []], ids=["watched", "swept"])
async def test_a_subconnection_sees_its_folder_change_at_once(
    store: Store,
    dovecot: Dovecot,
    user: MailUser,
    monkeypatch: pytest.MonkeyPatch,
    subconnections: list[str],
) -> None:
    # The STATUS sweep would find the new message only after 30 s: within a few
    # seconds, only the Sent folder's own IDLE connection can have seen it.
    monkeypatch.setattr(sync, "SWEEP_MIN_S", 30.0)
    monkeypatch.setattr(sync, "SWEEP_MAX_S", 30.0)
    old = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    dovecot.deliver(user.name, _message("sent before"), folder="Sent", internaldate=old)
    account = await _account(store, dovecot, user, subconnections=subconnections)
    opener = Opener(dovecot, user)
    async with running_sync(store, account, user, connect=opener):
        await Client(dovecot, user).append("Sent", _message("just sent"))
        if subconnections:
            events = await _wait_for(
                store, account.id, lambda e: bool(_named(e, EventName.MESSAGE_NEW))
            )
            assert [(x.path, x.data["subject"]) for x in _named(events, EventName.MESSAGE_NEW)] == [
                ("Sent", "just sent")
            ]
            assert opener.open_now == 1
        else:
            await asyncio.sleep(4.0)
            assert _named(await _events(store, account.id), EventName.MESSAGE_NEW) == []
            assert opener.opened == 0
    assert opener.open_now == 0  # the session's end closed its subconnection


async def test_sync_from_leaves_older_messages_out_of_the_index(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    for day in (dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 6, 30, tzinfo=dt.UTC)):
        dovecot.deliver(user.name, _message(f"old {day:%Y}"), internaldate=day)
    for day in (dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC), dt.datetime(2026, 1, 5, tzinfo=dt.UTC)):
        dovecot.deliver(user.name, _message(f"kept {day:%Y}"), internaldate=day)
    account = await _account(store, dovecot, user, syncFrom="2025-07-01T00:00:00+00:00")
    client = Client(dovecot, user)
    async with running_sync(store, account, user):
        inbox = next(m for m in await store.index.mailboxes(account.id) if m.path == "INBOX")
        assert sorted(await store.index.known_flags(inbox.id)) == [3, 4]
        assert inbox.messages == 4  # the folder's count on the server
        await client.append("INBOX", _message("brand new"))
        events = await _wait_for(
            store, account.id, lambda e: bool(_named(e, EventName.MESSAGE_NEW))
        )
        assert [x.data["subject"] for x in _named(events, EventName.MESSAGE_NEW)] == ["brand new"]
        assert sorted(await store.index.known_flags(inbox.id)) == [3, 4, 5]


class CountingIndex:
    """The store's index, counting listing writes."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self.listing_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    async def save_listing(self, *args: Any, **kwargs: Any) -> Any:
        self.listing_writes += 1
        return await self._index.save_listing(*args, **kwargs)


async def test_an_unchanged_listing_is_not_written_again(
    store: Store, dovecot: Dovecot, user: MailUser
) -> None:
    account = await _account(store, dovecot, user)
    index = CountingIndex(store.index)
    async with running_sync(store, account, user, index=index) as wake:  # type: ignore[arg-type]
        assert index.listing_writes == 1
        for _ in range(3):  # each wake-up lists the folders again
            wake.set()
            await asyncio.sleep(0.6)
        assert index.listing_writes == 1

        def create(c: imaplib.IMAP4) -> None:
            c.create("Projects")

        await Client(dovecot, user).run(create)
        wake.set()
        events = await _wait_for(
            store, account.id, lambda e: bool(_named(e, EventName.MAILBOX_NEW))
        )
        assert [x.path for x in _named(events, EventName.MAILBOX_NEW)] == ["Projects"]
        assert index.listing_writes == 2
