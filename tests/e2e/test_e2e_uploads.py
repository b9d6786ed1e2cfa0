"""Upload (`POST /v1/account/{account}/message`) into the real Dovecot through `mailwire serve`.

A fresh Dovecot user holds one message with an attachment (the one answered
and forwarded below). Uploads built from fields, given raw, and answering or
forwarding that message must be stored as asked, listed as soon as the upload
answers, and announced by exactly one `messageNew` even after the sync engine
has seen them on its own connection.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from e2e_kit import change_events, dovecot_imap

from mailwire.api.models.uploads import UPLOAD_BODY_LIMIT
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 30.0
RegisterAccount = Callable[..., str]
#: Long enough for the sync engine to see an APPEND on its IDLE connection and sync it.
SETTLE_S = 3.0

ORIGINAL = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Message-ID: <original-1@example.com>\r\n"
    b"References: <thread-0@example.com>\r\n"
    b"Date: Wed, 01 May 2024 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The numbers are attached.\r\n"
    b"--b1\r\n"
    b'Content-Type: text/csv; name="numbers.csv"\r\n'
    b'Content-Disposition: attachment; filename="numbers.csv"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + base64.encodebytes(b"q,amount\r\n1,100\r\n2,250\r\n").replace(b"\n", b"\r\n")
    + b"\r\n"
    b"--b1--\r\n"
)


@pytest.fixture(scope="module")
def mailbox(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> tuple[str, str]:
    """The account id and the id of the original message, once the account is indexed."""
    user: MailUser = dovecot.add_user(f"upload-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    dovecot.deliver(user.name, ORIGINAL)
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(server, user.name, imap=imap)
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    listed = _listed(api, user.name, "INBOX")
    assert len(listed) == 1
    return user.name, listed[0]["id"]


def test_upload_from_fields_is_stored_and_listed_at_once(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, _ = mailbox
    report = "Résumé - 2024 ✓".encode()
    body = {
        "path": "INBOX",
        "from": {"name": "Zoë Example", "address": "zoe@example.com"},
        "to": [{"name": "Jürgen", "address": "jurgen@example.com"}],
        "subject": "Grüße aus Tallinn ✉",
        "text": "Tere!\nÜks rida veel.\n",
        "html": "<p>Tere! <b>Üks</b> rida veel.</p>",
        "attachments": [
            {
                "filename": "résumé-ülevaade.txt",
                "contentType": "text/plain",
                "content": base64.b64encode(report).decode(),
            }
        ],
        "flags": ["\\Seen"],
    }
    response = api.post(f"/v1/account/{account}/message", json=body)

    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["path"] == "INBOX"
    assert isinstance(stored["uid"], int)
    assert stored["messageId"].startswith("<")
    assert stored["messageId"].endswith("@example.com>")
    entry = next(m for m in _listed(api, account, "INBOX") if m["id"] == stored["id"])
    assert entry["subject"] == body["subject"]
    assert "unseen" not in entry
    details = api.get(
        f"/v1/account/{account}/message/{stored['id']}", params={"textType": "*"}
    ).json()
    assert details["text"]["plain"].replace("\r\n", "\n") == body["text"]
    assert "<b>Üks</b>" in details["text"]["html"]
    assert details["from"] == {"name": "Zoë Example", "address": "zoe@example.com"}
    [attachment] = details["attachments"]
    assert attachment["filename"] == "résumé-ülevaade.txt"
    download = api.get(f"/v1/account/{account}/attachment/{attachment['id']}")
    assert download.status_code == 200
    assert download.content == report
    disposition = download.headers["content-disposition"]
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "résumé-ülevaade.txt"


def test_raw_upload_comes_back_byte_for_byte(api: httpx.Client, mailbox: tuple[str, str]) -> None:
    account, _ = mailbox
    raw = (
        b"From: raw@example.com\r\n"
        b"Subject: =?UTF-8?B?" + base64.b64encode("Ära muuda ✓".encode()) + b"?=\r\n"
        b"Message-ID: <raw-" + secrets.token_hex(6).encode() + b"@example.com>\r\n"
        b"X-Odd-Header:   kept   as   is  \r\n"
        b"\r\n"
        b"Body line one\r\n"
        b"  indented line two\r\n"
    )
    response = api.post(
        f"/v1/account/{account}/message",
        json={"path": "\\Sent", "raw": base64.b64encode(raw).decode()},
    )

    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["path"] == "Sent"
    source = api.get(f"/v1/account/{account}/message/{stored['id']}/source")
    assert source.status_code == 200
    assert source.content == raw
    assert any(m["id"] == stored["id"] for m in _listed(api, account, "Sent"))


def test_fields_beside_raw_replace_its_header_fields(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, _ = mailbox
    body = b"Unchanged body\r\n"
    raw = (
        b"From: raw@example.com\r\n"
        b"Subject: old subject\r\n"
        b"X-Folded: first\r\n second\r\n"
        b"X-Kept: yes\r\n"
        b"\r\n" + body
    )
    response = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "INBOX",
            "raw": base64.b64encode(raw).decode(),
            "subject": "Uus teema ✓",
            "headers": {"X-Folded": "replaced"},
        },
    )

    assert response.status_code == 200, response.text
    source = api.get(f"/v1/account/{account}/message/{response.json()['id']}/source").content
    head, _, rest = source.partition(b"\r\n\r\n")
    assert rest == body
    assert b"old subject" not in head
    assert b"second" not in head
    assert b"X-Kept: yes" in head
    assert b"X-Folded: replaced" in head
    details = api.get(f"/v1/account/{account}/message/{response.json()['id']}").json()
    assert details["subject"] == "Uus teema ✓"


def test_reply_sets_threading_headers_and_subject(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, original = mailbox
    response = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "Drafts",
            "to": [{"address": "alice@example.com"}],
            "text": "Thanks!",
            "reference": {"message": original, "action": "reply"},
        },
    )

    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["reference"] == {"message": original, "success": True}
    details = api.get(f"/v1/account/{account}/message/{stored['id']}").json()
    assert details["subject"] == "Re: Quarterly numbers"
    assert details["inReplyTo"] == "<original-1@example.com>"
    references = details["headers"]["references"][0].split()
    assert references == ["<thread-0@example.com>", "<original-1@example.com>"]


def test_reply_all_fills_the_recipients_and_quotes_inline(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, original = mailbox
    response = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "Drafts",
            "text": "Agreed.",
            "html": "<p>Agreed.</p>",
            "reference": {"message": original, "action": "reply-all", "inline": True},
        },
    )

    assert response.status_code == 200, response.text
    details = api.get(
        f"/v1/account/{account}/message/{response.json()['id']}", params={"textType": "*"}
    ).json()
    assert details["to"] == [{"name": "Alice", "address": "alice@example.com"}]
    assert details["cc"] == [{"name": "Bob", "address": "bob@example.com"}]
    plain = details["text"]["plain"].replace("\r\n", "\n")
    assert plain.startswith("Agreed.\n\nOn ")
    assert "Alice wrote:\n> The numbers are attached." in plain
    html = details["text"]["html"]
    assert html.startswith("<p>Agreed.</p>")
    assert '<blockquote type="cite">' in html
    assert "The numbers are attached." in html


def test_a_reference_whose_message_id_differs_is_404(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, original = mailbox
    response = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "Drafts",
            "text": "x",
            "reference": {"message": original, "messageId": "<someone-else@example.com>"},
        },
    )
    assert response.status_code == 404, response.text


def test_forward_carries_the_attachments(api: httpx.Client, mailbox: tuple[str, str]) -> None:
    account, original = mailbox
    response = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "Drafts",
            "text": "See below.",
            "reference": {"message": original, "action": "forward", "forwardAttachments": True},
        },
    )

    assert response.status_code == 200, response.text
    details = api.get(f"/v1/account/{account}/message/{response.json()['id']}").json()
    assert details["subject"] == "Fwd: Quarterly numbers"
    [attachment] = details["attachments"]
    assert attachment["filename"] == "numbers.csv"
    download = api.get(f"/v1/account/{account}/attachment/{attachment['id']}")
    assert download.content == b"q,amount\r\n1,100\r\n2,250\r\n"


def test_a_missing_reference_is_404_unless_ignored(
    api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, _ = mailbox
    gone = "AAAAAQAAAAEAAAAB"
    body: dict[str, Any] = {"path": "Drafts", "text": "x", "reference": {"message": gone}}

    refused = api.post(f"/v1/account/{account}/message", json=body)
    body["reference"]["ignoreMissing"] = True
    taken = api.post(f"/v1/account/{account}/message", json=body)

    assert refused.status_code == 404, refused.text
    assert taken.status_code == 200, taken.text
    assert taken.json()["reference"]["success"] is False


def test_upload_is_announced_exactly_once(
    server: MailwireServer, api: httpx.Client, mailbox: tuple[str, str]
) -> None:
    account, _ = mailbox
    response = api.post(
        f"/v1/account/{account}/message",
        json={"path": "INBOX", "subject": "Once only", "text": "hello"},
    )
    assert response.status_code == 200, response.text
    uploaded = response.json()["id"]

    time.sleep(SETTLE_S)
    synced = api.put(f"/v1/account/{account}/sync", json={})  # and a full sweep on top
    assert synced.status_code == 200, synced.text
    time.sleep(SETTLE_S)
    announced = [
        event
        for event in change_events(server, account)
        if event["event"] == "messageNew" and event["data"]["id"] == uploaded
    ]
    assert len(announced) == 1
    assert announced[0]["data"]["subject"] == "Once only"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"path": "No such folder", "text": "x"}, 404),
        ({"path": "INBOX", "text": "x" * (5 * 1024 * 1024 + 1)}, 400),
        ({"path": "INBOX", "raw": "not base64!"}, 400),
        ({"path": "INBOX", "flags": ["\\Recent"], "text": "x"}, 400),
    ],
    ids=["unknown-folder", "text-too-long", "raw-not-base64", "recent-flag"],
)
def test_refused_uploads(
    api: httpx.Client, mailbox: tuple[str, str], body: dict[str, Any], status: int
) -> None:
    account, _ = mailbox
    response = api.post(f"/v1/account/{account}/message", json=body)
    assert response.status_code == status, response.text


def test_unknown_account_is_404(api: httpx.Client) -> None:
    response = api.post("/v1/account/nobody-here/message", json={"path": "INBOX", "text": "x"})
    assert response.status_code == 404, response.text


def test_a_body_over_the_upload_limit_is_413(api: httpx.Client, mailbox: tuple[str, str]) -> None:
    account, _ = mailbox
    # Declared by Content-Length: refused before the body is read.
    payload = b'{"path":"INBOX","text":"' + b"x" * UPLOAD_BODY_LIMIT + b'"}'
    try:
        response = api.post(
            f"/v1/account/{account}/message",
            content=payload,
            headers={"Content-Type": "application/json"},
        )
    except httpx.WriteError:
        pytest.fail("the server closed the connection without an answer")
    assert response.status_code == 413, response.text


def _listed(api: httpx.Client, account: str, path: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/account/{account}/messages", params={"path": path, "pageSize": 100})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages
