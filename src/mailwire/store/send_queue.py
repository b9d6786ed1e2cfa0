"""The send queue: outgoing messages with their `submit` jobs, state and idempotency.

Theory of operation
-------------------
`enqueue` writes the entry and its job in one transaction, so a message is
never queued without a job to send it, nor a job left without its message.
An Idempotency-Key is unique per account (a unique index): a second submit
with the same key finds the first entry instead of making a new one (the
insert skips on conflict, then the entry is read), so two racing submits
with one key queue one message. The caller compares the stored request hash
to tell a replay from a different request reusing the key.

Each state change that the outside world hears about writes its event to the
outbox in the same transaction (`messageSent` with `sent`, `messageFailed`
with `failed`, `messageDeliveryError` with a failed attempt): a crash never
leaves a send recorded without its event, nor an event for a send that was
not recorded.

Every transaction runs through `Database.run` (one hand-off to the store's
thread on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.events import Event
from mailwire.domain.sending import (
    PENDING_STATES,
    SUBMIT_QUEUE,
    Envelope,
    NewSend,
    QueuedSend,
    SendState,
)
from mailwire.store import job_rows
from mailwire.store.database import Database
from mailwire.store.jobs import JobStore, NewJob
from mailwire.store.outbox import insert_events
from mailwire.store.schema import jobs, send_queue
from mailwire.types import Clock, now_ms

#: Entries one page of `GET /v1/outbox` may hold.
MAX_PAGE_SIZE = 1000
_PENDING = [str(state) for state in PENDING_STATES]


@dataclass(frozen=True, slots=True)
class Enqueued:
    """`entry` is the stored entry; `created` False when the Idempotency-Key found
    an earlier one (nothing was queued)."""

    entry: QueuedSend
    created: bool


@dataclass(frozen=True, slots=True)
class Attempts:
    """The job behind an entry: attempts made and when the next one runs (None: no job
    waiting, e.g. running or finished)."""

    made: int
    next_run: int | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    total: int
    entries: list[tuple[QueuedSend, Attempts]]


class SendQueueStore:
    def __init__(self, database: Database, jobs: JobStore, *, clock: Clock = now_ms) -> None:
        self._db = database
        self._jobs = jobs
        self._clock = clock

    async def enqueue(self, new: NewSend, *, answer: Mapping[str, Any]) -> Enqueued:
        """Store the entry and its job (due at `send_at`); `answer` is what the submit
        returns, kept for a repeated Idempotency-Key."""
        now = self._clock()
        database = self._db
        row = {
            "queue_id": new.queue_id,
            "account": new.account,
            "message_id": new.message_id,
            "subject": new.subject,
            "envelope": new.envelope.as_dict(),
            "raw": new.raw,
            "options": dict(new.options),
            "gateway": new.gateway,
            "idempotency_key": new.idempotency_key,
            "request_hash": new.request_hash,
            "answer": dict(answer),
            "state": str(SendState.QUEUED),
            "progress": {"status": "queued"},
            "max_attempts": new.max_attempts,
            "send_at": new.send_at,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        job = NewJob(
            SUBMIT_QUEUE,
            {"queueId": new.queue_id, "account": new.account},
            dedupe_key=f"submit:{new.queue_id}",
            max_attempts=new.max_attempts,
            run_at=new.send_at,
        )

        def work(conn: sa.Connection) -> Enqueued:
            if new.idempotency_key is not None:
                inserted = conn.execute(
                    database.insert(send_queue)
                    .values(row)
                    .on_conflict_do_nothing(index_elements=["account", "idempotency_key"])
                ).rowcount
                if inserted != 1:
                    earlier = _select_one(
                        conn,
                        send_queue.c.account == new.account,
                        send_queue.c.idempotency_key == new.idempotency_key,
                    )
                    if earlier is not None:
                        return Enqueued(earlier, created=False)
                    raise RuntimeError("the idempotency conflict has no entry")
            else:
                conn.execute(send_queue.insert().values(row))
            job_rows.insert_jobs(conn, database, [job], now=now)
            stored = _select_one(conn, send_queue.c.queue_id == new.queue_id)
            assert stored is not None
            return Enqueued(stored, created=True)

        enqueued = await database.run(work, write=True)
        if enqueued.created:
            self._jobs.notify(SUBMIT_QUEUE)
        return enqueued

    async def get(self, queue_id: str) -> QueuedSend | None:
        return await self._db.run(
            lambda conn: _select_one(conn, send_queue.c.queue_id == queue_id), write=False
        )

    async def find_by_key(self, account: str, idempotency_key: str | None) -> QueuedSend | None:
        """The entry an earlier submit of `account` made with this Idempotency-Key."""
        if idempotency_key is None:
            return None
        return await self._db.run(
            lambda conn: _select_one(
                conn,
                send_queue.c.account == account,
                send_queue.c.idempotency_key == idempotency_key,
            ),
            write=False,
        )

    async def raw(self, queue_id: str) -> bytes | None:
        """The built message of an entry."""
        statement = sa.select(send_queue.c.raw).where(send_queue.c.queue_id == queue_id)
        value = await self._db.run(lambda conn: conn.execute(statement).scalar(), write=False)
        return None if value is None else bytes(value)

    async def pending(
        self, *, account: str | None = None, page: int = 0, page_size: int = 20
    ) -> QueuePage:
        """Entries still waiting for delivery, oldest first, with their jobs' attempts."""
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        conditions: list[sa.ColumnElement[bool]] = [send_queue.c.state.in_(_PENDING)]
        if account is not None:
            conditions.append(send_queue.c.account == account)
        listing = (
            sa.select(*_COLUMNS, jobs.c.attempts_made, jobs.c.run_at, jobs.c.state)
            .select_from(
                send_queue.outerjoin(
                    jobs, jobs.c.dedupe_key == sa.literal("submit:") + send_queue.c.queue_id
                )
            )
            .where(*conditions)
            .order_by(send_queue.c.created_at, send_queue.c.queue_id)
            .offset(page * page_size)
            .limit(page_size)
        )
        counting = sa.select(sa.func.count()).select_from(send_queue).where(*conditions)

        def work(conn: sa.Connection) -> QueuePage:
            total = int(conn.execute(counting).scalar() or 0)
            entries = []
            for row in conn.execute(listing).all():
                mapping = row._mapping
                made = int(mapping["attempts_made"] or 0)
                waiting = mapping["state"] in ("waiting", "blocked")
                entries.append(
                    (
                        _entry(mapping),
                        Attempts(made, int(mapping["run_at"]) if waiting else None),
                    )
                )
            return QueuePage(total, entries)

        return await self._db.run(work, write=False)

    async def attempts(self, queue_id: str) -> Attempts:
        statement = sa.select(jobs.c.attempts_made, jobs.c.run_at, jobs.c.state).where(
            jobs.c.dedupe_key == f"submit:{queue_id}"
        )
        row = await self._db.run(lambda conn: conn.execute(statement).first(), write=False)
        if row is None:
            return Attempts(0, None)
        waiting = row.state in ("waiting", "blocked")
        return Attempts(int(row.attempts_made), int(row.run_at) if waiting else None)

    async def cancel(self, queue_id: str) -> bool:
        """Take a message out of the queue before it is sent: its job is removed and the
        entry marked cancelled. False when unknown, already finished, or being sent
        right now (a send in progress cannot be called back)."""
        now = self._clock()

        def work(conn: sa.Connection) -> bool:
            changed = conn.execute(
                send_queue.update()
                .where(
                    send_queue.c.queue_id == queue_id,
                    send_queue.c.state == str(SendState.QUEUED),
                )
                .values(
                    state=str(SendState.CANCELLED),
                    progress={"status": "cancelled"},
                    updated_at=now,
                    finished_at=now,
                )
            ).rowcount
            if changed != 1:
                return False
            conn.execute(
                jobs.delete().where(
                    jobs.c.dedupe_key == f"submit:{queue_id}", jobs.c.state != "active"
                )
            )
            return True

        return await self._db.run(work, write=True)

    async def start_attempt(self, queue_id: str) -> QueuedSend | None:
        """Mark the entry `sending` (an attempt talks to the server); None when it is no
        longer queued (cancelled, or finished by an earlier attempt)."""
        now = self._clock()

        def work(conn: sa.Connection) -> QueuedSend | None:
            changed = conn.execute(
                send_queue.update()
                .where(send_queue.c.queue_id == queue_id, send_queue.c.state.in_(_PENDING))
                .values(
                    state=str(SendState.SENDING),
                    progress={"status": "processing"},
                    updated_at=now,
                )
            ).rowcount
            if changed != 1:
                return None
            return _select_one(conn, send_queue.c.queue_id == queue_id)

        return await self._db.run(work, write=True)

    async def finish(
        self,
        queue_id: str,
        state: SendState,
        *,
        progress: Mapping[str, Any],
        events: Iterable[Event] = (),
    ) -> bool:
        """End the entry (sent, failed) with its events, in one transaction; the raw
        message is dropped (the answer is kept for idempotent replays)."""
        now = self._clock()
        return await self._update(
            queue_id,
            {
                "state": str(state),
                "progress": dict(progress),
                "raw": b"",
                "updated_at": now,
                "finished_at": now,
            },
            events,
            now,
        )

    async def requeue(
        self, queue_id: str, *, progress: Mapping[str, Any], events: Iterable[Event] = ()
    ) -> bool:
        """Back to `queued` after a failed attempt that will be retried, with its event."""
        now = self._clock()
        return await self._update(
            queue_id,
            {"state": str(SendState.QUEUED), "progress": dict(progress), "updated_at": now},
            events,
            now,
        )

    async def _update(
        self, queue_id: str, values: Mapping[str, Any], events: Iterable[Event], now: int
    ) -> bool:
        batch = list(events)

        def work(conn: sa.Connection) -> bool:
            changed = conn.execute(
                send_queue.update()
                .where(send_queue.c.queue_id == queue_id, send_queue.c.state.in_(_PENDING))
                .values(dict(values))
            ).rowcount
            if changed == 1:
                insert_events(conn, batch, now=now)
            return bool(changed == 1)

        return await self._db.run(work, write=True)

    async def prune(self, *, older_than: int) -> int:
        """Forget finished entries (sent, failed, cancelled) finished before `older_than`."""
        statement = send_queue.delete().where(
            send_queue.c.state.not_in(_PENDING), send_queue.c.finished_at < older_than
        )

        def work(conn: sa.Connection) -> int:
            deleted: int = conn.execute(statement).rowcount
            return deleted

        return await self._db.run(work, write=True)


