"""SendQueueStore on SQLite and PostgreSQL: entry and job together, idempotency keys,
cancelling, state changes with their events, listing, pruning."""

from __future__ import annotations

import asyncio

from mailwire.domain.events import Event, EventName
from mailwire.domain.sending import SUBMIT_QUEUE, Envelope, NewSend, SendState
from mailwire.store.accounts import AccountValues
from mailwire.store.jobs import JobState
from mailwire.store.store import Store


def new_send(queue_id: str, *, key: str | None = None, send_at: int = 0) -> NewSend:
    return NewSend(
        queue_id=queue_id,
        account="alice",
        message_id=f"<{queue_id}@example.com>",
        subject="Hello",
        envelope=Envelope("alice@example.com", ("bob@example.com",)),
        raw=b"Subject: Hello\r\n\r\nHi\r\n",
        send_at=send_at,
        max_attempts=3,
        idempotency_key=key,
        request_hash="h1" if key else None,
    )


async def test_enqueue_stores_the_entry_and_its_job_together(store: Store) -> None:
    queued = await store.send_queue.enqueue(new_send("q1"), answer={"queueId": "q1"})
    assert queued.created
    assert queued.entry.state is SendState.QUEUED
    assert await store.send_queue.raw("q1") == b"Subject: Hello\r\n\r\nHi\r\n"
    job = await store.jobs.find("submit:q1")
    assert job is not None
    assert job.queue == SUBMIT_QUEUE
    assert job.payload == {"queueId": "q1", "account": "alice"}
    assert job.max_attempts == 3


async def test_a_repeated_idempotency_key_queues_nothing_new(store: Store) -> None:
    first = await store.send_queue.enqueue(new_send("q1", key="k"), answer={"queueId": "q1"})
    again = await store.send_queue.enqueue(new_send("q2", key="k"), answer={"queueId": "q2"})
    assert first.created
    assert not again.created
    assert again.entry.queue_id == "q1"
    assert again.entry.answer == {"queueId": "q1"}
    assert await store.jobs.find("submit:q2") is None
    assert (await store.send_queue.pending()).total == 1


async def test_racing_submits_with_one_key_queue_one_message(store: Store) -> None:
    results = await asyncio.gather(
        *(
            store.send_queue.enqueue(new_send(f"q{n}", key="same"), answer={"queueId": f"q{n}"})
            for n in range(8)
        )
    )
    assert sum(result.created for result in results) == 1
    assert len({result.entry.queue_id for result in results}) == 1
    assert (await store.jobs.counts(SUBMIT_QUEUE))[JobState.WAITING] == 1


async def test_cancel_removes_the_job_and_only_before_sending(store: Store) -> None:
    await store.send_queue.enqueue(new_send("q1"), answer={})
    await store.send_queue.enqueue(new_send("q2"), answer={})
    assert await store.send_queue.cancel("q1")
    assert not await store.send_queue.cancel("q1")  # already cancelled
    assert await store.jobs.find("submit:q1") is None
    assert await store.send_queue.start_attempt("q2") is not None
    assert not await store.send_queue.cancel("q2")  # being sent
    assert not await store.send_queue.cancel("nope")
    assert [e.queue_id for e, _ in (await store.send_queue.pending()).entries] == ["q2"]


async def test_finish_writes_the_state_and_its_event_at_once(store: Store) -> None:
    await store.send_queue.enqueue(new_send("q1"), answer={})
    entry = await store.send_queue.start_attempt("q1")
    assert entry is not None
    assert entry.state is SendState.SENDING
    event = Event("alice", EventName.MESSAGE_SENT, {"queueId": "q1"})
    assert await store.send_queue.finish(
        "q1", SendState.SENT, progress={"status": "smtp-completed"}, events=[event]
    )
    # Finished: a second outcome (a late duplicate attempt) changes nothing, adds no event.
    assert not await store.send_queue.finish("q1", SendState.FAILED, progress={}, events=[event])
    done = await store.send_queue.get("q1")
    assert done is not None
    assert done.state is SendState.SENT
    assert await store.send_queue.raw("q1") == b""  # the message is not kept once sent
    events = await store.outbox.read_after(0)
    assert [e.event for e in events] == [EventName.MESSAGE_SENT]


async def test_a_retried_attempt_goes_back_to_queued_with_its_event(store: Store) -> None:
    await store.send_queue.enqueue(new_send("q1"), answer={})
    await store.send_queue.start_attempt("q1")
    event = Event("alice", EventName.MESSAGE_DELIVERY_ERROR, {"queueId": "q1"})
    assert await store.send_queue.requeue("q1", progress={"status": "error"}, events=[event])
    entry = await store.send_queue.get("q1")
    assert entry is not None
    assert entry.state is SendState.QUEUED
    assert [e.event for e in await store.outbox.read_after(0)] == [EventName.MESSAGE_DELIVERY_ERROR]


async def test_pending_lists_by_account_with_attempts(store: Store) -> None:
    for n in range(5):
        await store.send_queue.enqueue(new_send(f"q{n}"), answer={})
    page = await store.send_queue.pending(account="alice", page=1, page_size=2)
    assert page.total == 5
    assert [entry.queue_id for entry, _ in page.entries] == ["q2", "q3"]
    assert all(attempts.made == 0 for _, attempts in page.entries)
    assert (await store.send_queue.pending(account="bob")).total == 0


async def test_prune_forgets_finished_entries_only(store: Store) -> None:
    await store.send_queue.enqueue(new_send("q1"), answer={})
    await store.send_queue.enqueue(new_send("q2"), answer={})
    await store.send_queue.cancel("q1")
    assert await store.send_queue.prune(older_than=2**62) == 1
    assert await store.send_queue.get("q1") is None
    assert await store.send_queue.get("q2") is not None


async def test_deleting_the_account_drops_its_queue_and_jobs(store: Store) -> None:
    await store.accounts.create_or_update(
        "alice",
        AccountValues(name="Alice", email=None, settings={}, notify_from=0),
        {},
    )
    await store.send_queue.enqueue(new_send("q1"), answer={})
    other = NewSend(**{**_fields(new_send("q2")), "account": "bob"})
    await store.send_queue.enqueue(other, answer={})
    assert await store.accounts.delete("alice")
    assert await store.send_queue.get("q1") is None
    assert await store.jobs.find("submit:q1") is None
    assert await store.send_queue.get("q2") is not None  # another account's stays
    assert await store.jobs.find("submit:q2") is not None


def _fields(send: NewSend) -> dict[str, object]:
    return {name: getattr(send, name) for name in send.__dataclass_fields__}
