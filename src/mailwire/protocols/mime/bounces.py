"""Incoming bounces (delivery status notifications) -> `Bounce`, for `messageBounce`.

Theory of operation. `parse_bounce` reads the first `MAX_REPORT_BYTES` of a
message with `parse.parse_message` and tries, in this order:

1. RFC 3464 DSN: the first `message/delivery-status` part, or RFC 6533's
   `message/global-delivery-status` (UTF-8 fields, `utf-8` address type with
   `\\x{HEX}` escapes). It normally sits in an RFC 6522 `multipart/report;
   report-type=delivery-status`, but it is taken wherever it is among the
   leaves, because gateways rewrap reports (Exchange nests the notice in a
   `multipart/alternative`). Its body is one group of per-message fields and
   then one group per recipient, separated by blank lines (section 2.1):
   Reporting-MTA, Arrival-Date and `X-*-Queue-ID` (Postfix's
   X-Postfix-Queue-ID) per message; Final-Recipient, Original-Recipient,
   Action, Status (RFC 3463), Diagnostic-Code and Remote-MTA per recipient.
   A part that names no recipient is ignored and step 2 runs instead.
2. Text notices without such a part (qmail, Exim, Exchange, Postfix and a
   generic fallback), by `bounce_heuristics.recognise`, unless the message is
   an auto-reply (out-of-office notices quote failure words but report none).

Other reports (ARF feedback reports, read receipts) are not bounces. The
returned message's headers come from the attached `message/rfc822`,
`message/global`, `text/rfc822-headers` or `message/global-headers` part, or
from a copy quoted after a marker line in the notice; its Message-ID is what
the webhook calls `messageId`.

The recipient a `messageBounce` event reports is the first one whose action
is "failed", else the first; all are kept in `Bounce.recipients`. An Action
that is missing or unknown is inferred from the status class (5 failed,
4 delayed, 2 delivered). Bad input never raises: unreadable fields are left
out, and a message in which no recipient can be found gives None.

The helpers at the end (readable text, the returned message's headers) are
shared with `complaints`, whose reports are built the same way.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mailwire.protocols.mime.bounce_heuristics import (
    MAX_RECIPIENTS,
    Clues,
    Finding,
    clean_address,
    enhanced_status,
    recognise,
    smtp_reply,
    squeeze,
)
from mailwire.protocols.mime.charsets import decode_text
from mailwire.protocols.mime.decode import decode_transfer
from mailwire.protocols.mime.headers import (
    Headers,
    message_ids,
    parse_addresses,
    parse_date,
    parse_fields,
)
from mailwire.protocols.mime.parse import ParsedMessage, Part, parse_message

#: Octets of a report read at all. The notice and the machine-readable part come
#: first (RFC 6522); a returned original may follow with megabytes of
#: attachments, of which only its header block is wanted.
MAX_REPORT_BYTES: Final = 1024 * 1024
#: Octets of readable text searched by the recognisers: notices are a few KiB.
MAX_TEXT_BYTES: Final = 64 * 1024
#: Octets of the original message's header block kept. RFC 5322 section 2.1.1
#: bounds lines, not blocks; real header blocks stay in the tens of KiB.
MAX_ORIGINAL_HEADER_BYTES: Final = 64 * 1024
#: Octets of the delivery-status part read: about 300 per recipient group, so
#: this holds `MAX_RECIPIENTS` groups many times over.
MAX_STATUS_BYTES: Final = 256 * 1024
#: Characters of a diagnostic text kept (RFC 5321 section 4.5.3.1.5 bounds one
#: reply line at 512 octets; multi-line replies are joined into one).
MAX_DIAGNOSTIC_CHARS: Final = 2048

#: Media types that carry the returned message or its headers (RFC 6522, RFC 6533).
ORIGINAL_TYPES: Final = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
#: Action values of RFC 3464 section 2.3.3.
ACTIONS: Final = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
#: The part types holding delivery status (RFC 3464, RFC 6533).
STATUS_TYPES: Final = {
    "message/delivery-status": "dsn",
    "message/global-delivery-status": "global-dsn",
}
_ACTION_BY_CLASS: Final = {"5": "failed", "4": "delayed", "2": "delivered"}
_STATUS_FIELD: Final = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?!\w|\.\d)")
_GROUP_BREAK: Final = re.compile(rb"\r?\n(?:[ \t]*\r?\n)+")
_QUEUE_ID_FIELD: Final = re.compile(r"x-[a-z0-9-]*queue-?id")
_UTF8_ESCAPE: Final = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_REPORT_TYPE: Final = re.compile(r"report-type\s*=\s*\"?([\w-]+)", re.IGNORECASE)
_NOT_BOUNCES: Final = frozenset({"feedback-report", "disposition-notification"})
_AUTO_REPLY_SUBJECT: Final = re.compile(
    r"\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)"
    r"|autoreply|away from (?:the )?office|vacation)\b",
    re.IGNORECASE,
)
_ORIGINAL_MARKER: Final = re.compile(
    r"(?im)^[ \t]*(?:"
    r"-+ ?Below this line is a copy of the message\.?"
    r"|-+ ?Enclosed are the original headers of the message\.?"
    r"|-+ ?This is a copy of the message, including all the headers\.? ?-*"
    r"|Original message headers:?"
    r"|-+ ?Original message(?: follows)?\.? ?-*"
    r")[ \t]*$"
)
_HTML_HIDDEN: Final = re.compile(r"<!--|<(script|style)\b", re.IGNORECASE)
_HTML_HIDDEN_END: Final = re.compile(r"</(?:script|style)\s*>", re.IGNORECASE)
_HTML_TAG: Final = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)?[^<>]*>")
_HTML_BLOCKS: Final = frozenset({"br", "p", "div", "tr", "li", "pre", "h1", "h2", "h3", "h4"})
_AUTO_REPLY_FIELDS: Final = ("x-autoreply", "x-autorespond", "x-autoresponder")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A Diagnostic-Code (RFC 3464 section 2.3.6): its type ("smtp") and its text."""

    source: str | None
    message: str


