"""The event outbox: events appended with the change they report, read back in order.

Writers call `append_events` with the connection of the transaction that
records the change (an index update, a state change), so the event exists if
and only if the change was committed. Readers (the change stream, the webhook
relay) remember the highest `seq` they handled and ask for what follows.

`seq` order is commit order on SQLite (one writer at a time). On PostgreSQL
two transactions may commit out of `seq` order; readers therefore stay
`REORDER_WINDOW_MS` behind the newest row unless every earlier `seq` is
present (see `OutboxStore.read_after`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.events import Event, EventName, StoredEvent
from mailwire.store.database import Database
from mailwire.store.schema import events as events_table
from mailwire.types import Clock, now_ms

#: How many events one read returns at most.
MAX_READ_BATCH = 1000
#: How long a gap in `seq` may be an uncommitted transaction rather than a rollback.
REORDER_WINDOW_MS = 5_000


async def append_events(conn: AsyncConnection, events: Iterable[Event], *, now: int) -> int:
    """Insert `events` within the caller's transaction; returns how many."""
    rows = event_rows(events, now=now)
    if rows:
        await conn.execute(events_table.insert(), rows)
    return len(rows)


def insert_events(conn: sa.Connection, events: Iterable[Event], *, now: int) -> int:
    """`append_events` for a synchronous transaction (`Database.run`)."""
    rows = event_rows(events, now=now)
    if rows:
        conn.execute(events_table.insert(), rows)
    return len(rows)


def event_rows(events: Iterable[Event], *, now: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "account": event.account,
            "event": str(event.event),
            "path": event.path,
            "special_use": event.special_use,
            "data": dict(event.data),
            "created_at": now,
        }
        for event in events
    ]


class OutboxStore:
    def __init__(self, database: Database, *, clock: Clock = now_ms) -> None:
        self._db = database
        self._clock = clock

    async def append(self, events: Iterable[Event]) -> int:
        async with self._db.write() as conn:
            return await append_events(conn, events, now=self._clock())

    async def last_seq(self) -> int:
        async with self._db.read() as conn:
            value = (await conn.execute(sa.select(sa.func.max(events_table.c.seq)))).scalar()
        return int(value or 0)

    async def read_after(
        self, seq: int, *, limit: int = MAX_READ_BATCH, account: str | None = None
    ) -> list[StoredEvent]:
        """Events with a `seq` above `seq`, oldest first.

        On PostgreSQL the batch stops before the first gap younger than
        `REORDER_WINDOW_MS`: a missing `seq` may belong to a transaction that
        has not committed yet, and skipping past it would lose that event.
        """
        limit = max(1, min(limit, MAX_READ_BATCH))
        statement = (
            events_table.select()
            .where(events_table.c.seq > seq)
            .order_by(events_table.c.seq)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        found = [_from_row(row._mapping) for row in rows]
        if self._db.is_sqlite:
            result = found
        else:
            result = _until_young_gap(found, seq, self._clock() - REORDER_WINDOW_MS)
        if account is not None:
            result = [event for event in result if event.account == account]
        return result

    async def prune(self, *, older_than: int) -> int:
        """Delete events created before `older_than` (epoch ms); returns how many."""
        async with self._db.write() as conn:
            result = await conn.execute(
                events_table.delete().where(events_table.c.created_at < older_than)
            )
        return result.rowcount


def _until_young_gap(found: list[StoredEvent], after: int, settled: int) -> list[StoredEvent]:
    expected = after + 1
    for index, event in enumerate(found):
        if event.seq != expected and event.created_at > settled:
            return found[:index]
        expected = event.seq + 1
    return found


def _from_row(row: sa.RowMapping) -> StoredEvent:
    return StoredEvent(
        seq=int(row["seq"]),
        event_id=row["event_id"],
        account=row["account"],
        event=EventName(row["event"]),
        data=row["data"],
        path=row["path"],
        special_use=row["special_use"],
        created_at=int(row["created_at"]),
    )
