"""Composing a message from API fields: stored attachments, replies and forwards.

Shared by upload (`POST /message`) and submit (`POST /submit`). A `reference`
names a message of the same account (`MessageContentService.locate`): the new
message answers it (In-Reply-To, and References from its own References plus
its Message-ID, RFC 5322 section 3.6.4), gets "Re: " or "Fwd: " before the
referenced subject when it has none of its own, and with `forwardAttachments`
carries the referenced message's attachments, read into memory within the
builder's message limit.

A reply or forward that names no recipients gets them from the referenced
message (its Reply-To or From; with reply-all also its To and Cc, less the
account's own address). `inline` quotes the referenced text under the new
one: "> " lines after an "On <date>, <sender> wrote:" line in the text part, a
`<blockquote type="cite">` in the HTML part, and the original headers above
the text for a forward.

`overridden` applies fields sent beside a whole `raw` message to its header.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape, unescape
from typing import Any, Literal

from mailwire.domain.messages import MessageRecord, encode_message_id
from mailwire.errors import InputError, NotFoundError
from mailwire.protocols.mime import render
from mailwire.protocols.mime.build import (
    MAX_MESSAGE_BYTES,
    STRUCTURAL_FIELDS,
    Attachment,
    Draft,
    generate_message_id,
)
from mailwire.protocols.mime.errors import MimeBuildError
from mailwire.protocols.mime.headers import Address
from mailwire.services.message_content import Located, MessageContentService
from mailwire.store.store import Store

Action = Literal["reply", "reply-all", "forward"]


@dataclass(frozen=True, slots=True)
class Reference:
    """The message an upload answers or forwards."""

    message: str
    action: Action = "reply"
    inline: bool = False
    forward_attachments: bool = False
    ignore_missing: bool = False
    #: The Message-ID the referenced message must have (checked before use).
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """An attachment taken from a message already stored (its API attachment id)."""

    attachment_id: str
    filename: str | None = None
    content_type: str | None = None
    disposition: Literal["attachment", "inline"] | None = None
    cid: str | None = None


class MessageComposer:
    """Completes drafts for one store and message-content service."""

    def __init__(self, store: Store, content: MessageContentService) -> None:
        self._store = store
        self._content = content

    @property
    def content(self) -> MessageContentService:
        return self._content

    async def read_source(self, account_id: str, message_id: str) -> bytes:
        """A stored message whole, within the builder's message limit."""
        download = await self._content.source(account_id, message_id)
        return await _collect(download.chunks, MAX_MESSAGE_BYTES, "message")

    async def compose(
        self,
        account_id: str,
        draft: Draft,
        *,
        stored_attachments: Sequence[StoredAttachment] = (),
        reference: Reference | None = None,
    ) -> tuple[Draft, dict[str, Any] | None]:
        """`draft` completed: stored attachments read in, the reference answered or
        forwarded (recipients, subject, threading headers, quote), a Message-ID.
        Also returns the reference's result for the answer (None without one)."""
        attachments = list(draft.attachments)
        budget = MAX_MESSAGE_BYTES - sum(len(a.content) for a in attachments)
        for stored in stored_attachments:
            content = await self._read_attachment(account_id, stored.attachment_id, budget)
            budget -= len(content)
            attachments.append(
                Attachment(
                    content, stored.filename, stored.content_type, stored.disposition, stored.cid
                )
            )
        referenced: dict[str, Any] | None = None
        if reference is not None:
            referenced = {"message": reference.message, "success": True}
            found = await self._referenced(account_id, reference)
            if found is None:
                referenced.update(success=False, error="The referenced message does not exist")
            else:
                account = await self._store.accounts.get(account_id)
                own = {account.email.lower()} if account and account.email else set()
                draft = _answering(draft, found.record, reference.action, own)
                if reference.inline:
                    draft = await self._quoted(account_id, draft, found, reference)
                if reference.action == "forward" and reference.forward_attachments:
                    attachments += await self._forwarded(account_id, found, budget)
        if draft.message_id is None:
            draft = dataclasses.replace(draft, message_id=generate_message_id(draft.from_))
        return dataclasses.replace(draft, attachments=tuple(attachments)), referenced

    async def _referenced(self, account_id: str, reference: Reference) -> Located | None:
        """The referenced message; None when it is gone and `ignore_missing` allows that."""
        try:
            found = await self._content.locate(account_id, reference.message)
            if (
                reference.message_id is not None
                and (found.record.message_id or "").strip() != reference.message_id.strip()
            ):
                raise NotFoundError("Message-ID differs", code="MessageNotFound")
        except NotFoundError as missing:
            if reference.ignore_missing:
                return None
            raise NotFoundError(
                "The referenced message does not exist", code="MessageNotFound"
            ) from missing
        return found

    async def _quoted(
        self, account_id: str, draft: Draft, found: Located, reference: Reference
    ) -> Draft:
        """`draft` with the referenced text quoted under its own, as mail clients quote."""
        message_id = encode_message_id(found.folder.id, found.key.uid_validity, found.key.uid)
        text = await self._content.text(account_id, message_id, text_type="*", max_bytes=None)
        plain, html = text.get("plain"), text.get("html")
        intro = _quote_intro(found.record, reference.action)
        new_text, new_html = draft.text, draft.html
        if new_text is not None or new_html is None:
            original = plain if plain is not None else _html_to_plain(html or "")
            new_text = (new_text or "") + "\n\n" + _quote_plain(intro, original, reference.action)
        if new_html is not None:
            original_html = html if html is not None else _plain_to_html(plain or "")
            new_html += (
                f"<p>{escape(intro).replace(chr(10), '<br>')}</p>"
                f'<blockquote type="cite">{original_html}</blockquote>'
            )
        return dataclasses.replace(draft, text=new_text, html=new_html)

    async def _forwarded(self, account_id: str, found: Located, budget: int) -> list[Attachment]:
        """The referenced message's attachments, as the index lists them."""
        message_id = encode_message_id(found.folder.id, found.key.uid_validity, found.key.uid)
        forwarded = []
        for entry in (found.record.structure or {}).get("attachments") or []:
            part = entry.get("part")
            if not part:
                continue
            content = await self._read_attachment(account_id, message_id + str(part), budget)
            budget -= len(content)
            disposition: Literal["attachment", "inline"] = (
                "inline" if entry.get("inline") and entry.get("contentId") else "attachment"
            )
            forwarded.append(
                Attachment(
                    content,
                    entry.get("filename"),
                    entry.get("contentType"),
                    disposition,
                    _bare_cid(entry.get("contentId")) if disposition == "inline" else None,
                )
            )
        return forwarded

    async def _read_attachment(self, account_id: str, attachment_id: str, budget: int) -> bytes:
        download = await self._content.attachment(account_id, attachment_id)
        return await _collect(download.chunks, budget, "attachments")