_COLUMNS = [column for column in send_queue.c if column.name != "raw"]


async def delete_account_sends(conn: AsyncConnection, account: str) -> int:
    """Remove an account's queued messages and their jobs inside the caller's transaction
    (`AccountStore.delete`): a removed account sends nothing more."""
    keys = sa.select(sa.literal("submit:") + send_queue.c.queue_id).where(
        send_queue.c.account == account
    )
    await conn.execute(jobs.delete().where(jobs.c.dedupe_key.in_(keys)))
    result = await conn.execute(send_queue.delete().where(send_queue.c.account == account))
    return int(result.rowcount)


def _select_one(conn: sa.Connection, *conditions: sa.ColumnElement[bool]) -> QueuedSend | None:
    row = conn.execute(sa.select(*_COLUMNS).where(*conditions)).first()
    return None if row is None else _entry(row._mapping)


def _entry(row: sa.RowMapping) -> QueuedSend:
    return QueuedSend(
        queue_id=row["queue_id"],
        account=row["account"],
        message_id=row["message_id"],
        subject=row["subject"],
        envelope=Envelope.from_dict(row["envelope"] or {}),
        gateway=row["gateway"],
        options=dict(row["options"] or {}),
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        answer=row["answer"],
        state=SendState(row["state"]),
        progress=row["progress"],
        max_attempts=int(row["max_attempts"]),
        send_at=int(row["send_at"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        finished_at=None if row["finished_at"] is None else int(row["finished_at"]),
    )
