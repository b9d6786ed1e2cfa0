"""Abuse complaints (feedback-loop reports) -> `Complaint`, for `messageComplaint`.

Theory of operation. `parse_complaint` reads the first `MAX_REPORT_BYTES` of
a message with `parse.parse_message` and recognises, in this order:

1. ARF (RFC 5965): a `message/feedback-report` part, normally the second
   part of a `multipart/report; report-type=feedback-report`, taken wherever
   it is among the leaves because older reporters send `multipart/mixed`.
   Its body is a block of header-like fields; each becomes a camelCased key:
   Feedback-Type -> feedbackType, Source-IP -> sourceIp, Original-Rcpt-To ->
   originalRcptTo (always a list), Arrival-Date (or the older Received-Date)
   -> arrivalDate as ISO 8601 UTC. The fields that RFC 5965 lets repeat
   (Reported-Domain, Reported-URI, Authentication-Results) give a string when
   they occur once and a list when they repeat; any other field keeps its
   first value.
2. Hotmail's JMRP style: no feedback-report part, but the reported message
   attached and one of: the subject "complaint about message from IP", the
   sender staff@hotmail.com, an X-HmXmrOriginalRecipient field in the
   attached message. That field names the complaining recipient; the IP comes
   from the subject, the arrival date from the top Received field of the
   attached message (added by the receiving system), originalMailFrom from
   its Return-Path.

`source` is guessed from the reporter's From address and User-Agent:
"Hotmail" (Hotmail, Outlook.com, JMRP), "Yahoo", "AOL", else "arf". Hotmail
reports get feedbackType "abuse" and abuseType "complaint" when they do not
say otherwise, as EmailEngine sends them.

The reported message (the third part: message/rfc822, text/rfc822-headers or
their RFC 6533 global forms) gives `headers`: messageId, from (the address
only), to, cc and bcc (address lists), subject (decoded) and date (ISO). A
report that names no original recipient (no Original-Rcpt-To, no
X-HmXmrOriginalRecipient) gives None: the complaint cannot be tied to a
person. Bad input never raises.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from mailwire.protocols.mime.bounce_heuristics import MAX_RECIPIENTS, clean_address, squeeze
from mailwire.protocols.mime.bounces import (
    MAX_REPORT_BYTES,
    attached_original,
    message_id_of,
    part_bytes,
    sender_of,
)
from mailwire.protocols.mime.headers import Headers, decode_words, parse_addresses, parse_fields
from mailwire.protocols.mime.parse import parse_message

#: Octets of the feedback-report part read; its fields fit in a few hundred.
MAX_FEEDBACK_BYTES: Final = 64 * 1024
#: Distinct report fields kept (RFC 5965 defines 13; RFC 6591 and others add a few),
#: and values kept per field (`MAX_RECIPIENTS`, which bounds Original-Rcpt-To).
MAX_REPORT_FIELDS: Final = 100
#: Characters kept per field value (RFC 5322 section 2.1.1: 998 per line; long
#: Authentication-Results are folded over a few lines).
MAX_FIELD_CHARS: Final = 4096

#: Report fields that RFC 5965 lets occur more than once (besides Original-Rcpt-To).
REPEATABLE: Final = frozenset({"reported-domain", "reported-uri", "authentication-results"})
#: Reporter patterns, tried in order on the report's From address and User-Agent.
SOURCES: Final = (
    ("Hotmail", re.compile(r"hotmail|outlook\.com|live\.com|msn\.com|jmrp", re.IGNORECASE)),
    ("Yahoo", re.compile(r"yahoo", re.IGNORECASE)),
    ("AOL", re.compile(r"\baol\b", re.IGNORECASE)),
)
_JMRP_SUBJECT: Final = re.compile(
    r"\s*complaint about message from \[?([0-9A-Fa-f.:]+)", re.IGNORECASE
)
_JMRP_RECIPIENT: Final = "x-hmxmroriginalrecipient"
_JMRP_SENDER: Final = "staff@hotmail.com"
_HANDLED: Final = frozenset(
    {
        "original-rcpt-to",
        "arrival-date",
        "received-date",
        "feedback-type",
        "abuse-type",
        "original-mail-from",
    }
)


@dataclass(frozen=True, slots=True)
class OriginalMessage:
    """The reported message's header fields, as the webhook's `headers` carries them."""

    message_id: str | None = None
    sender: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str | None = None
    date: datetime | None = None

    def to_event_data(self) -> dict[str, object]:
        """`messageId`, `from`, `to` (a list, maybe empty), `cc`, `bcc`, `subject`, `date`."""
        data: dict[str, object] = {}
        if self.message_id:
            data["messageId"] = self.message_id
        if self.sender:
            data["from"] = self.sender
        data["to"] = list(self.to)
        for key, values in (("cc", self.cc), ("bcc", self.bcc)):
            if values:
                data[key] = list(values)
        if self.subject is not None:
            data["subject"] = self.subject
        when = iso_utc(self.date)
        if when:
            data["date"] = when
        return data


@dataclass(frozen=True, slots=True)
class Complaint:
    """One complaint: the report's fields, camelCased, and the reported message."""

    #: "Hotmail", "Yahoo", "AOL" or "arf" (see the module docstring).
    source: str
    #: Never empty.
    original_rcpt_to: tuple[str, ...]
    feedback_type: str | None = None
    abuse_type: str | None = None
    original_mail_from: str | None = None
    arrival_date: datetime | None = None
    #: Every other field: (camelCased name, its values in report order).
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    original: OriginalMessage | None = None

    def field(self, name: str) -> str | None:
        """The first value of the other field `name` (camelCased, e.g. "sourceIp")."""
        return next((values[0] for key, values in self.fields if key == name and values), None)

    def arf(self) -> dict[str, object]:
        """The webhook's `arf` object."""
        data: dict[str, object] = {"source": self.source}
        for key, value in (("feedbackType", self.feedback_type), ("abuseType", self.abuse_type)):
            if value:
                data[key] = value
        if self.original_mail_from:
            data["originalMailFrom"] = self.original_mail_from
        data["originalRcptTo"] = list(self.original_rcpt_to)
        when = iso_utc(self.arrival_date)
        if when:
            data["arrivalDate"] = when
        for key, values in self.fields:
            if key not in data and values:
                data[key] = values[0] if len(values) == 1 else list(values)
        return data

    def to_event_data(self, complaint_message: str) -> dict[str, object]:
        """The `data` of a `messageComplaint` webhook; `complaint_message` is the report's id."""
        headers = self.original.to_event_data() if self.original is not None else {}
        return {"complaintMessage": complaint_message, "arf": self.arf(), "headers": headers}


