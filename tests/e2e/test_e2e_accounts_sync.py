"""An application's view: register an IMAP account over REST, watch its changes over SSE.

Runs the shared `mailwire serve` process against the private Dovecot: the
account must reach `connected`, a message appended by another client must
arrive on `GET /v1/changes` as one `messageNew`, and a wrong password must
show as `authenticationError` until a PUT with the right one recovers it.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 30.0

RegisterAccount = Callable[..., str]


def _imap(dovecot: Dovecot, user: MailUser, password: str) -> dict[str, Any]:
    return {
        "host": dovecot.host,
        "port": dovecot.imap_port,
        "secure": False,
        # Dovecot offers STARTTLS with the rig's self-signed certificate.
        "tls": {"rejectUnauthorized": False},
        "auth": {"user": user.name, "pass": password},
    }


def _wait_state(api: httpx.Client, account: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        info: dict[str, Any] = api.get(f"/v1/account/{account}").json()
        if info.get("state") == wanted:
            return info
        time.sleep(0.2)
    pytest.fail(f"{account} never reached {wanted}: {info}")


def _sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line == "" and "data" in event:
            yield event
            event = {}


@pytest.fixture
def user(dovecot: Dovecot) -> MailUser:
    return dovecot.add_user(f"e2e-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


def test_new_mail_arrives_once_on_the_change_stream(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
    user: MailUser,
) -> None:
    imap = _imap(dovecot, user, user.password)
    assert register_account(server, user.name, name="E2E", imap=imap) == "new"
    info = _wait_state(api, user.name, "connected")
    assert "pass" not in json.dumps(info["imap"])
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = f"{user.name}@example.com"
    message["Subject"] = "over the wire"
    message.set_content("hi")
    timeout = httpx.Timeout(WAIT_S, read=WAIT_S)
    with httpx.stream(
        "GET",
        f"{server.url}/v1/changes",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=timeout,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
        client.login(user.name, user.password)
        client.append(
            "INBOX", "", imaplib.Time2Internaldate(dt.datetime.now(dt.UTC)), bytes(message)
        )
        client.logout()
        for event in _sse_events(stream):
            body = event["data"]
            if body["account"] == user.name and body["event"] == "messageNew":
                break
    assert body["path"] == "INBOX"
    assert body["data"]["subject"] == "over the wire"
    listed = api.get("/v1/accounts", params={"query": user.name}).json()
    assert [entry["state"] for entry in listed["accounts"]] == ["connected"]


def test_wrong_password_then_fixed_by_put(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
    user: MailUser,
) -> None:
    imap = _imap(dovecot, user, "not-the-password")
    assert register_account(server, user.name, name="E2E", imap=imap) == "new"
    info = _wait_state(api, user.name, "authenticationError")
    assert info["lastError"]["serverResponseCode"] == "AUTHENTICATIONFAILED"
    assert "not-the-password" not in json.dumps(info)
    update = {"imap": {"partial": True, "auth": {"user": user.name, "pass": user.password}}}
    response = api.put(f"/v1/account/{user.name}", json=update)
    assert response.status_code == 200, response.text
    info = _wait_state(api, user.name, "connected")
    assert "lastError" not in info or info["lastError"] is None
