"""One message through the API, from the real Dovecot: details, text, source, attachments.

The MIME corpus (`mailwire.testing.corpus`) is written into a fresh Dovecot
user's INBOX; the account is registered on the shared `mailwire serve`, which
indexes it. Every message must then come back byte-for-byte as its source,
with its text decoded and each attachment decoded, named and typed as the
corpus says; `markAsSeen` must be announced by exactly one `messageUpdated`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from urllib.parse import unquote

import httpx
import pytest
from e2e_kit import change_events, dovecot_imap

from mailwire.testing.corpus import CorpusMessage, corpus
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 30.0
RegisterAccount = Callable[..., str]
STORED = [message for message in corpus() if message.storable]
OLD = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def mailbox(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> tuple[str, dict[str, str]]:
    """The account id and corpus name -> message id, once the account is indexed."""
    user: MailUser = dovecot.add_user(f"mime-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    for message in STORED:  # UIDs 1..n in corpus order
        dovecot.deliver(user.name, message.raw, internaldate=OLD)
    imap = dovecot_imap(dovecot, user.name, user.password)
    register_account(server, user.name, imap=imap)
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    listed = api.get(
        f"/v1/account/{user.name}/messages", params={"path": "INBOX", "pageSize": 100}
    ).json()
    by_uid = {entry["uid"]: entry["id"] for entry in listed["messages"]}
    assert len(by_uid) == len(STORED)
    return user.name, {message.name: by_uid[n] for n, message in enumerate(STORED, start=1)}


@pytest.mark.parametrize("message", STORED, ids=[m.name for m in STORED])
def test_source_comes_back_byte_for_byte(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]], message: CorpusMessage
) -> None:
    account, ids = mailbox
    response = api.get(f"/v1/account/{account}/message/{ids[message.name]}/source")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("message/rfc822")
    assert response.content == message.raw


@pytest.mark.parametrize(
    "message", [m for m in STORED if not m.broken], ids=[m.name for m in STORED if not m.broken]
)
def test_details_decode_the_text(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]], message: CorpusMessage
) -> None:
    account, ids = mailbox
    response = api.get(
        f"/v1/account/{account}/message/{ids[message.name]}", params={"textType": "*"}
    )

    assert response.status_code == 200, response.text
    details = response.json()
    assert details["id"] == ids[message.name]
    assert details["path"] == "INBOX"
    if message.subject is not None:
        assert details["subject"] == message.subject
    text = details["text"]
    if message.plain is not None:
        assert text["plain"] == message.plain
    if message.html is not None:
        assert text["html"] == message.html
    assert text["hasMore"] is False
    assert isinstance(details["headers"], dict)


@pytest.mark.parametrize(
    "message",
    [m for m in STORED if any(a.filename for a in m.attachments)],
    ids=[m.name for m in STORED if any(a.filename for a in m.attachments)],
)
def test_attachments_are_decoded_typed_and_named(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]], message: CorpusMessage
) -> None:
    account, ids = mailbox
    for expected in message.attachments:
        if not expected.filename:
            continue
        attachment_id = f"{ids[message.name]}{expected.part}"
        response = api.get(f"/v1/account/{account}/attachment/{attachment_id}")

        assert response.status_code == 200, (expected.part, response.text)
        assert response.content == expected.content
        assert response.headers["content-type"].split(";")[0] == expected.content_type
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment")
        assert response.headers["x-content-type-options"] == "nosniff"
        if "filename*=UTF-8''" in disposition:
            named = unquote(disposition.split("filename*=UTF-8''", 1)[1])
        else:
            named = disposition.split('filename="', 1)[1].rstrip('"')
        assert named == expected.filename


def test_max_bytes_cuts_the_text(api: httpx.Client, mailbox: tuple[str, dict[str, str]]) -> None:
    account, ids = mailbox
    response = api.get(
        f"/v1/account/{account}/message/{ids['plain_7bit']}",
        params={"textType": "plain", "maxBytes": 10},
    )
    text = response.json()["text"]
    assert len(text["plain"].encode()) <= 10
    assert text["hasMore"] is True
    assert "html" not in text


def test_mark_as_seen_is_announced_once(
    server: MailwireServer, api: httpx.Client, mailbox: tuple[str, dict[str, str]]
) -> None:
    account, ids = mailbox
    message_id = ids["nested_mixed"]
    before = api.get(f"/v1/account/{account}/message/{message_id}").json()
    assert "\\Seen" not in before["flags"]

    seen = api.get(f"/v1/account/{account}/message/{message_id}", params={"markAsSeen": "true"})

    assert seen.status_code == 200, seen.text
    assert "\\Seen" in seen.json()["flags"]
    listed = api.get(f"/v1/account/{account}/messages", params={"path": "INBOX", "pageSize": 100})
    entry = next(m for m in listed.json()["messages"] if m["id"] == message_id)
    assert "unseen" not in entry
    time.sleep(3.0)  # the sync engine sees the same change on its IDLE connection
    updates = [
        event
        for event in change_events(server, account)
        if event["event"] == "messageUpdated" and event["data"]["id"] == message_id
    ]
    assert len(updates) == 1
    assert updates[0]["data"]["changes"]["flags"]["added"] == ["\\Seen"]


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("message/AAAAAQAAAAEAAAAB", 404),  # a well-formed id naming nothing here
        ("message/not-an-id", 400),
        ("message/AAAAAQAAAAEAAAAB/source", 404),
        ("attachment/AAAAAQAAAAEAAAAB2", 404),
    ],
)
def test_unknown_and_malformed_ids(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]], suffix: str, status: int
) -> None:
    account, _ = mailbox
    response = api.get(f"/v1/account/{account}/{suffix}")
    assert response.status_code == status, response.text


def test_a_missing_part_of_a_real_message_is_404(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]]
) -> None:
    account, ids = mailbox
    response = api.get(f"/v1/account/{account}/attachment/{ids['plain_7bit']}9")
    assert response.status_code == 404
    assert response.json()["code"] == "AttachmentNotFound"


def test_web_safe_html_embeds_inline_images_and_is_sanitised(
    api: httpx.Client, mailbox: tuple[str, dict[str, str]]
) -> None:
    account, ids = mailbox
    response = api.get(
        f"/v1/account/{account}/message/{ids['related_cid']}", params={"webSafeHtml": "true"}
    )

    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert text["webSafe"] is True
    assert "data:image/png;base64," in text["html"]
    assert "cid:" not in text["html"]
    kept = api.get(
        f"/v1/account/{account}/message/{ids['related_cid']}",
        params={"webSafeHtml": "true", "embedAttachedImages": "false"},
    ).json()["text"]["html"]
    assert "cid:" in kept
    plain_only = api.get(
        f"/v1/account/{account}/message/{ids['plain_7bit']}", params={"webSafeHtml": "true"}
    ).json()["text"]
    assert plain_only["html"].startswith("<p>")
