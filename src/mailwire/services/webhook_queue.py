"""Queue visibility and control: `/v1/settings/queue/{queue}`, the dead letters, `/v1/stats`.

The queue names are the reference's (`notify` carries webhooks, `submit` outgoing
mail, `documents` a feature Mailwire does not have, accepted so that clients
listing every queue keep working). A queue without jobs or controls simply
reports zeros and its defaults.

Dead letters are shown with a summary of their payload, never the payload
itself: a webhook job carries the target URL (which may hold credentials) and
custom headers (often tokens). Only the plain identifiers in `SUMMARY_FIELDS`
are shown.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mailwire import __version__
from mailwire.domain.accounts import AccountState
from mailwire.errors import NotFoundError
from mailwire.store.jobs import Job, JobState, QueueSettings
from mailwire.store.store import Store


class QueueName(StrEnum):
    NOTIFY = "notify"
    SUBMIT = "submit"
    DOCUMENTS = "documents"


#: Payload fields shown in a dead letter's summary: identifiers, never content.
SUMMARY_FIELDS = ("event", "eventId", "account", "path", "messageId")
#: Longest summary value shown (characters).
MAX_SUMMARY_VALUE = 256


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: QueueName
    paused: bool
    #: None: each process runs its default number of jobs at once.
    concurrency: int | None
    counts: Mapping[JobState, int]


@dataclass(frozen=True, slots=True)
class FailedJob:
    id: int
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: int
    failed_at: int | None
    summary: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Stats:
    version: str
    arch: str
    accounts: int
    connections: Mapping[str, int]
    queues: Mapping[QueueName, Mapping[JobState, int]]


class QueueService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def info(self, queue: QueueName) -> QueueInfo:
        settings = await self._store.jobs.queue_settings(queue)
        counts = await self._store.jobs.counts(queue)
        return _info(queue, settings, counts)

    async def update(
        self, queue: QueueName, *, paused: bool | None = None, concurrency: int | None = None
    ) -> QueueInfo:
        """Pause or resume, and set how many jobs each process runs at once; every
        process follows within its poll interval."""
        settings = await self._store.jobs.set_queue(queue, paused=paused, concurrency=concurrency)
        counts = await self._store.jobs.counts(queue)
        return _info(queue, settings, counts)

    async def failed(
        self, queue: QueueName, *, limit: int, after: int = 0
    ) -> tuple[list[FailedJob], int | None]:
        """One page of dead letters, oldest first, and the `after` of the next page."""
        found = await self._store.jobs.failed(queue, limit=limit + 1, after_id=after)
        page = [_failed(job) for job in found[:limit]]
        following = page[-1].id if len(found) > limit and page else None
        return page, following

    async def retry(self, queue: QueueName, job_id: int) -> None:
        """Send a dead letter back to its queue, with a fresh attempt budget."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.queue != queue or job.state is not JobState.FAILED:
            raise NotFoundError("No failed job has this id in this queue", code="JobNotFound")
        if not await self._store.jobs.requeue(job_id):
            # Requeued by someone else between the two steps: it is no longer failed.
            raise NotFoundError("No failed job has this id in this queue", code="JobNotFound")

    async def stats(self) -> Stats:
        queues = {name: await self._store.jobs.counts(name) for name in QueueName}
        connections: dict[str, int] = {}
        total = 0
        for state in AccountState:
            page = await self._store.accounts.list(page=0, page_size=1, state=state)
            connections[str(state)] = page.total
            total += page.total
        return Stats(
            version=__version__,
            arch=platform.machine(),
            accounts=total,
            connections=connections,
            queues=queues,
        )


def _info(queue: QueueName, settings: QueueSettings, counts: Mapping[JobState, int]) -> QueueInfo:
    return QueueInfo(
        name=queue, paused=settings.paused, concurrency=settings.concurrency, counts=counts
    )


def _failed(job: Job) -> FailedJob:
    return FailedJob(
        id=job.id,
        attempts=job.attempts_made,
        max_attempts=job.max_attempts,
        last_error=job.last_error,
        created_at=job.created_at,
        failed_at=job.finished_at,
        summary=summarise(job.payload),
    )


def summarise(payload: Mapping[str, Any]) -> dict[str, str]:
    """The identifiers of a job's payload (see `SUMMARY_FIELDS`), and a route's id."""
    summary = {
        key: str(payload[key])[:MAX_SUMMARY_VALUE]
        for key in SUMMARY_FIELDS
        if isinstance(payload.get(key), str | int)
    }
    route = payload.get("route")
    if isinstance(route, Mapping) and isinstance(route.get("id"), str | int):
        summary["route"] = str(route["id"])[:MAX_SUMMARY_VALUE]
    return summary
