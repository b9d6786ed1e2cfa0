"""One delivery attempt against a real HTTP receiver on loopback.

The signature is verified here with hmac and base64 directly, not with the
product's own function, so a wrong signing scheme cannot agree with itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mailwire.domain.events import EventName, StoredEvent
from mailwire.testing.webhook_receiver import WebhookReceiver
from mailwire.webhooks.config import SettingsCache
from mailwire.webhooks.delivery import Attempt, Delivery, Refused
from mailwire.webhooks.envelope import webhook_envelope
from mailwire.webhooks.relay import jobs_for

SECRET = "0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000_000


class MemorySettings:
    def __init__(self, **values: Any) -> None:
        self.data: dict[str, Any] = {"webhooksEnabled": True, "webhookEvents": ["*"], **values}

    async def values(self) -> dict[str, Any]:
        return dict(self.data)

    async def service_secret(self) -> str:
        return SECRET


@dataclass
class Account:
    settings: Mapping[str, Any] = field(default_factory=dict)


class Accounts:
    def __init__(self, **accounts: Account) -> None:
        self.accounts = accounts
        self.reads = 0
        #: None: a new signature at every check (every check drops the cache).
        self.signature: int | None = None

    async def get(self, account_id: str) -> Account | None:
        self.reads += 1
        return self.accounts.get(account_id)

    async def config_signature(self) -> object:
        return object() if self.signature is None else self.signature


@dataclass
class Job:
    payload: dict[str, Any]
    id: int = 7
    attempts_made: int = 1
    created_at: int = NOW - 12_500


class HttpxSender:
    """A plain sender (no egress guard): these tests are about the request itself."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse

    async def send(
        self, url: str, body: bytes, headers: Sequence[tuple[str, str]], time_limit: float
    ) -> int:
        if self.refuse:
            raise Refused("loopback is not allowed")
        async with httpx.AsyncClient(timeout=time_limit) as client:
            response = await client.post(url, content=body, headers=list(headers))
        return response.status_code


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def stored(event: EventName, data: dict[str, Any], **kw: Any) -> StoredEvent:
    return StoredEvent(
        seq=1,
        event_id=kw.pop("event_id", "4f1c2a5e-0000-4000-8000-000000000001"),
        account=kw.pop("account", "acct"),
        event=event,
        data=data,
        path=kw.pop("path", None),
        special_use=kw.pop("special_use", None),
        created_at=NOW - 13_000,
    )


def default_job(event: StoredEvent, service_url: str | None = None) -> Job:
    payload = webhook_envelope(event, service_url)
    [spec] = jobs_for(event, payload, [], default=True)
    return Job(spec.payload)


def delivery(settings: MemorySettings, accounts: Accounts | None = None, **kw: Any) -> Delivery:
    return Delivery(
        settings=SettingsCache(settings, ttl=0),
        accounts=accounts or Accounts(acct=Account()),
        sender=kw.pop("sender", HttpxSender()),
        clock=lambda: NOW,
        **kw,
    )


def expected_signature(body: bytes) -> str:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def test_request_has_envelope_signature_and_headers_in_order(
    receiver: WebhookReceiver,
) -> None:
    settings = MemorySettings(webhooks=receiver.url, serviceUrl="https://mail.example.com")
    event = stored(
        EventName.MESSAGE_DELETED, {"id": "AAAA", "uid": 5}, path="INBOX", special_use="\\Inbox"
    )
    result = await delivery(settings).attempt(default_job(event, "https://mail.example.com"))
    assert result == Attempt("sent", "delivered", 200)
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.header("X-EE-Wh-Signature") == expected_signature(request.body)
    body = json.loads(request.body)
    assert list(body) == ["serviceUrl", "account", "date", "path", "specialUse", "event", "data"]
    assert body["serviceUrl"] == "https://mail.example.com"
    assert body["data"] == {"id": "AAAA", "uid": 5}
    assert body["date"] == "2027-01-15T07:59:47.000Z"
    assert "eventId" not in body
    ours = [name for name, _ in request.headers if name.lower().startswith("x-ee-")]
    assert ours == [
        "X-EE-Wh-Id",
        "X-EE-Wh-Attempts-Made",
        "X-EE-Wh-Queued-Time",
        "X-EE-Wh-Event-Id",
        "X-EE-Wh-Signature",
    ]
    assert request.header("X-EE-Wh-Event-Id") == event.event_id
    assert request.header("X-EE-Wh-Id") == "7"
    # attempts_made counts the current claim: the first try reports 0 earlier attempts.
    assert request.header("X-EE-Wh-Attempts-Made") == "0"
    assert request.header("X-EE-Wh-Queued-Time") == "12s"
    assert request.header("Content-Type") == "application/json"
    assert request.header("Content-Length") == str(len(request.body))
    assert (request.header("User-Agent") or "").startswith("mailwire/")
    assert request.header("Authorization") is None


