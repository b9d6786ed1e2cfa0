"""Queues: `GET/PUT /v1/settings/queue/{queue}` and `GET /v1/stats`, as the reference, plus
Mailwire's dead-letter routes.

Additions to the reference (all admin-only, like the queue settings):
- `concurrency` in the queue's GET answer and PUT body: jobs each process runs
  at once for the queue;
- `failed` and `completed` counts beside the reference's job counts;
- `GET /v1/settings/queue/{queue}/failed`: the dead letters, oldest first,
  paged with `after`;
- `POST /v1/settings/queue/{queue}/failed/{job}/retry`: send one dead letter
  back to its queue with a fresh attempt budget (404 when the job is not a
  dead letter of that queue).

A queue name outside the reference's list is refused as invalid input (400),
as the reference's enum does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.models.queues import (
    MAX_FAILED_PAGE,
    FailedJobEntry,
    FailedJobsResponse,
    QueueResponse,
    QueueUpdate,
    QueueUpdateResponse,
    RetryJobResponse,
    StatsResponse,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.services.webhook_queue import QueueName

router = APIRouter(route_class=MailwireRoute)

QueuePath = Annotated[QueueName, Path(description="Queue ID")]
_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.get(
    "/v1/settings/queue/{queue}",
    operation_id="getV1SettingsQueueQueue",
    summary="Show queue information",
    description="Job counts of the queue, whether it is paused and its concurrency.",
    response_model=QueueResponse,
    responses=error_responses(*STANDARD_ERRORS),
    tags=["Settings"],
    openapi_extra=operation(Group.ADMIN, Action.READ),
)
async def show_queue(queue: QueuePath, svc: Svc) -> QueueResponse:
    return QueueResponse.of(await svc.queues.info(queue))


@router.put(
    "/v1/settings/queue/{queue}",
    operation_id="putV1SettingsQueueQueue",
    summary="Set queue settings",
    description=(
        "Pause or resume the queue (every process stops or resumes taking jobs within "
        "its poll interval; running jobs finish) and, a Mailwire addition, set its concurrency."
    ),
    response_model=QueueUpdateResponse,
    responses=error_responses(*STANDARD_ERRORS, 413),
    tags=["Settings"],
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def update_queue(queue: QueuePath, body: QueueUpdate, svc: Svc) -> QueueUpdateResponse:
    info = await svc.queues.update(queue, paused=body.paused, concurrency=body.concurrency)
    return QueueUpdateResponse(queue=info.name, paused=info.paused, concurrency=info.concurrency)


@router.get(
    "/v1/settings/queue/{queue}/failed",
    operation_id="getV1SettingsQueueQueueFailed",
    summary="List failed jobs",
    description=(
        "Mailwire addition. Jobs that used every attempt (or failed for good), oldest "
        "first, with their last error and a summary of identifiers; never their content."
    ),
    response_model=FailedJobsResponse,
    responses=error_responses(*STANDARD_ERRORS),
    tags=["Settings"],
    openapi_extra=operation(Group.ADMIN, Action.READ),
)
async def list_failed(
    queue: QueuePath,
    svc: Svc,
    after: Annotated[
        int, Query(ge=0, description="List jobs with an id above this (the previous `next`)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FAILED_PAGE, description="Jobs per page")] = 50,
) -> FailedJobsResponse:
    jobs, following = await svc.queues.failed(queue, limit=limit, after=after)
    return FailedJobsResponse(
        queue=queue, jobs=[FailedJobEntry.of(job) for job in jobs], next=following
    )


@router.post(
    "/v1/settings/queue/{queue}/failed/{job}/retry",
    operation_id="postV1SettingsQueueQueueFailedJobRetry",
    summary="Retry a failed job",
    description=(
        "Mailwire addition. Sends the dead letter back to its queue with a fresh attempt "
        "budget; it runs before later jobs of the same account that have not started."
    ),
    response_model=RetryJobResponse,
    responses=_WITH_404,
    tags=["Settings"],
    openapi_extra=operation(Group.ADMIN, Action.WRITE),
)
async def retry_failed(
    queue: QueuePath,
    job: Annotated[int, Path(ge=1, description="The failed job's id")],
    svc: Svc,
) -> RetryJobResponse:
    await svc.queues.retry(queue, job)
    return RetryJobResponse(queue=queue, job=job, requeued=True)


@router.get(
    "/v1/stats",
    operation_id="getV1Stats",
    summary="Return server stats",
    description="Version, accounts per connection state and the job counts of every queue.",
    response_model=StatsResponse,
    responses=error_responses(*STANDARD_ERRORS),
    tags=["Stats"],
    openapi_extra=operation(Group.DIAGNOSTICS, Action.READ),
)
async def stats(
    svc: Svc,
    seconds: Annotated[
        int,
        Query(ge=0, le=604_800, description="Window of the counters (accepted; no counters yet)"),
    ] = 3600,
) -> StatsResponse:
    return StatsResponse.of(await svc.queues.stats())
