"""Public routes over a real socket: `/health` and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

TOKEN_OPERATIONS = {
    ("/v1/tokens", "get"): ("getV1Tokens", "read"),
    ("/v1/tokens", "post"): ("postV1Tokens", "write"),
    ("/v1/tokens/{token}", "get"): ("getV1TokensToken", "read"),
    ("/v1/tokens/{token}", "delete"): ("deleteV1TokensToken", "destructive"),
}


@pytest.fixture(scope="module")
def document(anon: httpx.Client) -> dict[str, Any]:
    response = anon.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}],
    ids=["no-token", "garbage-token"],
)
def test_health_needs_no_token(anon: httpx.Client, headers: dict[str, str]) -> None:
    response = anon.get("/health", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["store"] == "ok"
    assert isinstance(body["storeLatencyMs"], int | float)
    assert body["storeLatencyMs"] >= 0


def test_swagger_json_is_the_same_document(anon: httpx.Client, document: dict[str, Any]) -> None:
    response = anon.get("/swagger.json")

    assert response.status_code == 200
    assert response.json() == document


def test_document_declares_bearer_auth(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]

    assert document["openapi"].startswith("3.")
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert {"bearerAuth": []} in document["security"]


def test_token_operations_match_the_reference(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for (path, method), (operation_id, action) in TOKEN_OPERATIONS.items():
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        assert operation["x-ee-group"] == "admin"
        assert operation["x-ee-action"] == action
        assert "Access Tokens" in operation["tags"]
        assert operation.get("security", document["security"]) == [{"bearerAuth": []}]
        for status in ("400", "401", "403"):
            assert status in operation["responses"], (path, method, status)
    # Binding a token to an account that is not registered is refused with 404.
    assert "404" in paths["/v1/tokens"]["post"]["responses"]


def test_only_health_is_public(document: dict[str, Any]) -> None:
    public = [
        (path, method)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == []
    ]

    assert public == [("/health", "get")]


def test_list_parameters_have_the_reference_names(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/v1/tokens"]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}

    assert {"page", "pageSize", "query", "account"} <= set(by_name)
    assert by_name["pageSize"]["schema"]["maximum"] == 1000
    assert by_name["pageSize"]["schema"]["minimum"] == 1
    assert by_name["pageSize"]["schema"]["default"] == 20


def test_create_token_schema_fields(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/tokens"]["post"]["requestBody"]["content"]["application/json"]
    reference = body["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = document["components"]["schemas"][reference]

    assert set(schema["properties"]) >= {
        "account",
        "description",
        "scopes",
        "metadata",
        "restrictions",
        "permissions",
        "expires",
        "ip",
    }
    assert set(schema["required"]) >= {"description", "scopes"}
    assert schema.get("additionalProperties") is False
