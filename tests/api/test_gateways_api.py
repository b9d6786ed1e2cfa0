"""SMTP gateways through the API (in process) on SQLite and PostgreSQL: the reference's
shapes, masking, password handling, validation, permissions; and the domain's
host and id rules as properties."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_kit import client_for, token_for
from hypothesis import given
from hypothesis import strategies as st

from mailwire.domain.gateways import (
    GATEWAY_ID_PATTERN,
    MASK,
    check_host,
    is_gateway_id,
)
from mailwire.domain.tokens import Action, Group, Permissions
from mailwire.errors import InputError, NotFoundError
from mailwire.services.container import Services
from mailwire.store.gateways import GatewayValues
from mailwire.store.schema import metadata
from mailwire.store.store import Store

PASSWORD = "planted-GwApiPass-8b2c"  # searched for in every answer, the logs and the tables

GATEWAY: dict[str, Any] = {
    "gateway": "sendgun",
    "name": "Send gun",
    "host": "smtp.example.com",
    "port": 465,
    "secure": True,
    "user": "relay-user",
    "pass": PASSWORD,
}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, await token_for(store)) as opened:
        yield opened


async def create(client: httpx.AsyncClient, **changes: Any) -> httpx.Response:
    body = {**GATEWAY, **changes}
    return await client.post("/v1/gateway", json={k: v for k, v in body.items() if v is not ...})


async def stored_password(store: Store, gateway_id: str) -> str | None:
    login = await store.gateways.get_with_password(gateway_id)
    assert login is not None
    return login.password


async def test_create_show_list_update_delete(client: httpx.AsyncClient, store: Store) -> None:
    created = await create(client)
    assert created.status_code == 200, created.text
    assert created.json() == {"gateway": "sendgun", "state": "new"}

    shown = await client.get("/v1/gateway/sendgun")
    assert shown.json() == {
        "gateway": "sendgun",
        "name": "Send gun",
        "deliveries": 0,
        "lastUse": None,
        "lastError": None,
        "user": "relay-user",
        "pass": MASK,
        "host": "smtp.example.com",
        "port": 465,
        "secure": True,
    }
    listed = (await client.get("/v1/gateways")).json()
    assert listed == {
        "total": 1,
        "page": 0,
        "pages": 1,
        "gateways": [
            {
                "gateway": "sendgun",
                "name": "Send gun",
                "deliveries": 0,
                "lastUse": None,
                "lastError": None,
            }
        ],
    }

    changed = await client.put("/v1/gateway/edit/sendgun", json={"port": 587, "secure": False})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"gateway": "sendgun"}
    after = (await client.get("/v1/gateway/sendgun")).json()
    assert (after["port"], after["secure"], after["name"], after["pass"]) == (
        587,
        False,
        "Send gun",
        MASK,
    )
    assert await stored_password(store, "sendgun") == PASSWORD

    again = await create(client, name="Renamed")
    assert again.json() == {"gateway": "sendgun", "state": "existing"}
    assert (await client.get("/v1/gateway/sendgun")).json()["name"] == "Renamed"

    deleted = await client.delete("/v1/gateway/sendgun")
    assert deleted.status_code == 200
    assert deleted.json() == {"gateway": "sendgun", "deleted": True}
    missing = await client.get("/v1/gateway/sendgun")
    assert missing.status_code == 404
    assert missing.json()["code"] == "GatewayNotFound"
    assert await store.gateways.get_with_password("sendgun") is None


@pytest.mark.parametrize("given_id", [..., None])
async def test_an_id_is_generated_when_none_is_given(
    client: httpx.AsyncClient, given_id: Any
) -> None:
    created = await create(client, gateway=given_id)

    assert created.status_code == 200, created.text
    gateway_id = created.json()["gateway"]
    assert re.fullmatch(GATEWAY_ID_PATTERN, gateway_id)
    assert created.json()["state"] == "new"
    assert (await client.get(f"/v1/gateway/{gateway_id}")).status_code == 200


async def test_without_password_pass_is_left_out(client: httpx.AsyncClient) -> None:
    await create(client, user=..., **{"pass": ...})

    shown = (await client.get("/v1/gateway/sendgun")).json()

    assert "pass" not in shown
    assert shown["user"] is None


async def test_update_password_rules(client: httpx.AsyncClient, store: Store) -> None:
    await create(client)
    edit = "/v1/gateway/edit/sendgun"

    # Left out: kept. The mask as read: kept.
    await client.put(edit, json={"name": "x"})
    assert await stored_password(store, "sendgun") == PASSWORD
    assert (await client.put(edit, json={"pass": MASK})).status_code == 200
    assert await stored_password(store, "sendgun") == PASSWORD
    # A new value replaces it; null removes it.
    await client.put(edit, json={"pass": "second-secret"})
    assert await stored_password(store, "sendgun") == "second-secret"
    await client.put(edit, json={"pass": None})
    assert await stored_password(store, "sendgun") is None
    assert "pass" not in (await client.get("/v1/gateway/sendgun")).json()
    # The mask with nothing stored stands for nothing: refused.
    refused = await client.put(edit, json={"pass": MASK})
    assert refused.status_code == 400
    assert refused.json()["fields"][0]["key"] == "pass"
    # `user: null` removes the login name.
    await client.put(edit, json={"user": None})
    assert (await client.get("/v1/gateway/sendgun")).json()["user"] is None


async def test_create_with_the_mask_refuses_or_keeps(
    client: httpx.AsyncClient, store: Store
) -> None:
    assert (await create(client, gateway="fresh", **{"pass": MASK})).status_code == 400
    assert (await client.get("/v1/gateway/fresh")).status_code == 404

    await create(client)
    assert (await create(client, **{"pass": MASK})).status_code == 200
    assert await stored_password(store, "sendgun") == PASSWORD


async def test_the_password_is_never_shown_logged_or_stored_in_clear(
    client: httpx.AsyncClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        await create(client),
        await create(client, gateway="bad", host="bad host"),
        await client.put("/v1/gateway/edit/sendgun", json={"pass": PASSWORD, "port": 0}),
        await client.put("/v1/gateway/edit/sendgun", json={"pass": PASSWORD + "\r\nQUIT"}),
        await client.get("/v1/gateway/sendgun"),
        await client.get("/v1/gateways"),
        await client.put("/v1/gateway/edit/sendgun", json={"pass": PASSWORD}),
        await client.delete("/v1/gateway/sendgun"),
        await create(client),
    ]

    assert [a.status_code for a in answers] == [200, 400, 400, 400, 200, 200, 200, 200, 200]
    for answer in answers:
        assert PASSWORD not in answer.text
    assert any(record.name == "mailwire.api" for record in caplog.records)  # logs were captured
    assert PASSWORD not in caplog.text
    assert not [record for record in caplog.records if PASSWORD in repr(vars(record))]
    async with store.database.read() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(sa.select(table))).all()
            assert PASSWORD not in repr(rows), table.name
    assert await stored_password(store, "sendgun") == PASSWORD


async def test_listing_pages(client: httpx.AsyncClient) -> None:
    for number in range(5):
        assert (await create(client, gateway=f"gw-{number}")).status_code == 200

    first = (await client.get("/v1/gateways", params={"pageSize": 2})).json()
    last = (await client.get("/v1/gateways", params={"pageSize": 2, "page": 2})).json()

    assert (first["total"], first["pages"], len(first["gateways"])) == (5, 3, 2)
    assert [g["gateway"] for g in last["gateways"]] == ["gw-4"]
    for params in ({"pageSize": 0}, {"pageSize": 1001}, {"page": -1}):
        assert (await client.get("/v1/gateways", params=params)).status_code == 400


async def test_delivery_counters_are_shown(client: httpx.AsyncClient, store: Store) -> None:
    await create(client)
    await store.gateways.record_delivery("sendgun", ok=True)
    await store.gateways.record_delivery(
        "sendgun", ok=False, error={"response": "421 try later", "responseCode": 421}
    )

    shown = (await client.get("/v1/gateway/sendgun")).json()
    listed = (await client.get("/v1/gateways")).json()["gateways"][0]

    assert shown["deliveries"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", shown["lastUse"])
    assert shown["lastError"]["response"] == "421 try later"
    assert shown["lastError"]["responseCode"] == 421
    assert shown["lastError"]["status"] == "error"
    assert isinstance(shown["lastError"]["created"], int)
    assert "command" not in shown["lastError"]
    assert listed["lastError"] == shown["lastError"]


async def test_unknown_ids_answer_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/gateway/nope")).status_code == 404
    assert (await client.put("/v1/gateway/edit/nope", json={"name": "x"})).status_code == 404
    assert (await client.put("/v1/gateway/edit/nope", json={"pass": MASK})).status_code == 404
    assert (await client.delete("/v1/gateway/nope")).status_code == 404


BAD_CREATES: list[dict[str, Any]] = [
    {"name": ...},
    {"host": ...},
    {"port": ...},
    {"name": ""},
    {"name": "x" * 257},
    {"name": "a\r\nb"},
    {"gateway": "../etc/passwd"},
    {"gateway": ".."},
    {"gateway": "a b"},
    {"gateway": "x" * 257},
    {"host": "https://smtp.example.com"},
    {"host": "smtp.example.com:465"},
    {"host": "smtp example.com"},
    {"host": "smtp.example.com\r\nRCPT TO:<x@y>"},
    {"host": "999.1.1.1"},
    {"host": "h" * 256},
    {"host": "[10.0.0.1]"},
    {"port": 0},
    {"port": 65536},
    {"port": "smtp"},
    {"secure": "maybe"},
    {"user": "u" * 1025},
    {"user": "alice\nMAIL FROM:<x@y>"},
    {"pass": "p" * 1025},
    {"pass": "pw\x00x"},
    {"unknown": True},
]


async def test_bad_create_bodies_are_refused(client: httpx.AsyncClient) -> None:
    # One store for all the cases: opening a store per case would dominate the run.
    for changes in BAD_CREATES:
        response = await create(client, **changes)
        assert response.status_code == 400, (changes, response.text)
        assert response.json()["statusCode"] == 400
        assert response.json()["fields"], changes
    assert (await client.get("/v1/gateways")).json()["total"] == 0


BAD_UPDATES: list[dict[str, Any]] = [
    {"name": None},
    {"host": None},
    {"port": None},
    {"secure": None},
    {"host": "a/b"},
    {"port": 70000},
    {"user": "a\rb"},
    {"pass": "a\nb"},
    {"gateway": "other"},
]


async def test_bad_update_bodies_are_refused(client: httpx.AsyncClient) -> None:
    await create(client)
    before = (await client.get("/v1/gateway/sendgun")).json()

    for body in BAD_UPDATES:
        response = await client.put("/v1/gateway/edit/sendgun", json=body)
        assert response.status_code == 400, (body, response.text)
    assert (await client.get("/v1/gateway/sendgun")).json() == before


async def test_malformed_path_ids_are_refused(client: httpx.AsyncClient) -> None:
    for path_id in ("%2E%2E", "a%20b", "a%00b", "x" * 257, "%C3%A9"):
        for method, path in (
            ("GET", f"/v1/gateway/{path_id}"),
            ("DELETE", f"/v1/gateway/{path_id}"),
            ("PUT", f"/v1/gateway/edit/{path_id}"),
        ):
            response = await client.request(method, path, json={} if method == "PUT" else None)
            assert response.status_code == 400, (method, path, response.text)


async def test_ipv6_and_trailing_dot_hosts_are_accepted(client: httpx.AsyncClient) -> None:
    await create(client, host="[2001:DB8::1]")
    await create(client, gateway="dotted", host="smtp.example.com.")

    assert (await client.get("/v1/gateway/sendgun")).json()["host"] == "2001:db8::1"
    assert (await client.get("/v1/gateway/dotted")).json()["host"] == "smtp.example.com."


async def test_permissions_follow_the_reference(store: Store) -> None:
    reader = await token_for(
        store,
        permissions=Permissions(
            actions=frozenset({Action.READ, Action.DESTRUCTIVE}),
            groups=frozenset({Group.GATEWAY}),
        ),
    )
    bound = await token_for(store, account="alice")
    async with client_for(store, await token_for(store)) as admin:
        assert (await create(admin)).status_code == 200
    async with client_for(store, reader) as client:
        assert (await client.get("/v1/gateways")).status_code == 200
        assert (await client.get("/v1/gateway/sendgun")).status_code == 200
        # Registering and changing need an admin token (they carry a credential).
        assert (await create(client, gateway="other")).status_code == 403
        assert (await client.put("/v1/gateway/edit/sendgun", json={})).status_code == 403
        assert (await client.delete("/v1/gateway/sendgun")).status_code == 200
    async with client_for(store, bound) as client:
        assert (await client.get("/v1/gateways")).status_code == 403
        assert (await client.get("/v1/gateway/sendgun")).status_code == 403
    async with client_for(store, None) as client:
        assert (await client.get("/v1/gateways")).status_code == 401


async def test_the_service_applies_the_rules_whoever_calls(store: Store) -> None:
    service = Services.build(store).gateways
    good = GatewayValues(name="n", host="smtp.example.com", port=25, secure=False, user=None)
    cases = [
        ("..", good, None),
        (None, replace(good, host="a b"), None),
        (None, replace(good, host="1.2.3"), None),
        (None, replace(good, port=0), None),
        (None, replace(good, name=""), None),
        (None, replace(good, name="a\nb"), None),
        (None, replace(good, user="u" * 1025), None),
        (None, good, "p" * 1025),
        (None, good, "p\r\n"),
    ]
    for gateway_id, values, password in cases:
        with pytest.raises(InputError):
            await service.create(gateway_id, values, password)
    assert (await service.list(page=0, page_size=10)).total == 0

    gateway_id, _ = await service.create(None, replace(good, host="[::1]"), None)
    assert (await service.get(gateway_id)).host == "::1"
    with pytest.raises(InputError):
        await service.update(gateway_id, {"host": "x/y"})
    with pytest.raises(NotFoundError):
        await service.update("missing", {"port": 26})


# ---------------------------------------------------------------- domain rules


@given(st.text(max_size=300))
def test_a_host_is_either_refused_or_a_plain_name_or_address(text: str) -> None:
    try:
        host = check_host(text)
    except ValueError:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,255}", host), host
        assert not host.split(".")[-1 if not host.endswith(".") else -2].isdigit()


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_a_gateway_id_is_never_a_path_step(text: str) -> None:
    if is_gateway_id(text):
        assert 1 <= len(text) <= 256
        assert "/" not in text
        assert "\\" not in text
        assert text.strip(".")
        assert re.fullmatch(GATEWAY_ID_PATTERN, text)
