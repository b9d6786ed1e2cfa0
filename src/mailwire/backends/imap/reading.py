"""Reading one message: its structure and headers, and its source or one part as a stream.

Theory of operation. `fetch_message` is one `UID FETCH` of the items a message
view needs (RFC 3501 section 6.4.5). `stream` never holds a message whole: it
asks for `BODY.PEEK[<part>]<<offset>.<length>>` (partial fetch, same section)
one chunk at a time and yields each chunk before asking for the next, so the
memory it needs is bounded by the chunk size (plus the parser's buffer for
that one response) whatever the size of the message. The server returns
fewer octets than asked only at the end, so a short chunk ends the stream; a
message whose size is an exact multiple of the chunk costs one more fetch,
answered with an empty string. A message's content never changes while its
UID is valid (RFC 3501 section 2.3.1.1), so chunks fetched apart still join
up; a message expunged mid-stream ends it with `MessageNotFoundError`. With
BINARY (RFC 3516) the server can decode the part's transfer encoding itself.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from mailwire.backends.imap.operation_errors import (
    MessageNotFoundError,
    OperationInputError,
    UnsupportedOperationError,
)
from mailwire.backends.imap.selection import SelectedConnection, check_path, check_uids
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.responses import (
    BodyStructure,
    Envelope,
    Fetch,
    Multipart,
    SinglePart,
)

#: Octets asked for per partial fetch while streaming.
STREAM_CHUNK = 1024 * 1024
#: Largest chunk a caller may ask for: well under the parser's literal limit
#: (`parser.Limits.max_literal_size`), since one chunk is held at a time.
MAX_STREAM_CHUNK = 16 * 1024 * 1024
#: Smallest chunk: below this the round trips dominate for no memory gain.
MIN_STREAM_CHUNK = 4096
#: `section-part` (RFC 3501 section 9): nz-numbers joined by dots; depth bounded.
MAX_PART_DEPTH = 32
_PART = re.compile(rf"[1-9][0-9]{{0,9}}(?:\.[1-9][0-9]{{0,9}}){{0,{MAX_PART_DEPTH - 1}}}\Z")


@dataclass(frozen=True, slots=True)
class MessageDetails:
    """One message as a viewer needs it; `headers` is the raw header block (RFC 5322)."""

    uid: int
    flags: tuple[str, ...]
    modseq: int | None
    size: int | None
    internal_date: datetime | None
    envelope: Envelope | None
    bodystructure: BodyStructure | None
    headers: bytes
    labels: tuple[str, ...] | None
    email_id: str | None
    thread_id: str | None


class MessageReader(SelectedConnection):
    """Reads messages on one connection (selection and locking from `SelectedConnection`)."""

    async def fetch_message(
        self, path: str, uid: int, *, uid_validity: int | None = None
    ) -> MessageDetails:
        """FLAGS, ENVELOPE, BODYSTRUCTURE and `BODY.PEEK[HEADER]` of one message by UID."""
        (uid,) = check_uids([uid])
        items = ["UID", "FLAGS", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE"]
        items.append("BODY.PEEK[HEADER]")
        capabilities = self.conn.capabilities
        items += ["MODSEQ"] if self.condstore else []
        items += ["EMAILID", "THREADID"] if "OBJECTID" in capabilities else []
        items += ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"] if "X-GM-EXT-1" in capabilities else []
        fetch = await self._fetch_one(path, uid, items, uid_validity)
        if fetch is None:
            raise MessageNotFoundError(path, [uid])
        header = fetch.section("BODY[HEADER]")
        labels = None
        if fetch.x_gm_labels is not None:
            labels = tuple(label.decode("utf-8", "replace") for label in fetch.x_gm_labels)
        return MessageDetails(
            uid=uid,
            flags=tuple(fetch.flags or ()),
            modseq=fetch.modseq,
            size=fetch.rfc822_size,
            internal_date=fetch.internaldate,
            envelope=fetch.envelope,
            bodystructure=fetch.bodystructure,
            headers=(header.data or b"") if header is not None else b"",
            labels=labels,
            email_id=fetch.email_id or (str(fetch.x_gm_msgid) if fetch.x_gm_msgid else None),
            thread_id=fetch.thread_id or (str(fetch.x_gm_thrid) if fetch.x_gm_thrid else None),
        )

    def stream(
        self,
        path: str,
        uid: int,
        part: str | None = None,
        *,
        binary: bool = False,
        chunk_size: int = STREAM_CHUNK,
        uid_validity: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The raw message (`part` None) or one body part, in chunks of at most `chunk_size`.

        `part` is an IMAP part number such as "2" or "1.3" (RFC 3501 section
        6.4.5). `binary` asks for the part decoded by the server (BINARY, RFC
        3516). Arguments are checked here, at the call; the folder, the message
        and the part on the first iteration (`FolderNotFoundError`,
        `MessageNotFoundError`). With `uid_validity`, every chunk checks that
        the folder's UIDVALIDITY is still that one (`UidValidityChangedError`).
        """
        path = check_path(path)
        (uid,) = check_uids([uid])
        if part is not None and not _PART.match(part):
            raise OperationInputError(f"not an IMAP part number: {part!r}", key="part")
        if type(chunk_size) is not int or not MIN_STREAM_CHUNK <= chunk_size <= MAX_STREAM_CHUNK:
            raise OperationInputError(
                f"chunk size from {MIN_STREAM_CHUNK} to {MAX_STREAM_CHUNK}", key="chunk_size"
            )
        if binary and "BINARY" not in self.conn.capabilities:
            raise UnsupportedOperationError("the server has no BINARY fetch", capability="BINARY")
        kind = "BINARY" if binary else "BODY"
        return self._chunks(path, uid, part, kind, chunk_size, uid_validity)

    async def _chunks(
        self,
        path: str,
        uid: int,
        part: str | None,
        kind: str,
        size: int,
        uid_validity: int | None,
    ) -> AsyncIterator[bytes]:
        section = part or ""
        if part is not None:
            await self._check_part(path, uid, part, uid_validity)
        offset = 0
        while True:
            item = f"{kind}.PEEK[{section}]<{offset}.{size}>"
            fetch = await self._fetch_one(path, uid, ["UID", item], uid_validity)
            if fetch is None:
                detail = "expunged while it was read" if offset else ""
                raise MessageNotFoundError(path, [uid], detail=detail)
            found = fetch.section(f"{kind}[{section}]")
            data = (found.data if found is not None else None) or b""
            if data:
                yield data
            if len(data) < size:
                return
            offset += len(data)

    async def _check_part(self, path: str, uid: int, part: str, uid_validity: int | None) -> None:
        fetch = await self._fetch_one(path, uid, ["UID", "BODYSTRUCTURE"], uid_validity)
        if fetch is None:
            raise MessageNotFoundError(path, [uid])
        if fetch.bodystructure is None or find_part(fetch.bodystructure, part) is None:
            raise MessageNotFoundError(path, [uid], detail=f"no part {part}")

    async def _fetch_one(
        self, path: str, uid: int, items: list[str], uid_validity: int | None
    ) -> Fetch | None:
        """One UID FETCH under the lock; the FETCH of `uid` (others may be unsolicited)."""
        async with self.lock:
            await self.ensure_selected(path, write=False, uid_validity=uid_validity)
            result = await self.conn.execute(
                commands.uid_fetch(commands.SequenceSet.of([uid]), items)
            )
        for event in result.untagged:
            if isinstance(event, Fetch) and event.uid == uid:
                return event
        return None


def find_part(structure: BodyStructure, part: str) -> BodyStructure | None:
    """The body part numbered `part` (RFC 3501 section 6.4.5), or None if there is none.

    A non-multipart message has one part, 1; the parts of an encapsulated
    message/rfc822 are numbered below its own number.
    """
    node: BodyStructure = structure
    for depth, number in enumerate(int(n) for n in part.split(".")):
        if depth and isinstance(node, SinglePart) and node.body is not None:
            node = node.body
        if isinstance(node, Multipart):
            if number > len(node.parts):
                return None
            node = node.parts[number - 1]
        elif number != 1:
            return None
    return node
