"""Submit and outbox through `mailwire serve`, delivered to real SMTP servers (aiosmtpd sinks).

One Dovecot user holds a message to answer; its account sends through a sink
that accepts everything (with STARTTLS offered, so the client upgrades).
Other accounts send through a sink that refuses the first attempt for now
(4xx, then accepts) and one that refuses for good (5xx). Every message must
arrive as built (checked by re-parsing), Bcc only in the envelope, with the
events the reference names, a copy in the Sent folder, and nothing queued for
a request that is refused.
"""

from __future__ import annotations

import base64
import email
import email.policy
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_kit import change_events, dovecot_imap

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer
from mailwire.testing.smtp_sink import SmtpSink
from mailwire.testing.tls import TLSCertificate

WAIT_S = 30.0
RegisterAccount = Callable[..., str]

ORIGINAL = (
    b"From: Carol <carol@example.net>\r\n"
    b"To: Sender <sender@example.com>\r\n"
    b"Subject: Lunch on Friday?\r\n"
    b"Message-ID: <lunch-1@example.net>\r\n"
    b"Date: Wed, 01 May 2024 10:00:00 +0000\r\n"
    b"\r\n"
    b"Shall we?\r\n"
)


def _smtp(sink: SmtpSink) -> dict[str, Any]:
    return {
        "host": sink.host,
        "port": sink.port,
        "secure": False,
        "tls": {"rejectUnauthorized": False},
    }


@pytest.fixture(scope="module")
def flaky_sink(tls_cert: TLSCertificate) -> Iterator[SmtpSink]:
    """Refuses every odd DATA for now (451), accepts the retry."""
    with SmtpSink(
        tls=tls_cert, refuse=lambda n, _c: "451 4.3.0 Try again later" if n % 2 else None
    ) as sink:
        yield sink


@pytest.fixture(scope="module")
def rejecting_sink(tls_cert: TLSCertificate) -> Iterator[SmtpSink]:
    with SmtpSink(tls=tls_cert, refuse=lambda _n, _c: "550 5.1.1 No such user here") as sink:
        yield sink


