"""From FETCH responses to index records: decoded envelopes and attachment lists.

`FETCH_ITEMS` is what the initial index asks for (RFC 3501 section 6.4.5),
extended by what the server offers: MODSEQ with CONDSTORE (RFC 7162), EMAILID
and THREADID with OBJECTID (RFC 8474), Gmail's X-GM-* attributes. Header
words are decoded per RFC 2047; BODYSTRUCTURE is walked once to record text
part sizes and attachments (with IMAP part numbers, RFC 3501 section 6.4.5).
"""

from __future__ import annotations

import email.utils
import re
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mailwire.domain.messages import MessageRecord
from mailwire.protocols.imap.responses import (
    Address,
    BodyStructure,
    Envelope,
    Fetch,
    Multipart,
    SinglePart,
)
from mailwire.protocols.mime.charsets import decode_text
from mailwire.protocols.mime.headers import decode_words as mime_words

REFERENCES_SECTION = "HEADER.FIELDS (REFERENCES)"
BASE_ITEMS = (
    "UID",
    "FLAGS",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "RFC822.SIZE",
    "INTERNALDATE",
    f"BODY.PEEK[{REFERENCES_SECTION}]",
)
#: Longest header value kept in a column (RFC 5322 section 2.1.1 line limit).
MAX_HEADER_VALUE = 998
MAX_SUBJECT = 4096
#: A message with more parts than this keeps only the first ones in its attachment list.
MAX_ATTACHMENTS = 100


def fetch_items(capabilities: frozenset[str]) -> tuple[str, ...]:
    items = list(BASE_ITEMS)
    if "CONDSTORE" in capabilities or "QRESYNC" in capabilities:
        items.append("MODSEQ")
    if "OBJECTID" in capabilities:
        items += ["EMAILID", "THREADID"]
    if "X-GM-EXT-1" in capabilities:
        items += ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
    return tuple(items)


def record_from_fetch(mailbox_id: int, fetch: Fetch) -> MessageRecord | None:
    """The index record of one FETCH response; None when it lacks the UID."""
    if fetch.uid is None:
        return None
    envelope = fetch.envelope
    email_id = fetch.email_id or (str(fetch.x_gm_msgid) if fetch.x_gm_msgid else None)
    thread_id = fetch.thread_id or (str(fetch.x_gm_thrid) if fetch.x_gm_thrid else None)
    labels = None
    if fetch.x_gm_labels is not None:
        labels = tuple(label.decode("utf-8", "replace") for label in fetch.x_gm_labels)
    return MessageRecord(
        mailbox_id=mailbox_id,
        uid=fetch.uid,
        flags=tuple(fetch.flags or ()),
        size=int(fetch.rfc822_size or 0),
        internal_date=_ms(fetch.internaldate),
        date=_header_date(envelope.date) if envelope else None,
        subject=_text(envelope.subject, MAX_SUBJECT) if envelope else None,
        message_id=_text(envelope.message_id, MAX_HEADER_VALUE) if envelope else None,
        in_reply_to=_text(envelope.in_reply_to, MAX_HEADER_VALUE) if envelope else None,
        references=_references(fetch),
        email_id=email_id,
        thread_id=thread_id,
        modseq=fetch.modseq,
        labels=labels,
        envelope=_addresses(envelope) if envelope else {},
        structure=describe_structure(fetch.bodystructure) if fetch.bodystructure else None,
    )


