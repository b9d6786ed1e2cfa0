"""`POST /v1/account/{account}/search` in process over a real store (both databases),
on an app that includes the search router beside the standard ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from api_kit import BODY_LIMIT, token_for

from mailwire.api.app import create_app
from mailwire.api.forwarding import Forwarding, ForwardingKeys
from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, SyncState
from mailwire.domain.messages import MessageRecord
from mailwire.services.container import Services
from mailwire.store.accounts import AccountValues
from mailwire.store.leases import LeaseStore
from mailwire.store.store import Store
from mailwire.workers.commands import CommandPool


def _client(store: Store, token: str, services: Services | None = None) -> httpx.AsyncClient:
    app = create_app(services or Services.build(store), body_limit=BODY_LIMIT)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://mailwire",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    values = AccountValues(name="Ann", email=None, settings={}, notify_from=0)
    for account in ("ann", "bob"):
        await store.accounts.create_or_update(account, values, {})
    listed = [ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name")]
    (inbox,) = await store.index.save_listing("ann", listed)
    records = [
        MessageRecord(
            mailbox_id=inbox.id,
            uid=uid,
            flags=("\\Seen",) if uid <= 2 else (),
            size=500 * uid,
            internal_date=1_700_000_000_000 + uid,
            subject=f"hello {uid}",
            message_id=f"<m{uid}@example.com>",
            envelope={"from": {"name": "Ann", "address": "ann@example.com"}},
            structure={"text": {"plain": 3}, "attachments": []},
        )
        for uid in range(1, 6)
    ]
    await store.index.apply("ann", inbox.id, added=records, state=SyncState(9, 6, None, 5))
    async with _client(store, await token_for(store)) as opened:
        yield opened


async def _search(
    client: httpx.AsyncClient, body: Any, account: str = "ann", **params: Any
) -> httpx.Response:
    return await client.post(f"/v1/account/{account}/search", params=params, json=body)


async def test_a_search_answers_a_message_list(client: httpx.AsyncClient) -> None:
    response = await _search(client, {"search": {"unseen": True}}, path="INBOX", pageSize=2)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["page"], body["pages"]) == (3, 0, 2)
    assert [m["uid"] for m in body["messages"]] == [5, 4]
    assert body["messages"][0]["subject"] == "hello 5"
    assert body["messages"][0]["from"] == {"name": "Ann", "address": "ann@example.com"}
    assert "prevPageCursor" not in body

    more = await _search(
        client, {"search": {"unseen": True}}, pageSize=2, cursor=body["nextPageCursor"]
    )
    assert [m["uid"] for m in more.json()["messages"]] == [3]


@pytest.mark.parametrize(
    ("search", "uids"),
    [
        ({"seen": True, "from": "ANN@"}, [2, 1]),
        ({"subject": "hello 3"}, [3]),
        ({"larger": 1500, "smaller": 2500}, [4]),
        ({"uid": "2:3,5"}, [5, 3, 2]),
        ({"header": {"Message-ID": "<m4@example.com>"}}, [4]),
        ({"since": "2023-11-14", "before": 1_700_006_400_000}, [5, 4, 3, 2, 1]),
        ({"sentSince": "2030-01-01"}, []),
    ],
)
async def test_index_criteria(
    client: httpx.AsyncClient, search: dict[str, Any], uids: list[int]
) -> None:
    response = await _search(client, {"search": search}, path="INBOX")

    assert response.status_code == 200, response.text
    assert [m["uid"] for m in response.json()["messages"]] == uids


@pytest.mark.parametrize(
    ("account", "params", "body", "status", "code"),
    [
        ("ghost", {"path": "INBOX"}, {"search": {"seen": True}}, 404, "AccountNotFound"),
        ("ann", {"path": "Nowhere"}, {"search": {"seen": True}}, 404, "MailboxNotFound"),
        ("ghost", {"path": "INBOX"}, {"search": {"body": "hi"}}, 404, "AccountNotFound"),
        ("ann", {"path": "INBOX"}, {"search": {"body": "hi"}}, 503, "AccountNotConnected"),
        ("ann", {"path": "INBOX"}, {"search": {"gmailRaw": "x"}}, 503, "AccountNotConnected"),
        ("ann", {"path": "INBOX"}, {"search": {"seq": "1:2"}}, 400, None),
        ("ann", {"path": "INBOX"}, {"search": {"uid": "1:x"}}, 400, None),
        ("ann", {"path": "INBOX"}, {"search": {"nope": 1}}, 400, None),
        ("ann", {"path": "INBOX"}, {}, 400, None),
        ("ann", {"path": "INBOX", "cursor": "mws_bogus"}, {"search": {}}, 400, None),
        ("ann", {"path": "INBOX", "pageSize": 0}, {"search": {}}, 400, None),
    ],
)
async def test_errors(
    client: httpx.AsyncClient,
    account: str,
    params: dict[str, Any],
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    response = await _search(client, body, account, **params)

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["message"]


async def test_an_account_bound_token_searches_its_account_only(
    store: Store, client: httpx.AsyncClient
) -> None:
    async with _client(store, await token_for(store, account="bob")) as bob:
        refused = await _search(bob, {"search": {}}, "ann", path="INBOX")
        own = await _search(bob, {"search": {}}, "bob", path="INBOX")

    assert refused.status_code == 403, refused.text
    assert own.status_code == 404  # bob has no folders indexed


async def test_the_operation_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/account/{account}/search"]["post"]

    assert operation["operationId"] == "postV1AccountAccountSearch"
    assert operation["tags"] == ["Message"]
    assert {"200", "404", "502", "503"} <= set(operation["responses"])


class _Unreachable:
    """Workers whose only account's connections go to a port where nothing listens."""

    def __init__(self) -> None:
        self.pool = CommandPool(self._connect, size=1)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[ImapConnection]:
        yield await ImapConnection.open("127.0.0.1", 1, security="none")

    def commands(self, account_id: str) -> CommandPool | None:
        return self.pool if account_id == "ann" else None