def parse_complaint(raw: bytes) -> Complaint | None:
    """The complaint `raw` reports, or None when it is not one or names no recipient."""
    parsed = parse_message(raw[:MAX_REPORT_BYTES])
    original = attached_original(parsed)
    reporter = sender_of(parsed.headers)
    report = next((p for p in parsed.parts if p.content_type == "message/feedback-report"), None)
    if report is not None:
        fields = parse_fields(part_bytes(parsed, report, MAX_FEEDBACK_BYTES))
        source = guess_source(reporter, fields.get("user-agent") or "")
        return _from_report(fields, source, original)
    subject = parsed.headers.text("subject") or ""
    jmrp_subject = _JMRP_SUBJECT.match(subject)
    if original is None or not (
        jmrp_subject or reporter == _JMRP_SENDER or original.get(_JMRP_RECIPIENT)
    ):
        return None
    return _from_jmrp(original, jmrp_subject[1] if jmrp_subject else None)


def guess_source(reporter: str, user_agent: str) -> str:
    """Who sent the report, from its From address and User-Agent; "arf" when unknown."""
    text = f"{reporter} {user_agent}"
    return next((name for name, pattern in SOURCES if pattern.search(text)), "arf")


def _from_report(fields: Headers, source: str, original: Headers | None) -> Complaint | None:
    values: dict[str, list[str]] = {}
    for name, value in fields.fields:
        found = values.setdefault(name, []) if len(values) < MAX_REPORT_FIELDS else values.get(name)
        if found is not None and len(found) < MAX_RECIPIENTS:
            found.append(squeeze(value)[:MAX_FIELD_CHARS])
    recipients = _addresses(values.get("original-rcpt-to", []))
    if not recipients and original is not None:
        recipients = _addresses(original.get_all(_JMRP_RECIPIENT))
    if not recipients:
        return None
    feedback_type = (values.get("feedback-type") or [""])[0].lower() or None
    abuse_type = (values.get("abuse-type") or [""])[0] or None
    if source == "Hotmail":
        feedback_type = feedback_type or "abuse"
        abuse_type = abuse_type or "complaint"
    others = tuple(
        (camel_case(name), tuple(found if name in REPEATABLE else found[:1]))
        for name, found in values.items()
        if name not in _HANDLED
    )
    mail_from = values.get("original-mail-from")
    arrival = values.get("arrival-date") or values.get("received-date")
    return Complaint(
        source=source,
        original_rcpt_to=recipients,
        feedback_type=feedback_type,
        abuse_type=abuse_type,
        original_mail_from=(clean_address(mail_from[0]) or None) if mail_from else None,
        arrival_date=parse_any_date(arrival[0]) if arrival else None,
        fields=others,
        original=_original(original),
    )


