"""Webhooks from a running `mailwire serve` to a receiver on loopback, with the real Dovecot.

The server runs with `MAILWIRE_WEBHOOK_ALLOW_PRIVATE` (the receiver is on
127.0.0.1), webhooks are configured through `POST /v1/settings` with a known
`serviceSecret`, and every request's signature is checked here with hmac and
base64 directly. Changes are made on the mail server with the stdlib's IMAP
client (APPEND, STORE, EXPUNGE), so the events come from the
sync engine, not from Mailwire's own API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from e2e_kit import dovecot_imap

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer
from mailwire.testing.webhook_receiver import Received, WebhookReceiver

WAIT_S = 30.0
SECRET = "e2e-webhook-secret-" + secrets.token_hex(8)
ALLOW_PRIVATE = {"MAILWIRE_WEBHOOK_ALLOW_PRIVATE": "true"}
RegisterAccount = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: Webhook e2e\r\n"
    b"Message-ID: <webhook-e2e@example.com>\r\n"
    b"Date: Mon, 01 Jun 2026 10:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello from the webhook test.\r\n"
)


def verify(request: Received, secret: str = SECRET) -> bool:
    digest = hmac.new(secret.encode(), request.body, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return request.header("X-EE-Wh-Signature") == expected


def configure(server: MailwireServer, receiver: WebhookReceiver, **extra: Any) -> None:
    body = {
        "webhooksEnabled": True,
        "webhooks": receiver.url,
        "webhookEvents": ["*"],
        "serviceSecret": SECRET,
        **extra,
    }
    response = httpx.post(
        f"{server.url}/v1/settings", json=body, headers=bearer(server.token), timeout=15
    )
    assert response.status_code == 200, response.text


def bodies(requests: list[Received], account: str) -> list[dict[str, Any]]:
    found = [json.loads(r.body) for r in requests]
    return [body for body in found if body.get("account") == account]


def wait_event(
    receiver: WebhookReceiver, account: str, event: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    def seen(requests: list[Received]) -> bool:
        return any(b["event"] == event and check(b) for b in bodies(requests, account))

    requests = receiver.wait_for(seen, timeout=WAIT_S)
    return next(b for b in bodies(requests, account) if b["event"] == event and check(b))


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def hooked(
    server_factory: Callable[..., AbstractContextManager[MailwireServer]],
    tmp_path_factory: pytest.TempPathFactory,
    receiver: WebhookReceiver,
) -> Iterator[MailwireServer]:
    data_dir = tmp_path_factory.mktemp("e2e-webhooks") / "data"
    with server_factory(data_dir, env=ALLOW_PRIVATE) as running:
        configure(running, receiver, notifyHeaders=["subject", "message-id"])
        yield running


def imap_client(dovecot: Dovecot, user: MailUser) -> imaplib.IMAP4:
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    client.login(user.name, user.password)
    return client


def test_mail_server_changes_arrive_as_signed_webhooks(
    hooked: MailwireServer,
    receiver: WebhookReceiver,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> None:
    user = dovecot.add_user(f"hooks-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(hooked, user.name, imap=imap)
    account = user.name
    wait_event(receiver, account, "accountInitialized", lambda b: True)

    client = imap_client(dovecot, user)
    try:
        client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), MESSAGE)
        new = wait_event(receiver, account, "messageNew", lambda b: True)
        assert new["path"] == "INBOX"
        assert new["specialUse"] == "\\Inbox"
        data = new["data"]
        assert data["subject"] == "Webhook e2e"
        # Enrichment: the text (notifyText is on by default) and the asked-for headers.
        assert data["text"]["plain"].strip() == "Hello from the webhook test."
        assert data["text"]["hasMore"] is False
        assert set(data["headers"]) == {"subject", "message-id"}
        assert data["headers"]["subject"] == ["Webhook e2e"]

        client.select("INBOX")
        client.store("1", "+FLAGS", "(\\Flagged)")
        updated = wait_event(receiver, account, "messageUpdated", lambda b: True)
        assert updated["data"]["id"] == data["id"]
        assert "\\Flagged" in updated["data"]["changes"]["flags"]["added"]

        client.store("1", "+FLAGS", "(\\Deleted)")
        client.expunge()
        deleted = wait_event(receiver, account, "messageDeleted", lambda b: True)
        assert deleted["data"]["id"] == data["id"]

    finally:
        client.logout()

    response = httpx.delete(
        f"{hooked.url}/v1/account/{account}", headers=bearer(hooked.token), timeout=15
    )
    assert response.status_code == 200, response.text
    wait_event(receiver, account, "accountDeleted", lambda b: True)

    mine = [r for r in receiver.requests if json.loads(r.body).get("account") == account]
    names = [json.loads(r.body)["event"] for r in mine]
    expected = {
        "accountAdded",
        "authenticationSuccess",
        "accountInitialized",
        "messageNew",
        "messageUpdated",
        "messageDeleted",
        "accountDeleted",
    }
    assert expected <= set(names), names
    for request in mine:
        assert verify(request), request.headers
        body = json.loads(request.body)
        assert set(body) >= {"serviceUrl", "account", "date", "event", "data"}
        assert "eventId" not in body
        assert request.header("X-EE-Wh-Event-Id")
    # Each event once: the receiver answered 200 every time.
    ids = [r.header("X-EE-Wh-Event-Id") for r in mine]
    assert len(ids) == len(set(ids))


def test_auth_failure_is_announced(
    hooked: MailwireServer,
    receiver: WebhookReceiver,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> None:
    user = dovecot.add_user(f"hooks-bad-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    imap = dovecot_imap(dovecot, user.name, "wrong-" + user.password)
    register_account(hooked, user.name, imap=imap)
    error = wait_event(receiver, user.name, "authenticationError", lambda b: True)
    assert error["data"]["serverResponseCode"]
    assert [r for r in receiver.requests if verify(r)] == receiver.requests


def test_a_dead_letter_is_listed_and_retried_through_the_api(
    hooked: MailwireServer, register_account: RegisterAccount
) -> None:
    """A redirect fails the job at once (no retry); the API lists it and sends it again."""
    with WebhookReceiver(lambda n: 302 if n == 0 else 200) as own:
        account = f"dead-{secrets.token_hex(4)}"
        register_account(hooked, account, webhooks=own.url)
        own.wait_for(lambda got: len(got) >= 1, timeout=WAIT_S)
        api = httpx.Client(base_url=hooked.url, headers=bearer(hooked.token), timeout=15)
        with api:
            deadline = time.monotonic() + WAIT_S
            while True:
                listed = api.get("/v1/settings/queue/notify/failed", params={"limit": 250})
                assert listed.status_code == 200, listed.text
                mine = [j for j in listed.json()["jobs"] if j["summary"].get("account") == account]
                if mine or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            [job] = mine
            assert job["attempts"] == 1
            assert "redirect" in (job["lastError"] or "")
            assert job["summary"]["event"] == "accountAdded"
            retried = api.post(f"/v1/settings/queue/notify/failed/{job['id']}/retry")
            assert retried.status_code == 200, retried.text
            requests = own.wait_for(lambda got: len(got) >= 2, timeout=WAIT_S)
            time.sleep(1.0)  # a second delivery would show up by now
            stats = api.get("/v1/stats").json()
    assert len(own.requests) == 2
    first, second = requests[:2]
    assert first.body == second.body
    assert first.header("X-EE-Wh-Event-Id") == second.header("X-EE-Wh-Event-Id")
    assert first.header("X-EE-Wh-Id") == second.header("X-EE-Wh-Id") == str(job["id"])
    assert verify(second)
    assert json.loads(second.body)["account"] == account
    assert "notify" in json.dumps(stats)


def test_connect_failure_is_announced(
    hooked: MailwireServer, receiver: WebhookReceiver, register_account: RegisterAccount
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    account = f"hooks-down-{secrets.token_hex(4)}"
    imap = {
        "host": "127.0.0.1",
        "port": closed,
        "secure": False,
        "auth": {"user": account, "pass": "irrelevant"},
    }
    register_account(hooked, account, imap=imap)
    error = wait_event(receiver, account, "connectError", lambda b: True)
    assert error["data"]["serverResponseCode"]
    assert "path" not in error


ATTACHED = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: With attachment\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See the file.\r\n"
    b"--b1\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--b1--\r\n"
)


def test_attachment_content_and_text_off_follow_the_settings(
    hooked: MailwireServer,
    receiver: WebhookReceiver,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> None:
    """Runs last in this module: it changes the server's notify settings."""
    configure(hooked, receiver, notifyText=False, notifyAttachments=True, notifyHeaders=[])
    user = dovecot.add_user(f"hooks-att-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(hooked, user.name, imap=imap)
    wait_event(receiver, user.name, "accountInitialized", lambda b: True)
    client = imap_client(dovecot, user)
    try:
        client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), ATTACHED)
    finally:
        client.logout()
    new = wait_event(receiver, user.name, "messageNew", lambda b: True)
    data = new["data"]
    assert set(data["text"]) == {"id", "encodedSize"}
    assert "headers" not in data
    [attachment] = data["attachments"]
    assert attachment["filename"] == "data.bin"
    assert base64.b64decode(attachment["content"]) == bytes(range(10))


