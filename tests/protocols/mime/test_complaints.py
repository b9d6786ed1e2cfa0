"""Complaint parsing: ARF (RFC 5965) reports, Hotmail's JMRP style, limits.

The fuzz tests of `parse_complaint` are in test_bounces.py, which feeds every
sample, damaged, to both parsers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailwire.protocols.mime.bounce_heuristics import MAX_RECIPIENTS
from mailwire.protocols.mime.complaints import (
    MAX_FIELD_CHARS,
    Complaint,
    camel_case,
    guess_source,
    iso_utc,
    parse_any_date,
    parse_complaint,
)

SAMPLES = Path(__file__).parent / "bounce_samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def complaint(raw: bytes) -> Complaint:
    found = parse_complaint(raw)
    assert found is not None
    return found


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_arf_report(crlf: bool) -> None:
    raw = sample("complaint_arf.eml")
    data = complaint(raw.replace(b"\n", b"\r\n") if crlf else raw).to_event_data("AAAAAQAABzE")
    assert data == {
        "complaintMessage": "AAAAAQAABzE",
        "arf": {
            "source": "arf",
            "feedbackType": "abuse",
            "originalMailFrom": "bounces+77@mail.example.com",
            "originalRcptTo": ["reader@isp.example.net"],
            "arrivalDate": "2024-04-10T13:02:44.000Z",
            "userAgent": "ExampleFBL/2.1",
            "version": "1",
            "reportingMta": "dns; inbound.isp.example.net",
            "sourceIp": "203.0.113.17",
            "authenticationResults": "inbound.isp.example.net; "
            "spf=pass smtp.mailfrom=mail.example.com; dkim=pass header.d=example.com",
            "reportedDomain": "example.com",
            "reportedUri": ["https://example.com/sale", "https://example.com/unsubscribe?u=77"],
            "incidents": "1",
        },
        "headers": {
            "messageId": "<sale-2024-spring.77@example.com>",
            "from": "news@example.com",
            "to": ["reader@isp.example.net"],
            "cc": ["other.reader@isp.example.net"],
            "subject": "Spring sale starts now — 30% off",
            "date": "2024-04-10T13:02:40.000Z",
        },
    }
    json.dumps(data)


def test_yahoo_report_uses_received_date_and_is_named() -> None:
    found = complaint(sample("complaint_yahoo.eml"))
    arf = found.arf()
    assert arf["source"] == "Yahoo"
    assert arf["arrivalDate"] == "2024-07-16T04:10:02.000Z"
    assert arf["originalRcptTo"] == ["subscriber@example.org"]  # a bare address, one field
    assert "abuseType" not in arf
    assert "receivedDate" not in arf


def test_hotmail_jmrp_style() -> None:
    data = complaint(sample("complaint_hotmail_jmrp.eml")).to_event_data("C")
    assert data["arf"] == {
        "source": "Hotmail",
        "feedbackType": "abuse",
        "abuseType": "complaint",
        "originalMailFrom": "bounce-4411@example.com",
        "originalRcptTo": ["someone@hotmail.example.org"],
        "arrivalDate": "2024-10-21T18:58:12.000Z",
        "sourceIp": "203.0.113.40",
    }
    assert data["headers"] == {
        "messageId": "<promo-4411@example.com>",
        "from": "promo@example.com",
        "to": ["someone@hotmail.example.org"],
        "subject": "Don't miss out",
        "date": "2024-10-21T18:58:09.000Z",
    }


def test_hotmail_arf_gets_the_defaults_and_its_recipient_from_the_original() -> None:
    raw = sample("complaint_arf.eml").replace(b"fbl@isp.example.net", b"staff@hotmail.com")
    raw = raw.replace(b"Feedback-Type: abuse\n", b"")
    raw = raw.replace(b"Original-Rcpt-To: <reader@isp.example.net>\n", b"")
    assert parse_complaint(raw) is None  # no recipient anywhere yet
    raw = raw.replace(
        b"Subject: =?utf", b"X-HmXmrOriginalRecipient: <hm@example.org>\nSubject: =?utf"
    )
    arf = complaint(raw).arf()
    assert (arf["source"], arf["feedbackType"], arf["abuseType"]) == (
        "Hotmail",
        "abuse",
        "complaint",
    )
    assert arf["originalRcptTo"] == ["hm@example.org"]


def test_report_stating_its_own_types_keeps_them() -> None:
    raw = sample("complaint_arf.eml").replace(b"fbl@isp.example.net", b"staff@hotmail.com")
    raw = raw.replace(b"Feedback-Type: abuse", b"Feedback-Type: Fraud\nAbuse-Type: phishing")
    arf = complaint(raw).arf()
    assert (arf["feedbackType"], arf["abuseType"]) == ("fraud", "phishing")


def test_no_original_recipient_means_no_complaint() -> None:
    assert parse_complaint(sample("complaint_no_recipient.eml")) is None
    raw = sample("complaint_no_recipient.eml").replace(
        b"Source-IP:", b"Original-Rcpt-To: <late@example.net>\nSource-IP:"
    )
    found = complaint(raw)
    assert found.original_rcpt_to == ("late@example.net",)
    assert found.original is not None
    assert found.original.to_event_data() == {
        "messageId": "<hello-1@example.com>",
        "from": "news@example.com",
        "to": [],
        "subject": "Hello",
    }


def test_report_without_original_part_has_empty_headers() -> None:
    raw = sample("complaint_arf.eml")
    raw = raw[: raw.index(b"--==fbl_9911==\nContent-Type: message/rfc822")]
    data = complaint(raw).to_event_data("C")
    assert data["headers"] == {}


@pytest.mark.parametrize(
    "name",
    ["dsn_postfix.eml", "qmail.eml", "autoreply.eml", "generic_dsn_failure.eml"],
)
def test_bounces_and_other_mail_are_not_complaints(name: str) -> None:
    assert parse_complaint(sample(name)) is None


def test_mail_forwarded_as_attachment_is_not_a_complaint() -> None:
    raw = sample("complaint_hotmail_jmrp.eml")
    raw = raw.replace(b"From: staff@hotmail.com", b"From: friend@example.net")
    raw = raw.replace(b"complaint about message from 203.0.113.40", b"Fwd: look at this")
    assert parse_complaint(raw.replace(b"X-HmXmrOriginalRecipient", b"X-Other")) is None
    assert parse_complaint(raw) is not None  # the JMRP header alone still marks it


@pytest.mark.parametrize(
    ("reporter", "agent", "source"),
    [
        ("staff@hotmail.com", "", "Hotmail"),
        ("abuse@example.net", "Outlook.com JMRP", "Hotmail"),
        ("feedback@arf.mail.yahoo.com", "", "Yahoo"),
        ("x@example.net", "Yahoo!-Mail-Feedback/2.0", "Yahoo"),
        ("scomp@aol.net", "", "AOL"),
        ("fbl@example.net", "ExampleFBL/1.0", "arf"),
        ("fbl@outlook.example.net", "", "arf"),
    ],
)
def test_guess_source(reporter: str, agent: str, source: str) -> None:
    assert guess_source(reporter, agent) == source


def test_camel_case() -> None:
    assert camel_case("Original-Rcpt-To") == "originalRcptTo"
    assert camel_case("source-ip") == "sourceIp"
    assert camel_case("Version") == "version"
    assert camel_case("x--odd-") == "xOdd"


def test_dates() -> None:
    assert iso_utc(datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)) == (
        "2024-01-02T03:04:05.678Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2024, 1, 1, 1, 0, tzinfo=plus_two)) == "2023-12-31T23:00:00.000Z"
    assert iso_utc(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=2)))) is None
    no_zone = parse_any_date("Wed, 10 Apr 2024 09:02:44 -0000")
    assert no_zone == datetime(2024, 4, 10, 9, 2, 44, tzinfo=UTC)
    assert parse_any_date("next Tuesday") is None
    assert parse_any_date(None) is None


def test_limits_on_fields_and_recipients() -> None:
    extra = b"".join(b"Original-Rcpt-To: <r%d@example.net>\n" % i for i in range(300))
    raw = sample("complaint_arf.eml").replace(
        b"Incidents: 1", b"Incidents: 1\nX-Note: " + b"n" * (3 * MAX_FIELD_CHARS) + b"\n" + extra
    )
    found = complaint(raw)
    assert len(found.original_rcpt_to) == MAX_RECIPIENTS
    assert found.field("xNote") == "n" * MAX_FIELD_CHARS
