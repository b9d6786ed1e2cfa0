"""What a job handler is given and what it answers.

A handler receives a claimed `Job` and returns one outcome: `Done()` when the
work is finished, `Retry(error)` when it may succeed later (the runner picks
the delay and dead-letters the job after its last attempt), or `Fail(error)`
when retrying cannot help (dead letter at once). An exception raised by a
handler counts as `Retry` with the exception's text, so the text should be
written for operators and never carry a secret: it is stored and shown by
the queue API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailwire.store.jobs import DEFAULT_MAX_ATTEMPTS, Job, JobState, NewJob, QueueSettings

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Done",
    "Fail",
    "Handler",
    "Job",
    "JobState",
    "NewJob",
    "Outcome",
    "QueueSettings",
    "Retry",
]


@dataclass(frozen=True, slots=True)
class Done:
    """The job is finished."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again later. `delay_ms` replaces the runner's backoff for this retry
    (e.g. a receiver's `Retry-After`); the attempt budget applies all the same."""

    error: str
    delay_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """Retrying cannot help: dead-letter the job now."""

    error: str


Outcome = Done | Retry | Fail
Handler = Callable[[Job], Awaitable[Outcome]]
