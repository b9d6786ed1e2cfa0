"""Folders created, renamed, subscribed and deleted through the API, on the mail server.

Theory of operation. Each change runs on one of the account's command
connections (`server_connection`), then the same connection lists the folders
again and the index is brought in line with that listing at once, in one write
that carries the events (`IndexStore.save_listing`):

- a folder in the listing but not in the index is inserted and, when it can
  be selected, announced with one `mailboxNew` (its UIDVALIDITY from STATUS);
- a folder in the index but not in the listing is dropped with one
  `mailboxDeleted`;
- a rename is both: the old path goes, the new one comes. The renamed folder's
  messages are indexed at once, silently, under the new folder row, so that
  they are not announced again as new mail.

The sync engine reconciles its own listings against the same index
(`backends.imap.sync.AccountSync.refresh_listing`): it announces `mailboxNew`
only for paths the index did not hold when it listed, and `mailboxDeleted`
only for stored paths that vanished. Once this write is done, its next listing
matches the index and announces nothing. (A sync listing that ran in the few
milliseconds between the server change and this write could still announce
the same folder; both sides read the index before writing, with no lock
between them.) Special uses are decided over the whole listing with the
account's own choices, exactly as the sync engine decides them, so its next
listing finds nothing to rewrite either.

INBOX cannot be deleted (RFC 3501 section 6.3.4). The reference asks no
confirmation for deleting other special-use folders, so none is asked here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailwire.backends.imap.errors import CommandFailedError
from mailwire.backends.imap.listing import list_mailboxes, with_special_uses
from mailwire.backends.imap.messages import fetch_items, record_from_fetch
from mailwire.backends.imap.operation_errors import FolderExistsError, ProtectedFolderError
from mailwire.backends.imap.operations import MailboxOperations
from mailwire.domain.accounts import Account
from mailwire.domain.events import Event, EventName
from mailwire.domain.mailboxes import MailboxInfo, MailboxRecord, SyncState
from mailwire.domain.messages import MessageRecord
from mailwire.errors import InputError, NotFoundError
from mailwire.logs import get_logger
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.responses import Fetch, Status
from mailwire.services.connections import LocalConnections, server_connection
from mailwire.services.messages import folder_not_found, resolve_folder
from mailwire.store.store import Store

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Relisted:
    """The index after a relisting, and the paths that came and went."""

    folders: list[MailboxRecord]
    added: tuple[str, ...]
    removed: tuple[str, ...]


class FolderService:
    """Folder changes on the server, recorded in the index at once; see the module docstring."""

    def __init__(self, store: Store, connections: LocalConnections) -> None:
        self._store = store
        self._connections = connections

    async def create(self, account_id: str, segments: Sequence[str]) -> dict[str, Any]:
        account = await self._account(account_id)
        async with server_connection(self._connections, account_id, refused_is_input=True) as ops:
            try:
                created = await ops.create_folder(list(segments))
            except FolderExistsError as exists:
                # The reference's answer for a folder already there: no error, `created: false`.
                return {"path": exists.path, "created": False}
            await self._relist(ops, account)
        return {"path": created.path, "created": True}

    async def modify(
        self,
        account_id: str,
        path: str,
        *,
        new_path: Sequence[str] | None,
        subscribed: bool | None,
    ) -> dict[str, Any]:
        account = await self._account(account_id)
        folder = await self._folder(account_id, path)
        answer: dict[str, Any] = {"path": folder.path}
        async with server_connection(self._connections, account_id, refused_is_input=True) as ops:
            current = folder.path
            if new_path is not None:
                await _leave_selection(ops)
                try:
                    renamed = await ops.rename_folder(current, list(new_path))
                except FolderExistsError as exists:
                    raise InputError(
                        f"A folder {exists.path!r} already exists", key="newPath"
                    ) from exists
                current = renamed.new_path
                answer.update(newPath=current, renamed=True)
            if subscribed is not None:
                async with ops.lock:
                    build = commands.subscribe if subscribed else commands.unsubscribe
                    await ops.conn.execute(build(current))
                answer["subscribed"] = subscribed
            # The renamed folders' messages are read before the new rows exist, so that
            # rows and messages reach the index moments apart (see `_renamed_contents`).
            contents = await _renamed_contents(ops, current) if new_path is not None else {}
            relisted = await self._relist(ops, account)
            rows = {row.path: row for row in relisted.folders}
            for renamed_path, (state, records) in contents.items():
                row = rows.get(renamed_path)
                if row is not None and renamed_path in relisted.added:
                    moved = [dataclasses.replace(record, mailbox_id=row.id) for record in records]
                    await self._store.index.apply(account_id, row.id, added=moved, state=state)
        return answer

    async def delete(self, account_id: str, path: str) -> dict[str, Any]:
        account = await self._account(account_id)
        if path.upper() == "INBOX":
            raise InputError("INBOX cannot be deleted", key="path")
        folder = await self._folder(account_id, path)
        async with server_connection(self._connections, account_id, refused_is_input=True) as ops:
            await _leave_selection(ops)
            try:
                await ops.delete_folder(folder.path)
            except ProtectedFolderError as error:
                raise InputError(str(error), key="path") from error
            await self._relist(ops, account)
        return {"path": folder.path, "deleted": True}

    # ------------------------------------------------------------------ internals

    async def _account(self, account_id: str) -> Account:
        account = await self._store.accounts.get(account_id)
        if account is None:
            raise NotFoundError("No account has this id", code="AccountNotFound")
        return account

    async def _folder(self, account_id: str, path: str) -> MailboxRecord:
        found = resolve_folder(await self._store.index.mailboxes(account_id), path)
        if found is None:
            raise folder_not_found()
        return found

    async def _relist(self, ops: MailboxOperations, account: Account) -> Relisted:
        """LIST again and write the difference to the index with its events, at once."""
        async with ops.lock:
            listed = await list_mailboxes(ops.conn)
        stored = {folder.path: folder for folder in await self._store.index.mailboxes(account.id)}
        names = {info.path for info in listed}
        removed = [path for path in stored if path not in names]
        added = [info for info in listed if info.path not in stored]
        imap = account.imap()
        decided = with_special_uses(listed, dict(imap.special_paths) if imap else {})
        uses = {item.info.path: item.special_use for item in decided}
        events = [_mailbox_deleted(account.id, stored[path]) for path in removed]
        for info in added:
            if info.selectable:
                validity = await _uid_validity(ops, info.path)
                events.append(_mailbox_new(account.id, info, uses.get(info.path), validity))
        folders = await self._store.index.save_listing(
            account.id, decided, removed=removed, events=events
        )
        return Relisted(folders, tuple(info.path for info in added), tuple(removed))


async def _renamed_contents(
    ops: MailboxOperations, target: str
) -> dict[str, tuple[SyncState, list[MessageRecord]]]:
    """State and index records of the renamed folder and its children, by path.

    They are indexed under the new rows silently: the messages are not new mail.
    Until that write, the new rows have no UIDVALIDITY, and a sync listing in
    between would index the folder itself, announcing recent messages as new;
    reading everything first keeps that window to one database write. The records
    are held in memory meanwhile (a few KB per message).
    """
    async with ops.lock:
        listed = await list_mailboxes(ops.conn)
    delimiter = await ops.delimiter()
    inside = [
        info.path
        for info in listed
        if info.selectable
        and (info.path == target or (delimiter and info.path.startswith(target + delimiter)))
    ]
    contents: dict[str, tuple[SyncState, list[MessageRecord]]] = {}
    items = fetch_items(ops.conn.capabilities)
    for path in inside:
        async with ops.lock:
            selected = await ops.ensure_selected(path, write=False)
            assert selected is not None  # a new MailboxOperations had INBOX selected at most
            records: list[MessageRecord] = []
            if selected.exists:
                result = await ops.conn.execute(
                    commands.uid_fetch(commands.SequenceSet.span(1), items)
                )
                for event in result.untagged:
                    if isinstance(event, Fetch) and event.envelope is not None:
                        record = record_from_fetch(0, event)
                        if record is not None:
                            records.append(record)
        state = SyncState(
            selected.uid_validity, selected.uid_next, selected.highest_modseq, selected.exists
        )
        contents[path] = (state, records)
    return contents


async def _leave_selection(ops: MailboxOperations) -> None:
    """EXAMINE INBOX, so that the connection has nothing else selected.

    A pooled connection may still have the folder selected from an earlier
    request, which this `MailboxOperations` does not know of; Dovecot ends a
    connection whose selected folder it deletes or renames (BYE). With INBOX
    known to be selected, `rename_folder` and `delete_folder` unselect it
    themselves when it is the folder they change.
    """
    async with ops.lock:
        await ops.ensure_selected("INBOX", write=False)


async def _uid_validity(ops: MailboxOperations, path: str) -> int | None:
    async with ops.lock:
        try:
            result = await ops.conn.execute(commands.status(path, ["UIDVALIDITY"]))
        except CommandFailedError:
            return None
    status = next((e for e in result.untagged if isinstance(e, Status)), None)
    return None if status is None else status.get("UIDVALIDITY")


def _mailbox_new(
    account: str, info: MailboxInfo, special_use: str | None, uid_validity: int | None
) -> Event:
    data = {
        "path": info.path,
        "name": info.name,
        "specialUse": special_use or False,
        "uidValidity": str(uid_validity) if uid_validity is not None else False,
    }
    return Event(account, EventName.MAILBOX_NEW, data, path=info.path, special_use=special_use)


def _mailbox_deleted(account: str, folder: MailboxRecord) -> Event:
    data = {"path": folder.path, "name": folder.name, "specialUse": folder.special_use or False}
    return Event(
        account, EventName.MAILBOX_DELETED, data, path=folder.path, special_use=folder.special_use
    )