async def test_a_failing_server_answers_502(store: Store, client: httpx.AsyncClient) -> None:
    services = Services.build(store)
    workers = _Unreachable()
    services.connections.attach(workers)
    try:
        async with _client(store, await token_for(store), services) as local:
            failed = await _search(local, {"search": {"body": "hi"}}, path="INBOX")
    finally:
        await workers.pool.close()

    assert failed.status_code == 502, failed.text
    assert failed.json()["code"] == "MailServerError"


async def test_a_server_search_is_forwarded_to_the_owner(
    store: Store, client: httpx.AsyncClient
) -> None:
    """Node A holds no connection for "ann"; node B owns it (its server fails: 502)."""
    keys = ForwardingKeys.from_secrets(["search-forwarding-test"])
    leases = LeaseStore(store.database)
    await leases.register("node-b", host="test", pid=1, address="http://node-b")
    assert "ann" in await leases.claim("node-b", 10)
    owner_services = Services.build(store)
    workers = _Unreachable()
    owner_services.connections.attach(workers)
    owner = create_app(owner_services, body_limit=BODY_LIMIT)
    owner.state.forwarding = Forwarding(node_id="node-b", keys=keys, owners=leases)
    here = create_app(Services.build(store), body_limit=BODY_LIMIT)
    here.state.forwarding = Forwarding(
        node_id="node-a", keys=keys, owners=leases, transport=httpx.ASGITransport(app=owner)
    )
    transport = httpx.ASGITransport(app=here, client=("127.0.0.1", 50000))
    token = await token_for(store)
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://node-a",
            headers={"Authorization": f"Bearer {token}"},
        ) as node_a:
            forwarded = await _search(node_a, {"search": {"body": "hi"}}, path="INBOX")
            local = await _search(node_a, {"search": {"seen": True}}, path="INBOX")
    finally:
        await workers.pool.close()
        await here.state.forwarding.aclose()
        await owner.state.forwarding.aclose()

    assert forwarded.status_code == 502, forwarded.text  # the owner's answer, body and all
    assert forwarded.json()["code"] == "MailServerError"
    assert local.status_code == 200, local.text
    assert [m["uid"] for m in local.json()["messages"]] == [2, 1]
