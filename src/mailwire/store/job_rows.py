"""Job rows: the values the job store hands out and the statements it runs.

Split from `store.jobs` (which explains the rules these statements keep).
Every statement function takes a synchronous connection: the job store runs
each transaction as one function through `Database.run`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mailwire.store.database import Database
from mailwire.store.schema import jobs, meta, queues

#: Attempts before a job is dead-lettered, unless the producer says otherwise.
DEFAULT_MAX_ATTEMPTS = 10
#: Jobs one claim hands out at most (a runner asks for its free slots).
MAX_CLAIM = 100
#: Ids per IN list (well under both drivers' bind-parameter limits).
IN_CHUNK = 500
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
KEY_LOCK_SPACE = 0x4A0B

LOCK_KEYS = sa.text(
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
BLOCKED = "blocked"
#: Stored states of a key's head.
HEAD_STATES = (str(JobState.WAITING), str(JobState.ACTIVE))


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
class Exchange:
    """What one `JobStore.exchange` did: the jobs it completed, the jobs it claimed."""

    completed: frozenset[int]
    claimed: list[Job]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's controls. `concurrency` None: each runner uses its own default."""

    name: str
    paused: bool = False
    concurrency: int | None = None


# ------------------------------------------------------------ statements (run inside Database.run)


# The statements of the hot path are built once, with bound parameters: building a
# Core statement costs about 0.4 ms of CPU, five times what running it costs.

_ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
_now = sa.bindparam("now", type_=sa.BigInteger)
_queue: sa.BindParameter[str] = sa.bindparam("queue_name", type_=sa.String)
_owner: sa.BindParameter[str] = sa.bindparam("owner_name", type_=sa.String)

#: Due and waiting, or active with an expired lease.
_RUNNABLE = sa.or_(
    sa.and_(jobs.c.state == str(JobState.WAITING), jobs.c.run_at <= _now),
    sa.and_(jobs.c.state == str(JobState.ACTIVE), jobs.c.lease_expires < _now),
)
_HELD = sa.and_(jobs.c.id.in_(_ids), jobs.c.owner == _owner, jobs.c.state == str(JobState.ACTIVE))
_EXPIRED = sa.and_(
    jobs.c.queue == _queue, jobs.c.state == str(JobState.ACTIVE), jobs.c.lease_expires < _now
)
_NOT_PAUSED = ~sa.exists().where(queues.c.name == _queue, queues.c.paused.is_(True))

_DUE = (
    sa.select(jobs.c.id)
    .where(
        jobs.c.queue == _queue,
        jobs.c.state == str(JobState.WAITING),
        jobs.c.run_at <= _now,
        _NOT_PAUSED,
    )
    .order_by(jobs.c.run_at)
    .limit(sa.bindparam("limit"))
)
_LAPSED = (
    sa.select(jobs.c.id)
    .where(_EXPIRED, _NOT_PAUSED)
    .order_by(jobs.c.lease_expires)
    .limit(sa.bindparam("limit"))
)
#: Claimers in other processes skip the rows another claimer is taking (PostgreSQL).
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)
_LAPSED_SKIP_LOCKED = _LAPSED.with_for_update(skip_locked=True)
_TAKE = (
    jobs.update()
    .where(jobs.c.id.in_(_ids), _RUNNABLE)
    .values(
        state=str(JobState.ACTIVE),
        owner=_owner,
        lease_expires=sa.bindparam("lease_until", type_=sa.BigInteger),
        attempts_made=jobs.c.attempts_made + 1,
        updated_at=_now,
    )
    .returning(*jobs.c)
)
_BURY = (
    jobs.update()
    .where(_EXPIRED, jobs.c.attempts_made >= jobs.c.max_attempts)
    .values(
        state=str(JobState.FAILED),
        owner=None,
        lease_expires=None,
        finished_at=_now,
        updated_at=_now,
        last_error="the lease expired on the last attempt (its runner stopped or stalled)",
    )
    .returning(jobs.c.ordering_key)
)
_ENDED = (jobs.c.id, jobs.c.queue, jobs.c.ordering_key)
_COMPLETE = (
    jobs.update()
    .where(_HELD)
    .values(
        state=str(JobState.COMPLETED),
        owner=None,
        lease_expires=None,
        updated_at=_now,
        finished_at=_now,
    )
    .returning(*_ENDED)
)
_FAIL = (
    jobs.update()
    .where(_HELD)
    .values(
        state=str(JobState.FAILED),
        owner=None,
        lease_expires=None,
        updated_at=_now,
        finished_at=_now,
        last_error=sa.bindparam("error", type_=jobs.c.last_error.type),
    )
    .returning(*_ENDED)
)
_PROMOTE = (
    jobs.update()
    .where(
        jobs.c.id.in_(
            sa.select(sa.func.min(jobs.c.id))
            .where(
                jobs.c.queue == _queue,
                jobs.c.ordering_key.in_(sa.bindparam("keys", expanding=True)),
                jobs.c.state == BLOCKED,
            )
            .group_by(jobs.c.ordering_key)
        ),
        jobs.c.state == BLOCKED,
    )
    .values(state=str(JobState.WAITING), updated_at=_now)
)
_RENEW = (
    jobs.update()
    .where(_HELD)
    .values(lease_expires=sa.bindparam("lease_until", type_=sa.BigInteger), updated_at=_now)
    .returning(jobs.c.id)
)
_QUEUE_ROW = sa.select(queues.c.paused, queues.c.concurrency).where(queues.c.name == _queue)


