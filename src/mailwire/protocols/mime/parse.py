"""Raw RFC 5322 bytes -> `ParsedMessage`: headers, addresses, leaf parts and text.

Theory of operation. The structure is found on the bytes themselves, not by
the standard library's feed parser, for three reasons: every part keeps its
exact byte span (so `encodedSize` equals the size IMAP reports in
BODYSTRUCTURE and a part's bytes equal `BODY[n]`), nesting is walked under
our own named limits, and broken boundaries degrade part by part. Headers
of each entity go through `headers.parse_fields`; their parameters (RFC 2045
section 5.1, RFC 2231 continuations and charsets) through the standard
library's `email.message.Message`.

Walk: an entity is a header block, a blank line and a body (a missing blank
line means headers without a body). A `multipart/*` body is cut at its
delimiter lines (RFC 2046 section 5.1.1: `--boundary`, optional blanks, line
end; `--boundary--` closes; the line break before a delimiter belongs to it).
Anything else, `message/rfc822` included, is a leaf, numbered as RFC 3501
section 6.4.5 numbers body parts: the body of a non-multipart message is "1",
the children of a multipart are 1..n, a nested multipart's children "2.1"...
exactly as `backends.imap.messages.describe_structure` numbers BODYSTRUCTURE.

Broken input: a missing closing delimiter ends the last part at the end of
the message; a multipart whose boundary is missing or never found is read as
one text/plain leaf; past `MAX_DEPTH` a multipart is a leaf; past `MAX_PARTS`
leaves are not listed. Each such repair is noted in `defects`. Nothing here
raises on any input.

Checked against Dovecot (tests/protocols/mime/test_mime_dovecot.py): part
numbers, types and sizes agree, with two known differences. An embedded
message ending in its own close delimiter with the enclosing delimiter on the
next line: Dovecot counts the line break between them into the embedded
message, RFC 2046 (and this parser) into the enclosing delimiter. A multipart
whose boundary never occurs: Dovecot reports one empty part "1", this parser
reads the whole body as part "1" so that its text is not lost.
"""

from __future__ import annotations

import email.message
import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from mailwire.protocols.mime.charsets import decode_text
from mailwire.protocols.mime.decode import decode_transfer
from mailwire.protocols.mime.headers import (
    Address,
    Headers,
    decode_words,
    message_ids,
    parse_addresses,
    parse_date,
    parse_fields,
)

#: Leaf parts listed per message. Mail with hundreds of parts exists (digests,
#: image-heavy newsletters); thousands only come from abuse, and every part costs
#: a header parse and a row in the API's attachment list.
MAX_PARTS: Final = 1000
#: Multipart nesting followed. Real mail nests 3-5 deep (mixed > related >
#: alternative, plus forwards); deeper multiparts are kept whole as one leaf.
MAX_DEPTH: Final = 32