@dataclass(frozen=True, slots=True)
class BounceRecipient:
    """What the report says about one recipient."""

    #: Final-Recipient (else Original-Recipient) without its address type.
    recipient: str
    original_recipient: str | None = None
    action: str | None = None
    #: Enhanced status code `X.Y.Z` (RFC 3463), when a valid one was given.
    status: str | None = None
    diagnostic: Diagnostic | None = None
    remote_mta: str | None = None

    def response(self) -> dict[str, str]:
        """The webhook's `response` object: `source`, `message`, `status` when known."""
        result: dict[str, str] = {}
        if self.diagnostic is not None:
            if self.diagnostic.source:
                result["source"] = self.diagnostic.source
            result["message"] = self.diagnostic.message
        if self.status:
            result["status"] = self.status
        return result


@dataclass(frozen=True, slots=True)
class Bounce:
    """One bounce: every recipient it names, per-message details, the returned message."""

    #: Which reader found it: "dsn", "global-dsn", "qmail", "exim", "exchange",
    #: "postfix" or "generic".
    kind: str
    #: Never empty.
    recipients: tuple[BounceRecipient, ...]
    reporting_mta: str | None = None
    queue_id: str | None = None
    arrival_date: datetime | None = None
    #: The returned message's Message-ID and header fields, when it came back.
    message_id: str | None = None
    original_headers: Headers | None = None

    @property
    def recipient(self) -> BounceRecipient:
        """The recipient the event reports: the first that failed, else the first."""
        return next((r for r in self.recipients if r.action == "failed"), self.recipients[0])

    @property
    def mta(self) -> str | None:
        """The server that gave the answer: the recipient's Remote-MTA, else the reporter."""
        return self.recipient.remote_mta or self.reporting_mta

    @property
    def event_ready(self) -> bool:
        """True when the event can be raised: recipient, action and messageId are known."""
        return bool(self.recipient.recipient and self.recipient.action and self.message_id)

    def to_event_data(
        self, bounce_message: str, *, original_id: str | None = None
    ) -> dict[str, object]:
        """The `data` of a `messageBounce` webhook.

        `bounce_message` is the id of the bounce email itself, `original_id` the
        id of the returned message when the caller found it in the mailbox.
        Unknown optional keys are left out; `messageHeaders` is null when the
        original's headers did not come back.
        """
        chosen = self.recipient
        data: dict[str, object] = {"bounceMessage": bounce_message, "recipient": chosen.recipient}
        if chosen.action:
            data["action"] = chosen.action
        response = chosen.response()
        if response:
            data["response"] = response
        for key, value in (("mta", self.mta), ("queueId", self.queue_id)):
            if value:
                data[key] = value
        if self.message_id:
            data["messageId"] = self.message_id
        headers = self.original_headers
        data["messageHeaders"] = headers.as_dict() if headers is not None else None
        if original_id:
            data["id"] = original_id
        return data


