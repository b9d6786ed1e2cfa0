"""Bodies of the queue routes (`/v1/settings/queue/{queue}`, its dead letters) and `/v1/stats`.

The reference's fields come first and keep its names; Mailwire's additions
(`concurrency`, `failed`, `completed`, the dead-letter listing) are marked in
their descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from mailwire.api.models.common import RequestModel, ResponseModel, iso_time
from mailwire.jobs.model import JobState
from mailwire.jobs.runner import MAX_CONCURRENCY
from mailwire.services.webhook_queue import FailedJob, QueueInfo, QueueName, Stats

#: Dead letters one page lists at most.
MAX_FAILED_PAGE = 250


class QueueJobs(ResponseModel):
    active: int = Field(description="Jobs running now")
    delayed: int = Field(description="Jobs waiting for a later time (a retry's backoff)")
    paused: int = Field(
        0, description="Always 0: jobs of a paused queue are counted as waiting (as the reference)"
    )
    waiting: int = Field(description="Jobs due, waiting for a free slot or their turn")
    failed: int = Field(description="Mailwire: dead letters (no attempt left)")
    completed: int = Field(description="Mailwire: finished jobs still kept for inspection")

    @classmethod
    def of(cls, counts: Mapping[JobState, int]) -> QueueJobs:
        return cls(
            active=counts.get(JobState.ACTIVE, 0),
            delayed=counts.get(JobState.DELAYED, 0),
            waiting=counts.get(JobState.WAITING, 0),
            failed=counts.get(JobState.FAILED, 0),
            completed=counts.get(JobState.COMPLETED, 0),
        )


class QueueResponse(ResponseModel):
    queue: QueueName
    jobs: QueueJobs
    paused: bool = Field(description="Whether the queue is paused")
    concurrency: int | None = Field(
        None,
        description="Mailwire: jobs each process runs at once; null: the process default",
    )

    @classmethod
    def of(cls, info: QueueInfo) -> QueueResponse:
        return cls(
            queue=info.name,
            jobs=QueueJobs.of(info.counts),
            paused=info.paused,
            concurrency=info.concurrency,
        )


class QueueUpdate(RequestModel):
    paused: bool | None = Field(None, description="Pause (true) or resume (false) the queue")
    concurrency: int | None = Field(
        None,
        ge=1,
        le=MAX_CONCURRENCY,
        description="Mailwire: jobs each process runs at once for this queue",
    )


class QueueUpdateResponse(ResponseModel):
    queue: QueueName
    paused: bool
    concurrency: int | None = Field(None, description="Mailwire: as in the queue's GET answer")


class FailedJobEntry(ResponseModel):
    id: int = Field(description="The job's id, for the retry route")
    attempts: int = Field(description="Attempts made")
    maxAttempts: int
    lastError: str | None = Field(description="The failure of the last attempt")
    created: str = Field(description="When the job was queued")
    failed: str | None = Field(description="When the job became a dead letter")
    summary: dict[str, str] = Field(
        description="Identifiers from the job (event, eventId, account, route); never its "
        "content, URL or headers"
    )

    @classmethod
    def of(cls, job: FailedJob) -> FailedJobEntry:
        return cls(
            id=job.id,
            attempts=job.attempts,
            maxAttempts=job.max_attempts,
            lastError=job.last_error,
            created=iso_time(job.created_at),
            failed=None if job.failed_at is None else iso_time(job.failed_at),
            summary=dict(job.summary),
        )


class FailedJobsResponse(ResponseModel):
    queue: QueueName
    jobs: list[FailedJobEntry]
    next: int | None = Field(description="Pass as `after` for the next page; null on the last")


class RetryJobResponse(ResponseModel):
    queue: QueueName
    job: int
    requeued: bool


class StatsResponse(ResponseModel):
    version: str = Field(description="Mailwire version")
    arch: str = Field(description="CPU architecture of the host")
    accounts: int = Field(description="Registered accounts")
    connections: dict[str, int] = Field(description="Accounts per connection state")
    queues: dict[str, QueueJobs] = Field(description="Job counts of each queue")
    counters: dict[str, int] = Field(
        description="Event counters of the reference; Mailwire does not keep them yet (empty)"
    )

    @classmethod
    def of(cls, stats: Stats) -> StatsResponse:
        return cls(
            version=stats.version,
            arch=stats.arch,
            accounts=stats.accounts,
            connections=dict(stats.connections),
            queues={str(name): QueueJobs.of(counts) for name, counts in stats.queues.items()},
            counters={},
        )