def claim_jobs(
    conn: sa.Connection,
    queue: str,
    owner: str,
    *,
    limit: int,
    lease_ms: int,
    now: int,
    sweep: bool,
    is_sqlite: bool,
) -> list[Job]:
    """Mark up to `limit` runnable jobs of `queue` active for `owner` (nothing while
    paused); with `sweep`, also bury and then take over jobs whose lease expired."""
    if limit <= 0:
        return []
    candidates: list[int] = []
    params = {"queue_name": queue, "now": now, "limit": limit}
    if sweep:
        bury_exhausted(conn, queue, now, is_sqlite=is_sqlite)
        lapsed = _LAPSED if is_sqlite else _LAPSED_SKIP_LOCKED
        candidates += conn.execute(lapsed, params).scalars().all()
    due = _DUE if is_sqlite else _DUE_SKIP_LOCKED
    candidates += conn.execute(due, params).scalars().all()
    if not candidates:
        return []
    taken = conn.execute(
        _TAKE,
        {"ids": candidates[:limit], "now": now, "owner_name": owner, "lease_until": now + lease_ms},
    )
    claimed = [job_from_row(row._mapping, now) for row in taken.all()]
    return sorted(claimed, key=lambda job: job.id)


def bury_exhausted(conn: sa.Connection, queue: str, now: int, *, is_sqlite: bool) -> None:
    """Dead-letter expired-lease jobs that used their last attempt (their process
    died or stalled on every try); otherwise the next claim would run them again."""
    buried = conn.execute(_BURY, {"queue_name": queue, "now": now})
    keys = {(queue, key) for key in buried.scalars().all() if key is not None}
    lock_keys(conn, keys, is_sqlite=is_sqlite)
    promote_next(conn, keys, now)


def finish_jobs(
    conn: sa.Connection,
    job_ids: Sequence[int],
    owner: str,
    *,
    now: int,
    error: str | None = None,
) -> list[tuple[int, str, str | None]]:
    """Complete (or, with `error`, dead-letter) the jobs `owner` holds; returns
    (id, queue, ordering key) of each one ended. The caller promotes their keys."""
    if not job_ids:
        return []
    params: dict[str, Any] = {"ids": list(job_ids), "owner_name": owner, "now": now}
    if error is None:
        ended = conn.execute(_COMPLETE, params).all()
    else:
        ended = conn.execute(_FAIL, {**params, "error": cut_error(error)}).all()
    return [(int(job_id), str(queue), key) for job_id, queue, key in ended]


def renew_leases(
    conn: sa.Connection, job_ids: Sequence[int], owner: str, *, now: int, lease_ms: int
) -> set[int]:
    params = {"ids": list(job_ids), "owner_name": owner, "now": now, "lease_until": now + lease_ms}
    return {int(job_id) for job_id in conn.execute(_RENEW, params).scalars().all()}


def held_by(job_ids: Sequence[int], owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id.in_(list(job_ids)),
        jobs.c.owner == owner,
        jobs.c.state == str(JobState.ACTIVE),
    )


def ordering_keys(new_jobs: Iterable[NewJob]) -> set[tuple[str, str]]:
    """The (queue, key) pairs whose locks an insert of `new_jobs` takes."""
    return {(job.queue, job.ordering_key) for job in new_jobs if job.ordering_key is not None}


def insert_jobs(
    conn: sa.Connection, database: Database, new_jobs: Sequence[NewJob], *, now: int
) -> list[int]:
    """Insert `new_jobs` (a known dedupe key is skipped), making each new key's first
    job its head; returns the new ids. The caller holds the keys' locks
    (`lock_keys(ordering_keys(new_jobs))`) and wakes the runners after commit."""
    if not new_jobs:
        return []
    # One statement with the rows as parameters: compiled once and cached, sent in
    # pages by the driver (a multi-VALUES statement would be compiled anew for every
    # batch, which cost more than the inserts).
    statement = (
        database.insert(jobs)
        .on_conflict_do_nothing()
        .returning(jobs.c.id, jobs.c.queue, jobs.c.ordering_key)
    )
    inserted = conn.execute(statement, [new_row(job, now) for job in new_jobs]).all()
    # RETURNING promises no order: a key's head is its smallest new id.
    heads: dict[tuple[str, str], int] = {}
    for job_id, queue, key in inserted:
        if key is not None:
            heads[(queue, key)] = min(int(job_id), heads.get((queue, key), int(job_id)))
    busy = keys_with_head(conn, heads)
    make_heads(conn, [job_id for pair, job_id in heads.items() if pair not in busy], now)
    return [int(job_id) for job_id, _, _ in inserted]


