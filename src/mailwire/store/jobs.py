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

Batching. `exchange` completes a runner's finished jobs and claims its next
ones in one transaction; every transaction runs as one synchronous function
through `Database.run` (one hand-off to SQLite's thread, or one pooled
PostgreSQL connection), since the fixed cost of a transaction, not the
statements, is what limits a queue of small jobs. The statements and row
values live in `store.job_rows`.

Times are epoch milliseconds from the injected clock, as everywhere in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from mailwire.store import job_rows as rows
from mailwire.store.database import Database
from mailwire.store.job_rows import (
    BLOCKED,
    CURSOR_PREFIX,
    DEFAULT_MAX_ATTEMPTS,
    MAX_CLAIM,
    MAX_FAILED_PAGE,
    SWEEP_INTERVAL_MS,
    Exchange,
    Job,
    JobState,
    NewJob,
    QueueSettings,
)
from mailwire.store.schema import jobs, meta, queues
from mailwire.types import Clock, now_ms

__all__ = [
    "CURSOR_PREFIX",
    "DEFAULT_MAX_ATTEMPTS",
    "Exchange",
    "Job",
    "JobState",
    "JobStore",
    "NewJob",
    "QueueSettings",
]


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
        keyed = rows.ordering_keys(new_jobs)
        database = self._db

        def work(conn: sa.Connection) -> int:
            self._lock(conn, keyed)
            if cursor is not None:
                rows.set_cursor(database, conn, *cursor, now=now)
            return len(rows.insert_jobs(conn, database, new_jobs, now=now))

        inserted = await database.run(work, write=True)
        for queue in {job.queue for job in new_jobs}:
            self._wake(queue)
        return inserted

    def notify(self, queue: str) -> None:
        """Wake this process's runners of `queue` (after jobs were inserted by another
        store's transaction, with `job_rows.insert_jobs`)."""
        self._wake(queue)

    def _lock(self, conn: sa.Connection, pairs: set[tuple[str, str]]) -> None:
        rows.lock_keys(conn, pairs, is_sqlite=self._db.is_sqlite)

    def _wake(self, queue: str) -> None:
        for callback in list(self._listeners.get(queue, ())):
            callback()

    async def cursor(self, name: str) -> int:
        """The position last recorded under `name` by `enqueue`; 0 before the first."""
        statement = sa.select(meta.c.value).where(meta.c.key == CURSOR_PREFIX + name)
        value = await self._db.run(lambda conn: conn.execute(statement).scalar(), write=False)
        return int(value) if value is not None else 0

    # ------------------------------------------------------------------ running

    async def claim(self, queue: str, *, owner: str, limit: int, lease_ms: int) -> list[Job]:
        """Mark up to `limit` runnable jobs of `queue` active for `owner`; nothing
        while the queue is paused. Oldest first, at most one per ordering key."""
        exchanged = await self.exchange(queue, owner=owner, done=(), limit=limit, lease_ms=lease_ms)
        return exchanged.claimed

    async def exchange(
        self, queue: str, *, owner: str, done: Sequence[int], limit: int, lease_ms: int
    ) -> Exchange:
        """Complete `done` (jobs `owner` finished) and claim up to `limit` new ones, in
        one transaction: a runner's whole round trip to the store. Completing first
        lets the claim take the jobs the completions promoted."""
        limit = min(limit, MAX_CLAIM)
        if not done and limit <= 0:
            return Exchange(frozenset(), [])
        now = self._clock()
        sweep = limit > 0 and now - self._swept.get(queue, 0) >= SWEEP_INTERVAL_MS

        def work(conn: sa.Connection) -> Exchange:
            completed = self._finish(conn, done, owner, now=now)
            claimed = rows.claim_jobs(
                conn,
                queue,
                owner,
                limit=limit,
                lease_ms=lease_ms,
                now=now,
                sweep=sweep,
                is_sqlite=self._db.is_sqlite,
            )
            return Exchange(frozenset(completed), claimed)

        exchanged = await self._db.run(work, write=True)
        if sweep:
            self._swept[queue] = now
        return exchanged

    async def renew(self, job_ids: Sequence[int], owner: str, *, lease_ms: int) -> set[int]:
        """Extend `owner`'s leases on `job_ids`; returns the ids it still holds."""
        if not job_ids:
            return set()
        now = self._clock()
        return await self._db.run(
            lambda conn: rows.renew_leases(conn, job_ids, owner, now=now, lease_ms=lease_ms),
            write=True,
        )

    async def complete(self, job_id: int, owner: str) -> bool:
        """Mark the job done; False when `owner` no longer holds it."""
        now = self._clock()
        ended = await self._db.run(
            lambda conn: self._finish(conn, [job_id], owner, now=now), write=True
        )
        return job_id in ended

    async def retry_later(self, job_id: int, owner: str, error: str, run_at: int) -> bool:
        """Put the job back to run at `run_at`, recording `error`; False if not held.
        It stays its key's head, so the key's later jobs keep waiting behind it."""
        return await self._give_back(job_id, owner, run_at=run_at, last_error=rows.cut_error(error))

    async def dead_letter(self, job_id: int, owner: str, error: str) -> bool:
        """Move the job to the dead letter with `error`; False if not held."""
        now = self._clock()
        ended = await self._db.run(
            lambda conn: self._finish(conn, [job_id], owner, now=now, error=error), write=True
        )
        return job_id in ended

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
        statement = (
            jobs.update()
            .where(rows.held_by([job_id], owner))
            .values(
                state=str(JobState.WAITING),
                owner=None,
                lease_expires=None,
                updated_at=now,
                **values,
            )
        )
        changed: int = await self._db.run(lambda conn: conn.execute(statement).rowcount, write=True)
        return changed == 1

    def _finish(
        self,
        conn: sa.Connection,
        job_ids: Sequence[int],
        owner: str,
        *,
        now: int,
        error: str | None = None,
    ) -> set[int]:
        """End heads for good (completed, or dead letters with `error`) and promote the
        next job of each of their keys; returns the ids `owner` still held (the others
        are left alone). The keys are locked after the heads' UPDATE: an enqueue
        holding a lock first still saw its head unfinished and stored its job
        blocked, which the promotion, running after that enqueue committed, finds."""
        ended = rows.finish_jobs(conn, job_ids, owner, now=now, error=error)
        keys = {(queue, key) for _, queue, key in ended if key is not None}
        self._lock(conn, keys)
        rows.promote_next(conn, keys, now)
        return {job_id for job_id, _, _ in ended}

    # ------------------------------------------------------------------ inspecting

    async def get(self, job_id: int) -> Job | None:
        return await self._one(jobs.select().where(jobs.c.id == job_id))

    async def find(self, dedupe_key: str) -> Job | None:
        """The job produced under `dedupe_key`, if it is still stored."""
        return await self._one(jobs.select().where(jobs.c.dedupe_key == dedupe_key))

    async def _one(self, statement: sa.Select[Any]) -> Job | None:
        row = await self._db.run(lambda conn: conn.execute(statement).first(), write=False)
        return None if row is None else rows.job_from_row(row._mapping, self._clock())

    async def counts(self, queue: str) -> dict[JobState, int]:
        """How many jobs of `queue` are in each state (every state present)."""
        now = self._clock()
        reported = sa.case(
            (
                sa.and_(jobs.c.state == str(JobState.WAITING), jobs.c.run_at > now),
                str(JobState.DELAYED),
            ),
            (jobs.c.state == BLOCKED, str(JobState.WAITING)),
            else_=jobs.c.state,
        ).label("reported")
        statement = (
            sa.select(reported, sa.func.count()).where(jobs.c.queue == queue).group_by(reported)
        )
        found_rows = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        found = {JobState(state): 0 for state in JobState}
        for state, count in found_rows:
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
        found = await self._db.run(lambda conn: conn.execute(statement).all(), write=False)
        return [rows.job_from_row(row._mapping, now) for row in found]

    async def requeue(self, job_id: int) -> bool:
        """A dead letter back to its queue, due now, attempts reset: its key's head if
        the key has none, else next in line. False if unknown or not a dead letter."""
        now = self._clock()
        failed = sa.and_(jobs.c.id == job_id, jobs.c.state == str(JobState.FAILED))

        def work(conn: sa.Connection) -> str | None:
            found = conn.execute(sa.select(jobs.c.queue, jobs.c.ordering_key).where(failed)).first()
            if found is None:
                return None
            queue, key = found
            state = str(JobState.WAITING)
            if key is not None:
                self._lock(conn, {(queue, key)})
                if rows.keys_with_head(conn, {(queue, key): job_id}):
                    state = BLOCKED
            result = conn.execute(
                jobs.update()
                .where(failed)
                .values(state=state, attempts_made=0, run_at=now, finished_at=None, updated_at=now)
            )
            return str(queue) if result.rowcount == 1 else None

        queue = await self._db.run(work, write=True)
        if queue is None:
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

        def work(conn: sa.Connection) -> int:
            if keep is not None:
                boundary = conn.execute(
                    sa.select(jobs.c.id)
                    .where(done)
                    .order_by(jobs.c.id.desc())
                    .offset(max(0, keep))
                    .limit(1)
                ).scalar()
                if boundary is not None:
                    conditions.append(sa.and_(done, jobs.c.id <= boundary))
            deleted: int = conn.execute(jobs.delete().where(sa.or_(*conditions))).rowcount
            return deleted

        return await self._db.run(work, write=True)

    # ------------------------------------------------------------------ queue controls

    async def queue_settings(self, name: str) -> QueueSettings:
        """The queue's controls; defaults (running, runner's concurrency) without a row."""
        return await self._db.run(lambda conn: rows.queue_row(conn, name), write=False)

    async def set_queue(
        self, name: str, *, paused: bool | None = None, concurrency: int | None = None
    ) -> QueueSettings:
        """Change what is given, keep the rest; returns the queue's controls after."""
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency is at least 1")
        now = self._clock()
        database = self._db

        def work(conn: sa.Connection) -> QueueSettings:
            current = rows.queue_row(conn, name)
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
            insert = database.insert(queues).values(name=name, **row)
            conn.execute(insert.on_conflict_do_update(index_elements=["name"], set_=row))
            return wanted

        return await database.run(work, write=True)