_TEXT_KINDS: Final = {"text/plain": "plain", "text/html": "html"}
_PARAM_ERRORS: Final = (ValueError, LookupError, UnicodeError, IndexError, TypeError)


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf body part: its IMAP number, how it is labelled, where its body lies."""

    part: str
    content_type: str
    charset: str | None
    params: dict[str, str]
    disposition: str | None
    filename: str | None
    content_id: str | None
    transfer_encoding: str
    #: Octets of the body as stored, before transfer decoding (IMAP's body size).
    encoded_size: int
    headers: Headers
    start: int
    end: int

    @property
    def text_kind(self) -> str | None:
        """ "plain" or "html" for a text/plain or text/html part, else None."""
        return _TEXT_KINDS.get(self.content_type)


@dataclass(frozen=True, slots=True)
class MessageText:
    """The message's readable text, as the REST `text` object carries it."""

    plain: str | None
    html: str | None
    has_more: bool
    plain_part: str | None
    html_part: str | None
    encoded_size: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A parsed message: top-level headers, leaves in order, text and attachment parts."""

    raw: bytes
    headers: Headers
    parts: tuple[Part, ...]
    plain_part: Part | None
    html_part: Part | None
    attachments: tuple[Part, ...]
    defects: tuple[str, ...]

    @property
    def subject(self) -> str | None:
        return self.headers.text("subject")

    def addresses(self, name: str) -> tuple[Address, ...]:
        """Every mailbox of the address fields called `name` (from, to, cc, bcc, reply-to...)."""
        found: list[Address] = []
        for value in self.headers.get_all(name):
            found.extend(parse_addresses(value))
        return tuple(found)

    @property
    def message_id(self) -> str | None:
        value = self.headers.get("message-id")
        return None if value is None else (message_ids(value) or (value,))[0]

    @property
    def in_reply_to(self) -> str | None:
        ids = message_ids(self.headers.get("in-reply-to"))
        return ids[0] if ids else None

    @property
    def references(self) -> tuple[str, ...]:
        return message_ids(" ".join(self.headers.get_all("references")))

    @property
    def date(self) -> datetime | None:
        return parse_date(self.headers.get("date"))

    def part(self, number: str) -> Part | None:
        """The leaf with IMAP part number `number`, or None."""
        return next((p for p in self.parts if p.part == number), None)

    def encoded(self, part: Part) -> bytes:
        """The part's body bytes as stored (still transfer-encoded)."""
        return self.raw[part.start : part.end]

    def content(self, part: Part) -> bytes:
        """The part's body, transfer-decoded (what an attachment download serves)."""
        return decode_transfer(self.encoded(part), part.transfer_encoding)

    def part_text(self, part: Part) -> str:
        """The part's body as text, by its charset with the fallbacks of `decode_text`."""
        return decode_text(self.content(part), part.charset)

    def text(self, max_bytes: int | None = None) -> MessageText:
        """Plain and HTML text, each cut to `max_bytes` UTF-8 octets when given."""
        values: dict[str, str | None] = {"plain": None, "html": None}
        sizes: dict[str, int] = {}
        has_more = False
        for kind, found in (("plain", self.plain_part), ("html", self.html_part)):
            if found is None:
                continue
            sizes[kind] = found.encoded_size
            text = self.part_text(found)
            if max_bytes is not None:
                cut = _cut_utf8(text, max_bytes)
                has_more = has_more or len(cut) < len(text)
                text = cut
            values[kind] = text
        return MessageText(
            values["plain"],
            values["html"],
            has_more,
            self.plain_part.part if self.plain_part else None,
            self.html_part.part if self.html_part else None,
            sizes,
        )


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a whole message. Never raises: damage shows as `defects` and missing parts."""
    walk = _Walk(raw)
    headers = walk.entity(0, len(raw), "", 0, "text/plain")
    plain = html = None
    attachments: list[Part] = []
    for leaf in walk.leaves:
        kind = leaf.text_kind
        is_body = kind is not None and leaf.disposition != "attachment" and not leaf.filename
        if is_body and kind == "plain" and plain is None:
            plain = leaf
        elif is_body and kind == "html" and html is None:
            html = leaf
        else:
            attachments.append(leaf)
    return ParsedMessage(
        raw, headers, tuple(walk.leaves), plain, html, tuple(attachments), tuple(walk.defects)
    )


class _Walk:
    """One pass over the message, collecting leaves and defects."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.leaves: list[Part] = []
        self.defects: list[str] = []

    def entity(self, start: int, end: int, number: str, depth: int, default: str) -> Headers:
        head_end, body_start = _split_head(self.raw, start, end)
        headers = parse_fields(self.raw[start:head_end])
        if headers.truncated:
            self.defects.append(f"part {number or '1'}: header block cut at the limits")
        labels = _labels(headers, default)
        content_type = labels.get_content_type()
        if content_type.startswith("multipart/"):
            if depth >= MAX_DEPTH:
                self.defects.append(f"part {number}: nested deeper than {MAX_DEPTH}")
            elif self._multipart(labels, body_start, end, number, depth):
                return headers
            content_type = "text/plain" if depth < MAX_DEPTH else content_type
        self._leaf(headers, labels, content_type, number or "1", body_start, end)
        return headers

    def _multipart(
        self, labels: email.message.Message, start: int, end: int, number: str, depth: int
    ) -> bool:
        boundary = labels.get_param("boundary")
        spans, closed = _split_body(self.raw, start, end, boundary)
        if not spans:
            self.defects.append(f"part {number or '1'}: multipart boundary not found")
            return False
        if not closed:
            self.defects.append(f"part {number or '1'}: closing boundary missing")
        child_default = (
            "message/rfc822" if labels.get_content_subtype() == "digest" else "text/plain"
        )
        for index, (child_start, child_end) in enumerate(spans, start=1):
            if len(self.leaves) >= MAX_PARTS:
                self.defects.append(f"more than {MAX_PARTS} parts: the rest are not listed")
                break
            child = f"{number}.{index}" if number else str(index)
            self.entity(child_start, child_end, child, depth + 1, child_default)
        return True

    def _leaf(
        self,
        headers: Headers,
        labels: email.message.Message,
        content_type: str,
        number: str,
        start: int,
        end: int,
    ) -> None:
        if len(self.leaves) >= MAX_PARTS:
            return
        disposition = headers.get("content-disposition")
        kind = disposition.split(";", 1)[0].strip().lower() if disposition else None
        content_id = headers.get("content-id")
        self.leaves.append(
            Part(
                part=number,
                content_type=content_type,
                charset=_safe(labels.get_content_charset),
                params=_params(labels),
                disposition=kind or None,
                filename=_filename(labels),
                content_id=content_id or None,
                transfer_encoding=(headers.get("content-transfer-encoding") or "7bit").lower(),
                encoded_size=end - start,
                headers=headers,
                start=start,
                end=end,
            )
        )


