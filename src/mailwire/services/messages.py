"""Folders and message lists as the API shows them, answered from the index.

Theory of operation. Nothing here talks to a mail server: the sync engine
keeps the index current and these reads are single queries on it.

A folder is named by its path, by `INBOX` in any case (RFC 3501 section
5.1: INBOX is case-insensitive), or by a special use such as `\\Sent`.

Message lists are newest first (highest UID first; UIDs grow with arrival,
RFC 3501 section 2.3.1.1). `page` pages by offset, as EmailEngine does; the
cursors (`nextPageCursor`, `prevPageCursor`) page by UID instead, so a client
walking a folder with them never sees a message twice and never misses one
that was there all along, however much mail arrives meanwhile. A cursor packs
the folder's row id, its UIDVALIDITY, the UID to continue from, the direction
and the page number; it is opaque to clients and only valid for the account
and folder it came from: a cursor from another account, or from before the
folder was renumbered (new UIDVALIDITY), is refused.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from dataclasses import dataclass
from typing import Any, Literal

from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.messages import MessageRecord, message_summary
from mailwire.errors import InputError, NotFoundError
from mailwire.store.store import Store

#: A cursor's version byte, folder row id, UIDVALIDITY, UID, direction and page.
_CURSOR = struct.Struct(">BIIIBI")
_CURSOR_VERSION = 1
CURSOR_PREFIX = "mw_"
_NEXT, _PREV = 0, 1
#: The API's bounds on a page (EmailEngine: pageSize 1-1000).
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    mailbox_id: int
    uid_validity: int
    uid: int
    direction: Literal["next", "prev"]
    page: int

    def encode(self) -> str:
        raw = _CURSOR.pack(
            _CURSOR_VERSION,
            self.mailbox_id,
            self.uid_validity,
            self.uid,
            _NEXT if self.direction == "next" else _PREV,
            self.page,
        )
        return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor in `text`; `InputError` when it is not one of ours."""
        body = text.removeprefix(CURSOR_PREFIX)
        try:
            if body == text:
                raise ValueError("no prefix")
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            version, mailbox_id, uid_validity, uid, direction, page = _CURSOR.unpack(raw)
        except (ValueError, binascii.Error, struct.error) as error:
            raise _bad_cursor() from error
        if version != _CURSOR_VERSION or direction not in (_NEXT, _PREV):
            raise _bad_cursor()
        return cls(mailbox_id, uid_validity, uid, "next" if direction == _NEXT else "prev", page)


def _bad_cursor() -> InputError:
    return InputError("The paging cursor is not valid", key="cursor")


def folder_not_found() -> NotFoundError:
    return NotFoundError("No folder has this path", code="MailboxNotFound")


def resolve_folder(folders: list[MailboxRecord], path: str) -> MailboxRecord | None:
    """The folder `path` names: a path, INBOX in any case, or a special use."""
    for folder in folders:
        if folder.path == path:
            return folder
    if path.upper() == "INBOX":
        return next((f for f in folders if f.path.upper() == "INBOX"), None)
    if path.startswith("\\"):
        wanted = path.lower()
        return next((f for f in folders if (f.special_use or "").lower() == wanted), None)
    return None


