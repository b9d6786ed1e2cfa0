"""The relay over a real store (SQLite and PostgreSQL): outbox events to delivery jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from mailwire.domain.events import Event, EventName
from mailwire.jobs.model import JobState
from mailwire.store.jobs import CURSOR_PREFIX
from mailwire.store.schema import meta
from mailwire.store.store import Store
from mailwire.webhooks.config import SettingsCache
from mailwire.webhooks.relay import NOTIFY_QUEUE, RELAY_CURSOR, Relay, RouteMatch

HOOK = "http://127.0.0.1:8080/hook"


class TwoRoutes:
    """Matches `messageDeleted` for route r1, everything for route r2 (mapped body)."""

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []

    async def evaluate(self, payload: Mapping[str, Any]) -> list[RouteMatch]:
        self.seen.append(payload)
        matches = [RouteMatch("r2", "http://127.0.0.1:8081/r2", body={"e": payload["event"]})]
        if payload["event"] == "messageDeleted":
            matches.insert(0, RouteMatch("r1", "http://127.0.0.1:8081/r1", (("X-R", "1"),)))
        return matches


def events(count: int, account: str = "acct") -> list[Event]:
    return [
        Event(account, EventName.MESSAGE_DELETED, {"id": f"m{n}", "uid": n}, path="INBOX")
        for n in range(count)
    ]


async def enable(store: Store, **values: Any) -> None:
    await store.settings.update(
        {"webhooksEnabled": True, "webhooks": HOOK, "webhookEvents": ["*"], **values}
    )


def relay(store: Store, **kw: Any) -> Relay:
    return Relay(store.outbox, store.jobs, SettingsCache(store.settings, ttl=0), **kw)


async def test_one_default_job_per_event_and_the_cursor_in_the_same_write(store: Store) -> None:
    await enable(store, serviceUrl="https://mail.example.com")
    await store.outbox.append(events(5))
    moved = await relay(store).step()
    assert moved == 5
    counts = await store.jobs.counts(NOTIFY_QUEUE)
    assert counts[JobState.WAITING] == 5
    assert await store.jobs.cursor(RELAY_CURSOR) == await store.outbox.last_seq()
    # Nothing new: no job, no change.
    assert await relay(store).step() == 0
    assert (await store.jobs.counts(NOTIFY_QUEUE))[JobState.WAITING] == 5

    claimed = await store.jobs.claim(NOTIFY_QUEUE, owner="t", limit=10, lease_ms=60_000)
    # One job per account at a time: the ordering key is the account.
    assert len(claimed) == 1
    job = claimed[0]
    stored = await store.outbox.read_after(0)
    assert job.dedupe_key == f"{stored[0].event_id}:default"
    assert job.ordering_key == "acct"
    assert job.payload["eventId"] == stored[0].event_id
    envelope = job.payload["payload"]
    assert envelope["serviceUrl"] == "https://mail.example.com"
    assert envelope["event"] == "messageDeleted"
    assert envelope["path"] == "INBOX"
    assert "eventId" not in envelope


async def test_a_replayed_batch_makes_no_second_job(store: Store) -> None:
    """A relay that lost its position (a crash after another relay moved on, or two
    relays at once) redoes the batch: the dedupe keys keep one job per event."""
    await enable(store)
    await store.outbox.append(events(20))
    await relay(store).step()
    async with store.database.write() as conn:  # the position lost (enqueue never rewinds)
        await conn.execute(
            meta.update().where(meta.c.key == CURSOR_PREFIX + RELAY_CURSOR).values(value="0")
        )
    assert await store.jobs.cursor(RELAY_CURSOR) == 0
    assert await relay(store).step() == 20
    assert (await store.jobs.counts(NOTIFY_QUEUE))[JobState.WAITING] == 20


async def test_two_relays_at_once_make_one_job_per_event(store: Store) -> None:
    await enable(store)
    await store.outbox.append(events(50, "a") + events(50, "b"))
    first, second = relay(store, batch_size=30), relay(store, batch_size=30)
    for _ in range(10):
        await asyncio.gather(first.step(), second.step())
    assert await store.jobs.cursor(RELAY_CURSOR) == await store.outbox.last_seq()
    assert (await store.jobs.counts(NOTIFY_QUEUE))[JobState.WAITING] == 100


async def test_route_jobs_beside_the_default_job(store: Store) -> None:
    await enable(store, webhookEvents=["accountAdded"])
    await store.outbox.append(
        [*events(1), Event("acct", EventName.ACCOUNT_ADDED, {"account": "acct"})]
    )
    routes = TwoRoutes()
    await relay(store, routes=routes).step()
    # The evaluator sees the envelope with the event id.
    assert all("eventId" in payload for payload in routes.seen)
    claimed = []
    for _ in range(5):
        batch = await store.jobs.claim(NOTIFY_QUEUE, owner="t", limit=10, lease_ms=60_000)
        for job in batch:
            await store.jobs.complete(job.id, "t")
        claimed.extend(batch)
    keys = sorted((job.dedupe_key or "").split(":", 1)[1] for job in claimed)
    # messageDeleted: r1 and r2 (not the default: webhookEvents lacks it);
    # accountAdded: r2 and the default route.
    assert keys == ["default", "route:r1", "route:r2", "route:r2"]
    r1 = next(job for job in claimed if job.dedupe_key and job.dedupe_key.endswith("r1"))
    assert r1.ordering_key == "acct:route:r1"
    assert r1.payload["route"] == {
        "id": "r1",
        "url": "http://127.0.0.1:8081/r1",
        "headers": [["X-R", "1"]],
    }
    assert "body" not in r1.payload
    mapped = [job for job in claimed if job.dedupe_key and job.dedupe_key.endswith("r2")]
    assert {job.payload["body"]["e"] for job in mapped} == {"messageDeleted", "accountAdded"}


async def test_webhooks_off_moves_the_cursor_without_jobs(store: Store) -> None:
    await store.outbox.append(events(3))
    assert await relay(store).step() == 3
    assert sum((await store.jobs.counts(NOTIFY_QUEUE)).values()) == 0
    assert await store.jobs.cursor(RELAY_CURSOR) == await store.outbox.last_seq()


async def test_inbox_new_only_and_event_filter_at_relay(store: Store) -> None:
    await enable(store, webhookEvents=["messageNew"], inboxNewOnly=True)
    await store.outbox.append(
        [
            Event("acct", EventName.MESSAGE_NEW, {"id": "a"}, path="INBOX"),
            Event("acct", EventName.MESSAGE_NEW, {"id": "b"}, path="Archive"),
            Event("acct", EventName.MESSAGE_DELETED, {"id": "c"}, path="INBOX"),
        ]
    )
    await relay(store).step()
    [job] = await store.jobs.claim(NOTIFY_QUEUE, owner="t", limit=10, lease_ms=60_000)
    assert job.payload["payload"]["data"]["id"] == "a"
    assert sum((await store.jobs.counts(NOTIFY_QUEUE)).values()) == 1
