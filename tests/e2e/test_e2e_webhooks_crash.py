"""SIGKILL during webhook delivery, ten times, restarting each time: every event arrives.

Events are written straight into the outbox of a running server's store (as
the sync engine would), spread over many accounts so several deliveries are
in flight at once; the receiver answers after a short delay so kills land
mid-request. HTTP delivery is at least once: a request the receiver took but
whose completion the killed process never recorded is sent again after the
job's lease expires. So the test asserts that every event is delivered, that
any event delivered twice was in flight at a kill, and that the jobs table
holds exactly one job per event and route; it prints how many duplicates there were.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailwire.config import Settings
from mailwire.domain.events import Event, EventName
from mailwire.jobs.model import JobState
from mailwire.store.store import open_store
from mailwire.testing.server import MailwireServer
from mailwire.testing.webhook_receiver import WebhookReceiver
from mailwire.webhooks.relay import NOTIFY_QUEUE

ACCOUNTS = 20
EVENTS_PER_ACCOUNT = 30
KILLS = 10
#: The receiver holds each request this long before answering (seconds).
RECEIVER_DELAY_S = 0.02
#: Jobs of a killed process wait for their lease (60 s) before another takes them.
DRAIN_S = 180.0
#: A request counts as in flight at a kill when it was received this close before it.
IN_FLIGHT_S = 5.0

StartServer = Callable[..., MailwireServer]
RegisterAccount = Callable[..., str]


def store_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=None, database_schema=None, secret=None, previous_secrets=()
    )


async def append_events(data_dir: Path, events: list[Event]) -> list[str]:
    store = await open_store(store_settings(data_dir))
    try:
        before = await store.outbox.last_seq()
        await store.outbox.append(events)
        return [event.event_id for event in await store.outbox.read_after(before, limit=1000)]
    finally:
        await store.close()


async def job_facts(data_dir: Path, event_ids: list[str]) -> tuple[dict[JobState, int], int]:
    store = await open_store(store_settings(data_dir))
    try:
        found = 0
        for event_id in event_ids:
            if await store.jobs.find(f"{event_id}:default") is not None:
                found += 1
        return await store.jobs.counts(NOTIFY_QUEUE), found
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_delivery_loses_nothing(
    start_server: StartServer, register_account: RegisterAccount
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    with WebhookReceiver(delay=RECEIVER_DELAY_S) as receiver:
        server = start_server(env={"MAILWIRE_WEBHOOK_ALLOW_PRIVATE": "true"})
        response = httpx.post(
            f"{server.url}/v1/settings",
            json={"webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["*"]},
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=15,
        )
        assert response.status_code == 200, response.text
        accounts = [f"crash-{n:02d}" for n in range(ACCOUNTS)]
        for account in accounts:
            register_account(server, account)
        events = [
            Event(account, EventName.MESSAGE_DELETED, {"id": f"{account}-{n}", "uid": n})
            for n in range(EVENTS_PER_ACCOUNT)
            for account in accounts
        ]
        event_ids = asyncio.run(append_events(server.data_dir, events))
        assert len(event_ids) == len(events)

        kills: list[float] = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 1.0))
            kills.append(time.monotonic())
            server.kill()
            server.start()

        def all_arrived(requests: list[Any]) -> bool:
            got = {r.header("X-EE-Wh-Event-Id") for r in requests}
            return got >= set(event_ids)

        receiver.wait_for(all_arrived, timeout=DRAIN_S)
        time.sleep(1.0)  # let a last completion be written before counting
        requests = receiver.requests
        server.stop()

    ours = [r for r in requests if r.header("X-EE-Wh-Event-Id") in set(event_ids)]
    counts = Counter(r.header("X-EE-Wh-Event-Id") for r in ours)
    assert set(counts) == set(event_ids)
    first_seen: dict[str, float] = {}
    for request in ours:
        first_seen.setdefault(request.header("X-EE-Wh-Event-Id") or "", request.at)
    duplicates = {event_id: n for event_id, n in counts.items() if n > 1}
    for event_id, times in duplicates.items():
        at = first_seen[event_id]
        assert any(0 <= kill - at < IN_FLIGHT_S for kill in kills), (
            f"{event_id} was delivered {times} times but was not in flight at any kill"
        )
    # Per-account order: first deliveries follow the outbox order of each account.
    by_account: defaultdict[str, list[str]] = defaultdict(list)
    for event_id, event in zip(event_ids, events, strict=True):
        by_account[event.account].append(event_id)
    for account, ids in by_account.items():
        firsts = sorted(ids, key=lambda event_id: first_seen[event_id])
        assert firsts == ids, f"{account}: first deliveries out of order"
    # Bodies of repeated deliveries are identical (same job, same payload).
    bodies: defaultdict[str, set[bytes]] = defaultdict(set)
    for request in ours:
        bodies[request.header("X-EE-Wh-Event-Id") or ""].add(request.body)
    assert all(len(found) == 1 for found in bodies.values())
    assert all(
        json.loads(next(iter(found)))["event"] == "messageDeleted" for found in bodies.values()
    )

    states, found = asyncio.run(job_facts(server.data_dir, event_ids))
    assert found == len(event_ids)
    # One job per event here plus one per registered account (accountAdded).
    assert sum(states.values()) == len(event_ids) + ACCOUNTS
    assert states[JobState.COMPLETED] == len(event_ids) + ACCOUNTS, states
    print(
        f"{len(event_ids)} events, {KILLS} kills: {len(duplicates)} delivered twice "
        f"(all in flight at a kill), {len(ours)} requests"
    )