def keys_with_head(
    conn: sa.Connection, pairs: Mapping[tuple[str, str], int]
) -> set[tuple[str, str]]:
    """Which of the (queue, key) pairs have a waiting or active job other than the
    one named beside the pair (a job just inserted or being requeued)."""
    busy: set[tuple[str, str]] = set()
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for (queue, key), job_id in pairs.items():
        by_queue.setdefault(queue, []).append((key, job_id))
    for queue, entries in by_queue.items():
        for start in range(0, len(entries), IN_CHUNK):
            chunk = entries[start : start + IN_CHUNK]
            statement = sa.select(jobs.c.ordering_key).where(
                jobs.c.queue == queue,
                jobs.c.state.in_(HEAD_STATES),
                jobs.c.ordering_key.in_([key for key, _ in chunk]),
                jobs.c.id.not_in([job_id for _, job_id in chunk]),
            )
            busy.update((queue, key) for key in (conn.execute(statement)).scalars().all())
    return busy


def make_heads(conn: sa.Connection, job_ids: Sequence[int], now: int) -> None:
    for start in range(0, len(job_ids), IN_CHUNK):
        conn.execute(
            jobs.update()
            .where(jobs.c.id.in_(job_ids[start : start + IN_CHUNK]))
            .where(jobs.c.state == BLOCKED)
            .values(state=str(JobState.WAITING), updated_at=now)
        )


def promote_next(conn: sa.Connection, pairs: Iterable[tuple[str, str]], now: int) -> None:
    """Make the oldest blocked job of each (queue, key) its head (the caller ended the
    previous heads and, on PostgreSQL, holds the keys' locks)."""
    by_queue: dict[str, list[str]] = {}
    for queue, key in pairs:
        by_queue.setdefault(queue, []).append(key)
    for queue, keys in by_queue.items():
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            conn.execute(_PROMOTE, {"queue_name": queue, "keys": chunk, "now": now})


def queue_row(conn: sa.Connection, name: str) -> QueueSettings:
    row = conn.execute(_QUEUE_ROW, {"queue_name": name}).first()
    if row is None:
        return QueueSettings(name=name)
    return QueueSettings(name=name, paused=bool(row.paused), concurrency=row.concurrency or None)


def set_cursor(database: Database, conn: sa.Connection, name: str, seq: int, *, now: int) -> None:
    """Move the cursor forward to `seq`, never back: a slower producer finishing an
    older batch (a second relay) must not rewind it past work already done."""
    row = {"value": str(int(seq)), "updated_at": now}
    insert = database.insert(meta).values(key=CURSOR_PREFIX + name, **row)
    forward = sa.cast(meta.c.value, sa.BigInteger) < int(seq)
    conn.execute(insert.on_conflict_do_update(index_elements=["key"], set_=row, where=forward))


def new_row(job: NewJob, now: int) -> dict[str, Any]:
    return {
        "queue": job.queue,
        "ordering_key": job.ordering_key,
        "dedupe_key": job.dedupe_key,
        # A keyed job starts blocked; enqueue makes it the head if its key has none.
        "state": str(JobState.WAITING) if job.ordering_key is None else BLOCKED,
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


def lock_key(queue: str, key: str) -> int:
    """A signed 32-bit hash of the pair (a collision only makes two keys share a lock)."""
    return zlib.crc32(f"{queue}\0{key}".encode()) - 2**31


def cut_error(error: str) -> str:
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def job_from_row(row: sa.RowMapping, now: int) -> Job:
    """A stored row as a `Job` (blocked reads as waiting, a future run_at as delayed)."""
    state = JobState.WAITING if row["state"] == BLOCKED else JobState(row["state"])
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


def lock_keys(conn: sa.Connection, pairs: Iterable[tuple[str, str]], *, is_sqlite: bool) -> None:
    """On PostgreSQL, lock (queue, key) pairs for this transaction, in one order
    everywhere so that two transactions cannot wait for each other. (SQLite
    serialises writers anyway.)"""
    locks = sorted({lock_key(queue, key) for queue, key in pairs})
    if is_sqlite or not locks:
        return
    # One round trip for a whole batch; unnest yields the sorted array in order.
    conn.execute(LOCK_KEYS, {"space": KEY_LOCK_SPACE, "locks": locks})
