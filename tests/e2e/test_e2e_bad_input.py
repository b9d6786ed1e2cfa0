"""Bad input over a real socket: 400/404/405/413 envelopes, and never a change of state.

Every refused request is followed by a look at the token count (and, for token
ids, at the token itself): a refusal that still wrote something is a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mailwire.testing.server import MailwireServer

MiB = 1024 * 1024
CREATE_LIMIT = 2 * MiB
VALID = {"account": "acc-bad", "description": "valid", "scopes": ["api"]}

RegisterAccount = Callable[..., str]


def assert_400(response: httpx.Response) -> list[dict[str, str]]:
    """A validation error in the reference's shape; returns `fields`."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    assert isinstance(body["message"], str)
    assert body["message"]
    fields: list[dict[str, str]] = body["fields"]
    assert fields
    for field in fields:
        assert set(field) == {"message", "key"}
    return fields


def keys(fields: list[dict[str, str]]) -> set[str]:
    return {field["key"] for field in fields}


@pytest.fixture(scope="module", autouse=True)
def _account(server: MailwireServer, register_account: RegisterAccount) -> None:
    """`VALID` is valid only once its account exists."""
    register_account(server, str(VALID["account"]))


@pytest.fixture
def unchanged(token_total: Callable[[], int]) -> Iterator[None]:
    """Fails the test if the number of tokens changed while it ran."""
    before = token_total()
    yield
    assert token_total() == before, "a refused request changed the stored tokens"


def big_metadata_body(size: int) -> bytes:
    return json.dumps({**VALID, "metadata": json.dumps({"blob": "x" * size})}).encode()


# ------------------------------------------------------------------ POST /v1/tokens bodies


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param(b'{"description": "x", "scopes": ["api"]', "body", id="truncated"),
        pytest.param(b"{bad json}", "body", id="garbage"),
        pytest.param(b"[1, 2]", "body", id="array"),
        pytest.param(b'"just a string"', "body", id="string"),
        pytest.param(b"", "body", id="empty"),
    ],
)
def test_malformed_json_is_400(api: httpx.Client, raw: bytes, key: str) -> None:
    response = api.post("/v1/tokens", content=raw, headers={"Content-Type": "application/json"})

    assert keys(assert_400(response)) == {key}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param({**VALID, "description": 5}, "description", id="description-number"),
        pytest.param({**VALID, "account": ["a"]}, "account", id="account-list"),
        pytest.param({**VALID, "scopes": [7]}, "scopes.0", id="scope-number"),
        pytest.param({**VALID, "scopes": ["root"]}, "scopes.0", id="scope-unknown"),
        pytest.param({**VALID, "scopes": []}, "scopes", id="scopes-empty"),
        pytest.param({**VALID, "metadata": {"a": 1}}, "metadata", id="metadata-object"),
        pytest.param({**VALID, "metadata": "{not json"}, "metadata", id="metadata-not-json"),
        pytest.param({**VALID, "expires": "soon"}, "expires", id="expires-garbage"),
        pytest.param({**VALID, "expires": "2099-01-01T00:00:00"}, "expires", id="expires-naive"),
        pytest.param({**VALID, "ip": "10.0.0.0/8"}, "ip", id="ip-cidr"),
        pytest.param(
            {**VALID, "restrictions": {"addresses": ["not-an-ip"]}},
            "restrictions.addresses.0",
            id="address-garbage",
        ),
        pytest.param(
            {**VALID, "restrictions": {"rateLimit": {"maxRequests": 0, "timeWindow": 60}}},
            "restrictions.rateLimit.maxRequests",
            id="rate-zero",
        ),
        pytest.param(
            {**VALID, "permissions": {"actions": ["fly"]}},
            "permissions.actions.0",
            id="action-unknown",
        ),
    ],
)
def test_wrong_types_and_values_are_400(api: httpx.Client, body: dict[str, Any], key: str) -> None:
    assert key in keys(assert_400(api.post("/v1/tokens", json=body)))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param({**VALID, "bogus": 1}, "bogus", id="top-level"),
        pytest.param(
            {**VALID, "restrictions": {"addresses": ["127.0.0.1"], "hosts": ["x"]}},
            "restrictions.hosts",
            id="in-restrictions",
        ),
        pytest.param(
            {**VALID, "permissions": {"actions": ["read"], "admin": True}},
            "permissions.admin",
            id="in-permissions",
        ),
    ],
)
def test_unknown_field_is_400_naming_it(api: httpx.Client, body: dict[str, Any], key: str) -> None:
    fields = assert_400(api.post("/v1/tokens", json=body))

    assert keys(fields) == {key}
    assert key.rsplit(".", 1)[-1] in fields[0]["message"]


@pytest.mark.usefixtures("unchanged")
def test_missing_description_is_400(api: httpx.Client) -> None:
    body = {"account": "acc-bad", "scopes": ["api"]}

    fields = assert_400(api.post("/v1/tokens", json=body))
    blank = assert_400(api.post("/v1/tokens", json={**body, "description": "   "}))

    assert keys(fields) == {"description"}
    assert keys(blank) == {"description"}


@pytest.mark.usefixtures("unchanged")
def test_instance_wide_token_without_permissions_is_400(api: httpx.Client) -> None:
    response = api.post("/v1/tokens", json={"description": "everything", "scopes": ["*"]})

    assert keys(assert_400(response)) == {"permissions"}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("groups", [["admin"], "admin", ["account", "admin"]])
