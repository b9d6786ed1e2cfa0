"""Searches: how criteria split between index and server, paging and cursors, refusals,
and a body search on the real Dovecot through a real `CommandPool`, over an index
filled by the real sync engine."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from imap_kit import Opener, running_sync
from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.search import SearchCriteria
from mailwire.domain.accounts import Account
from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, SyncState
from mailwire.domain.messages import MessageRecord
from mailwire.errors import InputError, NotFoundError, UpstreamError
from mailwire.services.connections import LocalConnections
from mailwire.services.messages import MessageService
from mailwire.services.search import (
    AccountNotConnectedError,
    SearchService,
    plan,
)
from mailwire.store.accounts import AccountValues
from mailwire.store.index_search import IndexCriteria
from mailwire.store.store import Store
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.workers.commands import CommandPool

WAIT_S = 20.0


# ---------------------------------------------------------------- planning


def test_index_criteria_stay_in_the_index() -> None:
    planned = plan(
        {
            "seen": False,
            "flagged": True,
            "from": "ann@example.com",
            "subject": "report",
            "larger": 10,
            "smaller": 99,
            "since": datetime(2024, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
            "sentBefore": datetime(2024, 2, 1, tzinfo=UTC),
            "uid": "1:*",
            "emailId": "e1",
            "threadId": "t1",
            "modseq": 5,
            "header": {"Message-ID": "<a@b>"},
            "labels": {"has": ["Work"], "not": ["Spam"]},
        }
    )

    assert planned.server is None
    assert planned.index == IndexCriteria(
        flags=(("\\Seen", False), ("\\Flagged", True)),
        from_="ann@example.com",
        subject="report",
        larger=10,
        smaller=99,
        since=date(2024, 1, 3),  # the UTC day of the moment given
        sent_before=date(2024, 2, 1),
        uids="1:*",
        email_id="e1",
        thread_id="t1",
        modseq=5,
        message_id="<a@b>",
        labels_has=("Work",),
        labels_not=("Spam",),
    )


def test_what_only_the_message_holds_goes_to_the_server() -> None:
    planned = plan(
        {
            "unseen": True,
            "body": "invoice",
            "to": "bob@example.com",
            "cc": "carol",
            "bcc": "dave",
            "from": "Ann <ann@",
            "subject": "Grüße",
            "header": {"X-Campaign": "spring", "Message-ID": "partial@"},
        }
    )

    assert planned.index == IndexCriteria(flags=(("\\Seen", False),))
    assert planned.server == SearchCriteria(
        body="invoice",
        to="bob@example.com",
        cc="carol",
        bcc="dave",
        from_="Ann <ann@",
        subject="Grüße",
        headers=(("X-Campaign", "spring"), ("Message-ID", "partial@")),
    )


def test_email_ids_ignore_every_other_criterion_and_seq_is_refused() -> None:
    planned = plan({"emailIds": ["a", "b"], "body": "x"})
    assert (planned.index, planned.server) == (IndexCriteria(email_ids=("a", "b")), None)
    with pytest.raises(InputError) as refused:
        plan({"seq": "1:5"})
    assert refused.value.key == "search.seq"


# ---------------------------------------------------------------- index-only searches


async def _filled(store: Store) -> int:
    values = AccountValues(name="acc", email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update("acc", values, {})
    listed = [ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name")]
    (inbox,) = await store.index.save_listing("acc", listed)
    records = [
        MessageRecord(
            mailbox_id=inbox.id,
            uid=uid,
            flags=("\\Seen",) if uid % 2 else (),
            size=1000 + uid,
            internal_date=1_700_000_000_000 + uid,
            subject=f"note {uid}",
            envelope={"from": {"name": "Ann", "address": "ann@example.com"}},
        )
        for uid in range(1, 11)
    ]
    await store.index.apply("acc", inbox.id, added=records, state=SyncState(7, 11, None, 10))
    return inbox.id


def _service(store: Store, connections: LocalConnections | None = None) -> SearchService:
    return SearchService(store, MessageService(store), connections or LocalConnections())


async def test_pages_and_cursors_walk_the_matches(store: Store) -> None:
    await _filled(store)
    service = _service(store)
    unread = {"unseen": True}

    first = await service.search("acc", unread, path="inbox", page_size=2)
    second = await service.search(
        "acc", unread, path=None, page_size=2, cursor=first["nextPageCursor"]
    )
    back = await service.search(
        "acc", unread, path=None, page_size=2, cursor=second["prevPageCursor"]
    )
    by_page = await service.search("acc", unread, path="INBOX", page=2, page_size=2)

    assert [m["uid"] for m in first["messages"]] == [10, 8]
    assert (first["total"], first["page"], first["pages"]) == (5, 0, 3)
    assert first["prevPageCursor"] is None
    assert first["nextPageCursor"].startswith("mws_")
    assert first["messages"][0]["unseen"] is True
    assert first["messages"][0]["path"] == "INBOX"
    assert ([m["uid"] for m in second["messages"]], second["page"]) == ([6, 4], 1)
    assert ([m["uid"] for m in back["messages"]], back["page"]) == ([10, 8], 0)
    assert ([m["uid"] for m in by_page["messages"]], by_page["nextPageCursor"]) == ([2], None)


async def test_cursors_only_continue_their_own_search(store: Store) -> None:
    await _filled(store)
    service = _service(store)
    messages = MessageService(store)
    found = await service.search("acc", {"unseen": True}, path="INBOX", page_size=2)
    listed = await messages.list_messages("acc", path="INBOX", page_size=2)

    for search, cursor in [
        ({"seen": True}, found["nextPageCursor"]),  # another search
        ({"unseen": True}, listed["nextPageCursor"]),  # a message-list cursor
        ({"unseen": True}, "mws_garbage"),
    ]:
        with pytest.raises(InputError) as refused:
            await service.search("acc", search, path="INBOX", cursor=cursor)
        assert refused.value.key == "cursor"
    with pytest.raises(InputError):  # and a search cursor is no list cursor
        await messages.list_messages("acc", path="INBOX", cursor=found["nextPageCursor"])


async def test_unknown_account_and_folder(store: Store) -> None:
    await _filled(store)
    service = _service(store)
    for account, path, code in [
        ("ghost", "INBOX", "AccountNotFound"),
        ("acc", "No", "MailboxNotFound"),
    ]:
        with pytest.raises(NotFoundError) as missing:
            await service.search(account, {"seen": True}, path=path)
        assert missing.value.code == code


async def test_server_criteria_need_the_account_here(store: Store) -> None:
    await _filled(store)
    service = _service(store)  # no worker attached: no account is local

    with pytest.raises(AccountNotConnectedError) as refused:
        await service.search("acc", {"body": "hello"}, path="INBOX")
    assert refused.value.code == "AccountNotConnected"
    with pytest.raises(AccountNotConnectedError):
        await service.search("acc", {"gmailRaw": "has:attachment"}, path="INBOX")


# ---------------------------------------------------------------- the real server


def _message(subject: str, body: str, sender: str = "Ann Example <ann@example.com>") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    message.set_content(body)
    return bytes(message)


class Workers:
    """The supervisor as `LocalConnections` sees it: one account's pool."""

    def __init__(self, account: str, pool: CommandPool) -> None:
        self.account, self.pool = account, pool

    def commands(self, account_id: str) -> CommandPool | None:
        return self.pool if account_id == self.account else None


