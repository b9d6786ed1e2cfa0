"""Upload fields -> an RFC 5322 message (bytes, CRLF line endings), sans-io.

Theory of operation. A `Draft` holds what the REST upload and submit bodies
carry. `build_message` checks it against named limits and for header
injection, then nests entities only as deep as the content needs
(RFC 2046 section 5.1, RFC 2387):

    multipart/mixed                    only when there are attachments
      multipart/related                only when HTML refers to inline cid images
        multipart/alternative          only when there is both text and HTML
          text/plain, text/html
        inline images (Content-ID)
      attachments

Text goes out as UTF-8: 7bit when it is ASCII with short lines, else
quoted-printable (RFC 2045 section 6.7); attachments as base64 in 76-character
lines (section 6.8). Header text is encoded and folded by `render`. A
Message-ID is generated when none is given, in the From address's domain
(RFC 5322 section 3.6.4), and a Date when none is given (section 3.6.1).
Boundaries are random and contain "=_", which neither base64 nor
quoted-printable output can contain.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final, Literal

from mailwire.protocols.mime import render
from mailwire.protocols.mime.errors import MimeBuildError, MimeLimitError
from mailwire.protocols.mime.headers import Address

#: The REST schema's bounds (subject 10,240 characters; text, html and each
#: attachment's base64 content 5 MiB), enforced here too for callers other than the API.
MAX_SUBJECT_CHARS: Final = 10_240
MAX_BODY_CHARS: Final = 5 * 1024 * 1024
MAX_ATTACHMENT_BYTES: Final = 5 * 1024 * 1024
#: Attachments per message, and the whole built message (about what large providers accept).
MAX_ATTACHMENTS: Final = 100
MAX_MESSAGE_BYTES: Final = 25 * 1024 * 1024
#: Mailboxes per address field; custom header fields; characters per custom value.
MAX_ADDRESSES: Final = 1000
MAX_CUSTOM_HEADERS: Final = 100
MAX_HEADER_VALUE_CHARS: Final = 10_240
#: File name, content type and content id as the REST schema bounds them (256 characters).
MAX_LABEL_CHARS: Final = 256
#: Message-ID: 998 octets per line less "Message-ID:" framing (the REST schema says 996).
MAX_MESSAGE_ID_CHARS: Final = 996

#: Fields the builder writes itself; a custom header may not replace the structure.
STRUCTURAL_FIELDS: Final = frozenset({"mime-version", "content-type", "content-transfer-encoding"})
#: Fields that appear once; a custom header of the same name replaces the built one.
SINGLE_FIELDS: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
    }
)
_CONTENT_TYPE: Final = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
#: RFC 2045 section 2.7: 7bit text is ASCII without NUL; we also keep other controls out.
_SEVEN_BIT: Final = re.compile(rb"[\t\n\x20-\x7e]*")
_DOMAIN: Final = re.compile(r"[^\s<>()\[\],;:\"@\\]+")
_MESSAGE_ID: Final = re.compile(r"<?([^<>\s]+@[^<>\s]+|[^<>\s@]+)>?")
_EXTENSION_TYPES: Final = {
    "pdf": "application/pdf",
    "zip": "application/zip",
    "json": "application/json",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "txt": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
    "htm": "text/html",
    "ics": "text/calendar",
    "eml": "message/rfc822",
}


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file to attach; `cid` makes it an inline image the HTML can refer to."""

    content: bytes
    filename: str | None = None
    content_type: str | None = None
    disposition: Literal["attachment", "inline"] | None = None
    cid: str | None = None

    @classmethod
    def from_base64(
        cls,
        content: str,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: Literal["attachment", "inline"] | None = None,
        cid: str | None = None,
    ) -> Attachment:
        """An attachment from the REST body's base64 `content` (blanks and line breaks allowed)."""
        if len(content) > MAX_ATTACHMENT_BYTES * 4 // 3 + 4096:
            raise MimeLimitError("MAX_ATTACHMENT_BYTES", "attachment is too large", key="content")
        try:
            data = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError) as error:
            raise MimeBuildError("attachment content is not valid base64", key="content") from error
        return cls(data, filename, content_type, disposition, cid)


