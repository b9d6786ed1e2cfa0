"""JobRunner on SQLite and PostgreSQL: backoff and dead letter, pause, per-key order under
concurrency, lease takeover of a hung handler, stopping, and wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mailwire.errors import StoreUnavailableError
from mailwire.jobs.model import Done, Fail, Job, NewJob, Outcome, Retry
from mailwire.jobs.runner import JobRunner, RunnerOptions, retry_delay_ms
from mailwire.store.jobs import JobState, JobStore
from mailwire.store.store import Store
from mailwire.types import now_ms

Q = "notify"
FAST = 0.01  # poll interval of the runners under test (seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


async def eventually(check: Callable[[], Any], *, rounds: int = 500) -> None:
    """Wait (bounded, 10 ms steps) until `check()` is true; an async check is awaited."""
    for _ in range(rounds):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the condition never became true")


@contextlib.asynccontextmanager
async def running(runner: JobRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        runner.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def new(n: int, key: str | None = None, **extra: Any) -> NewJob:
    extra.setdefault("dedupe_key", f"job-{n}")
    return NewJob(queue=Q, payload={"n": n}, ordering_key=key, **extra)


async def state_of(jobs: JobStore, job_id: int) -> JobState:
    found = await jobs.get(job_id)
    assert found is not None
    return found.state


def test_retry_delays_double_with_jitter_and_a_cap() -> None:
    assert retry_delay_ms(1, base_ms=5_000, rng=lambda: 1.0) == 5_000
    assert retry_delay_ms(1, base_ms=5_000, rng=lambda: 0.0) == 4_000
    assert retry_delay_ms(4, base_ms=5_000, rng=lambda: 1.0) == 40_000
    assert retry_delay_ms(30, base_ms=5_000, max_ms=60_000, rng=lambda: 1.0) == 60_000
    assert retry_delay_ms(10**6, base_ms=5_000, rng=lambda: 0.5) == 3_600_000 * 9 // 10


async def test_retries_back_off_then_dead_letter(store: Store) -> None:
    clock = FakeClock()
    jobs = JobStore(store.database, clock=clock)
    seen: list[int] = []

    async def failing(job: Job) -> Outcome:
        seen.append(job.attempts_made)
        return Retry(f"HTTP 500 on attempt {job.attempts_made}")

    options = RunnerOptions(backoff_base_ms=60_000)
    runner = JobRunner(
        jobs,
        Q,
        failing,
        owner="r",
        poll_interval=FAST,
        options=options,
        clock=clock,
        rng=lambda: 1.0,
    )
    job_id = (await _enqueue_one(jobs, new(1, "acct", max_attempts=3))).id
    async with running(runner):
        await eventually(lambda: seen == [1])
        await eventually(lambda: _state_is(jobs, job_id, JobState.DELAYED))
        delayed = await jobs.get(job_id)
        assert delayed is not None
        assert delayed.run_at == clock.now + 60_000  # base x 2^0 x jitter 1.0
        clock.now += 60_000
        runner.notify()
        await eventually(lambda: len(seen) == 2 and _state_is(jobs, job_id, JobState.DELAYED))
        delayed = await jobs.get(job_id)
        assert delayed is not None
        assert delayed.run_at == clock.now + 120_000  # doubled
        clock.now += 120_000
        runner.notify()
        await eventually(lambda: _state_is(jobs, job_id, JobState.FAILED))
    assert seen == [1, 2, 3]
    (dead,) = await jobs.failed(Q)
    assert dead.last_error == "HTTP 500 on attempt 3"
    assert dead.attempts_made == 3


async def test_millisecond_backoff_until_success(store: Store) -> None:
    calls: list[int] = []

    async def flaky(job: Job) -> Outcome:
        calls.append(job.attempts_made)
        if job.attempts_made < 3:
            raise ConnectionError("receiver down")
        return Done()

    runner = JobRunner(
        store.jobs,
        Q,
        flaky,
        owner="r",
        poll_interval=FAST,
        options=RunnerOptions(backoff_base_ms=5),
    )
    job = await _enqueue_one(store.jobs, new(1))
    async with running(runner):
        await eventually(lambda: _state_is(store.jobs, job.id, JobState.COMPLETED))
    assert calls == [1, 2, 3]
    done = await store.jobs.get(job.id)
    assert done is not None
    assert done.last_error == "receiver down"  # the latest failure stays visible


async def test_fail_dead_letters_at_once_and_requeue_runs_again(store: Store) -> None:
    outcomes: list[Outcome] = [Fail("410 Gone"), Done()]
    calls: list[int] = []

    async def handler(job: Job) -> Outcome:
        calls.append(job.attempts_made)
        return outcomes.pop(0)

    runner = JobRunner(store.jobs, Q, handler, owner="r", poll_interval=FAST)
    job = await _enqueue_one(store.jobs, new(1))
    async with running(runner):
        await eventually(lambda: _state_is(store.jobs, job.id, JobState.FAILED))
        assert await store.jobs.requeue(job.id)
        await eventually(lambda: _state_is(store.jobs, job.id, JobState.COMPLETED))
    assert calls == [1, 1]  # attempts start over after a requeue


async def test_pause_stops_claiming_and_resume_continues(store: Store) -> None:
    started: list[int] = []
    gate = asyncio.Event()

    async def handler(job: Job) -> Outcome:
        started.append(job.payload["n"])
        if job.payload["n"] == 1:
            await gate.wait()
        return Done()

    runner = JobRunner(store.jobs, Q, handler, owner="r", concurrency=1, poll_interval=FAST)
    await store.jobs.enqueue([new(n) for n in range(1, 5)])
    async with running(runner):
        await eventually(lambda: started == [1])
        await store.jobs.set_queue(Q, paused=True)  # as PUT /v1/settings/queue/notify does
        gate.set()
        await eventually(lambda: _counts_are(store.jobs, active=0, waiting=3))
        rounds = runner.rounds
        await eventually(lambda: runner.rounds >= rounds + 5)
        assert started == [1]
        assert (await store.jobs.counts(Q))[JobState.WAITING] == 3
        await store.jobs.set_queue(Q, paused=False)
        await eventually(lambda: _counts_are(store.jobs, completed=4))
    assert started == [1, 2, 3, 4]


async def test_per_key_order_holds_with_concurrency_four(store: Store) -> None:
    active_keys: set[str] = set()
    active = 0
    peak = 0
    violations: list[str] = []
    order: dict[str, list[int]] = defaultdict(list)

    async def handler(job: Job) -> Outcome:
        nonlocal active, peak
        key = job.ordering_key or ""
        if key in active_keys:
            violations.append(key)
        active_keys.add(key)
        active += 1
        peak = max(peak, active)
        order[key].append(job.payload["n"])
        await asyncio.sleep(0.002 * (job.payload["n"] % 3))
        active -= 1
        active_keys.discard(key)
        if job.payload["n"] % 7 == 0 and job.attempts_made == 1:
            return Retry("once more")  # a retry must not let the key's next job overtake
        return Done()

    options = RunnerOptions(backoff_base_ms=1)
    runners = [
        JobRunner(
            store.jobs,
            Q,
            handler,
            owner=f"r{i}",
            concurrency=4,
            poll_interval=FAST,
            options=options,
        )
        for i in range(2)
    ]
    keys = [f"account-{k}" for k in range(6)]
    await store.jobs.enqueue([new(n, keys[n % 6]) for n in range(60)])
    async with running(runners[0]), running(runners[1]):
        await eventually(lambda: _counts_are(store.jobs, completed=60), rounds=1500)
    assert violations == []
    for key in keys:
        finished = order[key]
        # each job runs once, or twice in a row when it asked for a retry
        assert sorted(set(finished)) == sorted(n for n in range(60) if n % 6 == keys.index(key))
        assert [n for i, n in enumerate(finished) if i == 0 or finished[i - 1] != n] == sorted(
            set(finished)
        )
    assert 2 <= peak <= 8


async def test_the_queue_row_sets_concurrency(store: Store) -> None:
    active = 0
    peak = 0

    async def handler(job: Job) -> Outcome:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.002)
        active -= 1
        return Done()

    await store.jobs.set_queue(Q, concurrency=1)
    runner = JobRunner(store.jobs, Q, handler, owner="r", concurrency=8, poll_interval=FAST)
    await store.jobs.enqueue([new(n, f"k{n}") for n in range(10)])
    async with running(runner):
        await eventually(lambda: _counts_are(store.jobs, completed=10))
    assert peak == 1


async def test_a_hung_handler_loses_its_job_to_another_runner(store: Store) -> None:
    """Runner A's handler hangs; runner B's clock says A's lease ran out long ago."""
    lease = 300
    ahead = JobStore(store.database, clock=lambda: now_ms() + 10 * lease)
    a_cancelled = asyncio.Event()
    ran_by: list[str] = []

    async def hangs(job: Job) -> Outcome:
        ran_by.append("a")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            a_cancelled.set()
            raise
        return Done()

    async def finishes(job: Job) -> Outcome:
        ran_by.append("b")
        return Done()

    options = RunnerOptions(lease_ms=lease)
    a = JobRunner(store.jobs, Q, hangs, owner="a", poll_interval=FAST, options=options)
    b = JobRunner(ahead, Q, finishes, owner="b", poll_interval=FAST, options=options)
    job = await _enqueue_one(store.jobs, new(1, "acct"))
    async with running(a):
        await eventually(lambda: ran_by == ["a"])
        async with running(b):
            await eventually(lambda: _state_is(store.jobs, job.id, JobState.COMPLETED))
            await eventually(a_cancelled.is_set)  # A's renewal found the lease gone
    assert ran_by == ["a", "b"]
    done = await store.jobs.get(job.id)
    assert done is not None
    assert done.attempts_made == 2