def _split_head(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body) of the entity raw[start:end]."""
    for blank in (b"\r\n", b"\n"):
        if raw.startswith(blank, start, end):
            return start, start + len(blank)  # no header fields at all
    found = [
        (at + 1, at + len(gap))
        for gap in (b"\n\r\n", b"\n\n")
        if (at := raw.find(gap, start, end)) >= 0
    ]
    if not found:
        return end, end  # headers without a body
    return min(found)


def _split_body(
    raw: bytes, start: int, end: int, boundary: object
) -> tuple[list[tuple[int, int]], bool]:
    """The spans of a multipart body's parts, and whether the closing delimiter was seen."""
    if not isinstance(boundary, str) or not boundary:
        return [], False
    token = email.utils.collapse_rfc2231_value(boundary).encode("utf-8", "surrogateescape")
    delimiter = re.compile(rb"(?m)^--" + re.escape(token) + rb"(--)?[ \t]*\r?$")
    spans: list[tuple[int, int]] = []
    opened: int | None = None
    for match in delimiter.finditer(raw, start, end):
        if opened is not None:
            spans.append((opened, max(opened, _line_start_before(raw, match.start()))))
        if match[1]:
            return spans, True
        opened = match.end() + 1 if raw[match.end() : match.end() + 1] == b"\n" else match.end()
    if opened is not None:
        spans.append((opened, end))
    return spans, False


def _line_start_before(raw: bytes, at: int) -> int:
    """`at` moved back over the line break that belongs to the delimiter line at `at`."""
    if raw[at - 2 : at] == b"\r\n":
        return at - 2
    return at - 1 if raw[at - 1 : at] == b"\n" else at


def _labels(headers: Headers, default: str) -> email.message.Message:
    """A header-only stdlib message holding the content labels, for its parameter parsing."""
    labels = email.message.Message()
    labels.set_default_type(default)
    for name in ("content-type", "content-disposition"):
        value = headers.get(name)
        if value is not None:
            labels[name] = value
    return labels


def _safe(getter: Callable[[], object]) -> str | None:
    try:
        value = getter()
    except _PARAM_ERRORS:
        return None
    return value if isinstance(value, str) and value else None


def _params(labels: email.message.Message) -> dict[str, str]:
    try:
        pairs = labels.get_params() or []
    except _PARAM_ERRORS:
        return {}
    result: dict[str, str] = {}
    for key, value in pairs[1:]:
        try:
            text = email.utils.collapse_rfc2231_value(value)
        except _PARAM_ERRORS:
            continue
        result.setdefault(key.lower(), decode_words(text))
    return result


def _filename(labels: email.message.Message) -> str | None:
    """Content-Disposition `filename`, else Content-Type `name` (RFC 2183 section 2.3).

    An RFC 2231 value is already decoded; a plain one may still hold RFC 2047
    encoded words, which RFC 2047 section 5 forbids there but common mailers write.
    """
    for key, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = labels.get_param(key, header=header)
            name = email.utils.collapse_rfc2231_value(value) if value else None
        except _PARAM_ERRORS:
            continue
        if name and not isinstance(value, tuple):
            name = decode_words(name)
        if name and name.strip():
            return name.strip()
    return None


def _cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits in `limit` octets."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: max(limit, 0)].decode("utf-8", "ignore")
