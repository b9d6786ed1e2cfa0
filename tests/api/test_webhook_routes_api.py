"""Webhook routes through the API (in process) over a real store, and the store's
counters and error log that evaluation and delivery write back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_kit import client_for, token_for

from mailwire.domain.tokens import Action, Group, Permissions
from mailwire.domain.webhook_routes import ERROR_LOG_SIZE, RouteError
from mailwire.services.container import Services
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import settings_for


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(settings_for(tmp_path / "data"))
    yield opened
    await opened.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, await token_for(store)) as opened:
        yield opened


ROUTE: dict[str, Any] = {
    "name": "Invoices to billing",
    "description": "messageNew with an invoice",
    "targetUrl": "https://billing.example.com/hook",
    "enabled": True,
    "customHeaders": [{"key": "X-Billing", "value": "1"}],
    "content": {"fn": "return payload.event === 'messageNew';", "map": "return {id: 1};"},
}


async def test_create_read_list_update_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/webhookRoutes", json=ROUTE)
    assert created.status_code == 200, created.text
    route = created.json()
    route_id = route["id"]
    assert route["v"] == 1
    assert route["tcount"] == 0
    assert route["webhookErrorFlag"] is None
    assert route["content"] == ROUTE["content"]
    assert route["customHeaders"] == ROUTE["customHeaders"]

    shown = (await client.get(f"/v1/webhookRoutes/webhookRoute/{route_id}")).json()
    assert shown == route

    listed = (await client.get("/v1/webhookRoutes")).json()
    assert listed["total"] == 1
    assert listed["pages"] == 1
    assert listed["page"] == 0
    summary = listed["webhooks"][0]
    assert summary["id"] == route_id
    assert "content" not in summary
    assert "v" not in summary

    changed = await client.put(
        f"/v1/webhookRoutes/webhookRoute/{route_id}",
        json={"enabled": False, "content": {"map": None}},
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["v"] == 2
    assert after["enabled"] is False
    assert after["content"] == {"fn": ROUTE["content"]["fn"], "map": None}
    assert after["name"] == ROUTE["name"]  # fields not sent stay

    deleted = await client.delete(f"/v1/webhookRoutes/webhookRoute/{route_id}")
    assert deleted.json() == {"deleted": True}
    missing = await client.get(f"/v1/webhookRoutes/webhookRoute/{route_id}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "WebhookRouteNotFound"


async def test_listing_pages(client: httpx.AsyncClient) -> None:
    for number in range(5):
        response = await client.post("/v1/webhookRoutes", json={"name": f"route {number}"})
        assert response.status_code == 200
    first = (await client.get("/v1/webhookRoutes", params={"pageSize": 2})).json()
    last = (await client.get("/v1/webhookRoutes", params={"pageSize": 2, "page": 2})).json()
    assert (first["total"], first["pages"], len(first["webhooks"])) == (5, 3, 2)
    assert len(last["webhooks"]) == 1
    seen = {r["id"] for r in first["webhooks"]} | {r["id"] for r in last["webhooks"]}
    assert len(seen) == 3


@pytest.mark.parametrize(
    "body",
    [
        {},  # no name
        {"name": ""},
        {"name": "x" * 257},
        {"name": "x", "targetUrl": "ftp://example.com/"},
        {"name": "x", "targetUrl": "javascript:alert(1)"},
        {"name": "x", "customHeaders": [{"key": "X-A\r\nX-B", "value": "1"}]},
        {"name": "x", "content": {"fn": "x" * (1024 * 1024 + 1)}},
        {"name": "x", "content": {"other": "1"}},
        {"name": "x", "unknown": True},
    ],
)
async def test_bad_input_is_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/webhookRoutes", json=body)
    assert response.status_code == 400, response.text
    assert (await client.get("/v1/webhookRoutes")).json()["total"] == 0


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/webhookRoutes/webhookRoute/nope")).status_code == 404
    assert (await client.put("/v1/webhookRoutes/webhookRoute/nope", json={})).status_code == 404
    assert (await client.delete("/v1/webhookRoutes/webhookRoute/nope")).status_code == 404
    bad = await client.get("/v1/webhookRoutes/webhookRoute/a%20b")
    assert bad.status_code == 400


async def test_editing_needs_admin_reading_needs_webhook_group(store: Store) -> None:
    limited = await token_for(
        store,
        permissions=Permissions(
            actions=frozenset({Action.READ}), groups=frozenset({Group.WEBHOOK})
        ),
    )
    async with client_for(store, limited) as client:
        assert (await client.get("/v1/webhookRoutes")).status_code == 200
        assert (await client.post("/v1/webhookRoutes", json={"name": "x"})).status_code == 403


async def test_functions_that_do_not_compile_are_refused(store: Store) -> None:
    async def check(source: str) -> str | None:
        return "SyntaxError: unexpected token" if "{{" in source else None

    services = Services.build(store)
    services.webhook_routes.attach_check(check)
    async with client_for(store, await token_for(store), services) as client:
        refused = await client.post(
            "/v1/webhookRoutes", json={"name": "x", "content": {"map": "return {{"}}
        )
        assert refused.status_code == 400
        assert "does not compile" in refused.json()["message"]
        assert (await client.get("/v1/webhookRoutes")).json()["total"] == 0


async def test_counters_error_flag_and_bounded_log(store: Store) -> None:
    route = await store.webhook_routes.create(
        {"name": "r", "target_url": "https://x.example/", "enabled": True, "filter_fn": "1"}
    )
    assert [r.id for r in await store.webhook_routes.firing()] == [route.id]
    before = await store.webhook_routes.versions()
    await store.webhook_routes.count_matches({route.id: 3})
    for number in range(ERROR_LOG_SIZE + 5):
        await store.webhook_routes.record_error(
            route.id, RouteError(kind="exec", message=f"boom {number}", at=number, function="fn")
        )
    found = await store.webhook_routes.get(route.id)
    assert found is not None
    assert found.match_count == 3
    assert found.error is not None
    assert found.error.message == f"boom {ERROR_LOG_SIZE + 4}"
    assert len(found.error_log) == ERROR_LOG_SIZE
    assert found.error_log[0].message == f"boom {ERROR_LOG_SIZE + 4}"
    await store.webhook_routes.clear_error(route.id)
    cleared = await store.webhook_routes.get(route.id)
    assert cleared is not None
    assert cleared.error is None
    assert len(cleared.error_log) == 20

    await store.webhook_routes.update(route.id, {"enabled": False})
    assert await store.webhook_routes.firing() == []
    assert await store.webhook_routes.versions() != before
