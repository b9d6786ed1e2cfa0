"""Changing messages through the API: flags and labels, moves, deletes, one or many.

Theory of operation. A change is made on one of the account's command
connections (`MailboxOperations`), then recorded in the index at once with
`store.index.apply(..., announce=...)`, from what the server answered:

- flags and labels: the resulting state of every message (the STORE's
  untagged FETCH answers) is written as `updated`; `messageUpdated` is built
  for each message whose flags really changed;
- a move (and a delete that moves to Trash): the source UIDs are `removed`
  (`messageDeleted` in the source folder); the moved messages are fetched by
  their new UIDs in the destination (COPYUID, RFC 4315 section 3) and `added`
  (`messageNew` in the destination). Without COPYUID, or when the index's
  destination folder has another UIDVALIDITY than the server's, nothing is
  added: the sync engine finds the messages on its next look at the folder;
- a delete for good (`force`, or from the Trash folder itself): the UIDs are
  `removed`.

Exactly once: `apply` compares the change with the index inside its write
transaction (the folder row locked on PostgreSQL, one writer on SQLite), so a
message already added is not added again, one already gone is not removed
again, and unchanged flags announce nothing. Whichever of this service and the
sync engine (which sees the same change on the server later, or sooner)
records a change first announces it; the other finds nothing left to announce.

Bulk changes choose their messages with the search of `POST /search`
(`SearchService`): the folder's indexed messages that match, at most
`MAX_BULK_MESSAGES` of them; a search that matches more is refused rather than
half done, so that the caller can narrow it (by `uid` ranges, for instance).

Deleting without `force` when the account has no `\\Trash` folder is refused
(409 `TrashNotFound`) instead of destroying the message: an application that
meant "move to Trash" never loses mail by accident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from mailwire.backends.imap.messages import fetch_items, record_from_fetch
from mailwire.backends.imap.operation_errors import (
    UidValidityChangedError,
)
from mailwire.backends.imap.operations import FlagsResult, MailboxOperations, Moved
from mailwire.domain.events import Event
from mailwire.domain.mailboxes import MailboxRecord
from mailwire.domain.message_events import (
    Announce,
    message_deleted,
    message_new,
    message_updated,
)
from mailwire.domain.messages import FlagState, MessageRecord, encode_message_id
from mailwire.errors import ConflictError, InputError
from mailwire.logs import get_logger
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.responses import Fetch
from mailwire.services.connections import LocalConnections, server_connection
from mailwire.services.message_content import MessageContentService
from mailwire.services.messages import MAX_PAGE_SIZE, MessageService
from mailwire.services.search import SearchService
from mailwire.store.store import Store

log = get_logger(__name__)

#: Messages one bulk request may change; a search that matches more is refused.
MAX_BULK_MESSAGES = 10_000
TRASH = "\\Trash"


class MessageChangeService:
    """Flag, label, move and delete requests; see the module docstring."""

    def __init__(
        self, store: Store, messages: MessageService, connections: LocalConnections
    ) -> None:
        self._store = store
        self._messages = messages
        self._connections = connections
        # Both are stateless over the store and the connections: composed, not shared.
        self._content = MessageContentService(store, connections)
        self._search = SearchService(store, messages, connections)

    # ------------------------------------------------------------------ one message

    async def update(
        self, account_id: str, message_id: str, update: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`PUT /message/{message}`: `update` is `{flags?: {add, delete, set}, labels?: ...}`."""
        found = await self._content.locate(account_id, message_id)
        folder, key = found.folder, found.key
        flags, labels = _steps(update.get("flags")), _steps(update.get("labels"))
        answer: dict[str, Any] = {}
        if not flags and not labels:
            return answer  # nothing to change: the server is not asked
        async with self._connection(account_id) as ops:
            if labels:
                _require_labels(ops)
            if flags:
                result = await ops.store_flags(
                    folder.path, [key.uid], **_store_args(flags), uid_validity=key.uid_validity
                )
                await self._record_flags(account_id, folder, key.uid_validity, result)
                state = result.messages.get(key.uid)
                answer["flags"] = _outcome(flags, True, state.flags if state else None)
            if labels:
                result = await ops.store_labels(
                    folder.path, [key.uid], **_store_args(labels), uid_validity=key.uid_validity
                )
                await self._record_flags(account_id, folder, key.uid_validity, result)
                state = result.messages.get(key.uid)
                answer["labels"] = _outcome(labels, True, state.labels if state else None)
        return answer

    async def move(self, account_id: str, message_id: str, path: str) -> dict[str, Any]:
        """`PUT /message/{message}/move`: where the message is now (`path`, `id`, `uid`)."""
        found = await self._content.locate(account_id, message_id)
        destination = await self._destination(account_id, found.folder, path)
        moved = await self._move(
            account_id, found.folder, [found.key.uid], destination, found.key.uid_validity
        )
        answer: dict[str, Any] = {"path": destination.path}
        new_uid = moved.uid_map.get(found.key.uid)
        if new_uid is not None and moved.uid_validity is not None:
            answer["id"] = encode_message_id(destination.id, moved.uid_validity, new_uid)
            answer["uid"] = new_uid
        return answer

    async def delete(self, account_id: str, message_id: str, *, force: bool) -> dict[str, Any]:
        """`DELETE /message/{message}`: to Trash, or for good (`force`, or already in Trash)."""
        found = await self._content.locate(account_id, message_id)
        trash = await self._trash(account_id, found.folder, force=force)
        uid, validity = found.key.uid, found.key.uid_validity
        if trash is None:
            await self._expunge(account_id, found.folder, [uid], validity)
            return {"deleted": True}
        moved = await self._move(account_id, found.folder, [uid], trash, validity)
        target: dict[str, Any] = {"destination": trash.path}
        new_uid = moved.uid_map.get(uid)
        if new_uid is not None and moved.uid_validity is not None:
            target["message"] = encode_message_id(trash.id, moved.uid_validity, new_uid)
        return {"deleted": False, "moved": target}

    # ------------------------------------------------------------------ many messages

    async def update_many(
        self,
        account_id: str,
        path: str,
        search: Mapping[str, Any],
        update: Mapping[str, Any],
    ) -> dict[str, Any]:
        """`PUT /messages`: the same flag and label change on every matching message."""
        folder, entries = await self._select(account_id, path, search)
        flags, labels = _steps(update.get("flags")), _steps(update.get("labels"))
        uids = [int(entry["uid"]) for entry in entries]
        answer: dict[str, Any] = {}
        if not uids or not (flags or labels):
            changes = (("flags", flags), ("labels", labels))
            return {name: _outcome(steps, False) for name, steps in changes if steps}
        validity = folder.uid_validity
        async with self._connection(account_id) as ops:
            if labels:
                _require_labels(ops)
            with _bulk_errors():
                if flags:
                    result = await ops.store_flags(
                        folder.path, uids, **_store_args(flags), uid_validity=validity
                    )
                    await self._record_flags(account_id, folder, validity or 0, result)
                    answer["flags"] = _outcome(flags, bool(result.messages))
                if labels:
                    result = await ops.store_labels(
                        folder.path, uids, **_store_args(labels), uid_validity=validity
                    )
                    await self._record_flags(account_id, folder, validity or 0, result)
                    answer["labels"] = _outcome(labels, bool(result.messages))
        return answer

    async def move_many(
        self, account_id: str, path: str, search: Mapping[str, Any], destination_path: str
    ) -> dict[str, Any]:
        """`PUT /messages/move`: every matching message to `destination_path`; old -> new ids."""
        folder, entries = await self._select(account_id, path, search)
        destination = await self._destination(account_id, folder, destination_path)
        answer: dict[str, Any] = {"path": destination.path}
        uids = [int(entry["uid"]) for entry in entries]
        if uids:
            moved = await self._move(account_id, folder, uids, destination, folder.uid_validity)
            id_map = _id_map(folder, destination, moved)
            if id_map:
                answer["idMap"] = id_map
        return answer

    async def delete_many(
        self, account_id: str, path: str, search: Mapping[str, Any], *, force: bool
    ) -> dict[str, Any]:
        """`PUT /messages/delete`: every matching message to Trash, or for good."""
        folder, entries = await self._select(account_id, path, search)
        trash = await self._trash(account_id, folder, force=force)
        uids = [int(entry["uid"]) for entry in entries]
        if trash is None:
            if uids:
                await self._expunge(account_id, folder, uids, folder.uid_validity)
            return {"deleted": bool(uids)}
        answer: dict[str, Any] = {"deleted": False}
        if uids:
            moved = await self._move(account_id, folder, uids, trash, folder.uid_validity)
            target: dict[str, Any] = {"destination": trash.path}
            id_map = _id_map(folder, trash, moved)
            if id_map:
                target["idMap"] = id_map
            answer["moved"] = target
        return answer

    # ------------------------------------------------------------------ internals

    async def _select(
        self, account_id: str, path: str, search: Mapping[str, Any]
    ) -> tuple[MailboxRecord, list[dict[str, Any]]]:
        """The folder and its matching messages (list entries), at most `MAX_BULK_MESSAGES`."""
        folder = await self._messages.folder(account_id, path)
        page = await self._search.search(
            account_id, search, path=folder.path, page_size=MAX_PAGE_SIZE
        )
        if page["total"] > MAX_BULK_MESSAGES:
            raise InputError(
                f"The search matches {page['total']} messages; one request changes at most"
                f" {MAX_BULK_MESSAGES}. Narrow the search (for instance by uid range)",
                key="search",
            )
        entries: list[dict[str, Any]] = list(page["messages"])
        while page.get("nextPageCursor") and len(entries) < MAX_BULK_MESSAGES:
            page = await self._search.search(
                account_id,
                search,
                path=folder.path,
                page_size=MAX_PAGE_SIZE,
                cursor=page["nextPageCursor"],
            )
            entries += page["messages"]
        return folder, entries[:MAX_BULK_MESSAGES]

    async def _destination(
        self, account_id: str, source: MailboxRecord, path: str
    ) -> MailboxRecord:
        destination = await self._messages.folder(account_id, path)
        if destination.id == source.id:
            raise InputError("The message is in that folder already", key="path")
        return destination

    async def _trash(
        self, account_id: str, folder: MailboxRecord, *, force: bool
    ) -> MailboxRecord | None:
        """The Trash folder to move to, or None to delete for good."""
        if force:
            return None
        folders = await self._store.index.mailboxes(account_id)
        trash = next((f for f in folders if f.special_use == TRASH), None)
        if trash is None:
            raise ConflictError(
                "The account has no Trash folder: delete with force=true to remove the"
                " message for good",
                code="TrashNotFound",
            )
        return None if trash.id == folder.id else trash

    async def _move(
        self,
        account_id: str,
        source: MailboxRecord,
        uids: Sequence[int],
        destination: MailboxRecord,
        uid_validity: int | None,
    ) -> Moved:
        async with self._connection(account_id) as ops:
            with _bulk_errors(len(uids) > 1):
                moved = await ops.move(
                    source.path, uids, destination.path, uid_validity=uid_validity
                )
            records = await _fetch_moved(ops, destination, moved)
        validity = uid_validity or 0
        await self._store.index.apply(
            account_id,
            source.id,
            removed=moved.uids,
            announce=Announce(
                deleted=lambda uid: message_deleted(account_id, source, validity, uid)
            ),
        )
        if records and moved.uid_validity is not None:
            target_validity = moved.uid_validity
            await self._store.index.apply(
                account_id,
                destination.id,
                added=records,
                announce=Announce(
                    new=lambda record: message_new(account_id, destination, target_validity, record)
                ),
            )
        return moved

    async def _expunge(
        self,
        account_id: str,
        folder: MailboxRecord,
        uids: Sequence[int],
        uid_validity: int | None,
    ) -> None:
        async with self._connection(account_id) as ops:
            with _bulk_errors(len(uids) > 1):
                deleted = await ops.delete_messages(folder.path, uids, uid_validity=uid_validity)
        validity = uid_validity or 0
        await self._store.index.apply(
            account_id,
            folder.id,
            removed=deleted.uids,
            announce=Announce(
                deleted=lambda uid: message_deleted(account_id, folder, validity, uid)
            ),
        )

    async def _record_flags(
        self, account_id: str, folder: MailboxRecord, uid_validity: int, result: FlagsResult
    ) -> None:
        def updated(change: FlagState, before: tuple[str, ...]) -> Event | None:
            return message_updated(account_id, folder, uid_validity, before, change)

        await self._store.index.apply(
            account_id,
            folder.id,
            updated=list(result.messages.values()),
            announce=Announce(updated=updated),
        )

    def _connection(self, account_id: str) -> AbstractAsyncContextManager[MailboxOperations]:
        return server_connection(self._connections, account_id)


