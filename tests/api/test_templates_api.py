"""`/v1/templates...` through the API (in process) over a real store: the reference's
shapes, paging, 404s, validation, flush, and what narrowed tokens may reach."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_kit import client_for, token_for

from mailwire.api.errors import mailwire_error_response
from mailwire.domain.templates import MAX_BODY_LENGTH, TemplateContentError
from mailwire.domain.tokens import Action, Group, Permissions
from mailwire.services.container import Services
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store
from mailwire.store.templates import TemplateStore

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONTENT = {
    "subject": "Welcome {{params.name}}",
    "text": "Hello {{params.name}}",
    "html": "<p>Hello {{params.name}}</p>",
    "previewText": "Glad you are here",
}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    values = AccountValues(name="Ann", email=None, settings={}, notify_from=0)
    for account in ("ann", "bob"):
        await store.accounts.create_or_update(account, values, {})
    async with client_for(store, await token_for(store)) as opened:
        yield opened


async def create(client: httpx.AsyncClient, account: str | None, **body: Any) -> str:
    document = {"account": account, "name": "Welcome", "content": CONTENT, **body}
    response = await client.post("/v1/templates/template", json=document)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_create_show_list_update_delete(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/templates/template",
        json={
            "account": "ann",
            "name": "Welcome",
            "description": "first mail",
            "content": {**CONTENT, "subject": "  Welcome  ", "previewText": "  kept  "},
        },
    )
    assert created.status_code == 200, created.text
    answer = created.json()
    template_id = answer["id"]
    assert answer == {"created": True, "account": "ann", "id": template_id}
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", template_id)

    shown = (await client.get(f"/v1/templates/template/{template_id}")).json()
    assert shown["account"] == "ann"
    assert shown["name"] == "Welcome"
    assert shown["description"] == "first mail"
    assert shown["format"] == "html"
    assert ISO.match(shown["created"])
    assert ISO.match(shown["updated"])
    assert shown["content"]["subject"] == "Welcome"  # trimmed, as the reference trims it
    assert shown["content"]["previewText"] == "  kept  "  # the reference does not trim this

    listed = (await client.get("/v1/templates", params={"account": "ann"})).json()
    assert listed["account"] == "ann"
    assert (listed["total"], listed["page"], listed["pages"]) == (1, 0, 1)
    summary = listed["templates"][0]
    assert set(summary) == {"id", "name", "description", "format", "created", "updated"}

    changed = await client.put(
        f"/v1/templates/template/{template_id}",
        json={"name": "Renamed", "format": "markdown", "content": {"text": "only text"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"updated": True, "account": "ann", "id": template_id}
    after = (await client.get(f"/v1/templates/template/{template_id}")).json()
    assert after["name"] == "Renamed"
    assert after["description"] == "first mail"  # not sent, kept
    assert after["format"] == "markdown"
    assert after["content"] == {"text": "only text"}  # content is replaced whole
    assert after["updated"] >= after["created"]

    deleted = await client.delete(f"/v1/templates/template/{template_id}")
    assert deleted.json() == {"deleted": True, "account": "ann", "id": template_id}
    for method in ("GET", "PUT", "DELETE"):
        gone = await client.request(
            method, f"/v1/templates/template/{template_id}", json={"name": "x"}
        )
        assert gone.status_code == 404, method
        assert gone.json()["code"] == "TemplateNotFound"


async def test_global_templates_are_listed_apart(client: httpx.AsyncClient) -> None:
    explicit = await create(client, None)
    absent = await client.post(
        "/v1/templates/template", json={"name": "No account", "content": {"text": "x"}}
    )
    assert absent.json()["account"] is None
    await create(client, "ann")
    shown = (await client.get(f"/v1/templates/template/{explicit}")).json()
    assert shown["account"] is None
    assert "description" not in shown  # absent fields are left out, as in the reference

    public = (await client.get("/v1/templates")).json()
    assert public["account"] is None
    assert public["total"] == 2
    anns = (await client.get("/v1/templates", params={"account": "ann"})).json()
    assert anns["total"] == 1  # an account's list does not include the global templates


async def test_paging_newest_first(client: httpx.AsyncClient) -> None:
    ids = [await create(client, "bob", name=f"T{n}") for n in range(5)]
    pages = [
        (
            await client.get("/v1/templates", params={"account": "bob", "page": p, "pageSize": 2})
        ).json()
        for p in range(4)
    ]
    assert [page["pages"] for page in pages] == [3, 3, 3, 3]
    assert [page["total"] for page in pages] == [5, 5, 5, 5]
    seen = [t["id"] for page in pages for t in page["templates"]]
    assert sorted(seen) == sorted(ids)
    assert [len(page["templates"]) for page in pages] == [2, 2, 1, 0]
    created = [t["created"] for page in pages for t in page["templates"]]
    assert created == sorted(created, reverse=True)
    for bad in ({"page": -1}, {"pageSize": 0}, {"pageSize": 1001}):
        assert (await client.get("/v1/templates", params=bad)).status_code == 400


async def test_unknown_accounts_are_404(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/v1/templates", params={"account": "ghost"}),
        await client.post(
            "/v1/templates/template", json={"account": "ghost", "name": "T", "content": {}}
        ),
        await client.delete("/v1/templates/account/ghost", params={"force": "true"}),
    ]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert {answer.json()["code"] for answer in answers} == {"AccountNotFound"}


#: Bodies the create route refuses, and the field each error names.
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": "x" * 257}, "name"),
    ({"name": ""}, "name"),
    ({"description": "d" * 1025}, "description"),
    ({"format": "pdf"}, "format"),
    ({"content": {"subject": "s" * 10241}}, "content.subject"),
    ({"content": {"previewText": "p" * 1025}}, "content.previewText"),
    ({"content": {"html": "h" * (MAX_BODY_LENGTH + 1)}}, "content.html"),
    ({"content": {"body": "unknown field"}}, "content.body"),
    ({"content": None}, "content"),
    ({"account": "a" * 257}, "account"),
]


async def test_invalid_bodies_are_400(client: httpx.AsyncClient) -> None:
    template_id = await create(client, None)
    for body, key in INVALID:
        document = {"account": None, "name": "T", "content": {"text": "x"}, **body}
        response = await client.post("/v1/templates/template", json=document)
        assert response.status_code == 400, (key, response.text)
        assert key in [field["key"] for field in response.json()["fields"]], key
        if key == "account" or body == {"content": None}:
            continue  # not part of an update (a null content leaves the stored one as it is)
        changed = await client.put(f"/v1/templates/template/{template_id}", json=body)
        assert changed.status_code == 400, (key, changed.text)
        assert key in [field["key"] for field in changed.json()["fields"]], key
    assert (await client.get("/v1/templates")).json()["total"] == 1


async def test_largest_content_is_accepted(client: httpx.AsyncClient) -> None:
    # Two bytes of UTF-8 per character: the body limit must leave room for that.
    template_id = await create(client, None, content={"html": "é" * MAX_BODY_LENGTH})
    shown = (await client.get(f"/v1/templates/template/{template_id}")).json()
    assert len(shown["content"]["html"]) == MAX_BODY_LENGTH


async def test_quota_is_a_clear_400(store: Store) -> None:
    await store.accounts.create_or_update(
        "ann", AccountValues(name="Ann", email=None, settings={}, notify_from=0), {}
    )
    limited = dataclasses.replace(store, templates=TemplateStore(store.database, quota=1))
    async with client_for(limited, await token_for(store), Services.build(limited)) as client:
        await create(client, "ann")
        refused = await client.post(
            "/v1/templates/template", json={"account": "ann", "name": "T", "content": {}}
        )
        assert refused.status_code == 400
        assert "1 templates" in refused.json()["message"]
        assert refused.json()["fields"][0]["key"] == "account"
        await create(client, None)  # the global space has its own quota


async def test_flush_needs_force_and_touches_one_account(client: httpx.AsyncClient) -> None:
    anns = [await create(client, "ann") for _ in range(2)]
    kept = [await create(client, "bob"), await create(client, None)]
    refused = await client.delete("/v1/templates/account/ann")
    assert refused.status_code == 400
    assert refused.json()["fields"][0]["key"] == "force"
    assert (await client.get(f"/v1/templates/template/{anns[0]}")).status_code == 200

    flushed = await client.delete("/v1/templates/account/ann", params={"force": "true"})
    assert flushed.status_code == 200
    assert flushed.json() == {"flushed": True, "account": "ann"}
    for template_id in anns:
        assert (await client.get(f"/v1/templates/template/{template_id}")).status_code == 404
    for template_id in kept:
        assert (await client.get(f"/v1/templates/template/{template_id}")).status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_account_bound_tokens_reach_only_their_own_flush(
    store: Store, client: httpx.AsyncClient
) -> None:
    anns = await create(client, "ann")
    public = await create(client, None)
    bound = bearer(await token_for(store, account="ann"))
    body = {"account": "ann", "name": "T", "content": {}}
    denied = [
        await client.get("/v1/templates", params={"account": "ann"}, headers=bound),
        await client.get("/v1/templates", headers=bound),
        await client.get(f"/v1/templates/template/{anns}", headers=bound),
        await client.get(f"/v1/templates/template/{public}", headers=bound),
        await client.post("/v1/templates/template", json=body, headers=bound),
        await client.put(f"/v1/templates/template/{anns}", json={"name": "x"}, headers=bound),
        await client.delete(f"/v1/templates/template/{public}", headers=bound),
        await client.delete("/v1/templates/account/bob", params={"force": "1"}, headers=bound),
    ]
    assert [answer.status_code for answer in denied] == [403] * len(denied)
    own = await client.delete("/v1/templates/account/ann", params={"force": "1"}, headers=bound)
    assert own.status_code == 200
    assert (await client.get(f"/v1/templates/template/{anns}")).status_code == 404
    assert (await client.get(f"/v1/templates/template/{public}")).status_code == 200


async def test_permissions_select_group_and_action(store: Store, client: httpx.AsyncClient) -> None:
    template_id = await create(client, None)
    path = f"/v1/templates/template/{template_id}"
    readers = Permissions(groups=frozenset({Group.TEMPLATE}), actions=frozenset({Action.READ}))
    reader = bearer(await token_for(store, permissions=readers))
    assert (await client.get("/v1/templates", headers=reader)).status_code == 200
    assert (await client.get(path, headers=reader)).status_code == 200
    assert (await client.put(path, json={"name": "x"}, headers=reader)).status_code == 403
    assert (await client.delete(path, headers=reader)).status_code == 403
    others = Permissions(groups=frozenset({Group.MESSAGE}))
    outsider = bearer(await token_for(store, permissions=others))
    assert (await client.get("/v1/templates", headers=outsider)).status_code == 403
    assert (await client.get("/v1/templates", headers={"Authorization": ""})).status_code == 401


def test_render_errors_answer_400_naming_the_field() -> None:
    error = TemplateContentError("html", "line 2, column 3: unclosed block", line=2, column=3)
    response = mailwire_error_response(error)
    assert response.status_code == 400
    assert b'"key":"content.html"' in response.body


#: (path, method) -> (operationId, action, query parameters), as in the reference.
OPERATIONS = {
    ("/v1/templates", "get"): ("getV1Templates", "read", {"account", "page", "pageSize"}),
    ("/v1/templates/template", "post"): ("postV1TemplatesTemplate", "write", set()),
    ("/v1/templates/template/{template}", "get"): (
        "getV1TemplatesTemplateTemplate",
        "read",
        set(),
    ),
    ("/v1/templates/template/{template}", "put"): (
        "putV1TemplatesTemplateTemplate",
        "write",
        set(),
    ),
    ("/v1/templates/template/{template}", "delete"): (
        "deleteV1TemplatesTemplateTemplate",
        "destructive",
        set(),
    ),
    ("/v1/templates/account/{account}", "delete"): (
        "deleteV1TemplatesAccountAccount",
        "destructive",
        {"force"},
    ),
}


async def test_operations_match_the_reference(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for (path, method), (operation_id, action, query) in OPERATIONS.items():
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        assert (operation["x-ee-group"], operation["x-ee-action"]) == ("template", action)
        names = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
        assert names == query, path