async def test_renewal_keeps_a_long_job_with_its_runner(store: Store) -> None:
    """A handler running for three leases keeps its job: a second runner never gets it."""
    lease = 900
    ran_by: list[str] = []

    def handler_for(name: str) -> Callable[[Job], Any]:
        async def handler(job: Job) -> Outcome:
            ran_by.append(name)
            await asyncio.sleep(3 * lease / 1000)
            return Done()

        return handler

    options = RunnerOptions(lease_ms=lease)
    first = JobRunner(
        store.jobs, Q, handler_for("a"), owner="a", poll_interval=FAST, options=options
    )
    second = JobRunner(
        store.jobs, Q, handler_for("b"), owner="b", poll_interval=FAST, options=options
    )
    job = await _enqueue_one(store.jobs, new(1))
    async with running(first):
        await eventually(lambda: ran_by == ["a"])
        async with running(second):
            await eventually(lambda: _state_is(store.jobs, job.id, JobState.COMPLETED), rounds=1000)
    assert ran_by == ["a"]
    done = await store.jobs.get(job.id)
    assert done is not None
    assert done.attempts_made == 1


async def test_stop_releases_running_jobs_untried(store: Store) -> None:
    started = asyncio.Event()

    async def hangs(job: Job) -> Outcome:
        started.set()
        await asyncio.Event().wait()
        return Done()

    runner = JobRunner(
        store.jobs,
        Q,
        hangs,
        owner="r",
        poll_interval=FAST,
        options=RunnerOptions(stop_timeout=0.05),
    )
    job = await _enqueue_one(store.jobs, new(1))
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(started.wait(), 5)
    runner.stop()
    await asyncio.wait_for(task, 5)
    released = await store.jobs.get(job.id)
    assert released is not None
    assert (released.state, released.attempts_made, released.owner) == (JobState.WAITING, 0, None)


