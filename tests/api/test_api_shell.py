"""The API shell in process: error envelopes, limits, OpenAPI document, request ids.

Behaviour over a real socket is covered in tests/e2e; here the app runs under
httpx's ASGI transport so that one service can be made to fail on purpose.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mailwire.api.app import create_app
from mailwire.domain.tokens import Scope
from mailwire.logs import configure_logging
from mailwire.services.container import Services
from mailwire.services.tokens import TokenRequest, TokenService
from mailwire.store.store import Store, open_store
from mailwire.testing.postgres import settings_for

BODY_LIMIT = 64 * 1024


class ExplodingTokens(TokenService):
    """A token service whose listing fails with an unexpected error."""

    async def list(self, **_kwargs: object) -> object:  # type: ignore[override]
        raise RuntimeError("internal detail: /srv/secret/path line 42")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(settings_for(tmp_path / "data"))
    yield opened
    await opened.close()


@pytest.fixture
async def root_token(store: Store) -> str:
    request = TokenRequest(description="root", scopes=frozenset({Scope.ALL}))
    issued = await Services.build(store).tokens.issue(request, allow_unrestricted=True)
    return issued.token


def client_for(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://mailwire", headers=headers)


async def test_unexpected_errors_answer_500_without_internals(
    store: Store, root_token: str
) -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        services = replace(Services.build(store), tokens=ExplodingTokens(store))
        app = create_app(services, body_limit=BODY_LIMIT)
        async with client_for(app, root_token) as client:
            response = await client.get("/v1/tokens")
    finally:
        logging.getLogger().handlers.clear()
    assert response.status_code == 500
    assert response.json() == {
        "statusCode": 500,
        "error": "Internal Server Error",
        "message": "An unexpected error occurred",
        "code": "InternalError",
    }
    assert "internal detail" not in response.text
    request_id = response.headers["x-request-id"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if line["event"] == "http.unhandled_error")
    assert failure["request_id"] == request_id
    assert "internal detail" in failure["exc"]  # the details go to the log instead


async def test_declared_content_length_over_the_limit_is_refused_before_reading(
    store: Store, root_token: str
) -> None:
    app = create_app(Services.build(store), body_limit=BODY_LIMIT)
    async with client_for(app, root_token) as client:
        body = b'{"description": "' + b"x" * (3 * 1024 * 1024) + b'"}'
        response = await client.post(
            "/v1/tokens", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"] == "Request Entity Too Large"


async def test_anonymous_clients_learn_nothing_from_validation(store: Store) -> None:
    app = create_app(Services.build(store), body_limit=BODY_LIMIT)
    async with client_for(app) as client:
        response = await client.post(
            "/v1/tokens", content=b"{not json", headers={"content-type": "application/json"}
        )
        oversized = await client.post("/v1/tokens", content=b"x" * (4 * 1024 * 1024))
    assert response.status_code == 401
    assert oversized.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_client_request_id_is_echoed_only_when_plain(store: Store) -> None:
    app = create_app(Services.build(store), body_limit=BODY_LIMIT)
    async with client_for(app) as client:
        kept = await client.get("/health", headers={"x-request-id": "abc-123"})
        replaced = await client.get(
            "/health", headers={"x-request-id": "bad id with spaces and <html>" * 3}
        )
    assert kept.headers["x-request-id"] == "abc-123"
    assert replaced.headers["x-request-id"] != "bad"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_openapi_document_has_reference_operations_and_bearer_auth(store: Store) -> None:
    app = create_app(Services.build(store), body_limit=BODY_LIMIT)
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        swagger = (await client.get("/swagger.json")).json()
    assert document == swagger
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    operations = {
        (path, method): spec
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    }
    expected = {
        ("/v1/tokens", "get"): ("getV1Tokens", "read"),
        ("/v1/tokens", "post"): ("postV1Tokens", "write"),
        ("/v1/tokens/{token}", "get"): ("getV1TokensToken", "read"),
        ("/v1/tokens/{token}", "delete"): ("deleteV1TokensToken", "destructive"),
    }
    for key, (operation_id, action) in expected.items():
        spec = operations[key]
        assert spec["operationId"] == operation_id
        assert (spec["x-ee-group"], spec["x-ee-action"]) == ("admin", action)
        assert "x-mailwire-body-limit" not in spec
        assert {"400", "401", "403", "429", "500"} <= set(spec["responses"])
    assert operations[("/health", "get")]["security"] == []
    list_params = {p["name"] for p in operations[("/v1/tokens", "get")]["parameters"]}
    assert list_params == {"page", "pageSize", "query", "account"}
    create = document["components"]["schemas"]["CreateToken"]
    assert set(create["required"]) == {"description", "scopes"}
    assert set(create["properties"]) == {
        "account", "description", "scopes", "metadata", "restrictions", "permissions",
        "expires", "ip",
    }  # fmt: skip
