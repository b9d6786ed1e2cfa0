"""Bounce parsing: RFC 3464/6533 reports, the text-notice recognisers, limits; fuzz of both
report parsers (bounces and complaints) on random bytes and damaged samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.protocols.mime import bounce_heuristics as heuristics
from mailwire.protocols.mime.bounce_heuristics import MAX_RECIPIENTS, enhanced_status
from mailwire.protocols.mime.bounces import (
    MAX_REPORT_BYTES,
    MAX_TEXT_BYTES,
    Bounce,
    html_text,
    parse_bounce,
    readable_text,
    split_original,
)
from mailwire.protocols.mime.complaints import parse_complaint
from mailwire.protocols.mime.parse import parse_message

SAMPLES = Path(__file__).parent / "bounce_samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def bounce(raw: bytes) -> Bounce:
    found = parse_bounce(raw)
    assert found is not None
    return found


# name: (kind, recipient, action, status, response message, mta, queue id, message id)
EXPECTED = {
    "dsn_postfix.eml": (
        "dsn",
        "missing@example.net",
        "failed",
        "5.1.1",
        "550 5.1.1 <missing@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        "mx1.example.net",
        "7A3E2C0011",
        "<a1b2c3d4-0001@example.com>",
    ),
    "dsn_multi_recipient.eml": (
        "dsn",
        "gone@example.org",
        "failed",
        "5.2.1",
        "550 5.2.1 Mailbox disabled for this recipient",
        "mx.example.org",
        None,
        "<news-2024-04@example.com>",
    ),
    "dsn_exchange_base64.eml": (
        "dsn",
        "former.employee@example.org",
        "failed",
        "5.1.10",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "mx.example.org",
        None,
        "<CAJx9q-order-77@corp.example.com>",
    ),
    "dsn_global.eml": (
        "global-dsn",
        "jöran@exämple.net",
        "failed",
        "5.1.1",
        '550 5.1.1 mailbox "jöran" does not exist',
        "mx.example.net",
        None,
        "<invoice-42@example.com>",
    ),
    "qmail.eml": (
        "qmail",
        "nobody@example.net",
        "failed",
        "5.1.1",
        "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
        "192.0.2.44",
        None,
        "<order-8812.shipped@example.com>",
    ),
    "exim.eml": (
        "exim",
        "closed-account@example.net",
        "failed",
        "5.7.1",
        "550 5.7.1 <closed-account@example.net>: Relay access denied",
        "mail.example.net",
        None,
        "<invoice-2024-001@example.com>",
    ),
    "exim_delay.eml": (
        "exim",
        "slowpoke@example.org",
        "delayed",
        "4.7.1",
        "451 4.7.1 Greylisted, please try again later",
        "mx.example.org",
        "1rYaaa-000XYZ-0b",
        None,
    ),
    "exchange_ndr.eml": (
        "exchange",
        "candidate@example.net",
        "failed",
        "5.2.2",
        "552 5.2.2 STOREDRV.Deliver; mailbox full",
        "MBX12.corp.example.com",
        None,
        "<DM6PR-hr-5512@corp.example.com>",
    ),
    "exchange_legacy.eml": (
        "exchange",
        "chris@example.org",
        "failed",
        "5.1.1",
        "The e-mail account does not exist at the organization this message was sent to. "
        "Check the e-mail address, or contact the recipient directly to find out the "
        "correct address.",
        "gw.legacy.example.com",
        None,
        None,
    ),
    "postfix_plain.eml": (
        "postfix",
        "ops@example.net",
        "failed",
        "5.7.1",
        "554 5.7.1 <ops@example.net>: Recipient address rejected: Access denied",
        "mx.example.net",
        None,
        "<alert-disk-93@example.com>",
    ),
    "generic_dsn_failure.eml": (
        "generic",
        "no.such.user@example.org",
        "failed",
        "5.1.1",
        "550 5.1.1 The email account that you tried to reach does not exist.",
        None,
        None,
        "<CAB-trip-photos-5@example.com>",
    ),
    "generic_failure_notice.eml": (
        "generic",
        "member.left@example.net",
        "failed",
        None,
        "554: delivery error: dd This user doesn't have an example.net account "
        "(member.left@example.net) [0] - mta7.example.net",
        None,
        None,
        "<club-sept-meeting@example.com>",
    ),
}


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_samples(name: str, crlf: bool) -> None:
    raw = sample(name)
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    kind, recipient, action, status, message, mta, queue_id, message_id = EXPECTED[name]
    found = bounce(raw)
    chosen = found.recipient
    assert (found.kind, chosen.recipient, chosen.action, chosen.status) == (
        kind,
        recipient,
        action,
        status,
    )
    assert chosen.diagnostic is not None
    assert chosen.diagnostic.message == message
    assert (found.mta, found.queue_id, found.message_id) == (mta, queue_id, message_id)
    assert found.event_ready is (message_id is not None)


def test_postfix_dsn_event_data() -> None:
    found = bounce(sample("dsn_postfix.eml"))
    assert found.reporting_mta == "mail.example.com"
    assert found.arrival_date is not None
    assert found.arrival_date.isoformat() == "2024-03-12T09:14:05+01:00"
    data = found.to_event_data("AAAAAQAAAeE", original_id="AAAAAQAAAeD")
    headers = data.pop("messageHeaders")
    assert data == {
        "bounceMessage": "AAAAAQAAAeE",
        "recipient": "missing@example.net",
        "action": "failed",
        "response": {
            "source": "smtp",
            "message": EXPECTED["dsn_postfix.eml"][4],
            "status": "5.1.1",
        },
        "mta": "mx1.example.net",
        "queueId": "7A3E2C0011",
        "messageId": "<a1b2c3d4-0001@example.com>",
        "id": "AAAAAQAAAeD",
    }
    assert isinstance(headers, dict)
    assert headers["subject"] == ["Quarterly figures"]
    assert headers["to"] == ["Missing Person <missing@example.net>"]
    assert len(headers["received"]) == 1
    assert "ESMTPSA id 7A3E2C0011" in headers["received"][0]
    json.dumps(data)


def test_every_recipient_is_kept_and_the_failed_one_is_reported() -> None:
    found = bounce(sample("dsn_multi_recipient.eml"))
    first, second = found.recipients
    assert (first.recipient, first.action, first.status) == ("slow@example.org", "delayed", "4.4.7")
    assert first.diagnostic is not None
    assert first.diagnostic.source == "smtp"  # "SMTP; 451 ..." in the report
    assert found.recipient is second
    assert found.original_headers is not None
    assert found.original_headers.get("to") == "slow@example.org, gone@example.org"


def test_global_dsn_decodes_utf8_address_escapes() -> None:
    found = bounce(sample("dsn_global.eml"))
    assert found.recipient.original_recipient == "jöran@exämple.net"
    assert found.original_headers is not None
    assert found.original_headers.get("subject") == "Счёт № 42"


def test_second_qmail_recipient() -> None:
    found = bounce(sample("qmail.eml"))
    assert found.reporting_mta == "smtp.example.com"
    over_quota = found.recipients[1]
    assert (over_quota.recipient, over_quota.status) == ("full@example.org", "5.2.2")
    assert over_quota.diagnostic is not None
    assert over_quota.diagnostic.source is None  # not an SMTP reply, the notice's own words
    assert over_quota.diagnostic.message == "Sorry, the user's mailbox is over quota. (#5.2.2)"


def test_no_event_without_the_original_message_id() -> None:
    found = bounce(sample("exim_delay.eml"))
    assert not found.event_ready
    data = found.to_event_data("X")
    assert "messageId" not in data
    assert data["messageHeaders"] is None
    assert "id" not in data


# ---------------------------------------------------------------- one test per recogniser


def notice(name: str) -> str:
    return split_original(readable_text(parse_message(sample(name))))[0]


RECOGNISER_SAMPLES = {
    heuristics.qmail: "qmail.eml",
    heuristics.exim: "exim.eml",
    heuristics.exchange: "exchange_legacy.eml",
    heuristics.postfix: "postfix_plain.eml",
}


@pytest.mark.parametrize("recogniser", list(RECOGNISER_SAMPLES), ids=lambda f: f.__name__)
def test_each_recogniser_reads_only_its_own_format(
    recogniser: Callable[[str], heuristics.TextBounce | None],
) -> None:
    for name in RECOGNISER_SAMPLES.values():
        found = recogniser(notice(name))
        if name == RECOGNISER_SAMPLES[recogniser]:
            assert found is not None
            assert found.findings
            assert found.kind == recogniser.__name__
        else:
            assert found is None or not found.findings, name


def test_generic_recogniser_needs_a_mail_system_sender_and_a_failure_subject() -> None:
    text = "Your message wasn't delivered to lost@example.org.\n550 5.1.1 no such user\n"
    clues = heuristics.Clues("mailer-daemon@mx.example.net", "failure notice", text)
    found = heuristics.generic(clues)
    assert found is not None
    assert found.findings[0].recipient == "lost@example.org"
    assert found.findings[0].status == "5.1.1"
    person = heuristics.Clues("friend@example.net", "failure notice", text)
    assert heuristics.generic(person) is None
    other_subject = heuristics.Clues("postmaster@mx.example.net", "Your invoice", text)
    assert heuristics.generic(other_subject) is None


def test_generic_recogniser_skips_the_notice_own_addresses() -> None:
    text = "Mail from sender@example.com to lost@example.org failed: 550 unknown user\n"
    clues = heuristics.Clues(
        "postmaster@example.com",
        "Undeliverable: hello",
        text,
        own=frozenset({"sender@example.com"}),
    )
    found = heuristics.generic(clues)
    assert found is not None
    assert found.findings[0].recipient == "lost@example.org"


# ---------------------------------------------------------------- not bounces


@pytest.mark.parametrize("name", ["autoreply.eml", "autoreply_postmaster.eml"])
def test_auto_replies_are_not_bounces(name: str) -> None:
    assert parse_bounce(sample(name)) is None


def test_the_auto_reply_guard_is_what_stops_a_failure_worded_out_of_office() -> None:
    raw = sample("autoreply_postmaster.eml").replace(b"Subject: Out of Office: ", b"Subject: ")
    found = parse_bounce(raw)
    assert found is not None
    assert found.recipient.recipient == "deputy@example.org"


def test_a_person_quoting_a_bounce_is_not_a_bounce() -> None:
    raw = sample("qmail.eml").replace(b"From: MAILER-DAEMON@smtp.example.com", b"From: pat@ex.com")
    raw = raw.replace(b"Return-Path: <>\n", b"")
    assert parse_bounce(raw) is None
    assert parse_bounce(raw.replace(b"From:", b"Return-Path: <>\nFrom:", 1)) is not None


@pytest.mark.parametrize(
    "name", ["complaint_arf.eml", "complaint_yahoo.eml", "complaint_hotmail_jmrp.eml"]
)
def test_complaints_are_not_bounces(name: str) -> None:
    assert parse_bounce(sample(name)) is None


def test_read_receipt_is_not_a_bounce() -> None:
    raw = sample("dsn_postfix.eml").replace(b"report-type=delivery-status", b"report-type=x")
    assert parse_bounce(raw) is not None  # the status part alone makes it a bounce ...
    receipt = raw.replace(b"report-type=x", b"report-type=disposition-notification")
    assert parse_bounce(receipt) is None  # ... unless the report says it is something else


def test_plain_message_is_not_a_bounce() -> None:
    raw = b"From: a@example.com\nTo: b@example.net\nSubject: Hi\n\nMail delivery failed? 550\n"
    assert parse_bounce(raw) is None


# ---------------------------------------------------------------- field edge cases


def dsn(recipient_fields: str, per_message: str = "Reporting-MTA: dns; mx.example.com\n") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.com\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: text/plain\n\nFailed.\n"
        f"--b\nContent-Type: message/delivery-status\n\n{per_message}\n{recipient_fields}\n"
        "--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("fields", "action", "status"),
    [
        ("Action: failed\nStatus: banana", "failed", None),
        ("Action: failed\nStatus: 5.1", "failed", None),
        ("Action: failed\nStatus: 6.1.1", "failed", None),
        ("Action: failed\nStatus: 5.1.1 (unknown user)", "failed", "5.1.1"),
        ("Status: 4.4.1", "delayed", "4.4.1"),
        ("Action: exploded\nStatus: 5.0.0", "failed", "5.0.0"),
        ("Action: DELIVERED", "delivered", None),
        ("Action: failed\nDiagnostic-Code: smtp; 550 5.7.26 unauthenticated", "failed", "5.7.26"),
        ("Status: 1.2.3", None, None),
    ],
)
def test_action_and_status(fields: str, action: str | None, status: str | None) -> None:
    found = bounce(dsn(f"Final-Recipient: rfc822; x@example.net\n{fields}\n"))
    assert (found.recipient.action, found.recipient.status) == (action, status)
    assert ("action" in found.to_event_data("B")) is (action is not None)


def test_addresses_lose_their_type_and_brackets() -> None:
    found = bounce(dsn("Original-Recipient: RFC822;<Orig@Example.net>\nAction: failed\n"))
    assert found.recipient.recipient == "Orig@Example.net"
    found = bounce(dsn("Final-Recipient: bare@example.net\nAction: failed\n"))
    assert found.recipient.recipient == "bare@example.net"


def test_diagnostic_without_a_type_and_folded() -> None:
    fields = "Final-Recipient: rfc822; x@example.net\nDiagnostic-Code: 550 no\n  such user\n"
    diagnostic = bounce(dsn(fields)).recipient.diagnostic
    assert diagnostic is not None
    assert (diagnostic.source, diagnostic.message) == (None, "550 no such user")


def test_queue_id_fields() -> None:
    fields = "Final-Recipient: rfc822; x@example.net\n"
    assert bounce(dsn(fields, "X-Postfix-Queue-ID:\n")).queue_id is None
    assert bounce(dsn(fields, "X-Postfix-Queue-ID:  \n")).queue_id is None
    assert bounce(dsn(fields, "X-Queue-ID: 4Vx1 (local)\n")).queue_id == "4Vx1"


def test_status_part_naming_nobody_falls_back_to_the_text() -> None:
    raw = sample("dsn_postfix.eml")
    raw = raw.replace(b"Final-Recipient: rfc822; missing@example.net\n", b"")
    raw = raw.replace(b"Original-Recipient: rfc822;missing@example.net\n", b"")
    found = bounce(raw)
    assert found.kind == "postfix"
    assert found.recipient.recipient == "missing@example.net"


def test_enhanced_status_is_not_read_out_of_addresses_or_versions() -> None:
    assert enhanced_status("relay 10.5.1.1 refused") is None
    assert enhanced_status("Exim 4.96 and 15.2.1258.12") is None
    assert enhanced_status("<mx #5.1.1>") == "5.1.1"
    assert enhanced_status("550-5.7.26 rejected") == "5.7.26"


# ---------------------------------------------------------------- limits


def test_recipients_are_capped() -> None:
    groups = "".join(
        f"Final-Recipient: rfc822; r{i}@example.net\nAction: failed\n\n" for i in range(250)
    )
    found = bounce(dsn(groups))
    assert len(found.recipients) == MAX_RECIPIENTS
    assert found.recipients[-1].recipient == f"r{MAX_RECIPIENTS - 1}@example.net"


def test_a_huge_returned_message_is_read_only_up_to_the_limit() -> None:
    raw = sample("dsn_postfix.eml").replace(
        b"Hello, the figures are attached.", b"x" * (3 * MAX_REPORT_BYTES)
    )
    found = bounce(raw)
    assert found.message_id == "<a1b2c3d4-0001@example.com>"


def test_text_after_the_text_limit_is_not_searched() -> None:
    raw = sample("qmail.eml")
    early = raw.replace(b"Hi. This is", b"Hi.\n" + b"padding\n" * 100 + b"This is")
    late = raw.replace(b"Hi. This is", b"Hi.\n" + b"padding\n" * MAX_TEXT_BYTES + b"This is")
    assert parse_bounce(early) is not None
    assert parse_bounce(late) is None


@pytest.mark.parametrize(
    "body",
    [
        "Delivery has failed to these recipients or groups:\n\n" + "x" * 60_000 + "@" * 3000,
        "Delivery has failed to these recipients or groups:\n" + "<<<<a@" * 10_000,
        "This is the qmail-send program at a.\n<" + "a@" * 30_000 + ">:\n",
        "This is the mail system at host a.\n<" + "<a@" * 20_000 + "\n",
        "Sorry: " + "a@" * 30_000 + "b" * 30_000,
        "<" * 60_000 + "<mx #5.1.1>",
    ],
)
def test_hostile_notices_are_read_in_linear_time(body: str) -> None:
    raw = ("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n" + body).encode()
    found = parse_bounce(raw)
    assert found is None or found.recipients


@pytest.mark.parametrize(
    "markup",
    ["<a " * 20_000, "<a b='" * 10_000, "<!--" * 15_000, "<script>" * 8_000, "</" * 30_000],
)
def test_hostile_html_is_read_in_linear_time(markup: str) -> None:
    # html.parser needs about a minute for the first of these; the scanner a few ms.
    head = "From: MAILER-DAEMON@x.example\nSubject: failure notice\nContent-Type: text/html\n\n"
    assert parse_bounce((head + markup).encode()) is None


def test_html_text() -> None:
    markup = (
        "<html><head><style>p{color:red}</style></head><body><!-- a@b.example -->"
        "<P>Delivery to<br>lost@example.org failed &amp; gave up</P>"
        "<script>var s = '<p>x@y.example</p>';</script>after<!-- unclosed x@z.example"
    )
    assert html_text(markup) == "\nDelivery to\nlost@example.org failed & gave up\nafter"


def test_html_only_notice() -> None:
    raw = (
        b"From: postmaster@mx.example.net\nSubject: Undeliverable: hi\n"
        b"Content-Type: text/html\n\n<p>Delivery to <b>lost@example.org</b> failed:</p>"
        b"<p>550 5.1.1 User unknown</p>"
    )
    chosen = bounce(raw).recipient
    assert (chosen.recipient, chosen.status) == ("lost@example.org", "5.1.1")


# ---------------------------------------------------------------- fuzz

RAWS = [path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))]
PIECES = [
    b"\n",
    b"\n\n",
    b"--",
    b";",
    b":",
    b"<",
    b">",
    b"@",
    b"\xff",
    b"=?utf-8?b?",
    b"Status: 9.9.9999",
    b"Action: ",
    b"Final-Recipient: utf-8; \\x{110000}",
    b"Content-Type: message/delivery-status\n",
    b"Content-Transfer-Encoding: base64\n",
    b"X-Postfix-Queue-ID:",
    b"Diagnostic-Code: ;",
    b"Arrival-Date: Mon, 99 Foo 99999 99:99:99 +9999\n",
    b"Original-Rcpt-To: ",
    b"X-HmXmrOriginalRecipient: ",
    b"Content-Type: message/feedback-report\n",
]


def exercise(raw: bytes) -> None:
    """Both parsers on `raw`: None or a result whose event data serialises, never an error."""
    found = parse_bounce(raw)
    if found is not None:
        assert found.recipients
        json.dumps(found.to_event_data("B", original_id="O"))
        _ = (found.recipient, found.mta, found.event_ready)
    complaint = parse_complaint(raw)
    if complaint is not None:
        assert complaint.original_rcpt_to
        json.dumps(complaint.to_event_data("C"))


@settings(max_examples=150)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    exercise(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(RAWS)))
    for _ in range(draw(st.integers(1, 10))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(PIECES) | st.binary(min_size=1, max_size=6))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=250)
@given(mutated())
def test_damaged_samples_never_raise(raw: bytes) -> None:
    exercise(raw)