class MessageService:
    """Folder and message reads for the API; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def folders(self, account_id: str, *, counters: bool = False) -> list[dict[str, Any]]:
        """Every listed folder of the account, in the API's shape."""
        await self._require_account(account_id)
        folders = await self._store.index.mailboxes(account_id)
        unseen = await self._store.index.unseen_counts(account_id) if counters else {}
        return [_folder_entry(folder, unseen if counters else None) for folder in folders]

    async def folder(self, account_id: str, path: str) -> MailboxRecord:
        found = resolve_folder(await self._store.index.mailboxes(account_id), path)
        if found is None:
            await self._require_account(account_id)  # which of the two is missing
            raise folder_not_found()
        return found

    async def list_messages(
        self,
        account_id: str,
        *,
        path: str | None,
        page: int = 0,
        page_size: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of a folder's messages, newest first (see the module docstring)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InputError(f"pageSize must be 1-{MAX_PAGE_SIZE}", key="pageSize")
        position = Cursor.decode(cursor) if cursor else None
        folder = await self._cursor_folder(account_id, position, path)
        index = self._store.index
        # The folder's count as of its last sync: what the pages cover, without a COUNT(*)
        # over the whole folder on every page (a folder left partly out by `syncFrom` reports
        # the server's count, as the server itself would).
        total = folder.messages
        if position is None:
            found = await index.message_page(
                folder.id, limit=page_size + 1, offset=page * page_size
            )
            more_after, more_before = len(found) > page_size, page > 0
            records = found[:page_size]
        elif position.direction == "next":
            page = position.page
            found = await index.message_page(folder.id, limit=page_size + 1, below_uid=position.uid)
            more_after, more_before = len(found) > page_size, True
            records = found[:page_size]
        else:
            page = position.page
            found = await index.message_page(folder.id, limit=page_size + 1, above_uid=position.uid)
            more_after, more_before = True, len(found) > page_size
            records = found[-page_size:]
        validity = folder.uid_validity or 0
        next_cursor = prev_cursor = None
        if records and more_after:
            next_cursor = Cursor(folder.id, validity, records[-1].uid, "next", page + 1).encode()
        if records and more_before:
            prev_cursor = Cursor(
                folder.id, validity, records[0].uid, "prev", max(page - 1, 0)
            ).encode()
        return {
            "total": total,
            "page": page,
            "pages": math.ceil(total / page_size),
            "nextPageCursor": next_cursor,
            "prevPageCursor": prev_cursor,
            "messages": [list_entry(record, folder) for record in records],
        }

    async def _cursor_folder(
        self, account_id: str, position: Cursor | None, path: str | None
    ) -> MailboxRecord:
        if position is None:
            return await self.folder(account_id, path or "INBOX")
        folders = await self._store.index.mailboxes(account_id)
        if not folders:
            await self._require_account(account_id)
        folder = next((f for f in folders if f.id == position.mailbox_id), None)
        if folder is None or (folder.uid_validity or 0) != position.uid_validity:
            # Another account's folder, a deleted one, or renumbered since: start over.
            raise InputError(
                "The paging cursor does not belong to this folder any more", key="cursor"
            )
        return folder

    async def _require_account(self, account_id: str) -> None:
        if not await self._store.accounts.exists(account_id):
            raise NotFoundError("No account has this id", code="AccountNotFound")


def list_entry(record: MessageRecord, folder: MailboxRecord) -> dict[str, Any]:
    """One message of a list (EmailEngine's message list entry)."""
    entry = message_summary(
        record,
        uid_validity=folder.uid_validity or 0,
        path=folder.path,
        special_use=folder.special_use,
    )
    entry.pop("seemsLikeNew", None)
    entry.pop("sender", None)
    entry.pop("bcc", None)
    return entry


def _folder_entry(folder: MailboxRecord, unseen: dict[int, int] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": folder.path,
        "delimiter": folder.delimiter,
        "name": folder.name,
        "listed": True,
        "subscribed": folder.subscribed,
    }
    if folder.parent_path:
        entry["parentPath"] = folder.parent_path
    if not folder.selectable:
        entry["noSelect"] = True
    if any(flag.lower() == "\\noinferiors" for flag in folder.flags):
        entry["noInferiors"] = True
    if folder.special_use:
        entry["specialUse"] = folder.special_use
        entry["specialUseSource"] = folder.special_use_source
    entry["messages"] = folder.messages if folder.uid_validity is not None else False
    entry["uidNext"] = folder.uid_next if folder.uid_next is not None else False
    if unseen is not None:
        entry["status"] = {"messages": folder.messages, "unseen": unseen.get(folder.id, 0)}
    return entry
