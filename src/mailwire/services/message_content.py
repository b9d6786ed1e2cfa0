"""One message's content from the mail server: details, text, raw source, attachments.

Theory of operation. The index says which message an id names and what the
list already knows (envelope, flags, attachment list); what it does not keep
(headers, text, bytes) is fetched live on one of the account's command
connections (`services.connections`, `workers.commands`), never on the
connection that syncs:

- details: FLAGS, BODYSTRUCTURE and the header block in one FETCH; the text
  parts (the same ones the index counts as text) fetched and decoded when
  `textType` asks for them, cut at `maxBytes` (UTF-8 bytes, `hasMore` set);
  `markAsSeen` stores `\\Seen` and records the change in the index with its
  `messageUpdated` event at once;
- source and attachments are streamed in chunks (partial FETCH), never held
  whole: the first chunk is fetched before the answer starts, so a message
  that is gone is a 404, not a broken download. Attachments are decoded here,
  chunk by chunk, as far as their data allows: not with BINARY (RFC 3516),
  which Dovecot answers with NO, or a BYE that ends the connection, for a part
  it cannot decode.

A message id names a folder row, its UIDVALIDITY and a UID: an id from
another account, from a deleted folder or from before a UIDVALIDITY change
names nothing and answers 404, never another message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from mailwire.backends.imap.messages import text_parts
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.backends.imap.reading import find_part
from mailwire.domain.events import Event
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.message_events import Announce, message_updated
from mailwire.domain.messages import (
    MESSAGE_ID_LENGTH,
    FlagState,
    MessageKey,
    MessageRecord,
    decode_message_id,
    flag_booleans,
    message_summary,
)
from mailwire.errors import NotFoundError
from mailwire.logs import get_logger
from mailwire.protocols.imap.responses import BodyStructure, SinglePart
from mailwire.protocols.mime.charsets import decode_text
from mailwire.protocols.mime.decode import TransferDecoder
from mailwire.protocols.mime.headers import parse_fields
from mailwire.services import html as web_html
from mailwire.services.connections import LocalConnections, server_connection
from mailwire.store.store import Store

log = get_logger(__name__)

TextType = Literal["plain", "html", "*"]
#: Encoded bytes of one text part read at most, whatever `maxBytes` says (5 MiB, as
#: EmailEngine's default text limit).
MAX_TEXT_FETCH = 5 * 1024 * 1024
#: `maxBytes` when the request gives none.
DEFAULT_MAX_BYTES = MAX_TEXT_FETCH
#: Chunk size of streamed downloads (a partial FETCH each).
DOWNLOAD_CHUNK = 1024 * 1024


def message_not_found() -> NotFoundError:
    return NotFoundError("No message has this id", code="MessageNotFound")


@dataclass(frozen=True, slots=True)
class Located:
    folder: MailboxRecord
    record: MessageRecord
    key: MessageKey


@dataclass(slots=True)
class Download:
    """A streamed body: its type, a file name where it has one, and the bytes."""

    content_type: str
    filename: str | None
    chunks: AsyncIterator[bytes]


class MessageContentService:
    """Message reads that need the mail server; see the module docstring."""

    def __init__(self, store: Store, connections: LocalConnections) -> None:
        self._store = store
        self._connections = connections

    async def locate(self, account_id: str, message_id: str) -> Located:
        """The folder and index record an id names in this account, or 404."""
        key = decode_message_id(message_id)
        folders = await self._store.index.mailboxes(account_id)
        if not folders and not await self._store.accounts.exists(account_id):
            raise NotFoundError("No account has this id", code="AccountNotFound")
        folder = next((f for f in folders if key is not None and f.id == key.mailbox_id), None)
        if key is None or folder is None or folder.uid_validity != key.uid_validity:
            raise message_not_found()
        record = await self._store.index.message(folder.id, key.uid)
        if record is None:
            raise message_not_found()
        return Located(folder, record, key)

    async def details(
        self,
        account_id: str,
        message_id: str,
        *,
        text_type: TextType | None = None,
        max_bytes: int | None = None,
        mark_as_seen: bool = False,
        web_safe: bool = False,
        embed_images: bool | None = None,
    ) -> dict[str, Any]:
        """The message's details; see the module docstring.

        `web_safe` answers the HTML sanitised for a browser (built from the plain
        text when there is no HTML) and implies `text_type` "*" and, unless
        `embed_images` is False, the message's own inline images as data: URIs.
        """
        found = await self.locate(account_id, message_id)
        folder, key = found.folder, found.key
        embed = web_safe if embed_images is None else embed_images
        if web_safe:
            text_type = "*"
        async with self._connection(account_id) as ops:
            live = await ops.fetch_message(folder.path, key.uid, uid_validity=key.uid_validity)
            flags = live.flags
            text: dict[str, str] = {}
            has_more = False
            if text_type is not None and live.bodystructure is not None:
                text, has_more = await self._text(
                    ops, found, live.bodystructure, text_type, max_bytes
                )
                if web_safe and (text.get("html") or text.get("plain")):
                    source = text.get("html") or web_html.plain_to_html(text["plain"])
                    text["html"] = web_html.sanitise(source)
                if embed and text.get("html"):
                    text["html"] = await self._embedded(
                        ops, found, live.bodystructure, text["html"]
                    )
            if mark_as_seen and "\\Seen" not in flags:
                flags = await self._mark_seen(ops, account_id, found, flags)
        data = message_summary(
            found.record,
            uid_validity=key.uid_validity,
            path=folder.path,
            special_use=folder.special_use,
        )
        data.pop("seemsLikeNew", None)
        for boolean in ("unseen", "flagged", "answered", "draft"):
            data.pop(boolean, None)
        data["flags"] = list(flags)
        data.update(flag_booleans(flags))
        data["headers"] = parse_fields(live.headers).as_dict()
        text_info = dict(data.get("text") or {})
        text_info.update(text)
        if text_type is not None:
            text_info["hasMore"] = has_more
        if web_safe:
            text_info["webSafe"] = True
        data["text"] = text_info
        if folder.special_use:
            data["specialUse"] = folder.special_use
        return data

    async def text(
        self,
        account_id: str,
        message_id: str,
        *,
        text_type: TextType,
        max_bytes: int | None,
        web_safe: bool = False,
    ) -> dict[str, Any]:
        """`GET .../text/{text}`: the decoded text parts alone (HTML sanitised if `web_safe`)."""
        found = await self.locate(account_id, message_id)
        async with self._connection(account_id) as ops:
            live = await ops.fetch_message(
                found.folder.path, found.key.uid, uid_validity=found.key.uid_validity
            )
            text: dict[str, str] = {}
            has_more = False
            if live.bodystructure is not None:
                text, has_more = await self._text(
                    ops, found, live.bodystructure, text_type, max_bytes
                )
        if web_safe and text.get("html"):
            text["html"] = web_html.sanitise(text["html"])
        return {**text, "hasMore": has_more}

    async def source(self, account_id: str, message_id: str) -> Download:
        """The raw message (RFC 5322), streamed."""
        found = await self.locate(account_id, message_id)
        chunks = self._stream(account_id, found, None)
        return Download("message/rfc822", None, await _primed(chunks))

    async def attachment(self, account_id: str, attachment_id: str) -> Download:
        """One attachment, decoded, streamed (`attachment_id` = message id + part number)."""
        message_id, part = attachment_id[:MESSAGE_ID_LENGTH], attachment_id[MESSAGE_ID_LENGTH:]
        found = await self.locate(account_id, message_id)
        listed = (found.record.structure or {}).get("attachments") or []
        entry = next((a for a in listed if a.get("part") == part), None)
        if entry is None:
            raise NotFoundError("No attachment has this id", code="AttachmentNotFound")
        chunks = self._stream(account_id, found, part)
        return Download(
            str(entry.get("contentType") or "application/octet-stream"),
            entry.get("filename"),
            await _primed(chunks),
        )

    # ------------------------------------------------------------------ internals

    def _connection(self, account_id: str) -> AbstractAsyncContextManager[MailboxOperations]:
        return server_connection(self._connections, account_id)

    async def _text(
        self,
        ops: MailboxOperations,
        found: Located,
        structure: BodyStructure,
        text_type: TextType,
        max_bytes: int | None,
    ) -> tuple[dict[str, str], bool]:
        limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        wanted = ("plain", "html") if text_type == "*" else (text_type,)
        text: dict[str, str] = {}
        has_more = False
        for kind, (part, single) in text_parts(structure).items():
            if kind not in wanted:
                continue
            raw = bytearray()
            async for chunk in ops.stream(
                found.folder.path, found.key.uid, part, uid_validity=found.key.uid_validity
            ):
                raw += chunk
                if len(raw) >= MAX_TEXT_FETCH:
                    has_more = True
                    break
            decoded = _decode_part(bytes(raw[:MAX_TEXT_FETCH]), single)
            cut = _cut_utf8(decoded, limit)
            has_more = has_more or len(cut) < len(decoded)
            text[kind] = cut
        return text, has_more

    async def _embedded(
        self, ops: MailboxOperations, found: Located, structure: BodyStructure, html: str
    ) -> str:
        """`html` with its `cid:` images (this message's inline parts) as data: URIs."""
        wanted = web_html.referenced_content_ids(html)
        listed = (found.record.structure or {}).get("attachments") or []
        parts = {
            cid: part for cid, part in web_html.embeddable_parts(listed).items() if cid in wanted
        }
        types = {str(a.get("part")): str(a.get("contentType")) for a in listed}
        images: dict[str, tuple[str, bytes]] = {}
        total = 0
        for cid, part in parts.items():
            node = find_part(structure, part)
            decoder = TransferDecoder(node.encoding if isinstance(node, SinglePart) else None)
            data = bytearray()
            async for chunk in ops.stream(
                found.folder.path, found.key.uid, part, uid_validity=found.key.uid_validity
            ):
                data += decoder.feed(chunk)
                if len(data) > web_html.MAX_EMBEDDED_IMAGE_BYTES:
                    break
            data += decoder.finish()
            total += len(data)
            if (
                len(data) > web_html.MAX_EMBEDDED_IMAGE_BYTES
                or total > web_html.MAX_EMBEDDED_TOTAL_BYTES
            ):
                continue  # left as a cid: reference
            images[cid] = (types.get(part, "application/octet-stream"), bytes(data))
        return web_html.embed_images(html, images)

    async def _mark_seen(
        self, ops: MailboxOperations, account_id: str, found: Located, flags: tuple[str, ...]
    ) -> tuple[str, ...]:
        folder, key = found.folder, found.key
        result = await ops.store_flags(
            folder.path, [key.uid], add=["\\Seen"], uid_validity=key.uid_validity
        )
        state = result.messages.get(key.uid)
        if state is None:
            return flags

        def updated(change: FlagState, before: tuple[str, ...]) -> Event | None:
            return message_updated(account_id, folder, key.uid_validity, before, change)

        await self._store.index.apply(
            account_id, folder.id, updated=[state], announce=Announce(updated=updated)
        )
        return state.flags

    async def _stream(
        self, account_id: str, found: Located, part: str | None
    ) -> AsyncIterator[bytes]:
        """The raw message (`part` None), or one part decoded from its transfer encoding."""
        folder, key = found.folder, found.key
        async with self._connection(account_id) as ops:
            decoder: TransferDecoder | None = None
            if part is not None:
                live = await ops.fetch_message(folder.path, key.uid, uid_validity=key.uid_validity)
                node = find_part(live.bodystructure, part) if live.bodystructure else None
                decoder = TransferDecoder(node.encoding if isinstance(node, SinglePart) else None)
            async for chunk in self._chunks(ops, found, part):
                out = decoder.feed(chunk) if decoder is not None else chunk
                if out:
                    yield out
            if decoder is not None and (rest := decoder.finish()):
                yield rest

    @staticmethod
    def _chunks(ops: MailboxOperations, found: Located, part: str | None) -> AsyncIterator[bytes]:
        return ops.stream(
            found.folder.path,
            found.key.uid,
            part,
            chunk_size=DOWNLOAD_CHUNK,
            uid_validity=found.key.uid_validity,
        )


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk fetched now, so that errors come before the answer."""
    iterator = aiter(chunks)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = b""

    async def resumed() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in iterator:
            yield chunk

    return resumed()


def _decode_part(raw: bytes, single: SinglePart) -> str:
    charset = next((value for key, value in single.params if key.lower() == "charset"), None)
    decoder = TransferDecoder(single.encoding)
    data = decoder.feed(raw) + decoder.finish()
    return decode_text(data, charset.decode("ascii", "replace") if charset else None)


def _cut_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")