@dataclass(frozen=True, slots=True)
class Draft:
    """The fields of a message to build (all optional; an empty draft is an empty message)."""

    from_: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    message_id: str | None = None
    date: datetime | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entity:
    fields: tuple[bytes, ...]
    body: bytes

    def render(self) -> bytes:
        return b"".join(self.fields) + b"\r\n" + self.body


def build_message(draft: Draft, *, include_bcc: bool = True) -> bytes:
    """The message as RFC 5322 bytes; `MimeBuildError` (or a subclass) for bad fields."""
    _check_limits(draft)
    top = _top_fields(draft, include_bcc)
    entity = _content(draft)
    raw = b"".join(top) + render.fold("MIME-Version", ["1.0"]) + entity.render()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MimeLimitError("MAX_MESSAGE_BYTES", "the message is too large", key="attachments")
    return raw


def generate_message_id(sender: Address | None) -> str:
    """A new `<unique@domain>` in the sender's domain (RFC 5322 section 3.6.4)."""
    domain = sender.address.rpartition("@")[2].strip() if sender else ""
    if not _DOMAIN.fullmatch(domain):
        domain = "mailwire.invalid"
    return f"<{uuid.uuid4()}@{domain}>"


def _check_limits(draft: Draft) -> None:
    if draft.subject is not None and len(draft.subject) > MAX_SUBJECT_CHARS:
        raise MimeLimitError("MAX_SUBJECT_CHARS", "subject is too long", key="subject")
    for key, body in (("text", draft.text), ("html", draft.html)):
        if body is not None and len(body) > MAX_BODY_CHARS:
            raise MimeLimitError("MAX_BODY_CHARS", f"{key} is too long", key=key)
    if len(draft.attachments) > MAX_ATTACHMENTS:
        raise MimeLimitError("MAX_ATTACHMENTS", "too many attachments", key="attachments")
    for item in draft.attachments:
        if len(item.content) > MAX_ATTACHMENT_BYTES:
            raise MimeLimitError("MAX_ATTACHMENT_BYTES", "attachment too large", key="content")
        for key, label in (
            ("filename", item.filename),
            ("contentType", item.content_type),
            ("cid", item.cid),
        ):
            if label is not None and len(label) > MAX_LABEL_CHARS:
                raise MimeLimitError("MAX_LABEL_CHARS", f"{key} is too long", key=key)
    for key, group in (
        ("to", draft.to),
        ("cc", draft.cc),
        ("bcc", draft.bcc),
        ("replyTo", draft.reply_to),
    ):
        if len(group) > MAX_ADDRESSES:
            raise MimeLimitError("MAX_ADDRESSES", f"too many addresses in {key}", key=key)
    if len(draft.headers) > MAX_CUSTOM_HEADERS:
        raise MimeLimitError("MAX_CUSTOM_HEADERS", "too many custom headers", key="headers")
    if any(len(value) > MAX_HEADER_VALUE_CHARS for _, value in draft.headers):
        raise MimeLimitError("MAX_HEADER_VALUE_CHARS", "header value too long", key="headers")


def _top_fields(draft: Draft, include_bcc: bool) -> list[bytes]:
    built: dict[str, bytes] = {}
    if draft.from_ is not None:
        built["from"] = render.fold("From", [render.mailbox(draft.from_, "from")])
    groups = [
        ("To", "to", draft.to),
        ("Cc", "cc", draft.cc),
        ("Reply-To", "replyTo", draft.reply_to),
    ]
    if include_bcc:
        groups.append(("Bcc", "bcc", draft.bcc))
    for name, key, group in groups:
        if group:
            built[name.lower()] = render.fold(name, render.address_list(group, key))
    if draft.subject is not None:
        built["subject"] = render.fold("Subject", render.unstructured(draft.subject, "subject"))
    date = draft.date or datetime.now(UTC)
    built["date"] = render.fold("Date", [format_datetime(date)])
    message_id = _message_id(draft.message_id, "messageId") or generate_message_id(draft.from_)
    built["message-id"] = render.fold("Message-ID", [message_id])
    if draft.in_reply_to:
        built["in-reply-to"] = render.fold(
            "In-Reply-To", [_message_id(draft.in_reply_to, "inReplyTo")]
        )
    if draft.references:
        ids = [_message_id(item, "references") for item in draft.references]
        built["references"] = render.fold("References", ids)
    extra: list[bytes] = []
    for name, value in draft.headers:
        render.field_name(name)
        lowered = name.lower()
        if lowered in STRUCTURAL_FIELDS:
            raise MimeBuildError(f"{name} is written by the builder", key="headers")
        field = render.fold(name, render.unstructured(value, "headers"))
        if lowered in SINGLE_FIELDS:
            built[lowered] = field
        else:
            extra.append(field)
    return [*built.values(), *extra]