def decode_words(raw: bytes | None) -> str | None:
    """An RFC 2047 encoded header value as text; undecodable bytes are replaced."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    return mime_words(text) if "=?" in text else text


def _text(raw: bytes | None, limit: int) -> str | None:
    value = decode_words(raw)
    return None if value is None else value[:limit]


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


#: The Date header as nearly every sender writes it (RFC 5322 section 3.3, numeric zone).
_COMMON_DATE = re.compile(
    rb"(?:[A-Za-z]{3}, ?)?(\d{1,2}) ([A-Za-z]{3}) (\d{4})"  # [day-of-week ","] date
    rb" (\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)"  # time and zone
)
_MONTHS = {
    name: number
    for number, name in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}


def _header_date(raw: bytes | None) -> int | None:
    """A Date header as epoch milliseconds; None when it is absent, unreadable or zoneless."""
    if not raw:
        return None
    common = _COMMON_DATE.fullmatch(raw.strip())
    if common is not None and (month := _MONTHS.get(common[2].lower())) is not None:
        day, _, year, hour, minute, second, sign, zone_h, zone_m = common.groups()
        offset = (int(zone_h) * 60 + int(zone_m)) * 60
        if offset or sign == b"+":  # "-0000" means no zone (RFC 5322 section 3.3)
            try:
                moment = datetime(
                    int(year), month, int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
                )
            except ValueError:
                return None
            return (int(moment.timestamp()) - (offset if sign == b"+" else -offset)) * 1000
    try:
        parsed = email.utils.parsedate_to_datetime(raw.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return _ms(parsed)


def _references(fetch: Fetch) -> str | None:
    for section in fetch.sections:
        if section.section.upper() == REFERENCES_SECTION and section.data:
            block = section.data.decode("utf-8", "replace")
            _, _, value = block.partition(":")
            joined = " ".join(value.split())
            return joined[: MAX_HEADER_VALUE * 4] or None
    return None


def _address(address: Address) -> dict[str, str] | None:
    if address.host is None or address.mailbox is None:
        return None  # RFC 3501 group syntax markers
    mailbox = address.mailbox.decode("utf-8", "replace")
    host = address.host.decode("utf-8", "replace")
    result = {"address": f"{mailbox}@{host}"[:MAX_HEADER_VALUE]}
    name = decode_words(address.name)
    if name:
        result = {"name": name[:MAX_HEADER_VALUE], **result}
    return result


class _AddressLists:
    """Decoded address lists, remembered: a mailbox's senders and recipients repeat.

    The decoded dicts are shared between records, which treat them as read-only.
    Bounded: the memory is dropped whole when it reaches `MAX_ENTRIES`.
    """

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._known: dict[tuple[Address, ...], tuple[dict[str, str], ...]] = {}

    def decode(self, addresses: tuple[Address, ...]) -> tuple[dict[str, str], ...]:
        found = self._known.get(addresses)
        if found is None:
            found = tuple(item for item in map(_address, addresses) if item is not None)
            if len(self._known) >= self.MAX_ENTRIES:
                self._known.clear()
            self._known[addresses] = found
        return found


_address_lists = _AddressLists()


def _addresses(envelope: Envelope) -> dict[str, Any]:
    result: dict[str, Any] = {}
    decode = _address_lists.decode
    for key, value in (("from", envelope.from_), ("sender", envelope.sender)):
        if value and (found := decode(value)):
            result[key] = found[0]
    for key, value in (
        ("replyTo", envelope.reply_to),
        ("to", envelope.to),
        ("cc", envelope.cc),
        ("bcc", envelope.bcc),
    ):
        if value and (found := decode(value)):
            result[key] = list(found)
    return result


def describe_structure(structure: BodyStructure) -> dict[str, Any]:
    """Text part sizes (`text`: {plain, html}) and `attachments` of one message."""
    text: dict[str, int] = {}
    attachments: list[dict[str, Any]] = []
    for part, single in _leaves(structure, ""):
        _classify(part or "1", single, text, attachments)
    return {"text": text, "attachments": attachments[:MAX_ATTACHMENTS]}


def _leaves(structure: BodyStructure, prefix: str) -> Iterable[tuple[str, SinglePart]]:
    if isinstance(structure, Multipart):
        for index, child in enumerate(structure.parts, start=1):
            yield from _leaves(child, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, structure


_TEXT_KINDS = {"text/plain": "plain", "text/html": "html"}


def text_parts(structure: BodyStructure) -> dict[str, tuple[str, SinglePart]]:
    """The message's text: kind ("plain", "html") -> (IMAP part number, the part).

    The same parts `describe_structure` counts as text rather than attachments.
    """
    found: dict[str, tuple[str, SinglePart]] = {}
    for part, single in _leaves(structure, ""):
        kind = _text_kind(single, _filename(single))
        if kind and kind not in found:
            found[kind] = (part or "1", single)
    return found


def _filename(single: SinglePart) -> str | None:
    named = _param(single.disposition.params if single.disposition else (), "filename")
    return named or _param(single.params, "name")


def _text_kind(single: SinglePart, filename: str | None) -> str | None:
    """ "plain" or "html" for a part that is the message's text, else None."""
    disposition = single.disposition.type.lower() if single.disposition else None
    kind = _TEXT_KINDS.get(f"{single.type}/{single.subtype}".lower())
    return kind if kind and disposition != "attachment" and not filename else None


def _classify(
    part: str, single: SinglePart, text: dict[str, int], attachments: list[dict[str, Any]]
) -> None:
    content_type = f"{single.type}/{single.subtype}".lower()
    disposition = single.disposition.type.lower() if single.disposition else None
    filename = _filename(single)
    kind = _text_kind(single, filename)
    if kind and kind not in text:
        text[kind] = single.size
        return
    attachment: dict[str, Any] = {
        "part": part,
        "contentType": content_type,
        "encodedSize": single.size,
        "embedded": single.id is not None,
        "inline": disposition == "inline",
    }
    if filename:
        attachment["filename"] = filename
    if single.id:
        attachment["contentId"] = single.id.decode("utf-8", "replace")[:MAX_HEADER_VALUE]
    attachments.append(attachment)


def _param(params: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    """A MIME parameter's value, RFC 2231 continuations and charsets included.

    Servers pass `filename*0*=utf-8''a%C3%A9`, `filename*1*=...` through as
    separate BODYSTRUCTURE parameters (RFC 2231 section 3); they are joined in
    order, percent-decoded where marked with `*`, and decoded with the charset
    the first segment names. A plain `filename` is RFC 2047-decoded instead.
    """
    plain: str | None = None
    segments: dict[int, tuple[bool, bytes]] = {}
    for key, value in params:
        if value is None:
            continue
        found = _RFC2231_NAME.fullmatch(key.lower())
        if found is None or found["name"] != name:
            continue
        number, extended = found["number"], bool(found["star"])
        if number is None and not extended:
            plain = plain or decode_words(value)
        elif len(segments) < MAX_PARAM_SEGMENTS:
            segments[int(number or 0)] = (extended, value)
    if not segments:
        return plain or None
    charset: str | None = None
    joined = bytearray()
    for index in sorted(segments):
        extended, value = segments[index]
        if extended:
            if index == min(segments) and value.count(b"'") >= 2:
                label, _language, value = value.split(b"'", 2)
                charset = label.decode("ascii", "replace") or None
            joined += urllib.parse.unquote_to_bytes(value)
        else:
            joined += value
    return decode_text(bytes(joined), charset) or plain or None


#: `name`, `name*`, `name*0`, `name*0*` (RFC 2231 sections 3 and 4).
_RFC2231_NAME = re.compile(r"(?P<name>[^*]+)(?:\*(?P<number>[0-9]{1,3}))?(?P<star>\*)?")
#: Continuation segments read per parameter; more are ignored.
MAX_PARAM_SEGMENTS = 64