def _from_jmrp(original: Headers, source_ip: str | None) -> Complaint | None:
    recipients = _addresses(original.get_all(_JMRP_RECIPIENT))
    if not recipients:
        return None
    received = original.get("received") or ""
    return_path = clean_address(original.get("return-path") or "")
    return Complaint(
        source="Hotmail",
        original_rcpt_to=recipients,
        feedback_type="abuse",
        abuse_type="complaint",
        original_mail_from=return_path or None,
        arrival_date=parse_any_date(received.rpartition(";")[2]) if ";" in received else None,
        fields=(("sourceIp", (source_ip,)),) if source_ip else (),
        original=_original(original),
    )


def _original(headers: Headers | None) -> OriginalMessage | None:
    if headers is None:
        return None
    sender = parse_addresses(headers.get("from"))
    subject = headers.get("subject")
    return OriginalMessage(
        message_id=message_id_of(headers),
        sender=sender[0].address if sender else None,
        to=_field_addresses(headers, "to"),
        cc=_field_addresses(headers, "cc"),
        bcc=_field_addresses(headers, "bcc"),
        subject=decode_words(subject) if subject is not None else None,
        date=parse_any_date(headers.get("date")),
    )


def _field_addresses(headers: Headers, name: str) -> tuple[str, ...]:
    found = (a.address for value in headers.get_all(name) for a in parse_addresses(value))
    return tuple(found)[:MAX_RECIPIENTS]


def _addresses(values: list[str]) -> tuple[str, ...]:
    """Addresses of Original-Rcpt-To style values: one per field, maybe bracketed."""
    found: list[str] = []
    for value in values:
        parsed = [a.address for a in parse_addresses(value)] or [clean_address(value)]
        found.extend(address for address in parsed if address and address not in found)
    return tuple(found[:MAX_RECIPIENTS])


def camel_case(name: str) -> str:
    """A field name as a camelCased key: "source-ip" -> "sourceIp"."""
    head, *rest = name.lower().split("-")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def parse_any_date(value: str | None) -> datetime | None:
    """An RFC 5322 date; one without a zone (or "-0000") is read as UTC. None if unreadable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """`moment` as ISO 8601 UTC with milliseconds ("2024-04-10T13:02:44.000Z")."""
    if moment is None:
        return None
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
