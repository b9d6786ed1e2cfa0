"""Durable jobs: enqueue, claim with per-key ordering and leases, finish, dead letter.

Theory of operation
-------------------
A job is a row of `jobs`. Its life: `waiting` -> (claimed) `active` -> one of
`completed`, `waiting` again (a retry, with `run_at` in the future: reported as
`delayed`), or `failed` (the dead letter, kept until requeued or pruned).
`requeue` brings a failed job back to `waiting` with its attempts reset.

Ordering. Jobs sharing a (queue, ordering_key) run one at a time, in id order:
a job runs only when no job of the same queue and key with a smaller id is still
waiting (due or delayed) or active. Rather than testing that for every candidate
at every claim (which costs a scan of the backlog per claim), the store keeps it
in the rows: of a key's unfinished jobs only the oldest is `waiting` or `active`
(the head), the others are stored as `blocked` (reported as waiting). Whoever
ends a head (complete, dead letter) promotes the key's oldest blocked job in the
same transaction; enqueue stores a job as the head only when its key has none.
A claim is then an index range scan of due `waiting` rows, whatever the backlog.
Jobs without an ordering key are never blocked. Dead letters do not hold back
their key, so one undeliverable event cannot stall an account forever; a
requeued dead letter becomes the head if its key has none, else it is blocked
and, having the oldest id, goes next.

Keys are locked, not queues. On SQLite writers are serialised (`BEGIN
IMMEDIATE`). On PostgreSQL the steps that decide a key's head take a
transaction-scoped advisory lock on (queue, key): enqueue and requeue before
they look at the key, finishing right after its UPDATE and before it promotes.
So an enqueue cannot store its job blocked behind a head whose finisher has
already looked for blocked jobs (it would stay blocked with nobody left to
promote it), and the enqueues of one key get their ids in commit order.
Claims need no such lock: they select due heads
`FOR UPDATE SKIP LOCKED`, so concurrent claimers in other processes skip the rows
another claimer is taking instead of waiting, then mark them `active` with an
UPDATE that re-checks the state, and a row counts as won only if that UPDATE
returned it. (An advisory lock per queue would also serialise claimers, but make
each claimer of a busy queue wait for the others.)

Leases. A claim sets `owner` and `lease_expires`; the owner renews while the
handler runs. An active job whose lease expired (its process died or stalled)
is claimable again; claiming counts an attempt, so a job that kills its process
every time reaches `max_attempts` and is dead-lettered by the next claim instead
of being handed out again. Finishing calls name the owner: a process that lost
its lease cannot record an outcome over the new owner's.

Times are epoch milliseconds from the injected clock, as everywhere in the store.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.store.database import Database
from mailwire.store.schema import jobs, meta, queues
from mailwire.types import Clock, now_ms

#: Attempts before a job is dead-lettered, unless the producer says otherwise.
DEFAULT_MAX_ATTEMPTS = 10
#: Jobs one claim hands out at most (a runner asks for its free slots).
MAX_CLAIM = 100
#: Rows per INSERT statement (well under both drivers' bind-parameter limits).
INSERT_CHUNK = 500
#: Error texts are cut to this many characters before they are stored.
MAX_ERROR_LENGTH = 2000
#: Dead letters one `failed` call returns at most.
MAX_FAILED_PAGE = 500
#: How often claims also look for expired leases, per queue and process (ms of the
#: store's clock): a lease runs for a minute, so a second more costs nothing, and
#: most claims save two statements.
SWEEP_INTERVAL_MS = 1_000
#: Key prefix of producer cursors in `meta`.
CURSOR_PREFIX = "cursor:"
#: First half of the two-part advisory lock keys of (queue, ordering key); the
#: second is a hash of the pair. Two-part keys never collide with one-part ones.
_KEY_LOCK_SPACE = 0x4A0B

_LOCK_KEYS = sa.text(
    "SELECT pg_advisory_xact_lock(:space, lock) FROM unnest(:locks) AS lock"
).bindparams(sa.bindparam("locks", type_=postgresql.ARRAY(sa.Integer)))

#: Longest queue name, ordering key and dedupe key the schema stores.
MAX_QUEUE_NAME = 32
MAX_ORDERING_KEY = 600
MAX_DEDUPE_KEY = 200


class JobState(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    #: Waiting with `run_at` in the future (stored as waiting).
    DELAYED = "delayed"
    COMPLETED = "completed"
    #: The dead letter: no attempt left, or failed for good.
    FAILED = "failed"


#: Stored state of a job behind its key's head (reported as waiting).
_BLOCKED = "blocked"
#: Stored states of a key's head.
_HEAD_STATES = (str(JobState.WAITING), str(JobState.ACTIVE))


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue. `run_at` None means now."""

    queue: str
    payload: dict[str, Any]
    ordering_key: str | None = None
    dedupe_key: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_at: int | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.queue) <= MAX_QUEUE_NAME:
            raise ValueError(f"a queue name is 1 to {MAX_QUEUE_NAME} characters")
        if self.ordering_key is not None and len(self.ordering_key) > MAX_ORDERING_KEY:
            raise ValueError(f"an ordering key is at most {MAX_ORDERING_KEY} characters")
        if self.dedupe_key is not None and len(self.dedupe_key) > MAX_DEDUPE_KEY:
            raise ValueError(f"a dedupe key is at most {MAX_DEDUPE_KEY} characters")
        if self.max_attempts < 1:
            raise ValueError("max_attempts is at least 1")


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job. `attempts_made` counts claims, this one included once claimed."""

    id: int
    queue: str
    ordering_key: str | None
    dedupe_key: str | None
    payload: dict[str, Any]
    attempts_made: int
    max_attempts: int
    run_at: int
    created_at: int
    state: JobState
    #: The latest failure's text (kept after a requeue, cleared by nothing).
    last_error: str | None = None
    updated_at: int = 0
    finished_at: int | None = None
    owner: str | None = None
    lease_expires: int | None = None


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's controls. `concurrency` None: each runner uses its own default."""

    name: str
    paused: bool = False
    concurrency: int | None = None