async def _fetch_moved(
    ops: MailboxOperations, destination: MailboxRecord, moved: Moved
) -> list[MessageRecord]:
    """Index records of the moved messages, fetched by their new UIDs in the destination.

    None without COPYUID, or when the index knows the destination under another
    UIDVALIDITY (its records would name other messages): the sync engine adds them.
    """
    if not moved.uid_map or moved.uid_validity is None:
        return []
    if destination.uid_validity != moved.uid_validity:
        return []
    wanted = set(moved.uid_map.values())
    items = list(fetch_items(ops.conn.capabilities))
    records: list[MessageRecord] = []
    async with ops.lock:
        await ops.ensure_selected(destination.path, write=False, uid_validity=moved.uid_validity)
        for chunk in commands.split_sequence_set(sorted(wanted)):
            result = await ops.conn.execute(commands.uid_fetch(chunk, items))
            for event in result.untagged:
                if isinstance(event, Fetch) and event.uid in wanted and event.envelope is not None:
                    record = record_from_fetch(destination.id, event)
                    if record is not None:
                        records.append(record)
    return records


def _steps(change: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The non-empty operations of a flag or label change (`add`, `delete`, `set`)."""
    if not change:
        return {}
    return {
        name: list(values)
        for name in ("add", "delete", "set")
        if (values := change.get(name)) is not None and (values or name == "set")
    }


def _store_args(steps: Mapping[str, list[str]]) -> dict[str, Any]:
    return {
        "add": steps.get("add", ()),
        "remove": steps.get("delete", ()),
        "replace": steps.get("set"),
    }


def _outcome(
    steps: Mapping[str, list[str]], done: bool, result: Iterable[str] | None = None
) -> dict[str, Any]:
    """The reference's answer for IMAP: whether each operation ran, and the flags after."""
    outcome: dict[str, Any] = dict.fromkeys(steps, done)
    if result is not None:
        outcome["result"] = list(result)
    return outcome


def _require_labels(ops: MailboxOperations) -> None:
    """Labels exist on Gmail only; refused before any other part of the change is made."""
    if "X-GM-EXT-1" not in ops.conn.capabilities:
        raise ConflictError(
            "Labels can be changed on Gmail accounts only: this server does not offer"
            " Gmail's extension (X-GM-EXT-1). Use flags or move the message instead",
            code="UnsupportedOperation",
        )


def _id_map(source: MailboxRecord, destination: MailboxRecord, moved: Moved) -> list[list[str]]:
    if moved.uid_validity is None or source.uid_validity is None:
        return []
    return [
        [
            encode_message_id(source.id, source.uid_validity, old),
            encode_message_id(destination.id, moved.uid_validity, new),
        ]
        for old, new in sorted(moved.uid_map.items())
    ]


@contextlib.contextmanager
def _bulk_errors(bulk: bool = True) -> Iterator[None]:
    """For many messages: a folder whose UIDs changed meaning is a conflict, not a 404."""
    try:
        yield
    except UidValidityChangedError as error:
        if not bulk:
            raise
        raise ConflictError(
            f"{error.path!r} was renumbered by the server since it was indexed; retry once"
            " the account has synced it again",
            code="UidValidityChanged",
        ) from error