async def test_custom_headers_override_earlier_headers_but_not_the_signed_ones(
    receiver: WebhookReceiver,
) -> None:
    url = receiver.url.replace("http://", "http://hook%20user:p%26ss@")
    settings = MemorySettings(
        webhooks=url,
        webhooksCustomHeaders=[
            {"key": "X-Global", "value": "global"},
            {"key": "x-ee-wh-signature", "value": "forged"},
            {"key": "X-EE-Wh-Event-Id", "value": "forged"},
            {"key": "Content-Length", "value": "1"},
            {"key": "X-Both", "value": "from-global"},
        ],
    )
    account = Account(
        {
            "webhooksCustomHeaders": [
                {"key": "X-Both", "value": "from-account"},
                {"key": "authorization", "value": "Bearer account"},
            ]
        }
    )
    event = stored(EventName.ACCOUNT_INITIALIZED, {"initialized": True})
    result = await delivery(settings, Accounts(acct=account)).attempt(default_job(event))
    assert result.kind == "sent"
    [request] = receiver.requests
    assert request.header("X-Global") == "global"
    assert request.header("X-Both") == "from-account"
    assert request.header("Authorization") == "Bearer account"
    assert request.header("X-EE-Wh-Signature") == expected_signature(request.body)
    assert request.header("X-EE-Wh-Event-Id") == event.event_id
    assert request.header("Content-Length") == str(len(request.body))


async def test_userinfo_becomes_basic_auth_without_undoing_percent_encoding(
    receiver: WebhookReceiver,
) -> None:
    url = receiver.url.replace("http://", "http://hook%20user:p&ss@")
    event = stored(EventName.ACCOUNT_ADDED, {"account": "acct"})
    result = await delivery(MemorySettings(webhooks=url)).attempt(default_job(event))
    assert result.kind == "sent"
    [request] = receiver.requests
    auth = request.header("Authorization") or ""
    assert auth.startswith("Basic ")
    # `&` is re-encoded as an HTML entity, as the reference does.
    assert base64.b64decode(auth[6:]).decode() == "hook%20user:p&#x26;ss"


async def test_route_job_carries_route_header_route_headers_and_mapped_body(
    receiver: WebhookReceiver,
) -> None:
    from mailwire.webhooks.relay import RouteMatch

    settings = MemorySettings(
        webhooks="http://127.0.0.1:9/unused",
        webhookEvents=[],
        webhooksCustomHeaders=[{"key": "X-Global", "value": "global"}],
    )
    event = stored(EventName.MESSAGE_DELETED, {"id": "AAAA", "uid": 5})
    payload = webhook_envelope(event, None)
    match = RouteMatch("r1", receiver.url, (("X-Route", "yes"),), body={"mapped": True})
    [route_spec] = jobs_for(event, payload, [match], default=False)
    account = Account({"webhooksCustomHeaders": [{"key": "X-Acct", "value": "a"}]})
    result = await delivery(settings, Accounts(acct=account)).attempt(Job(route_spec.payload))
    assert result.kind == "sent"
    [request] = receiver.requests
    assert json.loads(request.body) == {"mapped": True}
    assert request.header("X-EE-Wh-Custom-Route") == "r1"
    assert request.header("X-Route") == "yes"
    assert request.header("X-Global") is None
    assert request.header("X-Acct") == "a"
    # A mapped body without eventId sends no event id header.
    assert request.header("X-EE-Wh-Event-Id") is None
    assert request.header("X-EE-Wh-Signature") == expected_signature(request.body)


@pytest.mark.parametrize(
    ("settings", "accounts", "event", "reason"),
    [
        ({"webhooksEnabled": False}, None, EventName.ACCOUNT_ADDED, "disabled"),
        ({}, Accounts(), EventName.ACCOUNT_ADDED, "account is gone"),
        ({"webhooks": None}, None, EventName.ACCOUNT_ADDED, "no webhook URL"),
        ({"webhookEvents": ["messageNew"]}, None, EventName.ACCOUNT_ADDED, "does not send"),
        ({"webhookEvents": []}, None, EventName.ACCOUNT_ADDED, "does not send"),
    ],
)
async def test_checks_at_delivery_complete_the_job_without_a_request(
    receiver: WebhookReceiver,
    settings: dict[str, Any],
    accounts: Accounts | None,
    event: EventName,
    reason: str,
) -> None:
    values = MemorySettings(webhooks=receiver.url)
    values.data.update(settings)
    result = await delivery(values, accounts).attempt(default_job(stored(event, {})))
    assert result.kind == "skipped"
    assert reason in result.detail
    assert receiver.requests == []


