"""JobStore on SQLite and PostgreSQL: ordering per key, dedupe, cursor atomicity,
leases, retries, dead letters, counts, pruning, and concurrent claimers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from mailwire.store.job_rows import KEY_LOCK_SPACE, lock_key
from mailwire.store.jobs import JobState, JobStore, NewJob
from mailwire.store.schema import jobs as jobs_table
from mailwire.store.store import Store, open_store

LEASE = 1_000
Q = "notify"


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def job(n: int, key: str | None = None, **extra: object) -> NewJob:
    return NewJob(queue=Q, payload={"n": n}, ordering_key=key, **extra)  # type: ignore[arg-type]


async def claim_ns(jobs: JobStore, owner: str = "a", limit: int = 10) -> list[int]:
    return [j.payload["n"] for j in await jobs.claim(Q, owner=owner, limit=limit, lease_ms=LEASE)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jobs(store: Store, clock: FakeClock) -> JobStore:
    return JobStore(store.database, clock=clock)


async def test_store_exposes_a_job_store(store: Store) -> None:
    assert await store.jobs.enqueue([job(1)]) == 1
    assert (await store.jobs.counts(Q))[JobState.WAITING] == 1


async def test_one_job_per_key_at_a_time_in_id_order(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a"), job(3, "b"), job(4), job(5), job(6, "a")])
    first = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert [j.payload["n"] for j in first] == [1, 3, 4, 5]
    assert all(j.state is JobState.ACTIVE and j.attempts_made == 1 for j in first)
    assert await claim_ns(jobs) == []  # 2 and 6 wait for 1
    await jobs.complete(first[0].id, "w")
    assert await claim_ns(jobs) == [2]


async def test_a_job_in_backoff_holds_back_its_key(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a"), job(3, "b")])
    claimed = await jobs.claim(Q, owner="w", limit=1, lease_ms=LEASE)
    assert await jobs.retry_later(claimed[0].id, "w", "HTTP 500", clock.now + 5_000)
    delayed = await jobs.get(claimed[0].id)
    assert delayed is not None
    assert delayed.state is JobState.DELAYED
    assert delayed.last_error == "HTTP 500"
    (other,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert other.payload["n"] == 3  # 2 waits behind the delayed 1
    await jobs.complete(other.id, "w")
    clock.now += 5_000
    again = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert [(j.payload["n"], j.attempts_made) for j in again] == [(1, 2)]


async def test_a_dead_letter_does_not_block_its_key(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a")])
    (first,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert await jobs.dead_letter(first.id, "w", "gone for good")
    assert await claim_ns(jobs) == [2]


async def test_duplicate_dedupe_keys_are_skipped(jobs: JobStore) -> None:
    assert await jobs.enqueue([job(1, dedupe_key="e1"), job(2, dedupe_key="e2")]) == 2
    assert await jobs.enqueue([job(3, dedupe_key="e1"), job(4, dedupe_key="e3")]) == 1
    assert await jobs.enqueue([job(5), job(6)]) == 2  # no dedupe key: never a duplicate
    assert sorted(await claim_ns(jobs)) == [1, 2, 4, 5, 6]


async def test_cursor_moves_with_the_jobs(jobs: JobStore) -> None:
    assert await jobs.cursor("relay") == 0
    await jobs.enqueue([job(1, dedupe_key="x")], cursor=("relay", 7))
    assert await jobs.cursor("relay") == 7
    await jobs.enqueue([job(2, dedupe_key="x")], cursor=("relay", 9))  # duplicate only
    assert await jobs.cursor("relay") == 9
    assert await jobs.cursor("other") == 0


async def test_a_slower_producer_never_moves_the_cursor_back(jobs: JobStore) -> None:
    """Two relays: the one that finishes an older batch last must not rewind."""
    await jobs.enqueue([], cursor=("relay", 1000))
    await jobs.enqueue([job(1, dedupe_key="late")], cursor=("relay", 400))
    assert await jobs.cursor("relay") == 1000
    await jobs.enqueue([], cursor=("relay", 1001))
    assert await jobs.cursor("relay") == 1001


async def test_a_failing_insert_leaves_the_cursor_and_jobs_unchanged(jobs: JobStore) -> None:
    await jobs.enqueue([job(1)], cursor=("relay", 3))
    broken = NewJob(queue=Q, payload={"not json": object()})
    with pytest.raises(StatementError):
        await jobs.enqueue([job(2), broken], cursor=("relay", 4))
    assert await jobs.cursor("relay") == 3
    assert (await jobs.counts(Q))[JobState.WAITING] == 1


async def test_an_expired_lease_is_reclaimed(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a")])
    (held,) = await jobs.claim(Q, owner="a", limit=10, lease_ms=LEASE)
    clock.now += LEASE // 2
    assert await jobs.renew([held.id], "a", lease_ms=LEASE) == {held.id}
    clock.now += LEASE  # beyond the first lease, within the renewed one
    assert await claim_ns(jobs, owner="b") == []
    clock.now += LEASE
    taken = await jobs.claim(Q, owner="b", limit=10, lease_ms=LEASE)
    assert [(j.id, j.attempts_made, j.owner) for j in taken] == [(held.id, 2, "b")]
    assert not await jobs.complete(held.id, "a")  # the old owner cannot record an outcome
    assert await jobs.renew([held.id], "a", lease_ms=LEASE) == set()
    assert await jobs.complete(held.id, "b")
    assert await claim_ns(jobs, owner="b") == [2]


async def test_a_lease_expiring_on_the_last_attempt_is_a_dead_letter(
    jobs: JobStore, clock: FakeClock
) -> None:
    await jobs.enqueue([job(1, max_attempts=1)])
    await jobs.claim(Q, owner="a", limit=10, lease_ms=LEASE)
    clock.now += LEASE + 1
    assert await claim_ns(jobs, owner="b") == []
    (dead,) = await jobs.failed(Q)
    assert dead.state is JobState.FAILED
    assert dead.attempts_made == 1
    assert dead.last_error is not None
    assert "lease expired" in dead.last_error


async def test_dead_letters_are_listed_and_requeued(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(n) for n in range(1, 5)])
    for claimed in await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE):
        await jobs.dead_letter(claimed.id, "w", f"error {claimed.payload['n']}")
    page = await jobs.failed(Q, limit=3)
    assert [j.last_error for j in page] == ["error 1", "error 2", "error 3"]
    rest = await jobs.failed(Q, limit=3, after_id=page[-1].id)
    assert [j.payload["n"] for j in rest] == [4]
    assert await jobs.failed("submit") == []

    woken: list[int] = []
    jobs.subscribe(Q, lambda: woken.append(1))
    assert await jobs.requeue(page[0].id)
    assert woken == [1]
    assert not await jobs.requeue(page[0].id)  # no longer a dead letter
    assert not await jobs.requeue(10**9)
    requeued = await jobs.get(page[0].id)
    assert requeued is not None
    assert (requeued.state, requeued.attempts_made, requeued.last_error) == (
        JobState.WAITING,
        0,
        "error 1",
    )
    (again,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert again.id == page[0].id
    assert again.attempts_made == 1


async def test_counts_report_every_state(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(n) for n in range(6)] + [job(9, run_at=clock.now + 60_000)])
    claimed = await jobs.claim(Q, owner="w", limit=4, lease_ms=LEASE)
    await jobs.complete(claimed[0].id, "w")
    await jobs.dead_letter(claimed[1].id, "w", "no")
    await jobs.retry_later(claimed[2].id, "w", "later", clock.now + 1_000)
    assert await jobs.counts(Q) == {
        JobState.WAITING: 2,
        JobState.ACTIVE: 1,
        JobState.DELAYED: 2,
        JobState.COMPLETED: 1,
        JobState.FAILED: 1,
    }
    assert set((await jobs.counts("submit")).values()) == {0}


async def test_finishing_needs_the_lease(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(1)])
    (held,) = await jobs.claim(Q, owner="a", limit=1, lease_ms=LEASE)
    assert not await jobs.complete(held.id, "b")
    assert not await jobs.retry_later(held.id, "b", "x", clock.now)
    assert not await jobs.dead_letter(held.id, "b", "x")
    assert await jobs.release(held.id, "a")
    released = await jobs.get(held.id)
    assert released is not None
    assert released.state is JobState.WAITING
    assert released.attempts_made == 0  # a stopped handler is not a failed attempt


async def test_prune_keeps_recent_completed_and_dead_letters(
    jobs: JobStore, clock: FakeClock
) -> None:
    await jobs.enqueue([job(n) for n in range(6)])
    claimed = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    for index, item in enumerate(claimed[:5]):
        clock.now += 1_000
        await jobs.complete(item.id, "w") if index < 4 else await jobs.dead_letter(
            item.id, "w", "x"
        )
    # completed at +1000..+4000; the fifth is a dead letter; the sixth still active
    assert await jobs.prune(Q, older_than=clock.now - 2_500) == 2
    assert (await jobs.counts(Q))[JobState.COMPLETED] == 2
    assert await jobs.prune(Q, older_than=0, keep=1) == 1
    survivors = await jobs.counts(Q)
    assert (survivors[JobState.COMPLETED], survivors[JobState.FAILED]) == (1, 1)
    assert survivors[JobState.ACTIVE] == 1
    assert await jobs.prune(Q, older_than=0, failed_older_than=clock.now + 1) == 1
    assert (await jobs.counts(Q))[JobState.FAILED] == 0


async def test_a_paused_queue_hands_out_nothing(jobs: JobStore) -> None:
    await jobs.enqueue([job(1)])
    assert await jobs.queue_settings(Q) == await jobs.set_queue(Q)  # defaults, now stored
    settings = await jobs.set_queue(Q, paused=True)
    assert settings.paused
    assert settings.concurrency is None
    assert await claim_ns(jobs) == []
    settings = await jobs.set_queue(Q, concurrency=3)
    assert settings.paused
    assert settings.concurrency == 3
    settings = await jobs.set_queue(Q, paused=False)
    assert (await jobs.queue_settings(Q)) == settings
    assert settings.concurrency == 3
    assert await claim_ns(jobs) == [1]
    with pytest.raises(ValueError, match="concurrency"):
        await jobs.set_queue(Q, concurrency=0)


async def test_concurrent_claimers_in_two_processes_never_share_a_job(
    make_settings: Callable[..., object],
) -> None:
    """Two stores (separate engines, as two processes have) with two claimers each."""
    settings = make_settings()
    first = await open_store(settings)  # type: ignore[arg-type]
    second = await open_store(settings)  # type: ignore[arg-type]
    try:
        keys = ["a", "b", "c", None]
        await first.jobs.enqueue([job(n, keys[n % 4]) for n in range(120)])
        claims: list[int] = []
        in_flight: set[str] = set()
        overlaps: list[str] = []
        by_key: dict[str | None, list[int]] = defaultdict(list)

        async def claimer(jobs: JobStore, owner: str) -> None:
            for _ in range(400):  # bounded: 120 jobs at >= 1 per useful round
                got = await jobs.claim(Q, owner=owner, limit=3, lease_ms=60_000)
                if not got and sum((await jobs.counts(Q)).values()) == len(claims):
                    return
                for item in got:
                    claims.append(item.id)
                    by_key[item.ordering_key].append(item.payload["n"])
                    if item.ordering_key is not None:
                        if item.ordering_key in in_flight:
                            overlaps.append(item.ordering_key)
                        in_flight.add(item.ordering_key)
                await asyncio.sleep(0)
                for item in got:
                    in_flight.discard(item.ordering_key or "")
                    assert await jobs.complete(item.id, owner)

        await asyncio.gather(
            claimer(first.jobs, "p1-a"),
            claimer(first.jobs, "p1-b"),
            claimer(second.jobs, "p2-a"),
            claimer(second.jobs, "p2-b"),
        )
        assert len(claims) == 120
        assert len(set(claims)) == 120
        assert overlaps == []
        for key in ("a", "b", "c"):
            assert by_key[key] == sorted(by_key[key])
        assert (await first.jobs.counts(Q))[JobState.COMPLETED] == 120
    finally:
        await first.close()
        await second.close()


async def test_a_key_busy_from_an_earlier_batch_holds_new_jobs(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a")])
    (first,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    await jobs.enqueue([job(2, "a"), job(3, "b")])
    assert await claim_ns(jobs) == [3]
    await jobs.complete(first.id, "w")
    assert await claim_ns(jobs) == [2]


async def test_a_skipped_duplicate_does_not_strand_its_key(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a", dedupe_key="d1")])
    (first,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    await jobs.complete(first.id, "w")
    # the batch's first job of key "a" is a duplicate: the next one must still run
    assert await jobs.enqueue([job(1, "a", dedupe_key="d1"), job(2, "a"), job(3, "a")]) == 2
    assert await claim_ns(jobs) == [2]


async def test_a_requeued_job_goes_before_later_jobs_of_its_key(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a"), job(3, "a")])
    (first,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    await jobs.dead_letter(first.id, "w", "no")
    (second,) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert second.payload["n"] == 2
    assert await jobs.requeue(first.id)  # the key is busy: next in line, not a second head
    requeued = await jobs.get(first.id)
    assert requeued is not None
    assert requeued.state is JobState.WAITING
    assert await claim_ns(jobs) == []
    await jobs.complete(second.id, "w")
    assert await claim_ns(jobs) == [1]


async def test_burying_an_exhausted_job_promotes_the_next(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(1, "a", max_attempts=1), job(2, "a")])
    await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    clock.now += LEASE + 1
    assert await claim_ns(jobs, owner="x") == [2]
    assert len(await jobs.failed(Q)) == 1


async def test_enqueues_racing_completions_never_strand_a_job(
    make_settings: Callable[..., object],
) -> None:
    """A producer in one process, consumers in two: every job is run, in key order."""
    settings = make_settings()
    first = await open_store(settings)  # type: ignore[arg-type]
    second = await open_store(settings)  # type: ignore[arg-type]
    total = 150
    done: dict[str, list[int]] = defaultdict(list)
    try:

        async def produce() -> None:
            for batch in range(0, total, 5):
                await first.jobs.enqueue([job(n, "abc"[n % 3]) for n in range(batch, batch + 5)])
                await asyncio.sleep(0)

        async def consume(jobs: JobStore, owner: str) -> None:
            for _ in range(3000):  # bounded; ends early once every job ran
                if sum(len(ns) for ns in done.values()) == total:
                    return
                for item in await jobs.claim(Q, owner=owner, limit=2, lease_ms=60_000):
                    done[item.ordering_key or ""].append(item.payload["n"])
                    assert await jobs.complete(item.id, owner)
                await asyncio.sleep(0)

        await asyncio.gather(produce(), consume(first.jobs, "p1"), consume(second.jobs, "p2"))
        assert sum(len(ns) for ns in done.values()) == total
        for key, ns in done.items():
            assert ns == sorted(ns), key
    finally:
        await first.close()
        await second.close()


async def test_finishing_a_head_waits_for_an_enqueue_of_its_key(
    store: Store, jobs: JobStore, clock: FakeClock
) -> None:
    """The race the key locks close: an enqueue saw the head unfinished and stores its
    job blocked while the head completes. The completion must find that job."""
    await jobs.enqueue([job(1, "a")])
    (head,) = await jobs.claim(Q, owner="w", limit=1, lease_ms=LEASE)
    async with store.database.write() as conn:  # an enqueue in flight, as the store does it
        if not store.database.is_sqlite:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:space, :lock)"),
                {"space": KEY_LOCK_SPACE, "lock": lock_key(Q, "a")},
            )
        row = {"queue": Q, "ordering_key": "a", "state": "blocked", "payload": {"n": 2}}
        row |= {"attempts_made": 0, "max_attempts": 10, "run_at": clock.now}
        await conn.execute(jobs_table.insert().values(created_at=0, updated_at=0, **row))
        completing = asyncio.create_task(jobs.complete(head.id, "w"))
        for _ in range(20):  # give the completion every chance to run ahead
            await asyncio.sleep(0.005)
    assert await completing
    assert await claim_ns(jobs) == [2]


async def test_exchange_completes_then_claims_what_the_completion_promoted(jobs: JobStore) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "a"), job(3, "b")])
    first = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    assert [j.payload["n"] for j in first] == [1, 3]
    # One transaction: 1 is completed, which makes 2 the key's head, and 2 is claimed.
    exchanged = await jobs.exchange(Q, owner="w", done=[first[0].id], limit=10, lease_ms=LEASE)
    assert exchanged.completed == {first[0].id}
    assert [j.payload["n"] for j in exchanged.claimed] == [2]
    assert (await jobs.counts(Q))[JobState.COMPLETED] == 1


async def test_exchange_leaves_jobs_it_does_not_hold(jobs: JobStore, clock: FakeClock) -> None:
    await jobs.enqueue([job(1, "a"), job(2, "b")])
    (one, two) = await jobs.claim(Q, owner="w", limit=10, lease_ms=LEASE)
    clock.now += LEASE + 1  # w's leases run out; another runner takes job 2 over
    clock.now += 1_000  # past the sweep interval, so the claim looks for expired leases
    (taken,) = await jobs.claim(Q, owner="x", limit=1, lease_ms=LEASE)
    assert taken.id == one.id
    exchanged = await jobs.exchange(Q, owner="w", done=[one.id, two.id], limit=0, lease_ms=LEASE)
    assert exchanged.completed == {two.id}  # the one x took over stays x's
    assert await jobs.complete(one.id, "x")