async def _collect(chunks: AsyncIterator[bytes], budget: int, key: str) -> bytes:
    """A streamed body read into memory, refused past `budget` bytes."""
    data = bytearray()
    try:
        async for chunk in chunks:
            data += chunk
            if len(data) > budget:
                raise InputError(
                    f"The message would be larger than {MAX_MESSAGE_BYTES} bytes", key=key
                )
    finally:
        # Give the command connection back now, not when the generator is collected.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    return bytes(data)


def _answering(draft: Draft, record: MessageRecord, action: Action, own: set[str]) -> Draft:
    """`draft` as an answer to (or forward of) `record`: threading headers, subject and,
    when it names none, the recipients (the sender; with reply-all also the others but
    the account's own address)."""
    references: Sequence[str] = draft.references
    in_reply_to = draft.in_reply_to
    if record.message_id:
        known = (record.references or "").split()
        references = draft.references or (*known, record.message_id)
        in_reply_to = in_reply_to or record.message_id
    subject = draft.subject
    if subject is None:
        prefix = "Fwd: " if action == "forward" else "Re: "
        original = (record.subject or "").strip()
        has_prefix = original.lower().startswith(prefix.lower().strip())
        subject = original if has_prefix else prefix + original
    to, cc = draft.to, draft.cc
    if action != "forward" and not to and not cc:
        envelope = record.envelope or {}
        senders = envelope.get("replyTo") or [envelope.get("from")]
        to = _mailboxes(senders, own)
        if action == "reply-all":
            skip = own | {a.address.lower() for a in to}
            cc = _mailboxes([*(envelope.get("to") or []), *(envelope.get("cc") or [])], skip)
    return dataclasses.replace(
        draft,
        subject=subject,
        in_reply_to=in_reply_to,
        references=tuple(references),
        to=to,
        cc=cc,
    )