class JobStore:
    """The `jobs`, `queues` and cursor rows; see the module docstring."""

    def __init__(self, database: Database, *, clock: Clock = now_ms) -> None:
        self._db = database
        self._clock = clock
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        #: When each queue's expired leases were last looked for (store clock, ms).
        self._swept: dict[str, int] = {}

    # ------------------------------------------------------------------ producing

    def subscribe(self, queue: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after each enqueue into `queue` in this process; returns an
        unsubscribe function. Runners use it to start at once instead of at their
        next poll (other processes still find the jobs by polling)."""
        callbacks = self._listeners.setdefault(queue, [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    async def enqueue(
        self, new_jobs: Sequence[NewJob], *, cursor: tuple[str, int] | None = None
    ) -> int:
        """Insert `new_jobs` (a known dedupe key is skipped) and, in the same
        transaction, set the cursor `(name, seq)`; returns how many were inserted."""
        now = self._clock()
        inserted = 0
        keyed = {(job.queue, job.ordering_key) for job in new_jobs if job.ordering_key is not None}
        async with self._db.write() as conn:
            await self._lock(conn, keyed)
            if cursor is not None:
                await _set_cursor(self._db, conn, *cursor, now=now)
            rows = [_new_row(job, now) for job in new_jobs]
            heads: dict[tuple[str, str], int] = {}
            for start in range(0, len(rows), INSERT_CHUNK):
                statement = (
                    self._db.insert(jobs)
                    .values(rows[start : start + INSERT_CHUNK])
                    .on_conflict_do_nothing()
                    .returning(jobs.c.id, jobs.c.queue, jobs.c.ordering_key)
                )
                # RETURNING promises no order: a key's head is its smallest new id.
                for job_id, queue, key in (await conn.execute(statement)).all():
                    inserted += 1
                    if key is not None:
                        heads[(queue, key)] = min(int(job_id), heads.get((queue, key), int(job_id)))
            busy = await _keys_with_head(conn, heads)
            await _make_heads(
                conn, [job_id for pair, job_id in heads.items() if pair not in busy], now
            )
        for queue in {job.queue for job in new_jobs}:
            self._wake(queue)
        return inserted

    async def _lock(self, conn: AsyncConnection, pairs: Iterable[tuple[str, str]]) -> None:
        """On PostgreSQL, lock (queue, key) pairs for this transaction (in one order
        everywhere, so two transactions cannot wait for each other)."""
        locks = sorted({_lock_key(queue, key) for queue, key in pairs})
        if self._db.is_sqlite or not locks:
            return
        # One round trip for a whole batch; unnest yields the sorted array in order.
        await conn.execute(_LOCK_KEYS, {"space": _KEY_LOCK_SPACE, "locks": locks})

    def _wake(self, queue: str) -> None:
        for callback in list(self._listeners.get(queue, ())):
            callback()

    async def cursor(self, name: str) -> int:
        """The position last recorded under `name` by `enqueue`; 0 before the first."""
        statement = sa.select(meta.c.value).where(meta.c.key == CURSOR_PREFIX + name)
        async with self._db.read() as conn:
            value = (await conn.execute(statement)).scalar()
        return int(value) if value is not None else 0

    # ------------------------------------------------------------------ running

    async def claim(self, queue: str, *, owner: str, limit: int, lease_ms: int) -> list[Job]:
        """Mark up to `limit` runnable jobs of `queue` active for `owner`; nothing
        while the queue is paused. Oldest first, at most one per ordering key."""
        limit = min(limit, MAX_CLAIM)
        if limit <= 0:
            return []
        now = self._clock()
        running = ~sa.exists().where(queues.c.name == queue, queues.c.paused.is_(True))
        statements = [
            sa.select(jobs.c.id)
            .where(
                jobs.c.queue == queue,
                jobs.c.state == str(JobState.WAITING),
                jobs.c.run_at <= now,
                running,
            )
            .order_by(jobs.c.run_at)
            .limit(limit)
        ]
        sweep = now - self._swept.get(queue, 0) >= SWEEP_INTERVAL_MS
        if sweep:
            statements.insert(
                0,
                sa.select(jobs.c.id)
                .where(_expired(queue, now), running)
                .order_by(jobs.c.lease_expires)
                .limit(limit),
            )
        async with self._db.write() as conn:
            if sweep:
                await self._bury_exhausted(conn, queue, now)
            candidates: list[int] = []
            for statement in statements:
                locking = (
                    statement if self._db.is_sqlite else statement.with_for_update(skip_locked=True)
                )
                candidates += (await conn.execute(locking)).scalars().all()
            if not candidates:
                claimed = []
            else:
                result = await conn.execute(
                    jobs.update()
                    .where(jobs.c.id.in_(candidates[:limit]), _runnable(now))
                    .values(
                        state=str(JobState.ACTIVE),
                        owner=owner,
                        lease_expires=now + lease_ms,
                        attempts_made=jobs.c.attempts_made + 1,
                        updated_at=now,
                    )
                    .returning(*jobs.c)
                )
                claimed = [_job(row._mapping, now) for row in result.all()]
        if sweep:
            self._swept[queue] = now
        return sorted(claimed, key=lambda job: job.id)

    async def _bury_exhausted(self, conn: AsyncConnection, queue: str, now: int) -> None:
        """Dead-letter expired-lease jobs that used their last attempt (their process
        died or stalled on every try); otherwise the next claim would run them again."""
        buried = await conn.execute(
            jobs.update()
            .where(_expired(queue, now), jobs.c.attempts_made >= jobs.c.max_attempts)
            .values(
                state=str(JobState.FAILED),
                owner=None,
                lease_expires=None,
                finished_at=now,
                updated_at=now,
                last_error="the lease expired on the last attempt (its runner stopped or stalled)",
            )
            .returning(jobs.c.ordering_key)
        )
        keys = sorted({key for key in buried.scalars().all() if key is not None})
        await self._lock(conn, [(queue, key) for key in keys])
        for key in keys:
            await _promote_next(conn, queue, key, now)

    async def renew(self, job_ids: Sequence[int], owner: str, *, lease_ms: int) -> set[int]:
        """Extend `owner`'s leases on `job_ids`; returns the ids it still holds."""
        if not job_ids:
            return set()
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(
                jobs.update()
                .where(_held(job_ids, owner))
                .values(lease_expires=now + lease_ms, updated_at=now)
                .returning(jobs.c.id)
            )
            return {int(job_id) for job_id in result.scalars().all()}

    async def complete(self, job_id: int, owner: str) -> bool:
        """Mark the job done; False when `owner` no longer holds it."""
        now = self._clock()
        return await self._end(job_id, owner, state=JobState.COMPLETED, finished_at=now)

    async def retry_later(self, job_id: int, owner: str, error: str, run_at: int) -> bool:
        """Put the job back to run at `run_at`, recording `error`; False if not held.
        It stays its key's head, so the key's later jobs keep waiting behind it."""
        return await self._give_back(job_id, owner, run_at=run_at, last_error=_cut(error))

    async def dead_letter(self, job_id: int, owner: str, error: str) -> bool:
        """Move the job to the dead letter with `error`; False if not held."""
        now = self._clock()
        return await self._end(
            job_id, owner, state=JobState.FAILED, finished_at=now, last_error=_cut(error)
        )

    async def release(self, job_id: int, owner: str) -> bool:
        """Give a job back untried (its handler was stopped, not failed): waiting, due
        now, the attempt not counted. False if `owner` no longer holds it."""
        attempts = jobs.c.attempts_made - 1
        return await self._give_back(
            job_id,
            owner,
            run_at=self._clock(),
            attempts_made=sa.func.max(attempts, 0)
            if self._db.is_sqlite
            else sa.func.greatest(attempts, 0),
        )

    async def _give_back(self, job_id: int, owner: str, **values: Any) -> bool:
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(
                jobs.update()
                .where(_held([job_id], owner))
                .values(
                    state=str(JobState.WAITING),
                    owner=None,
                    lease_expires=None,
                    updated_at=now,
                    **values,
                )
            )
        return result.rowcount == 1

    async def _end(self, job_id: int, owner: str, *, state: JobState, **values: Any) -> bool:
        """Finish a head for good and promote the next job of its key. The key is
        locked after the head's UPDATE: an enqueue holding the lock first still
        saw the head unfinished and stored its job blocked, which the promotion,
        running after that enqueue committed, then finds."""
        now = self._clock()
        async with self._db.write() as conn:
            found = (
                await conn.execute(
                    jobs.update()
                    .where(_held([job_id], owner))
                    .values(
                        state=str(state), owner=None, lease_expires=None, updated_at=now, **values
                    )
                    .returning(jobs.c.queue, jobs.c.ordering_key)
                )
            ).first()
            if found is None:
                return False
            queue, key = found
            if key is not None:
                await self._lock(conn, [(queue, key)])
                await _promote_next(conn, queue, key, now)
        return True

    # ------------------------------------------------------------------ inspecting

    async def get(self, job_id: int) -> Job | None:
        async with self._db.read() as conn:
            row = (await conn.execute(jobs.select().where(jobs.c.id == job_id))).first()
        return None if row is None else _job(row._mapping, self._clock())

    async def find(self, dedupe_key: str) -> Job | None:
        """The job produced under `dedupe_key`, if it is still stored."""
        async with self._db.read() as conn:
            row = (await conn.execute(jobs.select().where(jobs.c.dedupe_key == dedupe_key))).first()
        return None if row is None else _job(row._mapping, self._clock())

    async def counts(self, queue: str) -> dict[JobState, int]:
        """How many jobs of `queue` are in each state (every state present)."""
        now = self._clock()
        reported = sa.case(
            (
                sa.and_(jobs.c.state == str(JobState.WAITING), jobs.c.run_at > now),
                str(JobState.DELAYED),
            ),
            (jobs.c.state == _BLOCKED, str(JobState.WAITING)),
            else_=jobs.c.state,
        ).label("reported")
        statement = (
            sa.select(reported, sa.func.count()).where(jobs.c.queue == queue).group_by(reported)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        found = {JobState(state): 0 for state in JobState}
        for state, count in rows:
            found[JobState(state)] += int(count)
        return found

    async def failed(self, queue: str, limit: int = 100, after_id: int = 0) -> list[Job]:
        """Dead letters of `queue` with an id above `after_id`, oldest first."""
        limit = max(1, min(limit, MAX_FAILED_PAGE))
        statement = (
            jobs.select()
            .where(
                jobs.c.queue == queue,
                jobs.c.state == str(JobState.FAILED),
                jobs.c.id > after_id,
            )
            .order_by(jobs.c.id)
            .limit(limit)
        )
        now = self._clock()
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        return [_job(row._mapping, now) for row in rows]

    async def requeue(self, job_id: int) -> bool:
        """A dead letter back to its queue, due now, attempts reset: its key's head if
        the key has none, else next in line. False if unknown or not a dead letter."""
        now = self._clock()
        failed = sa.and_(jobs.c.id == job_id, jobs.c.state == str(JobState.FAILED))
        async with self._db.write() as conn:
            found = (
                await conn.execute(sa.select(jobs.c.queue, jobs.c.ordering_key).where(failed))
            ).first()
            if found is None:
                return False
            queue, key = found
            state = str(JobState.WAITING)
            if key is not None:
                await self._lock(conn, [(queue, key)])
                if await _keys_with_head(conn, {(queue, key): job_id}):
                    state = _BLOCKED
            result = await conn.execute(
                jobs.update()
                .where(failed)
                .values(state=state, attempts_made=0, run_at=now, finished_at=None, updated_at=now)
            )
            if result.rowcount != 1:
                return False
        self._wake(queue)
        return True

    async def prune(
        self,
        queue: str,
        older_than: int,
        *,
        keep: int | None = None,
        failed_older_than: int | None = None,
    ) -> int:
        """Delete completed jobs of `queue` finished before `older_than` and, when
        `keep` is set, all but the newest `keep` completed ones; dead letters only
        when `failed_older_than` is given. Returns how many rows went."""
        done = sa.and_(jobs.c.queue == queue, jobs.c.state == str(JobState.COMPLETED))
        conditions: list[sa.ColumnElement[bool]] = [sa.and_(done, jobs.c.finished_at < older_than)]
        if failed_older_than is not None:
            conditions.append(
                sa.and_(
                    jobs.c.queue == queue,
                    jobs.c.state == str(JobState.FAILED),
                    jobs.c.finished_at < failed_older_than,
                )
            )
        async with self._db.write() as conn:
            if keep is not None:
                boundary = (
                    await conn.execute(
                        sa.select(jobs.c.id)
                        .where(done)
                        .order_by(jobs.c.id.desc())
                        .offset(max(0, keep))
                        .limit(1)
                    )
                ).scalar()
                if boundary is not None:
                    conditions.append(sa.and_(done, jobs.c.id <= boundary))
            result = await conn.execute(jobs.delete().where(sa.or_(*conditions)))
        return result.rowcount

    # ------------------------------------------------------------------ queue controls

    async def queue_settings(self, name: str) -> QueueSettings:
        """The queue's controls; defaults (running, runner's concurrency) without a row."""
        async with self._db.read() as conn:
            return await _queue_row(conn, name)

    async def set_queue(
        self, name: str, *, paused: bool | None = None, concurrency: int | None = None
    ) -> QueueSettings:
        """Change what is given, keep the rest; returns the queue's controls after."""
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency is at least 1")
        now = self._clock()
        async with self._db.write() as conn:
            current = await _queue_row(conn, name)
            wanted = QueueSettings(
                name=name,
                paused=current.paused if paused is None else paused,
                concurrency=current.concurrency if concurrency is None else concurrency,
            )
            row = {
                "paused": wanted.paused,
                # 0 in the row means "no value": the runner's own default applies.
                "concurrency": wanted.concurrency or 0,
                "updated_at": now,
            }
            insert = self._db.insert(queues).values(name=name, **row)
            await conn.execute(insert.on_conflict_do_update(index_elements=["name"], set_=row))
        return wanted


# ---------------------------------------------------------------------- statements


def _runnable(now: int) -> sa.ColumnElement[bool]:
    """Due and waiting, or active with an expired lease."""
    return sa.or_(
        sa.and_(jobs.c.state == str(JobState.WAITING), jobs.c.run_at <= now),
        sa.and_(jobs.c.state == str(JobState.ACTIVE), jobs.c.lease_expires < now),
    )


def _held(job_ids: Sequence[int], owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id.in_(list(job_ids)),
        jobs.c.owner == owner,
        jobs.c.state == str(JobState.ACTIVE),
    )


async def _keys_with_head(
    conn: AsyncConnection, pairs: Mapping[tuple[str, str], int]
) -> set[tuple[str, str]]:
    """Which of the (queue, key) pairs have a waiting or active job other than the
    one named beside the pair (a job just inserted or being requeued)."""
    busy: set[tuple[str, str]] = set()
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for (queue, key), job_id in pairs.items():
        by_queue.setdefault(queue, []).append((key, job_id))
    for queue, entries in by_queue.items():
        for start in range(0, len(entries), INSERT_CHUNK):
            chunk = entries[start : start + INSERT_CHUNK]
            statement = sa.select(jobs.c.ordering_key).where(
                jobs.c.queue == queue,
                jobs.c.state.in_(_HEAD_STATES),
                jobs.c.ordering_key.in_([key for key, _ in chunk]),
                jobs.c.id.not_in([job_id for _, job_id in chunk]),
            )
            busy.update((queue, key) for key in (await conn.execute(statement)).scalars().all())
    return busy


async def _make_heads(conn: AsyncConnection, job_ids: Sequence[int], now: int) -> None:
    for start in range(0, len(job_ids), INSERT_CHUNK):
        await conn.execute(
            jobs.update()
            .where(jobs.c.id.in_(job_ids[start : start + INSERT_CHUNK]))
            .where(jobs.c.state == _BLOCKED)
            .values(state=str(JobState.WAITING), updated_at=now)
        )


async def _promote_next(conn: AsyncConnection, queue: str, key: str, now: int) -> None:
    """Make the oldest blocked job of (queue, key) its head (the caller ended the
    previous head, holding the key's lock)."""
    following = (
        sa.select(jobs.c.id)
        .where(jobs.c.queue == queue, jobs.c.ordering_key == key, jobs.c.state == _BLOCKED)
        .order_by(jobs.c.id)
        .limit(1)
        .scalar_subquery()
    )
    await conn.execute(
        jobs.update()
        .where(jobs.c.id == following, jobs.c.state == _BLOCKED)
        .values(state=str(JobState.WAITING), updated_at=now)
    )


def _expired(queue: str, now: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.queue == queue,
        jobs.c.state == str(JobState.ACTIVE),
        jobs.c.lease_expires < now,
    )


async def _queue_row(conn: AsyncConnection, name: str) -> QueueSettings:
    statement = sa.select(queues.c.paused, queues.c.concurrency).where(queues.c.name == name)
    row = (await conn.execute(statement)).first()
    if row is None:
        return QueueSettings(name=name)
    return QueueSettings(name=name, paused=bool(row.paused), concurrency=row.concurrency or None)


async def _set_cursor(
    database: Database, conn: AsyncConnection, name: str, seq: int, *, now: int
) -> None:
    """Move the cursor forward to `seq`, never back: a slower producer finishing an
    older batch (a second relay) must not rewind it past work already done."""
    row = {"value": str(int(seq)), "updated_at": now}
    insert = database.insert(meta).values(key=CURSOR_PREFIX + name, **row)
    forward = sa.cast(meta.c.value, sa.BigInteger) < int(seq)
    await conn.execute(
        insert.on_conflict_do_update(index_elements=["key"], set_=row, where=forward)
    )


def _new_row(job: NewJob, now: int) -> dict[str, Any]:
    return {
        "queue": job.queue,
        "ordering_key": job.ordering_key,
        "dedupe_key": job.dedupe_key,
        # A keyed job starts blocked; enqueue makes it the head if its key has none.
        "state": str(JobState.WAITING) if job.ordering_key is None else _BLOCKED,
        "payload": job.payload,
        "attempts_made": 0,
        "max_attempts": job.max_attempts,
        "run_at": now if job.run_at is None else job.run_at,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "owner": None,
        "lease_expires": None,
        "last_error": None,
    }


def _lock_key(queue: str, key: str) -> int:
    """A signed 32-bit hash of the pair (a collision only makes two keys share a lock)."""
    return zlib.crc32(f"{queue}\0{key}".encode()) - 2**31


def _cut(error: str) -> str:
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def _job(row: sa.RowMapping, now: int) -> Job:
    state = JobState.WAITING if row["state"] == _BLOCKED else JobState(row["state"])
    if row["state"] == str(JobState.WAITING) and int(row["run_at"]) > now:
        state = JobState.DELAYED
    error = row["last_error"]
    return Job(
        id=int(row["id"]),
        queue=row["queue"],
        ordering_key=row["ordering_key"],
        dedupe_key=row["dedupe_key"],
        payload=dict(row["payload"]),
        attempts_made=int(row["attempts_made"]),
        max_attempts=int(row["max_attempts"]),
        run_at=int(row["run_at"]),
        created_at=int(row["created_at"]),
        state=state,
        last_error=None if error is None else str(error),
        updated_at=int(row["updated_at"]),
        finished_at=None if row["finished_at"] is None else int(row["finished_at"]),
        owner=row["owner"],
        lease_expires=None if row["lease_expires"] is None else int(row["lease_expires"]),
    )