def test_a_custom_route_is_checked_saved_and_fed_by_the_server(
    hooked: MailwireServer, register_account: RegisterAccount
) -> None:
    """A route's function that does not compile is refused; a valid route receives the
    events its filter picks, reshaped by its map function, from the running server."""
    account = f"routed-{secrets.token_hex(4)}"
    with (
        WebhookReceiver() as own,
        httpx.Client(base_url=hooked.url, headers=bearer(hooked.token), timeout=15) as api,
    ):
        broken = api.post(
            "/v1/webhookRoutes",
            json={"name": "broken", "targetUrl": own.url, "content": {"fn": "return {{;"}},
        )
        assert broken.status_code == 400, broken.text
        assert "SyntaxError" in broken.json()["message"]
        created = api.post(
            "/v1/webhookRoutes",
            json={
                "name": "added accounts",
                "targetUrl": own.url,
                "enabled": True,
                "customHeaders": [{"key": "X-Route", "value": "yes"}],
                "content": {
                    "fn": f"return payload.account === {json.dumps(account)}"
                    " && payload.event === 'accountAdded';",
                    "map": "return {seen: payload.account, route: payload._route.id};",
                },
            },
        )
        assert created.status_code == 200, created.text
        route_id = created.json()["id"]
        time.sleep(1.5)  # routes are re-read at most once a second
        register_account(hooked, account)
        [request] = own.wait_for(lambda got: len(got) >= 1, timeout=WAIT_S)
        time.sleep(1.0)  # a second, unwanted delivery would show up by now
        shown = api.get(f"/v1/webhookRoutes/webhookRoute/{route_id}").json()
        api.delete(f"/v1/webhookRoutes/webhookRoute/{route_id}")
    assert len(own.requests) == 1
    assert verify(request)
    assert request.header("X-EE-Wh-Custom-Route") == route_id
    assert request.header("X-Route") == "yes"
    assert json.loads(request.body) == {"seen": account, "route": route_id}
    assert shown["tcount"] == 1