def _mailboxes(entries: Sequence[Any], skip: set[str]) -> tuple[Address, ...]:
    """Envelope addresses (`{name, address}`) as builder addresses, without `skip` or repeats."""
    found: dict[str, Address] = {}
    for entry in entries:
        address = (entry or {}).get("address") if isinstance(entry, dict) else None
        if address and address.lower() not in skip and address.lower() not in found:
            found[address.lower()] = Address(address, entry.get("name") or None)
    return tuple(found.values())


def _quote_intro(record: MessageRecord, action: Action) -> str:
    sender = (record.envelope or {}).get("from") or {}
    who = sender.get("name") or sender.get("address") or "someone"
    when = record.date if record.date is not None else record.internal_date
    date = format_datetime(datetime.fromtimestamp(when / 1000, UTC)) if when else None
    if action == "forward":
        lines = ["---------- Forwarded message ----------", f"From: {_shown(sender)}"]
        lines += [f"Date: {date}"] if date else []
        lines.append(f"Subject: {record.subject or ''}")
        to = ", ".join(_shown(entry) for entry in (record.envelope or {}).get("to") or [])
        lines += [f"To: {to}"] if to else []
        return "\n".join(lines)
    return f"On {date}, {who} wrote:" if date else f"{who} wrote:"


def _shown(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    name, address = entry.get("name"), entry.get("address") or ""
    return f"{name} <{address}>" if name else address


def _quote_plain(intro: str, original: str, action: Action) -> str:
    if action == "forward":
        return f"{intro}\n\n{original}"
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.splitlines())
    return f"{intro}\n{quoted}"


def _plain_to_html(text: str) -> str:
    return escape(text).replace("\n", "<br>")


def _html_to_plain(html: str) -> str:
    # Only for a referenced message without a text part: tags dropped, entities kept
    # readable; good enough for a quote, not a renderer.
    return unescape(re.sub(r"<[^>]*>", "", re.sub(r"(?i)<br\s*/?>|</p>", "\n", html)))


def _bare_cid(value: object) -> str | None:
    return str(value).strip().strip("<>") or None if value else None


def overridden(raw: bytes, draft: Draft) -> bytes:
    """`raw` with the header fields `draft` gives replacing its own (the body untouched).

    The reference lets fields sent beside `raw` override the matching header; a
    raw message sent alone is stored byte for byte.
    """
    fields: dict[str, bytes] = {}
    if draft.from_ is not None:
        fields["from"] = render.fold("From", [render.mailbox(draft.from_, "from")])
    for name, key, group in (
        ("To", "to", draft.to),
        ("Cc", "cc", draft.cc),
        ("Bcc", "bcc", draft.bcc),
        ("Reply-To", "replyTo", draft.reply_to),
    ):
        if group:
            fields[name.lower()] = render.fold(name, render.address_list(group, key))
    if draft.subject is not None:
        fields["subject"] = render.fold("Subject", render.unstructured(draft.subject, "subject"))
    if draft.message_id:
        bare = render.check(draft.message_id, "messageId").strip().strip("<>")
        fields["message-id"] = render.fold("Message-ID", [f"<{bare}>"])
    for name, value in draft.headers:
        render.field_name(name)
        if name.lower() in STRUCTURAL_FIELDS:
            raise MimeBuildError(f"{name} belongs to the raw message's structure", key="headers")
        fields[name.lower()] = render.fold(name, render.unstructured(value, "headers"))
    return _replace_fields(raw, fields) if fields else raw


def without_fields(raw: bytes, names: Sequence[str]) -> bytes:
    """`raw` without its header fields named `names` (any case); the body untouched."""
    return _replace_fields(raw, {name.lower(): b"" for name in names})


def _replace_fields(raw: bytes, fields: dict[str, bytes]) -> bytes:
    """`raw` without its header fields named in `fields` (lower-case), with those added."""
    head, separator, body = _split_header(raw)
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a folded continuation belongs to the field above
            if not dropping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        dropping = name in fields
        if not dropping:
            kept.append(line)
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += b"\r\n"
    return b"".join(kept) + b"".join(fields.values()) + (separator or b"\r\n") + body


def _split_header(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Header block (with its last line break), the empty line, and the body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            half = len(separator) // 2
            return (
                raw[: at + half],
                raw[at + half : at + len(separator)],
                raw[at + len(separator) :],
            )
    return raw, b"", b""
