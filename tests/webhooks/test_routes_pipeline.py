"""Custom routes end to end in process: outbox -> relay (functions in the real
sandbox) -> runner -> egress guard -> loopback receivers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from test_delivery_pipeline import WAIT_S, add_account, pipeline, until, verify

from mailwire.domain.events import Event, EventName
from mailwire.runtime.webhooks import parse_script_env
from mailwire.store.store import Store
from mailwire.testing.webhook_receiver import WebhookReceiver
from mailwire.webhooks.routes import SandboxRoutes
from mailwire.webhooks.sandbox import Sandbox


@asynccontextmanager
async def routed_pipeline(store: Store) -> AsyncIterator[None]:
    """The shared pipeline with custom routes run in a real sandbox."""

    async def env() -> Mapping[str, Any]:
        return parse_script_env((await store.settings.values()).get("scriptEnv"))

    async with Sandbox(timeout=0.5) as sandbox:
        routes = SandboxRoutes(store.webhook_routes, sandbox, env=env, refresh_interval=0)
        async with pipeline(store, evaluator=routes, routes=store.webhook_routes):
            yield


async def _route(store: Store, url: str, filter_fn: str, map_fn: str | None = None) -> str:
    fields = {
        "name": "r",
        "target_url": url,
        "enabled": True,
        "filter_fn": filter_fn,
        "map_fn": map_fn,
        "custom_headers": [("X-Route-Secret", "abc")],
    }
    return (await store.webhook_routes.create(fields)).id


async def test_routes_match_map_and_contain_broken_functions(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver() as default, WebhookReceiver() as target:
        await store.settings.update(
            {
                "webhooksEnabled": True,
                "webhooks": default.url,
                "webhookEvents": ["*"],
                "scriptEnv": json.dumps({"team": "ops"}),
            }
        )
        secret = await store.settings.service_secret()
        mapped = await _route(
            store,
            target.url,
            "return payload.event === 'accountInitialized';",
            "return {route: payload._route.id, ev: payload.event, team: env.team,"
            " eventId: payload.eventId};",
        )
        plain = await _route(store, target.url, "return payload.event === 'accountInitialized';")
        looping = await _route(store, target.url, "while (true) {}")
        throwing = await _route(store, target.url, "throw new Error('boom in filter');")
        polluting = await _route(store, target.url, "Object.prototype.polluted = 1; return false;")
        declined = await _route(store, target.url, "return payload.polluted === 1;")
        async with routed_pipeline(store):
            await store.outbox.append(
                [
                    Event("acct", EventName.ACCOUNT_INITIALIZED, {"initialized": True}),
                    Event("acct", EventName.AUTHENTICATION_SUCCESS, {"user": "alice"}),
                ]
            )
            await asyncio.to_thread(default.wait_for, lambda got: len(got) >= 2, timeout=WAIT_S)
            routed = await asyncio.to_thread(
                target.wait_for, lambda got: len(got) >= 2, timeout=WAIT_S
            )

    # The default route got both events, whatever the routes did.
    assert len(default.requests) == 2
    assert len(routed) == 2
    by_route = {r.header("X-EE-Wh-Custom-Route"): r for r in routed}
    assert set(by_route) == {mapped, plain}
    for request in routed:
        assert verify(request, secret)
        assert request.header("X-Route-Secret") == "abc"
    event_id = by_route[mapped].header("X-EE-Wh-Event-Id")
    body = json.loads(by_route[mapped].body)
    assert body["route"] == mapped
    assert body["ev"] == "accountInitialized"
    assert body["team"] == "ops"
    assert "eventId" not in body  # returned by the map function, sent as the header
    assert event_id
    # A route without a map function sends the plain envelope, without `_route`.
    envelope = json.loads(by_route[plain].body)
    assert envelope["event"] == "accountInitialized"
    assert "_route" not in envelope
    assert "eventId" not in envelope
    assert by_route[plain].header("X-EE-Wh-Event-Id") == event_id

    counted = await store.webhook_routes.get(mapped)
    assert counted is not None
    assert counted.match_count == 1
    for broken, words in ((looping, "ran longer than"), (throwing, "boom in filter")):
        route = await store.webhook_routes.get(broken)
        assert route is not None
        assert route.error is not None
        assert route.error.kind == "exec"
        assert words in route.error.message
        assert len(route.error_log) == 2  # once per event
    # Prototype pollution in one call is invisible to the next.
    for quiet in (polluting, declined):
        route = await store.webhook_routes.get(quiet)
        assert route is not None
        assert route.match_count == 0
        assert route.error is None


async def test_route_edits_take_effect_on_the_next_event(store: Store) -> None:
    await add_account(store)
    with WebhookReceiver() as target:
        await store.settings.update({"webhooksEnabled": True})
        route = await _route(store, target.url, "return true;")
        async with routed_pipeline(store):
            await store.outbox.append([Event("acct", EventName.ACCOUNT_INITIALIZED, {})])
            await asyncio.to_thread(target.wait_for, lambda got: len(got) >= 1, timeout=WAIT_S)
            await store.webhook_routes.update(route, {"enabled": False})
            await store.outbox.append([Event("acct", EventName.AUTHENTICATION_SUCCESS, {})])
            await until(lambda: _relayed_all(store))
            await asyncio.sleep(0.3)
    assert len(target.requests) == 1


async def _relayed_all(store: Store) -> bool:
    newest = await store.outbox.last_seq()
    return await store.jobs.cursor("relay.notify") >= newest


async def test_concurrent_first_evaluations_all_see_the_routes(store: Store) -> None:
    """The relay evaluates a batch's events at once; none may run before the routes
    are loaded (each would silently skip every route)."""
    route = await _route(store, "https://hooks.example/", "return true;")

    async def env() -> Mapping[str, Any]:
        return {}

    async with Sandbox() as sandbox:
        routes = SandboxRoutes(store.webhook_routes, sandbox, env=env)
        results = await asyncio.gather(
            *(routes.evaluate({"event": "messageNew", "n": n}) for n in range(20))
        )
    assert [[m.route_id for m in matches] for matches in results] == [[route]] * 20
    counted = await store.webhook_routes.get(route)
    assert counted is not None
    assert counted.match_count == 20
