"""The folder and message list routes in process over a real store, index filled directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_kit import client_for, token_for
from test_accounts_api import store

from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, SyncState
from mailwire.domain.messages import MessageRecord
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store

__all__ = ["store"]  # the store fixture, shared with the account routes' tests


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    values = AccountValues(name="Ann", email=None, settings={}, notify_from=0)
    for account in ("ann", "bob"):
        await store.accounts.create_or_update(account, values, {})
    listed = [
        ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name"),
        ListedMailbox(MailboxInfo("Archive", "/", ("\\Archive",)), "\\Archive", "extension"),
    ]
    folders = {f.path: f.id for f in await store.index.save_listing("ann", listed)}
    records = [
        MessageRecord(
            mailbox_id=folders["INBOX"],
            uid=uid,
            flags=("\\Seen",) if uid <= 2 else (),
            size=500,
            internal_date=1_700_000_000_000 + uid,
            subject=f"hello {uid}",
            envelope={"from": {"name": "Ann", "address": "ann@example.com"}},
            structure={"text": {"plain": 3}, "attachments": []},
        )
        for uid in range(1, 6)
    ]
    await store.index.apply("ann", folders["INBOX"], added=records, state=SyncState(9, 6, None, 5))
    await store.index.apply("ann", folders["Archive"], state=SyncState(4, 1, None, 0))
    async with client_for(store, await token_for(store)) as opened:
        yield opened


async def test_mailboxes_with_counters(client: httpx.AsyncClient) -> None:
    plain = await client.get("/v1/account/ann/mailboxes")
    counted = await client.get("/v1/account/ann/mailboxes", params={"counters": "true"})

    assert plain.status_code == 200, plain.text
    inbox = next(m for m in counted.json()["mailboxes"] if m["path"] == "INBOX")
    assert inbox == {
        "path": "INBOX",
        "delimiter": "/",
        "name": "INBOX",
        "listed": True,
        "subscribed": True,
        "specialUse": "\\Inbox",
        "specialUseSource": "name",
        "messages": 5,
        "uidNext": 6,
        "status": {"messages": 5, "unseen": 3},
    }
    assert all("status" not in m for m in plain.json()["mailboxes"])


async def test_message_pages_and_cursors(client: httpx.AsyncClient) -> None:
    first = await client.get("/v1/account/ann/messages", params={"path": "INBOX", "pageSize": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["page"], body["pages"]) == (5, 0, 3)
    assert [m["uid"] for m in body["messages"]] == [5, 4]
    assert body["messages"][0]["subject"] == "hello 5"
    assert body["messages"][0]["unseen"] is True
    assert body["messages"][0]["from"] == {"name": "Ann", "address": "ann@example.com"}
    assert "prevPageCursor" not in body or body["prevPageCursor"] is None

    second = await client.get(
        "/v1/account/ann/messages",
        params={"path": "INBOX", "pageSize": 2, "cursor": body["nextPageCursor"]},
    )
    assert [m["uid"] for m in second.json()["messages"]] == [3, 2]
    assert second.json()["page"] == 1
    special = await client.get("/v1/account/ann/messages", params={"path": "\\Archive"})
    assert special.json()["total"] == 0


@pytest.mark.parametrize(
    ("url", "params", "status", "code"),
    [
        ("/v1/account/ghost/messages", {"path": "INBOX"}, 404, "AccountNotFound"),
        ("/v1/account/ghost/mailboxes", {}, 404, "AccountNotFound"),
        ("/v1/account/ann/messages", {"path": "Nowhere"}, 404, "MailboxNotFound"),
        ("/v1/account/ann/messages", {"path": "INBOX", "cursor": "mw_bogus"}, 400, None),
        ("/v1/account/ann/messages", {"path": "INBOX", "pageSize": 1001}, 400, None),
        ("/v1/account/ann/messages", {"path": "IN\x00BOX"}, 400, None),
        ("/v1/account/ann/messages", {}, 400, None),
    ],
)
async def test_errors(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, str | int],
    status: int,
    code: str | None,
) -> None:
    response = await client.get(url, params=params)

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code


async def test_an_account_bound_token_reaches_its_account_only(
    store: Store, client: httpx.AsyncClient
) -> None:
    async with client_for(store, await token_for(store, account="bob")) as bob:
        refused = await bob.get("/v1/account/ann/messages", params={"path": "INBOX"})
        own = await bob.get("/v1/account/bob/mailboxes")

    assert refused.status_code == 403
    assert own.status_code == 200
    assert own.json() == {"mailboxes": []}