def test_admin_group_cannot_be_granted(api: httpx.Client, groups: object) -> None:
    body = {"description": "escalation", "scopes": ["api"], "permissions": {"groups": groups}}

    fields = assert_400(api.post("/v1/tokens", json=body))

    assert all(key.startswith("permissions.groups") for key in keys(fields))


@pytest.mark.usefixtures("unchanged")
def test_empty_permissions_are_400(api: httpx.Client) -> None:
    body = {"description": "nothing", "scopes": ["api"], "permissions": {}}

    assert keys(assert_400(api.post("/v1/tokens", json=body))) == {"permissions"}


@pytest.mark.usefixtures("unchanged")
def test_expiry_in_the_past_is_400(api: httpx.Client) -> None:
    body = {**VALID, "expires": "2001-01-01T00:00:00Z"}

    assert keys(assert_400(api.post("/v1/tokens", json=body))) == {"expires"}


@pytest.mark.usefixtures("unchanged")
def test_anonymous_bad_body_learns_nothing(anon: httpx.Client) -> None:
    # Authentication comes before validation: no field names for strangers.
    response = anon.post(
        "/v1/tokens", content=b"{bad", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401
    assert "fields" not in response.json()


# ------------------------------------------------------------------ body size limits


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["statusCode"] == 413
    assert body["error"] == "Request Entity Too Large"
    assert str(CREATE_LIMIT) in body["message"]


@pytest.mark.usefixtures("unchanged")
def test_oversized_body_with_content_length_is_413(api: httpx.Client) -> None:
    body = big_metadata_body(3 * MiB)

    response = api.post("/v1/tokens", content=body, headers={"Content-Type": "application/json"})

    assert_413(response)


@pytest.mark.usefixtures("unchanged")
def test_oversized_chunked_body_is_413(api: httpx.Client) -> None:
    body = big_metadata_body(3 * MiB)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = api.post(
        "/v1/tokens", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_413(response)


def test_body_just_under_the_route_limit_is_accepted(
    api: httpx.Client, token_total: Callable[[], int]
) -> None:
    # Metadata may be up to 1 MiB; the route's limit leaves room for it.
    body = big_metadata_body(MiB - 20)
    assert len(body) > MiB
    before = token_total()

    response = api.post("/v1/tokens", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text[:500]
    assert token_total() == before + 1
    assert api.delete(f"/v1/tokens/{response.json()['id']}").json() == {"deleted": True}


def test_bodies_are_limited_on_routes_that_take_none(api: httpx.Client) -> None:
    # The app-wide default (1 MiB) applies to every route, not only to POST.
    response = api.request("GET", "/v1/tokens", content=b"x" * (2 * MiB))

    assert response.status_code == 413, response.text[:500]
    assert response.json()["statusCode"] == 413


# ------------------------------------------------------------------ query and path


@pytest.mark.parametrize(
    ("params", "key"),
    [
        pytest.param({"pageSize": 0}, "pageSize", id="pageSize-0"),
        pytest.param({"pageSize": 1001}, "pageSize", id="pageSize-1001"),
        pytest.param({"pageSize": "ten"}, "pageSize", id="pageSize-text"),
        pytest.param({"page": -1}, "page", id="page-negative"),
        pytest.param({"page": 1_048_577}, "page", id="page-too-far"),
        pytest.param({"query": "q" * 1025}, "query", id="query-too-long"),
        pytest.param({"account": "a" * 257}, "account", id="account-too-long"),
    ],
)
def test_bad_list_arguments_are_400(api: httpx.Client, params: dict[str, Any], key: str) -> None:
    assert keys(assert_400(api.get("/v1/tokens", params=params))) == {key}


@pytest.mark.parametrize(
    "token_id",
    ["xyz", "a" * 63, "a" * 65, "g" * 64, ("a" * 63) + "%20"],
    ids=["short-word", "63-hex", "65-hex", "not-hex", "space"],
)
def test_bad_token_id_in_path_is_400(
    api: httpx.Client, token_total: Callable[[], int], token_id: str
) -> None:
    before = token_total()

    shown = api.get(f"/v1/tokens/{token_id}")
    deleted = api.delete(f"/v1/tokens/{token_id}")

    assert keys(assert_400(shown)) == {"token"}
    assert keys(assert_400(deleted)) == {"token"}
    assert token_total() == before


def test_bad_token_id_does_not_touch_the_token_it_resembles(
    issue: Callable[..., dict[str, Any]], api: httpx.Client
) -> None:
    created = issue(**VALID)

    assert_400(api.delete(f"/v1/tokens/{created['id']}0"))
    assert_400(api.delete(f"/v1/tokens/{created['id'][:-1]}"))

    assert api.get(f"/v1/tokens/{created['id']}").status_code == 200


@pytest.mark.parametrize("client_name", ["api", "anon"])
def test_unknown_route_is_404_envelope(request: pytest.FixtureRequest, client_name: str) -> None:
    client: httpx.Client = request.getfixturevalue(client_name)

    response = client.get("/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": response.json()["message"],
    }


def test_wrong_method_is_405_envelope(api: httpx.Client, token_total: Callable[[], int]) -> None:
    before = token_total()

    response = api.put("/v1/tokens", json=VALID)

    assert response.status_code == 405
    assert response.json()["statusCode"] == 405
    assert response.json()["error"] == "Method Not Allowed"
    assert token_total() == before


def test_errors_carry_a_request_id(api: httpx.Client) -> None:
    chosen = api.get("/v1/tokens", params={"pageSize": 0}, headers={"X-Request-Id": "e2e-req-1"})
    generated = api.get("/v1/no-such-thing")

    assert chosen.headers["x-request-id"] == "e2e-req-1"
    assert len(generated.headers["x-request-id"]) >= 16