def _message_id(value: str | None, key: str) -> str:
    if not value:
        return ""
    render.check(value, key)
    if len(value) > MAX_MESSAGE_ID_CHARS:
        raise MimeLimitError("MAX_MESSAGE_ID_CHARS", f"{key} is too long", key=key)
    match = _MESSAGE_ID.fullmatch(value.strip())
    if match is None:
        raise MimeBuildError(f"{key} is not a message id", key=key)
    return f"<{match[1]}>"


def _content(draft: Draft) -> _Entity:
    bodies = [
        _text_entity(body, subtype)
        for body, subtype in ((draft.text, "plain"), (draft.html, "html"))
        if body is not None
    ]
    entity = _multipart("alternative", bodies) if len(bodies) > 1 else None
    entity = entity or (bodies[0] if bodies else None)
    related = [item for item in draft.attachments if item.cid and draft.html is not None]
    others = [item for item in draft.attachments if item not in related]
    if related:
        assert entity is not None  # related is only non-empty with html
        entity = _multipart("related", [entity, *(_attachment_entity(i) for i in related)])
    if others:
        parts = [entity] if entity is not None else []
        entity = _multipart("mixed", [*parts, *(_attachment_entity(i) for i in others)])
    return entity or _text_entity("", "plain")


def _multipart(subtype: str, children: Iterable[_Entity]) -> _Entity:
    boundary = f"=_mw_{secrets.token_hex(12)}"
    body = (
        b"".join(
            b"--" + boundary.encode() + b"\r\n" + child.render() + b"\r\n" for child in children
        )
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    fields = render.fold(
        "Content-Type",
        render.with_params(f"multipart/{subtype}", render.param("boundary", boundary)),
    )
    return _Entity((fields,), body)


def _text_entity(text: str, subtype: str) -> _Entity:
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    data = lines.encode("utf-8", "surrogatepass")
    if _SEVEN_BIT.fullmatch(data) and all(len(line) <= 998 for line in data.split(b"\n")):
        encoding, body = "7bit", data.replace(b"\n", b"\r\n")
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
    content_type = render.with_params(f"text/{subtype}", render.param("charset", "utf-8"))
    return _Entity(
        (
            render.fold("Content-Type", content_type),
            render.fold("Content-Transfer-Encoding", [encoding]),
        ),
        body,
    )


def _attachment_entity(item: Attachment) -> _Entity:
    filename = render.check(item.filename, "filename") if item.filename else None
    content_type = _content_type(item)
    fields = [
        render.fold(
            "Content-Type",
            render.with_params(content_type, render.param("name", filename) if filename else []),
        )
    ]
    disposition = item.disposition or ("inline" if item.cid else "attachment")
    fields.append(
        render.fold(
            "Content-Disposition",
            render.with_params(disposition, render.param("filename", filename) if filename else []),
        )
    )
    if item.cid:
        cid = render.check(item.cid.strip().strip("<>"), "cid")
        if not cid or any(c in cid for c in " \t<>"):
            raise MimeBuildError("cid is not a valid content id", key="cid")
        fields.append(render.fold("Content-ID", [f"<{cid}>"]))
    fields.append(render.fold("Content-Transfer-Encoding", ["base64"]))
    body = base64.encodebytes(item.content).replace(b"\n", b"\r\n")
    return _Entity(tuple(fields), body)


def _content_type(item: Attachment) -> str:
    if item.content_type:
        value = render.check(item.content_type, "contentType").strip().lower()
        if not _CONTENT_TYPE.fullmatch(value):
            raise MimeBuildError(f"{value!r} is not a content type", key="contentType")
        return value
    extension = (item.filename or "").rpartition(".")[2].lower()
    return _EXTENSION_TYPES.get(extension, "application/octet-stream")