def parse_bounce(raw: bytes) -> Bounce | None:
    """The bounce `raw` reports, or None when it is not one. Never raises."""
    parsed = parse_message(raw[:MAX_REPORT_BYTES])
    report_type = _REPORT_TYPE.search(parsed.headers.get("content-type") or "")
    if report_type is not None and report_type[1].lower() in _NOT_BOUNCES:
        return None
    notice, quoted = split_original(readable_text(parsed))
    original = attached_original(parsed) or quoted
    found = _from_status_part(parsed, original)
    if found is not None or _is_auto_reply(parsed.headers):
        return found
    clues = Clues(
        sender=sender_of(parsed.headers),
        subject=parsed.headers.text("subject") or "",
        text=notice,
        null_return_path=(parsed.headers.get("return-path") or "").strip() == "<>",
        own=frozenset(a.address.lower() for a in parse_addresses(parsed.headers.get("to"))),
    )
    text_bounce = recognise(clues)
    if text_bounce is None:
        return None
    return Bounce(
        kind=text_bounce.kind,
        recipients=tuple(_from_finding(finding) for finding in text_bounce.findings),
        reporting_mta=text_bounce.reporting_mta,
        queue_id=text_bounce.queue_id,
        message_id=message_id_of(original),
        original_headers=original,
    )


def _from_status_part(parsed: ParsedMessage, original: Headers | None) -> Bounce | None:
    part = next((p for p in parsed.parts if p.content_type in STATUS_TYPES), None)
    if part is None:
        return None
    groups = [
        fields
        for block in _GROUP_BREAK.split(part_bytes(parsed, part, MAX_STATUS_BYTES))
        if (fields := parse_fields(block)).fields
    ]
    recipients = [found for group in groups if (found := _recipient(group)) is not None]
    if not recipients:
        return None
    per_message = Headers(tuple(field for group in groups for field in group.fields))
    queue_id = next(
        (
            value.split()[0]
            for name, value in per_message
            if _QUEUE_ID_FIELD.fullmatch(name) and value.split()
        ),
        None,
    )
    return Bounce(
        kind=STATUS_TYPES[part.content_type],
        recipients=tuple(recipients[:MAX_RECIPIENTS]),
        reporting_mta=_typed_value(per_message.get("reporting-mta")),
        queue_id=queue_id,
        arrival_date=parse_date(per_message.get("arrival-date")),
        message_id=message_id_of(original),
        original_headers=original,
    )


def _recipient(group: Headers) -> BounceRecipient | None:
    """One per-recipient group (RFC 3464 section 2.3), or None when it names nobody."""
    final = _address(group.get("final-recipient"))
    original = _address(group.get("original-recipient"))
    recipient = final or original
    if not recipient:
        return None
    status_match = _STATUS_FIELD.match(group.get("status") or "")
    diagnostic = _diagnostic(group.get("diagnostic-code"))
    status = status_match[1] if status_match else None
    if status is None and diagnostic is not None:
        status = enhanced_status(diagnostic.message)
    action = (group.get("action") or "").strip().lower()
    if action not in ACTIONS:
        action = _ACTION_BY_CLASS.get(status[0], "") if status else ""
    return BounceRecipient(
        recipient=recipient,
        original_recipient=original,
        action=action or None,
        status=status,
        diagnostic=diagnostic,
        remote_mta=_typed_value(group.get("remote-mta")),
    )


def _typed_value(value: str | None) -> str | None:
    """A typed value without its type ("dns; mx.example.net" -> "mx.example.net")."""
    if not value:
        return None
    kind, semicolon, rest = value.partition(";")
    return (rest if semicolon else kind).strip().rstrip(".") or None


def _address(value: str | None) -> str | None:
    """An address field's address, without its type; RFC 6533 `\\x{HEX}` escapes decoded."""
    if not value:
        return None
    kind, semicolon, rest = value.partition(";")
    address = clean_address(rest if semicolon else kind)
    if semicolon and kind.strip().lower() == "utf-8":
        address = _UTF8_ESCAPE.sub(_unescape, address)
    return address or None


def _unescape(match: re.Match[str]) -> str:
    code = int(match[1], 16)
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match[0]


def _diagnostic(value: str | None) -> Diagnostic | None:
    """A Diagnostic-Code split at its type: "smtp; 550 ..." -> Diagnostic("smtp", "550 ...")."""
    if not value:
        return None
    kind, semicolon, rest = value.partition(";")
    source = kind.strip().lower() if semicolon and kind.strip() else None
    message = squeeze(rest if semicolon else kind)[:MAX_DIAGNOSTIC_CHARS]
    return Diagnostic(source, message) if message else None


