"""Outbox -> relay -> job runner -> egress guard -> a real receiver on loopback.

Every piece is the product's own (store on SQLite and PostgreSQL, the runner,
the guard with private addresses allowed as a deployment would allow them);
only the retry backoff is shortened to milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from mailwire.domain.events import Event, EventName
from mailwire.jobs.model import JobState
from mailwire.jobs.runner import JobRunner, RunnerOptions
from mailwire.net.egress import EgressPolicy
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store
from mailwire.testing.webhook_receiver import Received, WebhookReceiver
from mailwire.webhooks.config import SettingsCache
from mailwire.webhooks.delivery import Delivery
from mailwire.webhooks.relay import NOTIFY_QUEUE, NoRoutes, Relay, RouteEvaluator, RouteMatch
from mailwire.webhooks.sender import GuardedSender

WAIT_S = 30.0

#: The events the IMAP sync engine and the account workers raise, with data in
#: the shapes they produce (see domain/message_events.py and workers/).
SYNC_EVENTS = [
    Event("acct", EventName.MESSAGE_NEW, {"id": "AAAAAQAAAAU", "uid": 5, "path": "INBOX",
          "flags": [], "unseen": True, "size": 120, "subject": "Hello",
          "text": {"id": "AAAAAQAAAAU", "encodedSize": {"plain": 12}}, "seemsLikeNew": True,
          "messageSpecialUse": "\\Inbox"}, path="INBOX", special_use="\\Inbox"),
    Event("acct", EventName.MESSAGE_UPDATED, {"id": "AAAAAQAAAAU", "uid": 5,
          "changes": {"flags": {"added": ["\\Seen"], "value": ["\\Seen"]}}}, path="INBOX",
          special_use="\\Inbox"),
    Event("acct", EventName.MESSAGE_DELETED, {"id": "AAAAAQAAAAU", "uid": 5}, path="INBOX",
          special_use="\\Inbox"),
    Event("acct", EventName.MAILBOX_NEW, {"path": "Work", "name": "Work", "specialUse": False,
          "uidValidity": "17"}, path="Work"),
    Event("acct", EventName.MAILBOX_RESET, {"path": "Work", "name": "Work", "specialUse": False,
          "uidValidity": "18", "reason": "uidValidityChange", "prevUidValidity": "17"},
          path="Work"),
    Event("acct", EventName.MAILBOX_DELETED, {"path": "Work", "name": "Work",
          "specialUse": False}, path="Work"),
    Event("acct", EventName.ACCOUNT_ADDED, {"account": "acct"}),
    Event("acct", EventName.ACCOUNT_INITIALIZED, {"initialized": True}),
    Event("acct", EventName.AUTHENTICATION_SUCCESS, {"user": "alice"}),
    Event("acct", EventName.AUTHENTICATION_ERROR, {"response": "Invalid credentials",
          "serverResponseCode": "AUTHENTICATIONFAILED"}),
    Event("acct", EventName.CONNECT_ERROR, {"response": "Connection refused",
          "serverResponseCode": "ECONNREFUSED"}),
    Event("acct", EventName.ACCOUNT_DELETED, {"account": "acct"}),
]  # fmt: skip


def verify(request: Received, secret: str) -> bool:
    digest = hmac.new(secret.encode(), request.body, hashlib.sha256).digest()
    return request.header("X-EE-Wh-Signature") == base64.urlsafe_b64encode(digest).decode().rstrip(
        "="
    )


def by_event_id(requests: list[Received]) -> Counter[str]:
    return Counter(r.header("X-EE-Wh-Event-Id") or "" for r in requests)


async def add_account(store: Store, account: str = "acct") -> None:
    values = AccountValues(name=account, email=None, settings={}, notify_from=0)
    await store.accounts.create_or_update(account, values, {})


@asynccontextmanager
async def pipeline(
    store: Store, *, evaluator: RouteEvaluator | None = None, **delivery_kw: Any
) -> AsyncIterator[None]:
    """The relay and the notify runner, as the server runs them, until the block ends;
    `evaluator` picks the custom routes (none by default)."""
    sender = GuardedSender(EgressPolicy(allow_private=True))
    delivery = Delivery(
        settings=SettingsCache(store.settings, ttl=0),
        accounts=store.accounts,
        sender=sender,
        **delivery_kw,
    )
    relay = Relay(
        store.outbox,
        store.jobs,
        SettingsCache(store.settings, ttl=0),
        routes=evaluator or NoRoutes(),
        poll_interval=0.02,
    )
    runner = JobRunner(
        store.jobs,
        NOTIFY_QUEUE,
        delivery.handle,
        owner="test",
        poll_interval=0.02,
        options=RunnerOptions(backoff_base_ms=1, backoff_max_ms=5, stop_timeout=1.0),
    )
    async with asyncio.TaskGroup() as group:
        relaying = group.create_task(relay.run())
        running = group.create_task(runner.run())
        try:
            yield
        finally:
            relaying.cancel()
            runner.stop()
            await asyncio.wait_for(running, 10)
            await sender.aclose()


async def until(condition: Callable[[], Any], limit_s: float = WAIT_S) -> None:
    """Poll an async or plain condition, bounded."""
    for _ in range(int(limit_s / 0.02)):
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_every_sync_event_arrives_signed_with_its_envelope(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver() as receiver:
        await store.settings.update(
            {"webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["*"],
             "serviceUrl": "https://mail.example.com"}
        )  # fmt: skip
        secret = await store.settings.service_secret()
        async with pipeline(store):
            await store.outbox.append(SYNC_EVENTS)
            requests = await asyncio.to_thread(
                receiver.wait_for, lambda got: len(got) >= len(SYNC_EVENTS), timeout=WAIT_S
            )
    stored = {event.event_id: event for event in await store.outbox.read_after(0)}
    assert len(requests) == len(SYNC_EVENTS)
    for request in requests:
        assert verify(request, secret), request.headers
        event = stored[request.header("X-EE-Wh-Event-Id") or ""]
        body = json.loads(request.body)
        expected = {"serviceUrl": "https://mail.example.com", "account": "acct"}
        if event.path is not None:
            expected["path"] = event.path
        if event.special_use is not None:
            expected["specialUse"] = event.special_use
        assert {key: body[key] for key in expected} == expected
        assert body["event"] == event.event
        assert body["data"] == dict(event.data) or event.event == EventName.MESSAGE_NEW
        assert "eventId" not in body
    # Per-account order is kept: the account's events arrive in outbox order.
    order = [r.header("X-EE-Wh-Event-Id") for r in requests]
    assert order == list(stored)
    # notifyText is on but there is no text to add without a mail server: the
    # messageNew text keeps its id and sizes.
    new = next(json.loads(r.body) for r in requests if b'"messageNew"' in r.body)
    assert new["data"]["text"]["encodedSize"] == {"plain": 12}


async def test_a_failing_receiver_gets_retries_then_one_delivery(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver(lambda n: 500 if n < 3 else 200) as receiver:
        await store.settings.update(
            {"webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["*"]}
        )
        async with pipeline(store):
            await store.outbox.append([Event("acct", EventName.ACCOUNT_INITIALIZED, {})])
            requests = await asyncio.to_thread(
                receiver.wait_for, lambda got: len(got) >= 4, timeout=WAIT_S
            )
            await until(lambda: _completed(store, 1))
    assert len(requests) == 4
    assert [r.header("X-EE-Wh-Attempts-Made") for r in requests] == ["0", "1", "2", "3"]
    assert len({r.header("X-EE-Wh-Id") for r in requests}) == 1
    assert len({r.header("X-EE-Wh-Event-Id") for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    assert len(receiver.delivered()) == 1


async def _completed(store: Store, count: int) -> bool:
    counts = await store.jobs.counts(NOTIFY_QUEUE)
    return counts[JobState.COMPLETED] >= count


async def _failed(store: Store, count: int) -> bool:
    return (await store.jobs.counts(NOTIFY_QUEUE))[JobState.FAILED] >= count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_receiver_down_past_the_budget_is_a_dead_letter_then_requeued_once(
    store: Store,
) -> None:
    await add_account(store)
    port = free_port()
    await store.settings.update(
        {"webhooksEnabled": True, "webhooks": f"http://127.0.0.1:{port}/hook?token=s3cr3t-value",
         "webhookEvents": ["*"]}
    )  # fmt: skip
    async with pipeline(store):
        await store.outbox.append(
            [
                Event("acct", EventName.ACCOUNT_INITIALIZED, {}),
                Event("acct", EventName.ACCOUNT_ADDED, {}),
            ]
        )
        await until(lambda: _failed(store, 2))
        dead = await store.jobs.failed(NOTIFY_QUEUE)
        assert [job.attempts_made for job in dead] == [10, 10]
        # The stored error names the target's origin only, never its path or query.
        assert all("s3cr3t" not in (job.last_error or "") for job in dead)
        assert all(
            "ConnectError" in (job.last_error or "") or "connect" in (job.last_error or "")
            for job in dead
        ), [job.last_error for job in dead]
        with WebhookReceiver() as receiver:
            receiver.stop()
            receiver.start(port)
            for job in dead:
                assert await store.jobs.requeue(job.id)
            requests = await asyncio.to_thread(
                receiver.wait_for, lambda got: len(got) >= 2, timeout=WAIT_S
            )
            await until(lambda: _completed(store, 2))
            await asyncio.sleep(0.2)
            requests = receiver.requests
    assert sorted(by_event_id(requests).values()) == [1, 1]
    assert {r.header("X-EE-Wh-Id") for r in requests} == {str(job.id) for job in dead}
    assert [r.header("X-EE-Wh-Attempts-Made") for r in requests] == ["0", "0"]


async def test_a_redirect_is_not_followed_and_dead_letters_at_once(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver(lambda _n: 302) as receiver:
        await store.settings.update(
            {"webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["*"]}
        )
        async with pipeline(store):
            await store.outbox.append([Event("acct", EventName.ACCOUNT_ADDED, {})])
            await until(lambda: _failed(store, 1))
    assert len(receiver.requests) == 1
    [dead] = await store.jobs.failed(NOTIFY_QUEUE)
    assert dead.attempts_made == 1
    assert "redirect" in (dead.last_error or "")


async def test_the_guard_refuses_loopback_unless_allowed(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver() as receiver:
        await store.settings.update(
            {"webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["*"]}
        )
        sender = GuardedSender(EgressPolicy())
        delivery = Delivery(
            settings=SettingsCache(store.settings, ttl=0), accounts=store.accounts, sender=sender
        )
        relay = Relay(store.outbox, store.jobs, SettingsCache(store.settings, ttl=0))
        await store.outbox.append([Event("acct", EventName.ACCOUNT_ADDED, {})])
        await relay.step()
        [job] = await store.jobs.claim(NOTIFY_QUEUE, owner="t", limit=1, lease_ms=60_000)
        outcome = await delivery.attempt(job)
        await sender.aclose()
    assert outcome.kind == "fail"
    assert "127.0.0.1" in outcome.detail
    assert receiver.requests == []


class OneRoute:
    def __init__(self, route_id: str, url: str) -> None:
        self.route_id, self.url = route_id, url

    async def evaluate(self, payload: Any) -> list[RouteMatch]:
        return [RouteMatch(self.route_id, self.url)]


async def test_route_jobs_follow_the_route_as_it_is_now_and_flag_its_errors(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver(lambda n: 500 if n == 0 else 200) as receiver:
        route = await store.webhook_routes.create(
            {
                "name": "r",
                "target_url": receiver.url + "/old",
                "enabled": True,
                "custom_headers": [["X-Route", "1"]],
                "filter_fn": "return true",
            }
        )
        await store.settings.update({"webhooksEnabled": True, "webhookEvents": []})
        relay = Relay(
            store.outbox,
            store.jobs,
            SettingsCache(store.settings, ttl=0),
            routes=OneRoute(route.id, receiver.url + "/old"),
        )
        await store.outbox.append([Event("acct", EventName.ACCOUNT_ADDED, {"account": "acct"})])
        await relay.step()
        # Edited after queueing: delivery uses the route's current target.
        await store.webhook_routes.update(route.id, {"target_url": receiver.url + "/new"})
        sender = GuardedSender(EgressPolicy(allow_private=True))
        delivery = Delivery(
            settings=SettingsCache(store.settings, ttl=0),
            accounts=store.accounts,
            sender=sender,
            routes=store.webhook_routes,
        )
        try:
            [job] = await store.jobs.claim(NOTIFY_QUEUE, owner="t", limit=5, lease_ms=60_000)
            assert (await delivery.attempt(job)).kind == "retry"
            flagged = await store.webhook_routes.get(route.id)
            assert flagged is not None
            assert flagged.error is not None
            assert flagged.error.kind == "delivery"
            assert (await delivery.attempt(job)).kind == "sent"
            cleared = await store.webhook_routes.get(route.id)
            assert cleared is not None
            assert cleared.error is None
            await store.webhook_routes.update(route.id, {"enabled": False})
            assert (await delivery.attempt(job)).kind == "skipped"
        finally:
            await sender.aclose()
    assert [r.path for r in receiver.requests] == ["/hook/new", "/hook/new"]
    assert receiver.requests[1].header("X-EE-Wh-Custom-Route") == route.id
    assert receiver.requests[1].header("X-Route") == "1"