@pytest.fixture(scope="module")
def sender(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
    smtp_sink: SmtpSink,
) -> tuple[str, str]:
    """An IMAP+SMTP account (Dovecot + the accepting sink) and its message to answer."""
    user: MailUser = dovecot.add_user(f"send-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    dovecot.deliver(user.name, ORIGINAL)
    register_account(
        server,
        user.name,
        email="sender@example.com",
        imap=dovecot_imap(dovecot, user.name, user.password),
        smtp=_smtp(smtp_sink),
    )
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    listed = _listed(api, user.name, "INBOX")
    assert len(listed) == 1
    return user.name, listed[0]["id"]


def _listed(api: httpx.Client, account: str, path: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/account/{account}/messages", params={"path": path, "pageSize": 100})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def _arrived(sink: SmtpSink, message_id: str) -> list[Any]:
    """Messages the sink holds with this Message-ID (waits until one is there)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [m for m in sink.messages if message_id.encode() in m.raw]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _events(server: MailwireServer, account: str, queue_id: str, wanted: set[str]) -> list[Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [
            e
            for e in change_events(server, account)
            if e.get("data", {}).get("queueId") == queue_id
        ]
        if wanted <= {e["event"] for e in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_submitted_message_arrives_as_built_with_events_and_a_sent_copy(
    server: MailwireServer, api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    attachment = "Résumé ✓\n".encode()
    response = api.post(
        f"/v1/account/{account}/submit",
        json={
            "from": {"name": "Zoë Sender", "address": "sender@example.com"},
            "to": [{"name": "Jürgen", "address": "jurgen@example.org"}],
            "cc": [{"address": "cc@example.org"}],
            "bcc": [{"address": "hidden@example.org"}],
            "subject": "Grüße ✉",
            "text": "Tere!\nÜks rida veel.\n",
            "html": "<p>Tere! <b>Üks</b></p>",
            "headers": {"X-Campaign": "spring"},
            "attachments": [
                {
                    "filename": "résumé.txt",
                    "contentType": "text/plain",
                    "content": base64.b64encode(attachment).decode(),
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response"] == "Queued for delivery"
    queue_id, message_id = answer["queueId"], answer["messageId"]
    [received] = _arrived(smtp_sink, message_id)
    assert received.mail_from == "sender@example.com"
    assert set(received.rcpt_tos) == {"jurgen@example.org", "cc@example.org", "hidden@example.org"}
    assert received.tls  # STARTTLS was offered, so the connection upgraded
    parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße ✉"
    assert parsed["Message-ID"] == message_id
    assert parsed["X-Campaign"] == "spring"
    assert parsed["Bcc"] is None  # blind copies stay in the envelope
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Tere!\nÜks rida veel.\n"
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "résumé.txt"
    assert part.get_payload(decode=True) == attachment
    sent = _events(server, account, queue_id, {"messageSent"})
    [event] = [e for e in sent if e["event"] == "messageSent"]
    assert event["data"]["messageId"] == message_id
    assert event["data"]["envelope"]["from"] == "sender@example.com"
    assert event["data"]["response"].startswith("250")
    deadline = time.monotonic() + WAIT_S
    while not any(m.get("messageId") == message_id for m in _listed(api, account, "Sent")):
        assert time.monotonic() < deadline, "no copy in the Sent folder"
        time.sleep(0.3)
    assert api.get(f"/v1/outbox/{queue_id}").status_code == 404  # no longer queued


def test_a_reply_threads_to_the_referenced_message(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, original = sender
    response = api.post(
        f"/v1/account/{account}/submit",
        json={"reference": {"message": original, "action": "reply"}, "text": "Yes!"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["reference"] == {"message": original, "success": True}
    [received] = _arrived(smtp_sink, response.json()["messageId"])
    parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert parsed["In-Reply-To"] == "<lunch-1@example.net>"
    assert parsed["Subject"] == "Re: Lunch on Friday?"
    assert received.rcpt_tos == ("carol@example.net",)
    deadline = time.monotonic() + WAIT_S
    while "\\Answered" not in api.get(f"/v1/account/{account}/message/{original}").json().get(
        "flags", []
    ):
        assert time.monotonic() < deadline, "the answered message was never flagged"
        time.sleep(0.2)


def test_raw_messages_keep_their_bytes_and_bcc_moves_to_the_envelope(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    raw = (
        b"From: sender@example.com\r\n"
        b"To: one@example.org\r\n"
        b"Bcc: secret@example.org\r\n"
        b"Subject: raw one\r\n"
        b"Message-ID: <raw-1@example.com>\r\n"
        b"\r\n"
        b"exact body\r\n"
    )
    response = api.post(
        f"/v1/account/{account}/submit", json={"raw": base64.b64encode(raw).decode()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["messageId"] == "<raw-1@example.com>"
    [received] = _arrived(smtp_sink, "<raw-1@example.com>")
    assert set(received.rcpt_tos) == {"one@example.org", "secret@example.org"}
    assert b"secret@example.org" not in received.raw
    assert received.raw.endswith(b"\r\n\r\nexact body\r\n")


def test_a_temporary_refusal_is_retried_then_delivered(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    flaky_sink: SmtpSink,
) -> None:
    account = f"flaky-{secrets.token_hex(3)}"
    register_account(server, account, smtp=_smtp(flaky_sink))
    response = api.post(
        f"/v1/account/{account}/submit",
        json={
            "from": {"address": "a@example.com"},
            "to": [{"address": "b@example.org"}],
            "subject": "eventually",
            "text": "x",
            "deliveryAttempts": 3,
        },
    )
    assert response.status_code == 200, response.text
    queue_id, message_id = response.json()["queueId"], response.json()["messageId"]
    events = _events(server, account, queue_id, {"messageDeliveryError", "messageSent"})
    names = [e["event"] for e in events]
    assert names == ["messageDeliveryError", "messageSent"]
    error = events[0]["data"]
    assert error["smtpResponseCode"] == 451
    assert error["job"]["attemptsMade"] == 1
    assert error["job"]["attempts"] == 3
    assert isinstance(error["job"]["nextAttempt"], str)
    assert len(_arrived(flaky_sink, message_id)) == 1


def test_a_permanent_refusal_fails_at_once(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    rejecting_sink: SmtpSink,
) -> None:
    account = f"reject-{secrets.token_hex(3)}"
    register_account(server, account, smtp=_smtp(rejecting_sink))
    response = api.post(
        f"/v1/account/{account}/submit",
        json={"from": {"address": "a@example.com"}, "to": [{"address": "gone@example.org"}]},
    )
    assert response.status_code == 200, response.text
    queue_id = response.json()["queueId"]
    events = _events(server, account, queue_id, {"messageFailed"})
    assert [e["event"] for e in events] == ["messageDeliveryError", "messageFailed"]
    assert events[0]["data"]["smtpResponseCode"] == 550
    assert events[0]["data"]["job"]["nextAttempt"] is False
    assert "refused" in events[1]["data"]["error"]
    assert api.get(f"/v1/outbox/{queue_id}").status_code == 404


def test_a_scheduled_message_waits_in_the_outbox_and_can_be_cancelled(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    response = api.post(
        f"/v1/account/{account}/submit",
        json={
            "to": [{"address": "later@example.org"}],
            "subject": "later",
            "sendAt": "2099-01-01T00:00:00.000Z",
        },
    )
    assert response.status_code == 400  # more than a year ahead
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 3600))
    response = api.post(
        f"/v1/account/{account}/submit",
        json={"to": [{"address": "later@example.org"}], "subject": "later", "sendAt": at},
    )
    assert response.status_code == 200, response.text
    queue_id = response.json()["queueId"]
    assert response.json()["sendAt"] == at
    entry = api.get(f"/v1/outbox/{queue_id}").json()
    assert entry["account"] == account
    assert entry["scheduled"] == at
    assert entry["attemptsMade"] == 0
    assert entry["envelope"] == {"from": "sender@example.com", "to": ["later@example.org"]}
    listed = api.get("/v1/outbox", params={"pageSize": 1000}).json()
    assert queue_id in [m["queueId"] for m in listed["messages"]]
    assert api.delete(f"/v1/outbox/{queue_id}").json() == {"deleted": True}
    assert api.delete(f"/v1/outbox/{queue_id}").json() == {"deleted": False}
    assert api.get(f"/v1/outbox/{queue_id}").status_code == 404


def test_an_idempotency_key_queues_once(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    body = {"to": [{"address": "once@example.org"}], "subject": "only once", "text": "1"}
    key = {"Idempotency-Key": f"k-{secrets.token_hex(4)}"}
    first = api.post(f"/v1/account/{account}/submit", json=body, headers=key).json()
    again = api.post(f"/v1/account/{account}/submit", json=body, headers=key).json()
    assert first["idempotency"]["status"] == "MISS"
    assert again["idempotency"]["status"] == "HIT"
    assert again["queueId"] == first["queueId"]
    assert again["messageId"] == first["messageId"]
    other = api.post(f"/v1/account/{account}/submit", json={**body, "text": "2"}, headers=key)
    assert other.status_code == 409
    assert len(_arrived(smtp_sink, first["messageId"])) == 1
    time.sleep(1.0)  # a second delivery would have had time to arrive
    assert len(_arrived(smtp_sink, first["messageId"])) == 1


def test_dry_run_builds_without_queueing(api: httpx.Client, sender: tuple[str, str]) -> None:
    account, _ = sender
    before = api.get("/v1/outbox").json()["total"]
    response = api.post(
        f"/v1/account/{account}/submit",
        json={"to": [{"address": "x@example.org"}], "subject": "preview", "dryRun": True},
    )
    assert response.status_code == 200, response.text
    assert "queueId" not in response.json()
    preview = base64.b64decode(response.json()["preview"])
    assert b"Subject: preview" in preview
    assert api.get("/v1/outbox").json()["total"] == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "no recipients"}, "to"),
        ({"to": [{"address": "x@example.org"}], "subject": "a\r\nBcc: evil@example.org"}, None),
        ({"to": [{"address": "x@example.org\r\nRCPT TO:<evil@example.org>"}]}, None),
        ({"envelope": {"to": ["x@example.org>\r\nDATA"]}, "subject": "s"}, None),
        ({"to": [{"address": "x@example.org"}], "sendAt": "2001-01-01T00:00:00Z"}, "sendAt"),
        ({"to": [{"address": "x@example.org"}], "headers": {"X-Bad": "a\nb"}}, None),
        ({"to": [{"address": "x@example.org"}], "trackOpens": True}, None),
        ({"to": [{"address": "x@example.org"}], "deliveryAttempts": 0}, None),
    ],
)
def test_bad_input_is_refused_and_nothing_is_queued(
    api: httpx.Client, sender: tuple[str, str], body: dict[str, Any], field: str | None
) -> None:
    account, _ = sender
    before = api.get("/v1/outbox").json()["total"]
    response = api.post(f"/v1/account/{account}/submit", json=body)
    assert response.status_code == 400, response.text
    if field is not None:
        assert field in response.text
    assert api.get("/v1/outbox").json()["total"] == before


def test_unknown_account_and_gateway(api: httpx.Client, sender: tuple[str, str]) -> None:
    account, _ = sender
    body = {"to": [{"address": "x@example.org"}]}
    assert api.post("/v1/account/nobody-here/submit", json=body).status_code == 404
    missing = api.post(f"/v1/account/{account}/submit", json={**body, "gateway": "nope"})
    assert missing.status_code == 404


def test_a_gateway_with_auth_carries_the_message_and_counts_it(
    api: httpx.Client, sender: tuple[str, str]
) -> None:
    account, _ = sender
    password = secrets.token_urlsafe(12)
    with SmtpSink(users={"relay": password}, require_auth=True) as relay:
        gateway = f"relay-{secrets.token_hex(3)}"
        created = api.post(
            "/v1/gateway",
            json={
                "gateway": gateway,
                "name": "Relay",
                "host": relay.host,
                "port": relay.port,
                "secure": False,
                "user": "relay",
                "pass": password,
            },
        )
        assert created.status_code == 200, created.text
        response = api.post(
            f"/v1/account/{account}/submit",
            json={"to": [{"address": "via@example.org"}], "subject": "relayed", "gateway": gateway},
        )
        assert response.status_code == 200, response.text
        [received] = _arrived(relay, response.json()["messageId"])
        assert received.auth_user == "relay"
        deadline = time.monotonic() + WAIT_S
        while api.get(f"/v1/gateway/{gateway}").json().get("deliveries") != 1:
            assert time.monotonic() < deadline, "the gateway's delivery was never counted"
            time.sleep(0.2)
        assert password not in api.get(f"/v1/gateway/{gateway}").text


def test_a_template_renders_per_recipient_in_a_mail_merge(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    created = api.post(
        "/v1/templates/template",
        json={
            "account": account,
            "name": "Receipt",
            "format": "html",
            "content": {
                "subject": "Order {{params.order}} for {{params.name}}",
                "text": "Hi {{params.name}} & co",
                "html": "<p>Hi {{params.name}}</p>",
                "previewText": "Your order {{params.order}}",
            },
        },
    )
    assert created.status_code == 200, created.text
    template = created.json()["id"]
    response = api.post(
        f"/v1/account/{account}/submit",
        json={
            "template": template,
            "mailMerge": [
                {"to": {"address": "ann@example.org"}, "params": {"name": "Ann", "order": 1}},
                {"to": {"address": "ben@example.org"}, "params": {"name": "<Ben>", "order": 2}},
            ],
        },
    )
    assert response.status_code == 200, response.text
    results = response.json()["mailMerge"]
    assert [r["success"] for r in results] == [True, True]
    assert [r["to"]["address"] for r in results] == ["ann@example.org", "ben@example.org"]
    [ann] = _arrived(smtp_sink, results[0]["messageId"])
    [ben] = _arrived(smtp_sink, results[1]["messageId"])
    assert ann.rcpt_tos == ("ann@example.org",)
    parsed = email.message_from_bytes(ben.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Order 2 for <Ben>"  # plain-text fields are not escaped
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Hi <Ben> & co"
    assert "<p>Hi &lt;Ben&gt;</p>" in html.get_content()  # html is escaped
    assert "Your order 2" in html.get_content()  # the hidden preview text


def test_request_fields_render_without_a_template_and_bad_templates_are_refused(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    response = api.post(
        f"/v1/account/{account}/submit",
        json={
            "to": [{"address": "r@example.org"}],
            "subject": "Hello {{params.who}}",
            "text": "x",
            "render": {"params": {"who": "world"}},
        },
    )
    assert response.status_code == 200, response.text
    [received] = _arrived(smtp_sink, response.json()["messageId"])
    assert b"Subject: Hello world" in received.raw
    before = api.get("/v1/outbox").json()["total"]
    for body in (
        {"to": [{"address": "r@example.org"}], "subject": "{{#if}}", "render": {"params": {}}},
        {"to": [{"address": "r@example.org"}], "template": "no-such-template"},
        {"mailMerge": [{"to": {"address": "r@example.org"}}], "to": [{"address": "x@e.org"}]},
    ):
        refused = api.post(f"/v1/account/{account}/submit", json=body)
        assert refused.status_code in (400, 404), refused.text
    assert api.get("/v1/outbox").json()["total"] == before


SAMPLES = Path(__file__).parent.parent / "protocols" / "mime" / "bounce_samples"


def test_bounces_and_complaints_arriving_in_the_inbox_raise_their_events(
    server: MailwireServer,
    api: httpx.Client,
    register_account: RegisterAccount,
    dovecot: Dovecot,
) -> None:
    user: MailUser = dovecot.add_user(f"rep-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    register_account(server, user.name, imap=dovecot_imap(dovecot, user.name, user.password))
    deadline = time.monotonic() + WAIT_S
    while api.get(f"/v1/account/{user.name}").json().get("state") != "connected":
        assert time.monotonic() < deadline, "the account never connected"
        time.sleep(0.2)
    for name in ("dsn_postfix.eml", "complaint_arf.eml", "autoreply.eml", "qmail.eml"):
        dovecot.deliver(user.name, (SAMPLES / name).read_bytes())
    deadline = time.monotonic() + WAIT_S
    while True:
        events = change_events(server, user.name)
        names = [e["event"] for e in events]
        if names.count("messageBounce") >= 2 and "messageComplaint" in names:
            break
        assert time.monotonic() < deadline, f"events so far: {names}"
        time.sleep(0.5)
    assert names.count("messageNew") == 4
    assert names.count("messageBounce") == 2  # the out-of-office reply is not a bounce
    bounces = [e["data"] for e in events if e["event"] == "messageBounce"]
    assert all(b["recipient"] and b["action"] and b["messageId"] for b in bounces)
    new_ids = {e["data"]["id"] for e in events if e["event"] == "messageNew"}
    assert {b["bounceMessage"] for b in bounces} <= new_ids
    [complaint] = [e["data"] for e in events if e["event"] == "messageComplaint"]
    assert complaint["complaintMessage"] in new_ids
    assert complaint["arf"]["originalRcptTo"]
    # The bounce comes after the messageNew of its own message.
    for bounce in bounces:
        position = next(
            n for n, e in enumerate(events) if e["data"].get("id") == bounce["bounceMessage"]
        )
        assert position < next(
            n
            for n, e in enumerate(events)
            if e["event"] == "messageBounce" and e["data"] is not None and e["data"] == bounce
        )


def test_a_stored_draft_is_sent_as_it_is_and_leaves_drafts(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, original = sender
    stored = api.post(
        f"/v1/account/{account}/message",
        json={
            "path": "\\Drafts",
            "flags": ["\\Draft"],
            "from": {"address": "sender@example.com"},
            "to": [{"address": "draft-reader@example.org"}],
            "subject": "from the drafts",
            "text": "written earlier",
        },
    )
    assert stored.status_code == 200, stored.text
    draft = stored.json()["id"]
    not_a_draft = api.post(f"/v1/account/{account}/message/{original}/submit", json={})
    assert not_a_draft.status_code == 400
    response = api.post(f"/v1/account/{account}/message/{draft}/submit", json={})
    assert response.status_code == 200, response.text
    message_id = response.json()["messageId"]
    assert message_id == stored.json()["messageId"]
    [received] = _arrived(smtp_sink, message_id)
    assert received.rcpt_tos == ("draft-reader@example.org",)
    assert b"written earlier" in received.raw
    deadline = time.monotonic() + WAIT_S
    while any(m["id"] == draft for m in _listed(api, account, "Drafts")):
        assert time.monotonic() < deadline, "the sent draft stayed in Drafts"
        time.sleep(0.3)


def test_consecutive_sends_reuse_one_smtp_session(
    api: httpx.Client, sender: tuple[str, str], smtp_sink: SmtpSink
) -> None:
    account, _ = sender
    peers = []
    for n in range(3):
        response = api.post(
            f"/v1/account/{account}/submit",
            json={"to": [{"address": f"again-{n}@example.org"}], "subject": f"again {n}"},
        )
        assert response.status_code == 200, response.text
        [received] = _arrived(smtp_sink, response.json()["messageId"])
        peers.append(received.peer)
    assert len(set(peers)) == 1, peers  # one connection (one client port) carried all three
