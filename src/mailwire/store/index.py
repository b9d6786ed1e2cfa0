"""The mailbox and message index of every account, written together with its events.

Every method that changes the index takes the events describing the change and
appends them to the outbox in the same transaction (`store.outbox`), so a
crash either keeps both or neither: a resync after a restart finds the
messages already indexed and announces nothing twice.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.events import Event
from mailwire.domain.mailboxes import ListedMailbox, MailboxRecord, SyncState
from mailwire.domain.message_events import Announce
from mailwire.domain.messages import FlagState, MessageRecord
from mailwire.store.database import Database, escape_like
from mailwire.store.outbox import append_events
from mailwire.store.schema import mailboxes, messages
from mailwire.types import Clock, now_ms

T = TypeVar("T")


def _built(builder: Callable[[T], Event | None] | None, items: Sequence[T]) -> list[Event]:
    if builder is None:
        return []
    return [event for item in items if (event := builder(item)) is not None]


#: Rows per INSERT statement (SQLite allows 32766 bound parameters; ~20 columns a row).
INSERT_CHUNK = 500


class IndexStore:
    def __init__(self, database: Database, *, clock: Clock = now_ms) -> None:
        self._db = database
        self._clock = clock

    # ------------------------------------------------------------------ mailboxes

    async def mailboxes(self, account: str) -> list[MailboxRecord]:
        statement = (
            mailboxes.select().where(mailboxes.c.account == account).order_by(mailboxes.c.path)
        )
        rows = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        return [_mailbox(row._mapping) for row in rows]

    async def save_listing(
        self,
        account: str,
        listed: Sequence[ListedMailbox],
        *,
        removed: Sequence[str] = (),
        events: Sequence[Event] = (),
    ) -> list[MailboxRecord]:
        """Insert new folders, refresh listed ones, drop `removed` (with their messages)."""
        now = self._clock()
        async with self._db.write() as conn:
            existing = {
                row.path: row.id
                for row in await conn.execute(
                    sa.select(mailboxes.c.path, mailboxes.c.id).where(
                        mailboxes.c.account == account
                    )
                )
            }
            for item in listed:
                values = _listing_values(item)
                if item.info.path in existing:
                    await conn.execute(
                        mailboxes.update()
                        .where(mailboxes.c.id == existing[item.info.path])
                        .values(**values)
                    )
                else:
                    await conn.execute(
                        mailboxes.insert().values(
                            account=account,
                            path=item.info.path,
                            messages=0,
                            created_at=now,
                            **values,
                        )
                    )
            if removed:
                await conn.execute(
                    mailboxes.delete().where(
                        mailboxes.c.account == account, mailboxes.c.path.in_(list(removed))
                    )
                )
            await append_events(conn, events, now=now)
            rows = await conn.execute(
                mailboxes.select().where(mailboxes.c.account == account).order_by(mailboxes.c.path)
            )
            return [_mailbox(row._mapping) for row in rows]

    async def reset_mailbox(
        self, mailbox_id: int, *, uid_validity: int | None, events: Sequence[Event] = ()
    ) -> None:
        """Forget a folder's messages and sync state (UIDVALIDITY changed, state lost)."""
        async with self._db.write() as conn:
            await conn.execute(messages.delete().where(messages.c.mailbox_id == mailbox_id))
            await conn.execute(
                mailboxes.update()
                .where(mailboxes.c.id == mailbox_id)
                .values(uid_validity=uid_validity, uid_next=None, highest_modseq=None, messages=0)
            )
            await append_events(conn, events, now=self._clock())

    # ------------------------------------------------------------------ messages

    async def known_flags(self, mailbox_id: int) -> dict[int, tuple[str, ...]]:
        """UID -> flags of every indexed message of one folder."""
        statement = sa.select(messages.c.uid, messages.c.flags).where(
            messages.c.mailbox_id == mailbox_id
        )
        rows = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        return {int(uid): tuple(flags) for uid, flags in rows}

    async def message_page(
        self,
        mailbox_id: int,
        *,
        limit: int,
        offset: int = 0,
        below_uid: int | None = None,
        above_uid: int | None = None,
    ) -> list[MessageRecord]:
        """Up to `limit` messages of one folder, newest (highest UID) first.

        Paging is by `offset`, or by keyset: `below_uid` gives the page after a
        page ending at that UID, `above_uid` the page before one starting there.
        A keyset page neither repeats nor skips a message when mail arrives or
        leaves between requests.
        """
        statement = messages.select().where(messages.c.mailbox_id == mailbox_id)
        if above_uid is not None:
            statement = statement.where(messages.c.uid > above_uid).order_by(messages.c.uid)
        else:
            if below_uid is not None:
                statement = statement.where(messages.c.uid < below_uid)
            statement = statement.order_by(messages.c.uid.desc()).offset(offset)
        limited = statement.limit(limit)
        rows = await self._db.run(lambda conn: conn.execute(limited).all(), write=False)
        records = [_message(row._mapping) for row in rows]
        return records[::-1] if above_uid is not None else records

    async def message_count(self, mailbox_id: int) -> int:
        statement = (
            sa.select(sa.func.count())
            .select_from(messages)
            .where(messages.c.mailbox_id == mailbox_id)
        )
        count = await self._db.run(lambda conn: conn.execute(statement).scalar_one(), write=False)
        return int(count)

    async def unseen_counts(self, account: str) -> dict[int, int]:
        """Folder id -> messages without `\\Seen`, for every folder of the account."""
        # Flags are stored as a JSON list: `"\\Seen"` (backslash escaped) marks a read message.
        seen = sa.cast(messages.c.flags, sa.Text).like(
            '%"' + escape_like("\\\\Seen") + '"%', escape="\\"
        )
        statement = (
            sa.select(messages.c.mailbox_id, sa.func.count())
            .where(messages.c.account == account, sa.not_(seen))
            .group_by(messages.c.mailbox_id)
        )
        rows = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        return {int(folder): int(count) for folder, count in rows}

    async def message(self, mailbox_id: int, uid: int) -> MessageRecord | None:
        statement = messages.select().where(
            messages.c.mailbox_id == mailbox_id, messages.c.uid == uid
        )
        row = await self._db.run(lambda conn: conn.execute(statement).first(), write=False)
        return None if row is None else _message(row._mapping)

    async def max_uid(self, mailbox_id: int) -> int:
        statement = sa.select(sa.func.max(messages.c.uid)).where(
            messages.c.mailbox_id == mailbox_id
        )
        highest = await self._db.run(lambda conn: conn.execute(statement).scalar(), write=False)
        return int(highest or 0)

    async def apply(
        self,
        account: str,
        mailbox_id: int,
        *,
        added: Sequence[MessageRecord] = (),
        removed: Sequence[int] = (),
        updated: Sequence[FlagState] = (),
        state: SyncState | None = None,
        events: Sequence[Event] = (),
        announce: Announce | None = None,
    ) -> None:
        """Record one step of a folder's sync and its events, atomically.

        With `announce`, the write is checked against the index *in this
        transaction* (the folder's row locked on PostgreSQL; SQLite has one
        writer): messages already indexed are not added again, messages already
        gone are not removed again, unchanged flags are not rewritten, and
        `announce` builds an event only for what really changed. The sync engine
        and an API request recording the same change (a flag set, a message moved
        in or out) therefore announce it once, whichever comes first.
        """
        now = self._clock()
        async with self._db.write() as conn:
            found = list(events)
            changes = list(updated)
            if announce is not None:
                await _lock_folder(conn, mailbox_id)
                present = await _present(conn, mailbox_id, [r.uid for r in added] + list(removed))
                added = [r for r in added if r.uid not in present]
                removed = [uid for uid in removed if uid in present]
                found += _built(announce.new, added)
                found += _built(announce.deleted, removed)
                if changes:
                    stored = await _locked_flags(conn, mailbox_id, [c.uid for c in changes])
                    changes = [c for c in changes if c.uid in stored and _differs(c, stored[c.uid])]
                    if announce.updated is not None:
                        found += [
                            event
                            for change in changes
                            if (event := announce.updated(change, stored[change.uid][0]))
                            is not None
                        ]
            await _insert_messages(conn, account, added, now)
            if removed:
                for chunk in _chunks(list(removed), INSERT_CHUNK):
                    await conn.execute(
                        messages.delete().where(
                            messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(chunk)
                        )
                    )
            for change in changes:
                values: dict[str, Any] = {"flags": list(change.flags)}
                if change.modseq is not None:
                    values["modseq"] = change.modseq
                if change.labels is not None:
                    values["labels"] = list(change.labels)
                await conn.execute(
                    messages.update()
                    .where(messages.c.mailbox_id == mailbox_id, messages.c.uid == change.uid)
                    .values(**values)
                )
            await _update_mailbox(conn, mailbox_id, state, now)
            await append_events(conn, found, now=now)