async def test_cancelling_run_releases_running_jobs(store: Store) -> None:
    started = asyncio.Event()

    async def hangs(job: Job) -> Outcome:
        started.set()
        await asyncio.Event().wait()
        return Done()

    runner = JobRunner(store.jobs, Q, hangs, owner="r", poll_interval=FAST)
    job = await _enqueue_one(store.jobs, new(1))
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await state_of(store.jobs, job.id) is JobState.WAITING


async def test_an_enqueue_in_this_process_wakes_the_runner(store: Store) -> None:
    done = asyncio.Event()

    async def handler(job: Job) -> Outcome:
        done.set()
        return Done()

    # A poll interval far beyond the test timeout: only the wake-up can start the job.
    runner = JobRunner(store.jobs, Q, handler, owner="r", poll_interval=3600)
    async with running(runner):
        await eventually(lambda: runner.rounds >= 1)
        await store.jobs.enqueue([new(1)])
        await asyncio.wait_for(done.wait(), 10)


async def _enqueue_one(jobs: JobStore, job: NewJob) -> Job:
    assert job.dedupe_key is not None
    assert await jobs.enqueue([job]) == 1
    found = await jobs.find(job.dedupe_key)
    assert found is not None
    return found


async def _state_is(jobs: JobStore, job_id: int, state: JobState) -> bool:
    return await state_of(jobs, job_id) is state


