"""The queue routes and /v1/stats in process (httpx's ASGI transport) over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_kit import client_for, token_for

from mailwire.store.jobs import JobState, NewJob
from mailwire.store.store import Store

HEADER_SECRET = "planted-Header-7f3a"  # a custom header's token: never shown by the API
URL_SECRET = "planted-Url-91bc"  # userinfo of a target URL: never shown either


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, await token_for(store)) as opened:
        yield opened


def delivery(n: int, queue: str = "notify") -> NewJob:
    """A job shaped like a webhook delivery, secrets included."""
    return NewJob(
        queue=queue,
        payload={
            "eventId": f"event-{n}",
            "account": "alice",
            "event": "messageNew",
            "payload": {"subject": f"hello {n}"},
            "route": {
                "id": "route-1",
                "url": f"https://user:{URL_SECRET}@hooks.example.com/in",
                "headers": [["Authorization", f"Bearer {HEADER_SECRET}"]],
            },
        },
        ordering_key="alice",
        dedupe_key=f"event-{n}:route-1",
    )


async def dead_letters(store: Store, count: int) -> list[int]:
    await store.jobs.enqueue([delivery(n) for n in range(count)])
    ids = []
    for _ in range(count):
        (job,) = await store.jobs.claim("notify", owner="t", limit=1, lease_ms=60_000)
        await store.jobs.dead_letter(job.id, "t", f"HTTP 500 from receiver ({job.id})")
        ids.append(job.id)
    return ids


async def test_an_empty_queue_reports_zeros_and_defaults(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/settings/queue/notify")
    assert answer.status_code == 200
    assert answer.json() == {
        "queue": "notify",
        "jobs": {"active": 0, "delayed": 0, "paused": 0, "waiting": 0, "failed": 0, "completed": 0},
        "paused": False,
        "concurrency": None,
    }


async def test_counts_follow_the_jobs(client: httpx.AsyncClient, store: Store) -> None:
    await store.jobs.enqueue(
        [NewJob(queue="notify", payload={}, ordering_key=f"k{n}") for n in range(5)]
    )
    claimed = await store.jobs.claim("notify", owner="t", limit=3, lease_ms=60_000)
    await store.jobs.complete(claimed[0].id, "t")
    await store.jobs.retry_later(claimed[1].id, "t", "later", 2**62)
    jobs = (await client.get("/v1/settings/queue/notify")).json()["jobs"]
    assert jobs == {
        "active": 1,
        "delayed": 1,
        "paused": 0,
        "waiting": 2,
        "failed": 0,
        "completed": 1,
    }
    submit = (await client.get("/v1/settings/queue/submit")).json()["jobs"]
    assert set(submit.values()) == {0}


async def test_pause_resume_and_concurrency(client: httpx.AsyncClient, store: Store) -> None:
    answer = await client.put("/v1/settings/queue/notify", json={"paused": True})
    assert answer.status_code == 200
    assert answer.json() == {"queue": "notify", "paused": True, "concurrency": None}
    assert (await client.get("/v1/settings/queue/notify")).json()["paused"] is True
    await store.jobs.enqueue([NewJob(queue="notify", payload={})])
    assert await store.jobs.claim("notify", owner="t", limit=1, lease_ms=1000) == []

    answer = await client.put("/v1/settings/queue/notify", json={"concurrency": 3})
    assert answer.json() == {"queue": "notify", "paused": True, "concurrency": 3}
    answer = await client.put("/v1/settings/queue/notify", json={"paused": False})
    assert answer.json() == {"queue": "notify", "paused": False, "concurrency": 3}
    assert len(await store.jobs.claim("notify", owner="t", limit=1, lease_ms=1000)) == 1
    assert (await store.jobs.queue_settings("submit")).paused is False  # other queues untouched


@pytest.mark.parametrize(
    "body",
    [{"concurrency": 0}, {"concurrency": 101}, {"paused": "sometimes"}, {"pause": True}],
)
async def test_invalid_queue_settings_are_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    answer = await client.put("/v1/settings/queue/notify", json=body)
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400


async def test_unknown_queues_are_invalid_input(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/settings/queue/mail"),
        ("PUT", "/v1/settings/queue/mail"),
        ("GET", "/v1/settings/queue/mail/failed"),
        ("POST", "/v1/settings/queue/mail/failed/1/retry"),
    ):
        answer = await client.request(method, path, json={} if method != "GET" else None)
        assert answer.status_code == 400, path
        assert answer.json()["fields"][0]["key"] == "queue"


async def test_failed_jobs_are_listed_without_their_content(
    client: httpx.AsyncClient, store: Store
) -> None:
    ids = await dead_letters(store, 3)
    first = await client.get("/v1/settings/queue/notify/failed", params={"limit": 2})
    assert first.status_code == 200
    body = first.json()
    assert [job["id"] for job in body["jobs"]] == ids[:2]
    assert body["next"] == ids[1]
    entry = body["jobs"][0]
    assert entry["attempts"] == 1
    assert entry["maxAttempts"] == 10
    assert entry["lastError"] == f"HTTP 500 from receiver ({ids[0]})"
    assert entry["created"].endswith("Z")
    assert entry["failed"].endswith("Z")
    assert entry["summary"] == {
        "event": "messageNew",
        "eventId": "event-0",
        "account": "alice",
        "route": "route-1",
    }
    following = await client.get("/v1/settings/queue/notify/failed", params={"after": body["next"]})
    rest = following.json()
    assert [job["id"] for job in rest["jobs"]] == ids[2:]
    assert rest["next"] is None
    for text in (first.text, following.text):
        assert HEADER_SECRET not in text
        assert URL_SECRET not in text
        assert "hello" not in text  # the event payload is content, not an identifier
    assert (await client.get("/v1/settings/queue/submit/failed")).json()["jobs"] == []


async def test_a_failed_job_is_retried_once(client: httpx.AsyncClient, store: Store) -> None:
    (job_id,) = await dead_letters(store, 1)
    answer = await client.post(f"/v1/settings/queue/notify/failed/{job_id}/retry")
    assert answer.status_code == 200
    assert answer.json() == {"queue": "notify", "job": job_id, "requeued": True}
    requeued = await store.jobs.get(job_id)
    assert requeued is not None
    assert (requeued.state, requeued.attempts_made) == (JobState.WAITING, 0)
    again = await client.post(f"/v1/settings/queue/notify/failed/{job_id}/retry")
    assert again.status_code == 404
    assert again.json()["code"] == "JobNotFound"


async def test_retry_of_unknown_or_foreign_jobs_is_404(
    client: httpx.AsyncClient, store: Store
) -> None:
    (job_id,) = await dead_letters(store, 1)
    assert (
        await client.post(f"/v1/settings/queue/submit/failed/{job_id}/retry")
    ).status_code == 404
    assert (await client.post("/v1/settings/queue/notify/failed/999999/retry")).status_code == 404
    assert (await client.post("/v1/settings/queue/notify/failed/abc/retry")).status_code == 400
    still = await store.jobs.get(job_id)
    assert still is not None
    assert still.state is JobState.FAILED


async def test_stats_include_every_queue(client: httpx.AsyncClient, store: Store) -> None:
    await dead_letters(store, 2)
    await store.jobs.enqueue([NewJob(queue="submit", payload={})])
    answer = await client.get("/v1/stats")
    assert answer.status_code == 200
    body = answer.json()
    assert body["accounts"] == 0
    assert set(body["queues"]) == {"notify", "submit", "documents"}
    assert body["queues"]["notify"]["failed"] == 2
    assert body["queues"]["submit"]["waiting"] == 1
    assert body["connections"]["connected"] == 0
    assert body["counters"] == {}
    assert (await client.get("/v1/stats", params={"seconds": -1})).status_code == 400


async def test_queue_routes_are_for_admins(store: Store) -> None:
    async with client_for(store, await token_for(store, "alice")) as bound:
        assert (await bound.get("/v1/settings/queue/notify")).status_code == 403
        assert (
            await bound.put("/v1/settings/queue/notify", json={"paused": True})
        ).status_code == 403
        assert (await bound.get("/v1/settings/queue/notify/failed")).status_code == 403
    assert (await store.jobs.queue_settings("notify")).paused is False