async def _lock_folder(conn: AsyncConnection, mailbox_id: int) -> None:
    """Serialise index writes to one folder (PostgreSQL; SQLite has a single writer)."""
    statement = sa.select(mailboxes.c.id).where(mailboxes.c.id == mailbox_id).with_for_update()
    await conn.execute(statement)


async def _present(conn: AsyncConnection, mailbox_id: int, uids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(sorted(set(uids)), INSERT_CHUNK):
        statement = sa.select(messages.c.uid).where(
            messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(chunk)
        )
        found.update(int(uid) for (uid,) in await conn.execute(statement))
    return found


async def _locked_flags(
    conn: AsyncConnection, mailbox_id: int, uids: list[int]
) -> dict[int, tuple[tuple[str, ...], tuple[str, ...] | None]]:
    """UID -> (flags, labels) as stored, rows locked against concurrent writers."""
    found: dict[int, tuple[tuple[str, ...], tuple[str, ...] | None]] = {}
    for chunk in _chunks(uids, INSERT_CHUNK):
        statement = (
            sa.select(messages.c.uid, messages.c.flags, messages.c.labels)
            .where(messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(chunk))
            .with_for_update()
        )
        for uid, flags, labels in await conn.execute(statement):
            found[int(uid)] = (tuple(flags or ()), None if labels is None else tuple(labels))
    return found


def _differs(change: FlagState, stored: tuple[tuple[str, ...], tuple[str, ...] | None]) -> bool:
    flags, labels = stored
    if set(change.flags) != set(flags):
        return True
    return change.labels is not None and set(change.labels) != set(labels or ())


async def _insert_messages(
    conn: AsyncConnection, account: str, added: Sequence[MessageRecord], now: int
) -> None:
    """Insert new messages with one driver-level executemany per chunk.

    This is the initial index's write path (tens of thousands of rows): the
    statement is rendered once per dialect and the JSON columns are encoded
    here, which costs half of what per-row Core parameter processing does.
    """
    if not added:
        return
    statement = _insert_statement(conn.dialect)
    rows = [_message_row(account, record, now) for record in added]
    for chunk in _chunks(rows, INSERT_CHUNK):
        await conn.exec_driver_sql(statement, chunk)


#: The `messages` columns in the order `_message_row` lists their values.
_MESSAGE_COLUMNS = (
    "mailbox_id",
    "uid",
    "account",
    "email_id",
    "thread_id",
    "modseq",
    "flags",
    "labels",
    "internal_date",
    "date",
    "size",
    "subject",
    "from_address",
    "message_id",
    "in_reply_to",
    "references",
    "envelope",
    "structure",
    "indexed_at",
)
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


@functools.cache
def _insert_statement(dialect: sa.Dialect) -> str:
    """`INSERT INTO messages` in the dialect's positional parameter style."""
    compiled = messages.insert().compile(dialect=dialect)
    if tuple(compiled.positiontup or ()) != _MESSAGE_COLUMNS:
        raise RuntimeError("the messages table's columns changed: update _MESSAGE_COLUMNS")
    return str(compiled)


async def _update_mailbox(
    conn: AsyncConnection, mailbox_id: int, state: SyncState | None, now: int
) -> None:
    count = (
        sa.select(sa.func.count())
        .select_from(messages)
        .where(messages.c.mailbox_id == mailbox_id)
        .scalar_subquery()
    )
    values: dict[str, Any] = {"messages": count}
    if state is not None and state.messages is not None:
        values["messages"] = state.messages  # the server's count (see SyncState)
    if state is not None:
        values.update(
            uid_validity=state.uid_validity,
            uid_next=state.uid_next,
            highest_modseq=state.highest_modseq,
            synced_at=now,
        )
    await conn.execute(mailboxes.update().where(mailboxes.c.id == mailbox_id).values(**values))


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _listing_values(item: ListedMailbox) -> dict[str, Any]:
    return {
        "delimiter": item.info.delimiter,
        "name": item.info.name,
        "parent_path": item.info.parent_path,
        "special_use": item.special_use,
        "special_use_source": item.special_use_source,
        "flags": list(item.info.flags),
        "subscribed": item.info.subscribed,
    }


def _message_row(account: str, record: MessageRecord, now: int) -> tuple[Any, ...]:
    return (
        record.mailbox_id,
        record.uid,
        account,
        record.email_id,
        record.thread_id,
        record.modseq,
        _encode_json(record.flags),
        None if record.labels is None else _encode_json(record.labels),
        record.internal_date,
        record.date,
        record.size,
        record.subject,
        record.from_address,
        record.message_id,
        record.in_reply_to,
        record.references,
        _encode_json(record.envelope or {}),
        None if record.structure is None else _encode_json(record.structure),
        now,
    )


def _message(row: sa.RowMapping) -> MessageRecord:
    labels = row["labels"]
    return MessageRecord(
        mailbox_id=int(row["mailbox_id"]),
        uid=int(row["uid"]),
        flags=tuple(row["flags"] or ()),
        size=int(row["size"]),
        internal_date=row["internal_date"],
        date=row["date"],
        subject=row["subject"],
        message_id=row["message_id"],
        in_reply_to=row["in_reply_to"],
        references=row["references"],
        email_id=row["email_id"],
        thread_id=row["thread_id"],
        modseq=row["modseq"],
        labels=None if labels is None else tuple(labels),
        envelope=row["envelope"] or {},
        structure=row["structure"],
    )


def _mailbox(row: sa.RowMapping) -> MailboxRecord:
    return MailboxRecord(
        id=int(row["id"]),
        account=row["account"],
        path=row["path"],
        delimiter=row["delimiter"],
        name=row["name"],
        parent_path=row["parent_path"],
        special_use=row["special_use"],
        special_use_source=row["special_use_source"],
        flags=tuple(row["flags"] or ()),
        subscribed=bool(row["subscribed"]),
        uid_validity=row["uid_validity"],
        uid_next=row["uid_next"],
        highest_modseq=row["highest_modseq"],
        messages=int(row["messages"]),
        synced_at=row["synced_at"],
    )
