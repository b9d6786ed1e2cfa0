"""The account routes in process (httpx's ASGI transport) over a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_kit import client_for, token_for

from mailwire.domain.events import EventName
from mailwire.store.schema import accounts, mailboxes
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import settings_for
from mailwire.types import now_ms

PASSWORD = "planted-S3cret-9c1e"  # searched for in every answer and in the database
TOKEN_SECRET = "planted-Token-4d2b"  # searched for like PASSWORD


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(settings_for(tmp_path / "data"))
    yield opened
    await opened.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, await token_for(store)) as opened:
        yield opened


def registration(account: str | None = "alice", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": account,
        "name": "Alice",
        "email": "alice@example.com",
        "imap": {
            "host": "imap.example.com",
            "port": 993,
            "secure": True,
            "auth": {"user": "alice", "pass": PASSWORD},
        },
        "smtp": {
            "host": "smtp.example.com",
            "port": 465,
            "secure": True,
            "auth": {"user": "alice", "pass": PASSWORD},
        },
        "oauth2": {"auth": {"user": "alice"}, "refreshToken": TOKEN_SECRET},
    }
    body.update(extra)
    return body


async def test_register_and_show_without_any_secret(
    client: httpx.AsyncClient, store: Store
) -> None:
    created = await client.post("/v1/account", json=registration(path="*", logs=True))
    shown = await client.get("/v1/account/alice")

    assert created.status_code == 200, created.text
    assert created.json() == {"account": "alice", "state": "new"}
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert PASSWORD not in shown.text
    assert TOKEN_SECRET not in shown.text
    assert body["imap"]["auth"] == {"user": "alice"}
    assert body["smtp"]["auth"] == {"user": "alice"}
    assert (body["account"], body["name"], body["state"], body["type"]) == (
        "alice",
        "Alice",
        "init",
        "imap",
    )
    assert (body["path"], body["logs"]) == (["*"], True)
    assert body["notifyFrom"].endswith("Z")
    async with store.database.read() as conn:
        settings = (await conn.execute(sa.select(accounts.c.settings))).scalar_one()
    assert PASSWORD not in json.dumps(settings)
    assert TOKEN_SECRET not in json.dumps(settings)
    assert await store.accounts.credentials("alice") == {
        "imap.pass": PASSWORD,
        "smtp.pass": PASSWORD,
        "oauth2.refreshToken": TOKEN_SECRET,
    }
    events = await store.outbox.read_after(0)
    assert [(e.event, dict(e.data)) for e in events] == [
        (EventName.ACCOUNT_ADDED, {"account": "alice"})
    ]


async def test_register_again_is_existing_and_null_id_is_generated(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/account", json=registration())
    again = await client.post("/v1/account", json=registration(name="Alice 2"))
    generated = await client.post("/v1/account", json=registration(account=None))

    assert again.json() == {"account": "alice", "state": "existing"}
    assert (await client.get("/v1/account/alice")).json()["name"] == "Alice 2"
    assert generated.status_code == 200
    assert generated.json()["state"] == "new"
    assert generated.json()["account"] != "alice"


async def test_notify_from_is_taken_as_an_iso_date(client: httpx.AsyncClient) -> None:
    await client.post("/v1/account", json=registration(notifyFrom="2024-05-01T10:00:00.250+02:00"))

    shown = (await client.get("/v1/account/alice")).json()

    assert shown["notifyFrom"] == "2024-05-01T08:00:00.250Z"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"name": "No id"}, "account"),
        (registration(account="x" * 257), "account"),
        (registration(name="n" * 257), "name"),
        (registration(imap={"host": "h", "port": 0}), "imap.port"),
        (registration(imap={"host": "h", "port": 70000}), "imap.port"),
        (
            registration(smtp={"host": "h", "port": 25, "auth": {"user": "u", "pass": "p" * 257}}),
            "smtp.auth.pass",
        ),
        (registration(notifyFrom="yesterday"), "notifyFrom"),
        (registration(subconnections=["x" * 1025]), "subconnections.0"),
        (registration(path=["x" * 1025]), "path.0"),
        (registration(unknownField=1), "unknownField"),
        (
            registration(imap={"host": "h", "port": 993, "tls": {"minVersion": "SSLv3"}}),
            "imap.tls.minVersion",
        ),
        (registration(syncFrom="last week"), "syncFrom"),
    ],
    ids=[
        "missing-id",
        "long-id",
        "long-name",
        "port-0",
        "port-70000",
        "long-pass",
        "bad-notify-from",
        "long-subconnection",
        "long-path",
        "unknown-field",
        "unknown-tls-version",
        "bad-sync-from",
    ],
)
async def test_bad_input_answers_400_with_fields(
    client: httpx.AsyncClient, body: dict[str, Any], key: str
) -> None:
    response = await client.post("/v1/account", json=body)

    assert response.status_code == 400, response.text
    keys = [field["key"] for field in response.json()["fields"]]
    assert any(found == key or found.startswith(key + ".") for found in keys), keys
    assert PASSWORD not in response.text


async def test_tls_min_version_and_sync_from_are_kept(client: httpx.AsyncClient) -> None:
    imap = {"host": "h", "port": 993, "secure": True, "tls": {"minVersion": "TLSv1.3"}}
    body = registration(imap=imap, syncFrom="2025-07-01T00:00:00Z")
    assert (await client.post("/v1/account", json=body)).status_code == 200

    shown = (await client.get("/v1/account/alice")).json()

    assert shown["imap"]["tls"] == {"minVersion": "TLSv1.3"}
    assert shown["syncFrom"].startswith("2025-07-01T00:00:00")


async def test_list_filters_and_pages(client: httpx.AsyncClient, store: Store) -> None:
    for account, name in [("a1", "Ann"), ("b2", "Bob"), ("c3", "Carol")]:
        await client.post("/v1/account", json=registration(account=account, name=name))
    async with store.database.write() as conn:
        await conn.execute(accounts.update().where(accounts.c.id == "b2").values(state="connected"))

    first = (await client.get("/v1/accounts", params={"pageSize": 2})).json()
    second = (await client.get("/v1/accounts", params={"pageSize": 2, "page": 1})).json()
    connected = (await client.get("/v1/accounts", params={"state": "connected"})).json()
    searched = (await client.get("/v1/accounts", params={"query": " carol "})).json()
    bad_state = await client.get("/v1/accounts", params={"state": "sleeping"})

    assert (first["total"], first["page"], first["pages"]) == (3, 0, 2)
    assert [a["account"] for a in first["accounts"]] == ["a1", "b2"]
    assert [a["account"] for a in second["accounts"]] == ["c3"]
    assert first["accounts"][0] == {
        "account": "a1",
        "name": "Ann",
        "email": "alice@example.com",
        "type": "imap",
        "state": "init",
    }
    assert [a["account"] for a in connected["accounts"]] == ["b2"]
    assert [a["account"] for a in searched["accounts"]] == ["c3"]
    assert bad_state.status_code == 400


async def test_update_changes_fields_and_bumps_revision(
    client: httpx.AsyncClient, store: Store
) -> None:
    await client.post("/v1/account", json=registration())

    renamed = await client.put("/v1/account/alice", json={"name": "Renamed", "logs": True})
    partial = await client.put(
        "/v1/account/alice",
        json={"imap": {"partial": True, "port": 143, "secure": False}},
    )
    missing = await client.put("/v1/account/nobody", json={"name": "x"})

    assert renamed.json() == {"account": "alice"}
    assert partial.status_code == 200, partial.text
    shown = (await client.get("/v1/account/alice")).json()
    assert (shown["name"], shown["logs"]) == ("Renamed", True)
    assert shown["imap"] == {
        "host": "imap.example.com",
        "port": 143,
        "secure": False,
        "auth": {"user": "alice"},
    }
    account = await store.accounts.get("alice")
    assert account is not None
    assert account.revision == 2
    # A partial section keeps the stored password.
    assert (await store.accounts.credentials("alice"))["imap.pass"] == PASSWORD
    assert missing.status_code == 404
    assert missing.json()["code"] == "AccountNotFound"


async def test_replacing_imap_drops_its_old_password(
    client: httpx.AsyncClient, store: Store
) -> None:
    await client.post("/v1/account", json=registration())

    await client.put(
        "/v1/account/alice",
        json={"imap": {"host": "imap.example.org", "port": 993, "auth": {"user": "al"}}},
    )

    assert "imap.pass" not in await store.accounts.credentials("alice")


async def test_delete_then_404_and_event(client: httpx.AsyncClient, store: Store) -> None:
    await client.post("/v1/account", json=registration())

    deleted = await client.delete("/v1/account/alice")
    again = await client.delete("/v1/account/alice")
    shown = await client.get("/v1/account/alice")

    assert deleted.json() == {"account": "alice", "deleted": True}
    assert again.status_code == 404
    assert shown.status_code == 404
    assert shown.json()["code"] == "AccountNotFound"
    assert await store.accounts.credentials("alice") == {}
    events = [e.event for e in await store.outbox.read_after(0)]
    assert events == [EventName.ACCOUNT_ADDED, EventName.ACCOUNT_DELETED]


@pytest.mark.parametrize("action", ["reconnect", "sync", "flush"])
async def test_commands_answer_404_for_a_missing_account(
    client: httpx.AsyncClient, action: str
) -> None:
    for flag in (True, False):
        response = await client.put(f"/v1/account/nobody/{action}", json={action: flag})
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "AccountNotFound"


async def test_reconnect_sync_and_flush(client: httpx.AsyncClient, store: Store) -> None:
    await client.post("/v1/account", json=registration())
    async with store.database.write() as conn:
        await conn.execute(
            mailboxes.insert().values(
                account="alice",
                path="INBOX",
                name="INBOX",
                flags=[],
                subscribed=True,
                messages=0,
                created_at=0,
            )
        )

    reconnect = await client.put("/v1/account/alice/reconnect", json={"reconnect": True})
    idle = await client.put("/v1/account/alice/reconnect", json={})
    sync = await client.put("/v1/account/alice/sync", json={"sync": True})
    flush = await client.put(
        "/v1/account/alice/flush",
        json={"flush": True, "notifyFrom": "2025-01-01T00:00:00Z", "imapIndexer": "fast"},
    )

    assert reconnect.json() == {"reconnect": True}
    assert idle.json() == {"reconnect": False}
    assert sync.json() == {"sync": True}
    assert flush.json() == {"flush": True}
    account = await store.accounts.get("alice")
    assert account is not None
    assert (account.revision, account.sync_seq) == (2, 1)
    assert account.notify_from == 1_735_689_600_000
    assert account.settings["imapIndexer"] == "fast"
    async with store.database.read() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(mailboxes))).scalar()
    assert left == 0


async def test_account_token_reaches_only_its_account(store: Store) -> None:
    async with client_for(store, await token_for(store)) as admin:
        await admin.post("/v1/account", json=registration())
        await admin.post("/v1/account", json=registration(account="bob"))
    async with client_for(store, await token_for(store, "alice")) as bound:
        own = await bound.get("/v1/account/alice")
        other = await bound.get("/v1/account/bob")
        listing = await bound.get("/v1/accounts")
        register = await bound.post("/v1/account", json=registration(account="eve"))

    assert own.status_code == 200
    assert other.status_code == 403
    assert listing.status_code == 403
    assert register.status_code == 403


async def test_logs_stream_as_ndjson(client: httpx.AsyncClient, store: Store) -> None:
    await client.post("/v1/account", json=registration(logs=True))
    await store.account_logs.append(
        "alice", [(now_ms(), "c", "A1 LOGIN alice ****"), (now_ms(), "s", "A1 OK \u2713")]
    )

    response = await client.get("/v1/logs/alice")
    missing = await client.get("/v1/logs/nobody")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(line["src"], line["msg"]) for line in lines] == [
        ("c", "A1 LOGIN alice ****"),
        ("s", "A1 OK \u2713"),
    ]
    assert all(isinstance(line["time"], int) for line in lines)
    assert missing.status_code == 404


async def test_openapi_lists_the_reference_operation_ids(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    wanted = {
        ("/v1/account", "post"): ("postV1Account", "admin", "write"),
        ("/v1/accounts", "get"): ("getV1Accounts", "account", "read"),
        ("/v1/account/{account}", "get"): ("getV1AccountAccount", "account", "read"),
        ("/v1/account/{account}", "put"): ("putV1AccountAccount", "admin", "write"),
        ("/v1/account/{account}", "delete"): ("deleteV1AccountAccount", "account", "destructive"),
        ("/v1/account/{account}/reconnect", "put"): (
            "putV1AccountAccountReconnect",
            "account",
            "write",
        ),
        ("/v1/account/{account}/sync", "put"): ("putV1AccountAccountSync", "account", "write"),
        ("/v1/account/{account}/flush", "put"): (
            "putV1AccountAccountFlush",
            "account",
            "destructive",
        ),
        ("/v1/logs/{account}", "get"): ("getV1LogsAccount", "logs", "read"),
        ("/v1/verifyAccount", "post"): ("postV1Verifyaccount", "admin", "read"),
    }
    for (path, method), (operation_id, group, action) in wanted.items():
        operation = document["paths"][path][method]
        assert (operation["operationId"], operation["x-ee-group"], operation["x-ee-action"]) == (
            operation_id,
            group,
            action,
        )