async def _account(store: Store, dovecot: Dovecot, user: MailUser) -> Account:
    settings: dict[str, Any] = {
        "imap": {
            "host": dovecot.host,
            "port": dovecot.imap_port,
            "secure": False,
            "auth": {"user": user.name},
        }
    }
    values = AccountValues(name=user.name, email=None, settings=settings, notify_from=0)
    await store.accounts.create_or_update(user.name, values, {"imap.pass": user.password})
    account = await store.accounts.get(user.name)
    assert account is not None
    return account


async def test_a_body_search_goes_to_the_server_and_lists_from_the_index(
    store: Store, dovecot: Dovecot
) -> None:
    user = dovecot.add_user(f"search-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    old = datetime(2024, 3, 1, 12, tzinfo=UTC)
    dovecot.deliver(user.name, _message("one", "the invoice is attached"), internaldate=old)
    dovecot.deliver(user.name, _message("two", "nothing to see"), internaldate=old)
    dovecot.deliver(
        user.name, _message("three", "second INVOICE here"), internaldate=old, flags="S"
    )
    dovecot.deliver(
        user.name,
        _message("four", "an invoice from Carl", "Carl <carl@example.org>"),
        internaldate=old,
    )
    account = await _account(store, dovecot, user)
    pool = CommandPool(Opener(dovecot, user), size=1)
    connections = LocalConnections()
    connections.attach(Workers(account.id, pool))
    service = _service(store, connections)
    try:
        async with running_sync(store, account, user):
            invoices = await service.search(account.id, {"body": "invoice"}, path="INBOX")
            unread = await service.search(
                account.id, {"body": "invoice", "unseen": True}, path="INBOX", page_size=1
            )
            following = await service.search(
                account.id,
                {"body": "invoice", "unseen": True},
                path="INBOX",
                page_size=1,
                cursor=unread["nextPageCursor"],
            )
            from_ann = await service.search(
                account.id, {"body": "invoice", "from": "ANN@example"}, path="INBOX"
            )
            nothing = await service.search(account.id, {"body": "no such words"}, path="INBOX")
            with pytest.raises(InputError) as gmail:
                await service.search(account.id, {"gmailRaw": "in:unread"}, path="INBOX")
    finally:
        await pool.close()

    assert [m["subject"] for m in invoices["messages"]] == ["four", "three", "one"]
    assert invoices["total"] == 3
    assert invoices["messages"][0]["from"] == {"name": "Carl", "address": "carl@example.org"}
    assert ([m["subject"] for m in unread["messages"]], unread["total"]) == (["four"], 2)
    assert [m["subject"] for m in following["messages"]] == ["one"]
    assert following["nextPageCursor"] is None
    assert [m["subject"] for m in from_ann["messages"]] == ["three", "one"]
    assert (nothing["messages"], nothing["total"]) == ([], 0)
    assert gmail.value.key == "search.gmailRaw"
    assert "X-GM-EXT-1" in str(gmail.value)


class Unreachable:
    """A `connect` to a port where nothing listens."""

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[ImapConnection]:
        conn = await ImapConnection.open("127.0.0.1", 1, security="none")
        yield conn


async def test_a_failing_server_is_an_upstream_error(store: Store) -> None:
    await _filled(store)
    pool = CommandPool(Unreachable(), size=1)
    connections = LocalConnections()
    connections.attach(Workers("acc", pool))
    service = _service(store, connections)
    try:
        with pytest.raises(UpstreamError) as failed:
            await service.search("acc", {"body": "hello"}, path="INBOX")
        indexed = await service.search("acc", {"seen": True}, path="INBOX")  # no server needed
    finally:
        await pool.close()

    assert failed.value.code == "MailServerError"
    assert indexed["total"] == 5