def _from_finding(finding: Finding) -> BounceRecipient:
    diagnostic = None
    if finding.message:
        message = finding.message[:MAX_DIAGNOSTIC_CHARS]
        source = "smtp" if smtp_reply(message) == message else None
        diagnostic = Diagnostic(source, message)
    return BounceRecipient(
        recipient=finding.recipient,
        action=finding.action,
        status=finding.status,
        diagnostic=diagnostic,
        remote_mta=finding.mta,
    )


def _is_auto_reply(headers: Headers) -> bool:
    """Out-of-office and other auto-responses (RFC 3834 marks them, not always reliably)."""
    if any(headers.get(name) is not None for name in _AUTO_REPLY_FIELDS):
        return True
    return _AUTO_REPLY_SUBJECT.match(headers.text("subject") or "") is not None


# ---------------------------------------------------------------- report helpers, shared


def sender_of(headers: Headers) -> str:
    """The first From address of a header block, lower-cased ("" when there is none)."""
    found = parse_addresses(headers.get("from"))
    return found[0].address.lower() if found else ""


def readable_text(parsed: ParsedMessage) -> str:
    """The message's plain text (else its HTML's), cut to `MAX_TEXT_BYTES`, with LF line ends."""
    part = parsed.plain_part or parsed.html_part
    if part is None:
        return ""
    text = _part_text(parsed, part, MAX_TEXT_BYTES).replace("\r\n", "\n").replace("\r", "\n")
    return text if part is parsed.plain_part else html_text(text)


def html_text(markup: str) -> str:
    """The text of an HTML notice: no comments, scripts or styles; a line per block element.

    Written as forward scans rather than with `html.parser`, whose work grows with
    the square of the input on unclosed tags; every search here starts where the
    previous one ended, and a tag ends at the next "<" (so one costs its own length).
    """
    kept: list[str] = []
    at = 0
    while (found := _HTML_HIDDEN.search(markup, at)) is not None:
        kept.append(markup[at : found.start()])
        if found[1] is None:  # a comment
            end = markup.find("-->", found.end())
            at = end + 3 if end >= 0 else len(markup)
        else:
            close = _HTML_HIDDEN_END.search(markup, found.end())
            at = close.end() if close is not None else len(markup)
    kept.append(markup[at:])
    text = _HTML_TAG.sub(
        lambda tag: "\n" if (tag[1] or "").lower() in _HTML_BLOCKS else "", "".join(kept)
    )
    return html.unescape(text)


def part_bytes(parsed: ParsedMessage, part: Part, limit: int) -> bytes:
    """At most `limit` transfer-decoded octets of `part`; later encoded octets are not decoded.

    Three encoded octets per decoded one is quoted-printable's worst case, so
    `3 * limit` encoded octets always decode to at least `limit` when there are that many.
    """
    encoded = parsed.raw[part.start : min(part.end, part.start + 3 * limit)]
    return decode_transfer(encoded, part.transfer_encoding)[:limit]


def _part_text(parsed: ParsedMessage, part: Part, limit: int) -> str:
    return decode_text(part_bytes(parsed, part, limit), part.charset)


def header_block(data: bytes) -> Headers | None:
    """The header fields at the start of `data` (up to its first blank line), or None."""
    data = data[:MAX_ORIGINAL_HEADER_BYTES].lstrip(b"\r\n")
    ends = [at for gap in (b"\n\n", b"\n\r\n") if (at := data.find(gap)) >= 0]
    headers = parse_fields(data[: min(ends) + 1] if ends else data)
    return headers if headers.fields else None


def attached_original(parsed: ParsedMessage) -> Headers | None:
    """The headers of the first returned message (or returned header block) attached."""
    for part in parsed.parts:
        if part.content_type in ORIGINAL_TYPES:
            return header_block(part_bytes(parsed, part, MAX_ORIGINAL_HEADER_BYTES))
    return None


def split_original(text: str) -> tuple[str, Headers | None]:
    """(the notice, the headers of the original copied inline after a marker line, if any)."""
    marker = _ORIGINAL_MARKER.search(text)
    if marker is None:
        return text, None
    copy = text[marker.end() :].encode("utf-8", "replace")
    return text[: marker.start()], header_block(copy)


def message_id_of(headers: Headers | None) -> str | None:
    """The Message-ID of a header block: its first `<id>`, else the bare value."""
    value = headers.get("message-id") if headers else None
    if not value:
        return None
    ids = message_ids(value)
    return ids[0] if ids else value.strip() or None
