"""Upload: store a message in a folder (IMAP APPEND) and index it at once.

Theory of operation. The message is either given whole (`raw`, stored byte
for byte, except for header fields that fields sent beside it replace) or
built from fields with the MIME builder, after `services.compose` completed
them (stored attachments, the `reference` answered or forwarded). Everything
that needs a read from the server is done before the APPEND takes a command
connection of its own.

The APPEND goes to the folder the path (or special use) names, with the
flags and internal date asked for; the server's APPENDLIMIT (RFC 7889) is
checked first. With the new UID from APPENDUID (RFC 4315 section 3), the
message is fetched on the same connection (EXAMINE, UID FETCH of the index
items) and written to the index with one `messageNew`. That write checks the
index inside its transaction (`IndexStore.apply` with `Announce`): if the
sync engine, which sees the APPEND on its own IDLE connection, indexed the
message first, nothing is written or announced here; if this write comes
first, the sync engine finds the UID already indexed and announces nothing.
Either way the message is announced exactly once and listed when the answer
is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailwire.backends.imap.messages import fetch_items, record_from_fetch
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.message_events import Announce, message_new
from mailwire.domain.messages import MessageRecord, encode_message_id
from mailwire.errors import NotFoundError
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.responses import Fetch
from mailwire.protocols.mime.build import Draft, build_message
from mailwire.services.compose import (
    MessageComposer,
    Reference,
    StoredAttachment,
    overridden,
)
from mailwire.services.connections import LocalConnections, server_connection
from mailwire.services.message_content import MessageContentService
from mailwire.services.messages import folder_not_found, resolve_folder
from mailwire.store.store import Store

__all__ = ["Reference", "StoredAttachment", "Upload", "UploadService"]


@dataclass(frozen=True, slots=True)
class Upload:
    """What to store: `raw` bytes as they are, or a message built from `draft`."""

    path: str
    raw: bytes | None = None
    draft: Draft = field(default_factory=Draft)
    stored_attachments: tuple[StoredAttachment, ...] = ()
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    reference: Reference | None = None


class UploadService:
    """`POST /message`; see the module docstring."""

    def __init__(
        self, store: Store, connections: LocalConnections, content: MessageContentService
    ) -> None:
        self._store = store
        self._connections = connections
        self._composer = MessageComposer(store, content)

    async def upload(self, account_id: str, upload: Upload) -> dict[str, Any]:
        folder = await self._destination(account_id, upload.path)
        answer: dict[str, Any] = {"path": folder.path}
        if upload.raw is not None:
            message = overridden(upload.raw, upload.draft)
        else:
            draft, referenced = await self._composer.compose(
                account_id,
                upload.draft,
                stored_attachments=upload.stored_attachments,
                reference=upload.reference,
            )
            if referenced is not None:
                answer["reference"] = referenced
            message = build_message(draft)
        async with server_connection(self._connections, account_id, refused_is_input=True) as ops:
            appended = await ops.append(
                folder.path, message, flags=upload.flags, internal_date=upload.internal_date
            )
            if appended.uid is None or appended.uid_validity is None:
                return answer  # no APPENDUID: the sync engine indexes it when it sees it
            record = await _fetch_record(ops, folder, appended.uid, appended.uid_validity)
        answer.update(
            id=encode_message_id(folder.id, appended.uid_validity, appended.uid),
            uid=appended.uid,
            uidValidity=str(appended.uid_validity),
        )
        if record is None:
            return answer
        if record.message_id:
            answer["messageId"] = record.message_id
        if folder.uid_validity in (None, appended.uid_validity):
            validity = appended.uid_validity
            await self._store.index.apply(
                account_id,
                folder.id,
                added=[record],
                announce=Announce(
                    new=lambda added: message_new(account_id, folder, validity, added)
                ),
            )
        return answer

    async def _destination(self, account_id: str, path: str) -> MailboxRecord:
        folders = await self._store.index.mailboxes(account_id)
        if not folders and not await self._store.accounts.exists(account_id):
            raise NotFoundError("No account has this id", code="AccountNotFound")
        found = resolve_folder(folders, path)
        if found is None:
            raise folder_not_found()
        return found


async def _fetch_record(
    ops: MailboxOperations, folder: MailboxRecord, uid: int, uid_validity: int
) -> MessageRecord | None:
    """The index record of the message just appended (EXAMINE, UID FETCH)."""
    async with ops.lock:
        await ops.ensure_selected(folder.path, write=False, uid_validity=uid_validity)
        result = await ops.conn.execute(
            commands.uid_fetch(commands.SequenceSet.of([uid]), fetch_items(ops.conn.capabilities))
        )
    for event in result.untagged:
        if isinstance(event, Fetch) and event.uid == uid and event.envelope is not None:
            return record_from_fetch(folder.id, event)
    return None
