"""The message change routes in process: validation, refusals decided from the index, 5xx.

The index is filled directly; the account's "worker" holds a command pool whose
server cannot be reached, so every request that gets as far as the mail server
answers 502, and everything refused before that is proved not to need it.
Success paths run against the real Dovecot in `tests/e2e/test_e2e_message_changes.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from api_kit import token_for
from test_accounts_api import store

from mailwire.api.app import create_app
from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.mailboxes import ListedMailbox, MailboxInfo, SyncState
from mailwire.domain.messages import MessageRecord, encode_message_id
from mailwire.services.container import Services
from mailwire.services.message_changes import MAX_BULK_MESSAGES
from mailwire.store.accounts import AccountValues
from mailwire.store.index_search import IndexCriteria
from mailwire.store.store import Store
from mailwire.workers.commands import CommandPool

__all__ = ["store"]

BODY_LIMIT = 1024 * 1024
VALIDITY = 7


class _Unreachable:
    """Workers holding account "ann", whose connections go where nothing listens."""

    def __init__(self) -> None:
        self.pool = CommandPool(self._connect, size=1)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[ImapConnection]:
        yield await ImapConnection.open("127.0.0.1", 1, security="none")

    def commands(self, account_id: str) -> CommandPool | None:
        return self.pool if account_id == "ann" else None


@pytest.fixture
async def folders(store: Store) -> dict[str, int]:
    """ "ann" with INBOX (3 messages) and Archive, and no Trash folder."""
    values = AccountValues(name="Ann", email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update("ann", values, {})
    listed = [
        ListedMailbox(MailboxInfo("INBOX", "/", ()), "\\Inbox", "name"),
        ListedMailbox(MailboxInfo("Archive", "/", ("\\Archive",)), "\\Archive", "extension"),
    ]
    ids = {f.path: f.id for f in await store.index.save_listing("ann", listed)}
    await store.index.apply(
        "ann", ids["INBOX"], added=_records(ids["INBOX"], 3), state=SyncState(VALIDITY, 4, None, 3)
    )
    await store.index.apply("ann", ids["Archive"], state=SyncState(VALIDITY, 1, None, 0))
    return ids


@pytest.fixture
async def client(store: Store, folders: dict[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    services = Services.build(store)
    workers = _Unreachable()
    services.connections.attach(workers)
    try:
        async with _client(services, await token_for(store)) as opened:
            yield opened
    finally:
        await workers.pool.close()


def _client(services: Services, token: str) -> httpx.AsyncClient:
    app = create_app(services, body_limit=BODY_LIMIT)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
        base_url="http://mailwire",
        headers={"Authorization": f"Bearer {token}"},
    )


def _records(mailbox_id: int, count: int) -> list[MessageRecord]:
    return [
        MessageRecord(
            mailbox_id=mailbox_id,
            uid=uid,
            flags=(),
            size=100,
            internal_date=1_700_000_000_000 + uid,
            subject=f"hello {uid}",
            envelope={},
            structure={"text": {"plain": 3}, "attachments": []},
        )
        for uid in range(1, count + 1)
    ]


def _id(folders: dict[str, int], uid: int = 1) -> str:
    return encode_message_id(folders["INBOX"], VALIDITY, uid)


@pytest.mark.parametrize(
    ("method", "suffix", "params", "body"),
    [
        ("PUT", "message/{id}", {}, {"flags": {"add": ["two words"]}}),
        ("PUT", "message/{id}", {}, {"flags": {"add": ["\\Recent"]}}),
        ("PUT", "message/{id}", {}, {"flags": {"toggle": ["\\Seen"]}}),
        ("PUT", "message/{id}", {}, {"colour": "red"}),
        ("PUT", "message/not-an-id", {}, {"flags": {"add": ["\\Seen"]}}),
        ("PUT", "message/{id}/move", {}, {}),
        ("PUT", "message/{id}/move", {}, {"path": "IN\x00BOX"}),
        ("DELETE", "message/{id}", {"force": "perhaps"}, None),
        ("PUT", "messages", {}, {"search": {}}),
        ("PUT", "messages", {"path": "INBOX"}, {"update": {}}),
        ("PUT", "messages/move", {"path": "INBOX"}, {"search": {}}),
        ("PUT", "messages/delete", {"path": "INBOX"}, {"search": {"unknown": 1}}),
    ],
)
async def test_invalid_requests_are_400(
    client: httpx.AsyncClient,
    folders: dict[str, int],
    method: str,
    suffix: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
) -> None:
    url = f"/v1/account/ann/{suffix.replace('{id}', _id(folders))}"
    response = await client.request(method, url, params=params, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["statusCode"] == 400


@pytest.mark.parametrize(
    ("method", "suffix", "params", "body", "status", "code"),
    [
        # Decided from the index: the unreachable server is never asked.
        ("DELETE", "message/{id}", {}, None, 409, "TrashNotFound"),
        ("PUT", "messages/delete", {"path": "INBOX"}, {"search": {}}, 409, "TrashNotFound"),
        ("PUT", "message/{id}/move", {}, {"path": "INBOX"}, 400, None),
        ("PUT", "message/{id}/move", {}, {"path": "Nowhere"}, 404, "MailboxNotFound"),
        ("PUT", "message/{id}/move", {}, {"path": "\\Trash"}, 404, "MailboxNotFound"),
        ("PUT", "message/AAAAAQAAAAEAAAAB", {}, {"flags": {"add": "\\Seen"}}, 404, None),
        ("PUT", "messages", {"path": "Nowhere"}, {"search": {}}, 404, "MailboxNotFound"),
        # These reach the server, which cannot be reached.
        ("PUT", "message/{id}", {}, {"flags": {"add": "\\Seen"}}, 502, "MailServerError"),
        ("PUT", "message/{id}/move", {}, {"path": "Archive"}, 502, "MailServerError"),
        ("DELETE", "message/{id}", {"force": "true"}, None, 502, "MailServerError"),
        (
            "PUT",
            "messages/move",
            {"path": "INBOX"},
            {"search": {}, "path": "\\Archive"},
            502,
            "MailServerError",
        ),
    ],
)
async def test_refusals_and_server_failures(
    client: httpx.AsyncClient,
    store: Store,
    folders: dict[str, int],
    method: str,
    suffix: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
    status: int,
    code: str | None,
) -> None:
    url = f"/v1/account/ann/{suffix.replace('{id}', _id(folders))}"
    response = await client.request(method, url, params=params, json=body)

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
    assert len(await store.search.matching_uids(folders["INBOX"], IndexCriteria(), [1, 2, 3])) == 3


async def test_a_bulk_request_over_the_limit_is_refused(
    client: httpx.AsyncClient, store: Store, folders: dict[str, int]
) -> None:
    many = _records(folders["INBOX"], MAX_BULK_MESSAGES + 1)[3:]
    await store.index.apply("ann", folders["INBOX"], added=many)
    response = await client.put(
        "/v1/account/ann/messages",
        params={"path": "INBOX"},
        json={"search": {}, "update": {"flags": {"add": ["\\Seen"]}}},
    )

    assert response.status_code == 400, response.text
    assert str(MAX_BULK_MESSAGES) in response.json()["message"]


async def test_without_a_worker_here_the_answer_is_503(
    store: Store, folders: dict[str, int]
) -> None:
    async with _client(Services.build(store), await token_for(store)) as client:
        response = await client.put(
            f"/v1/account/ann/message/{_id(folders)}", json={"flags": {"add": "\\Seen"}}
        )
        unknown = await client.delete(f"/v1/account/ghost/message/{_id(folders)}")

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "AccountNotConnected"
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "AccountNotFound"


async def test_an_account_bound_token_cannot_change_another_account(
    store: Store, folders: dict[str, int]
) -> None:
    async with _client(Services.build(store), await token_for(store, account="bob")) as bob:
        response = await bob.put(
            f"/v1/account/ann/message/{_id(folders)}", json={"flags": {"add": "\\Seen"}}
        )
    assert response.status_code == 403, response.text


async def test_the_operations_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    expected = {
        ("/v1/account/{account}/message/{message}", "put"): "putV1AccountAccountMessageMessage",
        ("/v1/account/{account}/message/{message}", "delete"): (
            "deleteV1AccountAccountMessageMessage"
        ),
        ("/v1/account/{account}/message/{message}/move", "put"): (
            "putV1AccountAccountMessageMessageMove"
        ),
        ("/v1/account/{account}/messages", "put"): "putV1AccountAccountMessages",
        ("/v1/account/{account}/messages/move", "put"): "putV1AccountAccountMessagesMove",
        ("/v1/account/{account}/messages/delete", "put"): "putV1AccountAccountMessagesDelete",
    }
    for (path, method), operation_id in expected.items():
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        assert {"200", "400", "404", "502", "503"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("suffix", "params", "body"),
    [
        ("message/{id}", {}, {}),
        ("message/{id}", {}, {"flags": {"add": []}}),
        ("messages", {"path": "INBOX"}, {"search": {}}),
    ],
)
async def test_an_empty_change_does_not_ask_the_server(
    client: httpx.AsyncClient,
    folders: dict[str, int],
    suffix: str,
    params: dict[str, str],
    body: dict[str, Any],
) -> None:
    url = f"/v1/account/ann/{suffix.replace('{id}', _id(folders))}"
    response = await client.put(url, params=params, json=body)

    assert response.status_code == 200, response.text  # the unreachable server was not asked
    assert response.json() == {}
