"""The job runner: claims a queue's jobs, runs the handler, records the outcome.

Theory of operation
-------------------
One `JobRunner` per queue per process. Its loop reads the queue's controls
(`queues` row: paused, concurrency; read again at most once a poll interval),
then makes one round trip to the store (`JobStore.exchange`): it completes the
jobs whose handlers finished since the last round and claims as many jobs as it
has free slots, in one transaction, and starts a handler task for each; then it
sleeps until the poll interval passes, `notify()` is called (the store calls it
after an enqueue or requeue in this process), or a handler finishes. Other
processes find new jobs by polling, so a pause set through any node stops
claiming everywhere within one poll interval; the claim itself also refuses
while the queue is paused.

Batching is the point: a transaction costs about a millisecond of CPU on
either database whatever it holds, so handlers that finish while a round is
in flight are completed together by the next one, with the claims that take
their place (group commit). A job whose handler said `Done` stays active in
the store until that round commits; if the process dies in between, the lease
expires and the job runs again, the same at-least-once rule as below.

Claims are leases (`lease_ms`). A renewal task extends the leases of the jobs
in flight every third of a lease; a job whose lease could not be renewed was
taken over by another process (ours stalled past the lease), so its handler is
cancelled and its outcome never recorded. A handler that runs longer than
`job_timeout` is cancelled and the attempt counts as a retry.

Outcomes: `Done` completes the job; `Retry` (or an exception) puts it back with
an exponential delay, `backoff_base_ms * 2**(attempt-1)` scaled by a jitter
factor drawn from [0.8, 1.0] and capped at `backoff_max_ms`, or dead-letters it
when the attempt was its last (`max_attempts`, 10 by default); `Fail`
dead-letters it at once.

Stopping. `stop()` ends claiming, lets running handlers finish for up to
`stop_timeout`, then cancels the rest. A handler cancelled on stop (or when
`run()` itself is cancelled) gives its job back with `release`: due at once, the
attempt not counted. That is safe because the job was never recorded as done:
at worst its work is repeated (jobs are at-least-once; webhook receivers
deduplicate by event id), and it is not held back for a whole lease. If the
release cannot be written (the store is gone) the lease simply expires.

Concurrency. `DEFAULT_CONCURRENCY` (4) jobs per process unless the queue's row
says otherwise. EmailEngine runs one webhook at a time per process by default;
Mailwire keeps per-account order in the store (one job per ordering key at a
time), so running a few at once is safe and stops one slow receiver from
delaying every other account's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from mailwire.errors import StoreError
from mailwire.jobs.model import Done, Fail, Handler, Job, Outcome, QueueSettings, Retry
from mailwire.logs import get_logger
from mailwire.store.jobs import JobStore
from mailwire.types import Clock, now_ms

log = get_logger(__name__)

#: Jobs one process runs at once for a queue whose row sets no concurrency.
DEFAULT_CONCURRENCY = 4
#: Most jobs one process runs at once for one queue, whatever the row says.
MAX_CONCURRENCY = 100
#: How often the runner looks for jobs enqueued by other processes (seconds).
POLL_INTERVAL_S = 0.25
#: How long a claim lasts without renewal (ms); renewed every third of it.
LEASE_MS = 60_000
#: First retry delay (ms); doubles with every attempt.
BACKOFF_BASE_MS = 5_000
#: Longest retry delay (ms).
BACKOFF_MAX_MS = 3_600_000
#: The jitter factor is drawn from [JITTER_LOW, 1.0].
JITTER_LOW = 0.8
#: How long `stop()` lets running handlers finish before cancelling them (seconds).
STOP_TIMEOUT_S = 10.0
#: Completed jobs are kept this long (ms) and at most this many per queue.
KEEP_COMPLETED_MS = 3_600_000
KEEP_COMPLETED = 1_000
#: How often completed jobs are pruned (seconds).
PRUNE_INTERVAL_S = 60.0

#: Draws a float in [0, 1); injected so tests can fix the jitter.
Random = Callable[[], float]


def retry_delay_ms(
    attempt: int,
    *,
    base_ms: int = BACKOFF_BASE_MS,
    max_ms: int = BACKOFF_MAX_MS,
    rng: Random = random.random,
) -> int:
    """The delay before retrying after failed attempt number `attempt` (1-based)."""
    exponent = min(max(attempt, 1) - 1, 40)
    ceiling = min(max_ms, base_ms * 2**exponent)
    return int(ceiling * (JITTER_LOW + (1 - JITTER_LOW) * rng()))


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """Every knob of a runner; tests pass short times."""

    lease_ms: int = LEASE_MS
    backoff_base_ms: int = BACKOFF_BASE_MS
    backoff_max_ms: int = BACKOFF_MAX_MS
    #: Longest one attempt may run (seconds); None: only the lease bounds it.
    job_timeout: float | None = None
    stop_timeout: float = STOP_TIMEOUT_S
    keep_completed_ms: int = KEEP_COMPLETED_MS
    keep_completed: int = KEEP_COMPLETED
    prune_interval: float = PRUNE_INTERVAL_S


class JobRunner:
    """Runs `handler` on the jobs of `queue`; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        queue: str,
        handler: Handler,
        *,
        owner: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll_interval: float = POLL_INTERVAL_S,
        options: RunnerOptions | None = None,
        clock: Clock = now_ms,
        rng: Random = random.random,
    ) -> None:
        self.store = store
        self.queue = queue
        self.handler = handler
        self.owner = owner
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.options = options or RunnerOptions()
        self._clock = clock
        self._rng = rng
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._lost: set[int] = set()
        #: Jobs whose handler said Done, to be completed by the next round.
        self._done: list[int] = []
        self._controls: QueueSettings | None = None
        self._controls_at = 0.0
        self._pruned_at = 0.0
        #: Rounds of the claim loop so far (tests wait on it instead of on time).
        self.rounds = 0

    @property
    def running(self) -> int:
        """How many jobs this runner has in flight."""
        return len(self._running)

    def notify(self) -> None:
        """Look for jobs now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; `run()` returns once running jobs finished or were released."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until `stop()` or cancellation."""
        unsubscribe = self.store.subscribe(self.queue, self.notify)
        log.info("jobs.runner_started", queue=self.queue, owner=self.owner)
        try:
            async with asyncio.TaskGroup() as group:
                renewing = group.create_task(self._renew_loop(), name=f"jobs:{self.queue}:renew")
                await self._claim_loop(group)
                await self._drain()
                renewing.cancel()
        finally:
            unsubscribe()
            await self._complete_rest()
            log.info("jobs.runner_stopped", queue=self.queue, owner=self.owner)

    # ------------------------------------------------------------------ claiming

    async def _claim_loop(self, group: asyncio.TaskGroup) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._claim(group)
                await self._maybe_prune()
            except StoreError as error:
                log.warning("jobs.claim_failed", queue=self.queue, error=str(error))
            except Exception:  # e.g. a deadlock victim: the next round tries again
                log.exception("jobs.claim_crashed", queue=self.queue)
            self.rounds += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()

    async def _claim(self, group: asyncio.TaskGroup) -> None:
        """One round: complete what finished, claim for the free slots."""
        controls = await self._queue_controls()
        limit = min(controls.concurrency or self.concurrency, MAX_CONCURRENCY)
        free = 0 if controls.paused else limit - len(self._running)
        done, self._done = self._done, []
        if not done and free <= 0:
            return
        try:
            exchanged = await self.store.exchange(
                self.queue, owner=self.owner, done=done, limit=free, lease_ms=self.options.lease_ms
            )
        except BaseException:
            self._done[:0] = done  # not recorded: the next round tries again
            raise
        for job_id in done:
            if job_id not in exchanged.completed:
                log.warning("jobs.outcome_after_lease_lost", queue=self.queue, job=job_id)
        for job in exchanged.claimed:
            self._running[job.id] = group.create_task(
                self._attempt(job), name=f"jobs:{self.queue}:{job.id}"
            )

    async def _queue_controls(self) -> QueueSettings:
        """The queue's row, read at most once a poll interval (each read is a transaction)."""
        loop_now = asyncio.get_running_loop().time()
        if self._controls is None or loop_now - self._controls_at >= self.poll_interval:
            self._controls = await self.store.queue_settings(self.queue)
            self._controls_at = loop_now
        return self._controls

    async def _complete_rest(self) -> None:
        """On the way out: record the Done outcomes no round took yet (best-effort and
        bounded; if it fails the leases expire and those jobs run again)."""
        if not self._done:
            return
        done, self._done = self._done, []
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(self.options.stop_timeout):
                await self.store.exchange(
                    self.queue, owner=self.owner, done=done, limit=0, lease_ms=0
                )

    async def _maybe_prune(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._pruned_at < self.options.prune_interval:
            return
        self._pruned_at = loop_now
        await self.store.prune(
            self.queue,
            older_than=self._clock() - self.options.keep_completed_ms,
            keep=self.options.keep_completed,
        )

    async def _drain(self) -> None:
        """After `stop()`: let handlers finish for a while, then cancel (and release) them."""
        tasks = list(self._running.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.options.stop_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.info("jobs.released_on_stop", queue=self.queue, count=len(pending))

    # ------------------------------------------------------------------ leases

    async def _renew_loop(self) -> None:
        interval = self.options.lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            held = list(self._running)
            if not held:
                continue
            try:
                kept = await self.store.renew(held, self.owner, lease_ms=self.options.lease_ms)
            except StoreError as error:
                log.warning("jobs.renew_failed", queue=self.queue, error=str(error))
                continue
            except Exception:  # the next renewal tries again
                log.exception("jobs.renew_crashed", queue=self.queue)
                continue
            for job_id in held:
                task = self._running.get(job_id)
                if job_id not in kept and task is not None:
                    # Taken over by another process: our outcome could not be recorded.
                    log.warning("jobs.lease_lost", queue=self.queue, job=job_id)
                    self._lost.add(job_id)
                    task.cancel()

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, job: Job) -> None:
        try:
            outcome = await self._call(job)
            if isinstance(outcome, Done):
                self._done.append(job.id)  # completed by the next round, with its claims
            else:
                await self._record(job, outcome)
        except asyncio.CancelledError:
            if job.id not in self._lost:
                await self._release(job)
                raise
        finally:
            self._running.pop(job.id, None)
            self._lost.discard(job.id)
            self._wake.set()

    async def _call(self, job: Job) -> Outcome:
        deadline = asyncio.timeout(self.options.job_timeout)
        try:
            async with deadline:
                return await self.handler(job)
        except Exception as error:  # noqa: BLE001 - a handler failure is the job's, not the runner's
            if isinstance(error, TimeoutError) and deadline.expired():
                return Retry(f"the attempt ran longer than {self.options.job_timeout} s")
            log.warning(
                "jobs.handler_raised",
                queue=self.queue,
                job=job.id,
                attempt=job.attempts_made,
                error_type=type(error).__name__,
            )
            return Retry(str(error) or type(error).__name__)

    async def _record(self, job: Job, outcome: Retry | Fail) -> None:
        try:
            if isinstance(outcome, Fail) or job.attempts_made >= job.max_attempts:
                held = await self.store.dead_letter(job.id, self.owner, outcome_error(outcome))
                log.warning(
                    "jobs.dead_lettered", queue=self.queue, job=job.id, attempts=job.attempts_made
                )
            else:
                delay = outcome.delay_ms
                if delay is None:
                    delay = retry_delay_ms(
                        job.attempts_made,
                        base_ms=self.options.backoff_base_ms,
                        max_ms=self.options.backoff_max_ms,
                        rng=self._rng,
                    )
                held = await self.store.retry_later(
                    job.id, self.owner, outcome.error, self._clock() + delay
                )
        except StoreError as error:
            # The lease runs out and the job runs again: at-least-once, never lost.
            log.warning("jobs.record_failed", queue=self.queue, job=job.id, error=str(error))
            return
        except Exception:  # as above: the job itself is safe in the store
            log.exception("jobs.record_crashed", queue=self.queue, job=job.id)
            return
        if not held:
            log.warning("jobs.outcome_after_lease_lost", queue=self.queue, job=job.id)

    async def _release(self, job: Job) -> None:
        # Runs inside a cancellation: bounded and best-effort (the lease is the fallback).
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(self.options.stop_timeout):
                await self.store.release(job.id, self.owner)


def outcome_error(outcome: Outcome) -> str:
    """The text stored with a retried or dead-lettered job."""
    return "" if isinstance(outcome, Done) else outcome.error