async def test_inbox_new_only_hides_other_folders_but_not_the_inbox(
    receiver: WebhookReceiver,
) -> None:
    settings = MemorySettings(webhooks=receiver.url, inboxNewOnly=True)
    sent = stored(EventName.MESSAGE_NEW, {"id": "A"}, path="Archive", special_use=None)
    labelled = stored(EventName.MESSAGE_NEW, {"id": "B", "labels": ["\\Inbox"]}, path="[Gmail]/All")
    inbox = stored(EventName.MESSAGE_NEW, {"id": "C"}, path="INBOX")
    runner = delivery(settings)
    assert (await runner.attempt(default_job(sent))).kind == "skipped"
    assert (await runner.attempt(default_job(labelled))).kind == "sent"
    assert (await runner.attempt(default_job(inbox))).kind == "sent"
    assert [json.loads(r.body)["data"]["id"] for r in receiver.requests] == ["B", "C"]


async def test_account_deleted_goes_to_the_global_url_without_the_account(
    receiver: WebhookReceiver,
) -> None:
    settings = MemorySettings(webhooks=receiver.url)
    event = stored(EventName.ACCOUNT_DELETED, {"account": "acct"})
    result = await delivery(settings, Accounts()).attempt(default_job(event))
    assert result.kind == "sent"
    assert json.loads(receiver.requests[0].body)["event"] == "accountDeleted"


async def test_account_url_replaces_the_global_url(receiver: WebhookReceiver) -> None:
    settings = MemorySettings(webhooks="http://127.0.0.1:9/global")
    accounts = Accounts(acct=Account({"webhooks": receiver.url + "/acct"}))
    result = await delivery(settings, accounts).attempt(
        default_job(stored(EventName.ACCOUNT_ADDED, {}))
    )
    assert result.kind == "sent"
    assert receiver.requests[0].path == "/hook/acct"


async def test_account_settings_are_cached_until_the_accounts_change(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailwire.webhooks.delivery.ACCOUNT_TTL_S", 0.0)  # check every time
    settings = MemorySettings(webhooks="http://127.0.0.1:9/global")
    accounts = Accounts(acct=Account({"webhooks": receiver.url + "/one"}))
    accounts.signature = 1
    sending = delivery(settings, accounts)
    job = default_job(stored(EventName.ACCOUNT_ADDED, {}))
    for _ in range(3):
        assert (await sending.attempt(job)).kind == "sent"
    assert accounts.reads == 1  # the signature did not move: one read for three deliveries
    accounts.accounts["acct"] = Account({"webhooks": receiver.url + "/two"})
    accounts.signature = 2
    assert (await sending.attempt(job)).kind == "sent"
    assert [r.path for r in receiver.requests] == ["/hook/one"] * 3 + ["/hook/two"]
    del accounts.accounts["acct"]
    accounts.signature = 3
    assert (await sending.attempt(job)).detail == "account is gone"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, "sent"), (204, "sent"), (302, "fail"), (404, "retry"), (500, "retry"), (503, "retry")],
)
async def test_status_decides_done_retry_or_dead_letter(status: int, kind: str) -> None:
    with WebhookReceiver(lambda _n: status) as receiver:
        settings = MemorySettings(webhooks=receiver.url)
        result = await delivery(settings).attempt(default_job(stored(EventName.ACCOUNT_ADDED, {})))
    assert result.kind == kind
    assert result.status == status


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retried() -> None:
    settings = MemorySettings(webhooks=f"http://127.0.0.1:{closed_port()}/hook")
    result = await delivery(settings).attempt(default_job(stored(EventName.ACCOUNT_ADDED, {})))
    assert result.kind == "retry"
    assert "ConnectError" in result.detail


async def test_refused_target_fails_for_good(receiver: WebhookReceiver) -> None:
    settings = MemorySettings(webhooks=receiver.url)
    result = await delivery(settings, sender=HttpxSender(refuse=True)).attempt(
        default_job(stored(EventName.ACCOUNT_ADDED, {}))
    )
    assert result.kind == "fail"
    assert "refused" in result.detail
    assert receiver.requests == []


async def test_a_receiver_that_never_answers_is_a_timeout_and_retried() -> None:
    # A listening socket that accepts but never answers.
    release = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        settings = MemorySettings(webhooks=f"http://127.0.0.1:{port}/hook")
        result = await delivery(settings, timeout=0.3).attempt(
            default_job(stored(EventName.ACCOUNT_ADDED, {}))
        )
        release.set()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
    assert writers
    assert result.kind == "retry"
    assert "0.3 s" in result.detail