async def _counts_are(jobs: JobStore, **wanted: int) -> bool:
    counts = await jobs.counts(Q)
    return all(counts[JobState(name)] == value for name, value in wanted.items())


async def test_finished_jobs_are_completed_in_batches_with_the_next_claims(store: Store) -> None:
    """Ten jobs of ten keys at concurrency ten: every Done outcome is recorded, and
    by far fewer store round trips than one per job and outcome."""
    exchanges: list[tuple[int, int]] = []
    real = store.jobs.exchange

    async def counting(queue: str, **kw: Any) -> Any:
        exchanged = await real(queue, **kw)
        exchanges.append((len(kw["done"]), len(exchanged.claimed)))
        return exchanged

    store.jobs.exchange = counting  # type: ignore[method-assign]
    await store.jobs.enqueue([new(n, key=f"k{n}") for n in range(10)])
    gate = asyncio.Event()

    async def handler(job: Job) -> Outcome:
        await gate.wait()
        return Done()

    runner = JobRunner(store.jobs, Q, handler, owner="r", concurrency=10, poll_interval=FAST)
    async with running(runner):
        await eventually(lambda: runner.running == 10)
        gate.set()

        async def all_done() -> bool:
            return (await store.jobs.counts(Q))[JobState.COMPLETED] == 10

        await eventually(all_done)
    assert sum(done for done, _ in exchanges) == 10
    assert len([1 for done, _ in exchanges if done]) < 10  # some rounds completed several


async def test_done_outcomes_survive_a_failed_round(store: Store) -> None:
    """A round that fails (the store is briefly unreachable) keeps its Done outcomes
    for the next round instead of leaving the jobs to run again after their lease."""
    real = store.jobs.exchange
    failures = [1]

    async def flaky(queue: str, **kw: Any) -> Any:
        if kw["done"] and failures:
            failures.pop()
            raise StoreUnavailableError("the database went away")
        return await real(queue, **kw)

    store.jobs.exchange = flaky  # type: ignore[method-assign]
    await store.jobs.enqueue([new(1, key="a"), new(2, key="a")])
    ran: list[int] = []

    async def handler(job: Job) -> Outcome:
        ran.append(job.payload["n"])
        return Done()

    runner = JobRunner(store.jobs, Q, handler, owner="r", poll_interval=FAST)
    async with running(runner):

        async def both_done() -> bool:
            return (await store.jobs.counts(Q))[JobState.COMPLETED] == 2

        await eventually(both_done)
    assert ran == [1, 2]  # each ran once, in order, despite the failed round
    assert not failures


async def test_stopping_records_the_last_done_outcomes(store: Store) -> None:
    """A handler that finishes after stop() (while the runner drains) has no round
    left to record it: the runner records it on the way out."""
    await store.jobs.enqueue([new(1)])
    release = asyncio.Event()

    async def handler(job: Job) -> Outcome:
        await release.wait()
        return Done()

    runner = JobRunner(store.jobs, Q, handler, owner="r", poll_interval=FAST)
    task = asyncio.create_task(runner.run())
    await eventually(lambda: runner.running == 1)
    runner.stop()
    release.set()
    await asyncio.wait_for(task, 5)
    assert (await store.jobs.counts(Q))[JobState.COMPLETED] == 1
