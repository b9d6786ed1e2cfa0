"""Token lifecycle over a real socket: issue -> use -> list -> show -> revoke.

The root token comes from `mailwire tokens issue` (the CLI); every other token
is issued through `POST /v1/tokens` on the running server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mailwire.testing.server import MailwireServer

HEX64 = re.compile(r"^[0-9a-f]{64}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LIST_ITEM_KEYS = {"id", "description", "scopes", "created", "access"}

IssueToken = Callable[..., dict[str, Any]]
RegisterAccount = Callable[..., str]

#: The accounts this module binds tokens to; a token needs a registered account.
ACCOUNTS = (
    "acc-issue",
    "acc-use",
    "acc-list",
    "acc-pages",
    "acc-other",
    "acc-query",
    "acc-get",
    "acc-delete",
    "acc-wild",
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def _accounts(server: MailwireServer, register_account: RegisterAccount) -> None:
    for account in ACCOUNTS:
        register_account(server, account)


def test_post_returns_a_fresh_token_and_its_id(issue: IssueToken, server: MailwireServer) -> None:
    first = issue(account="acc-issue", description="first", scopes=["api"])
    second = issue(account="acc-issue", description="second", scopes="api")

    assert set(first) == {"token", "id"}
    for created in (first, second):
        assert HEX64.fullmatch(created["token"])
        assert created["id"] == sha256(created["token"])
    assert first["token"] != second["token"]
    assert server.token not in (first["token"], second["token"])


def test_new_tokens_authenticate_but_cannot_reach_admin_endpoints(
    issue: IssueToken, anon: httpx.Client
) -> None:
    bound = issue(account="acc-use", description="bound", scopes=["api"])
    wide = issue(
        description="wide",
        scopes=["api"],
        permissions={"groups": ["account", "message"], "actions": ["read"]},
    )

    # 403, not 401: the server knows these tokens, they just lack the admin rights.
    by_account = anon.get("/v1/tokens", headers=bearer(bound["token"]))
    assert by_account.status_code == 403, by_account.text
    assert "account" in by_account.json()["message"]
    by_permissions = anon.get("/v1/tokens", headers=bearer(wide["token"]))
    assert by_permissions.status_code == 403, by_permissions.text
    assert "administrative" in by_permissions.json()["message"]


def test_list_shape_and_no_token_values(
    issue: IssueToken, api: httpx.Client, server: MailwireServer
) -> None:
    bound = issue(
        account="acc-list",
        description="bound for listing",
        scopes=["api", "smtp"],
        metadata=json.dumps({"purpose": "listing"}),
        restrictions={"addresses": ["10.1.0.0/16"]},
    )
    wide = issue(description="wide for listing", scopes=["api"], permissions={"actions": "read"})

    response = api.get("/v1/tokens", params={"pageSize": 1000})
    assert response.status_code == 200, response.text
    listing = response.json()
    assert set(listing) == {"account", "total", "page", "pages", "tokens"}
    assert listing["account"] is None
    assert listing["page"] == 0
    assert listing["total"] == len(listing["tokens"]) >= 3
    assert listing["pages"] == 1
    for text in (server.token, bound["token"], wide["token"]):
        assert text not in response.text

    items = {item["id"]: item for item in listing["tokens"]}
    for item in items.values():
        assert set(item) >= LIST_ITEM_KEYS
        assert "token" not in item
        assert set(item["access"]) == {"time", "ip"}
        assert ISO_MS.fullmatch(item["created"])

    root = items[sha256(server.token)]
    assert root["account"] is None
    assert root["scopes"] == ["*"]
    # The root token has just been used by this very request's predecessors.
    assert ISO_MS.fullmatch(root["access"]["time"])
    assert root["access"]["ip"] == "127.0.0.1"

    listed_bound = items[bound["id"]]
    assert listed_bound["account"] == "acc-list"
    assert listed_bound["description"] == "bound for listing"
    assert listed_bound["scopes"] == ["api", "smtp"]
    assert json.loads(listed_bound["metadata"]) == {"purpose": "listing"}
    assert listed_bound["restrictions"]["addresses"] == ["10.1.0.0/16"]
    assert listed_bound["remoteAddress"] == "127.0.0.1"
    assert listed_bound["access"] == {"time": None, "ip": None}

    listed_wide = items[wide["id"]]
    assert listed_wide["account"] is None
    assert listed_wide["permissions"]["actions"] == ["read"]


def test_list_filtered_by_account_and_paged(issue: IssueToken, api: httpx.Client) -> None:
    ids = {
        issue(account="acc-pages", description=f"page {n}", scopes=["api"])["id"] for n in range(3)
    }
    issue(account="acc-other", description="elsewhere", scopes=["api"])

    first = api.get("/v1/tokens", params={"account": " acc-pages ", "pageSize": 2}).json()
    second = api.get("/v1/tokens", params={"account": "acc-pages", "pageSize": 2, "page": 1}).json()
    past = api.get("/v1/tokens", params={"account": "acc-pages", "pageSize": 2, "page": 2}).json()

    assert first["account"] == "acc-pages"
    assert (first["total"], first["pages"], first["page"]) == (3, 2, 0)
    assert (second["total"], second["pages"], second["page"]) == (3, 2, 1)
    assert len(first["tokens"]) == 2
    assert len(second["tokens"]) == 1
    assert past["tokens"] == []
    assert {t["id"] for t in first["tokens"] + second["tokens"]} == ids
    assert all(t["account"] == "acc-pages" for t in first["tokens"] + second["tokens"])


def test_list_query_matches_description(issue: IssueToken, api: httpx.Client) -> None:
    wanted = issue(account="acc-query", description="needle-7f3a in a haystack", scopes=["api"])
    issue(account="acc-query", description="just hay", scopes=["api"])

    found = api.get("/v1/tokens", params={"query": "needle-7f3a"}).json()

    assert [t["id"] for t in found["tokens"]] == [wanted["id"]]
    assert found["total"] == 1


def test_get_one_token_by_id(issue: IssueToken, api: httpx.Client) -> None:
    created = issue(
        account="acc-get",
        description="shown alone",
        scopes=["api"],
        expires="2099-01-01T00:00:00Z",
        ip="192.0.2.7",
    )

    response = api.get(f"/v1/tokens/{created['id']}")
    upper = api.get(f"/v1/tokens/{created['id'].upper()}")

    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["id"] == created["id"]
    assert shown["account"] == "acc-get"
    assert shown["description"] == "shown alone"
    assert shown["scopes"] == ["api"]
    assert shown["expires"] == "2099-01-01T00:00:00.000Z"
    assert shown["ip"] == "192.0.2.7"
    assert ISO_MS.fullmatch(shown["created"])
    assert created["token"] not in response.text
    assert upper.json() == shown


def test_get_unknown_id_is_404(api: httpx.Client) -> None:
    response = api.get(f"/v1/tokens/{'ab' * 32}")

    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": response.json()["message"],
        "code": "TokenNotFound",
    }


def test_post_for_an_unknown_account_is_404_and_issues_nothing(
    api: httpx.Client, token_total: Callable[[], int]
) -> None:
    before = token_total()

    response = api.post(
        "/v1/tokens",
        json={"account": "acc-never-registered", "description": "x", "scopes": ["api"]},
    )

    assert response.status_code == 404, response.text
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": response.json()["message"],
        "code": "AccountNotFound",
    }
    assert response.json()["message"]
    assert token_total() == before
    listed = api.get("/v1/tokens", params={"account": "acc-never-registered"}).json()
    assert listed["total"] == 0


def test_delete_by_id_revokes_at_once(
    issue: IssueToken, api: httpx.Client, anon: httpx.Client, token_total: Callable[[], int]
) -> None:
    created = issue(account="acc-delete", description="to revoke", scopes=["api"])
    before = token_total()
    assert anon.get("/v1/tokens", headers=bearer(created["token"])).status_code == 403

    response = api.delete(f"/v1/tokens/{created['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": True}
    refused = anon.get("/v1/tokens", headers=bearer(created["token"]))
    assert refused.status_code == 401
    assert api.get(f"/v1/tokens/{created['id']}").status_code == 404
    assert token_total() == before - 1
    assert api.delete(f"/v1/tokens/{created['id']}").json() == {"deleted": False}


def test_delete_by_token_value(
    issue: IssueToken, api: httpx.Client, anon: httpx.Client, token_total: Callable[[], int]
) -> None:
    created = issue(description="revoked by value", scopes=["api"], permissions={"actions": "read"})
    before = token_total()

    response = api.delete(f"/v1/tokens/{created['token']}")

    assert response.json() == {"deleted": True}
    assert anon.get("/v1/tokens", headers=bearer(created["token"])).status_code == 401
    assert api.get(f"/v1/tokens/{created['id']}").status_code == 404
    assert token_total() == before - 1


def test_delete_unknown_id_deletes_nothing(
    api: httpx.Client, token_total: Callable[[], int]
) -> None:
    before = token_total()

    response = api.delete(f"/v1/tokens/{'0' * 64}")

    assert response.status_code == 200
    assert response.json() == {"deleted": False}
    assert token_total() == before


def test_list_query_treats_wildcards_literally(issue: IssueToken, api: httpx.Client) -> None:
    literal = issue(account="acc-wild", description="50% off_sale", scopes=["api"])
    issue(account="acc-wild", description="no wildcards here: offXsale", scopes=["api"])

    percent = api.get("/v1/tokens", params={"query": "%", "pageSize": 1000}).json()
    underscore = api.get("/v1/tokens", params={"query": "f_s", "pageSize": 1000}).json()

    assert literal["id"] in {t["id"] for t in percent["tokens"]}
    assert all("%" in t["description"] + (t["account"] or "") for t in percent["tokens"])
    assert [t["id"] for t in underscore["tokens"]] == [literal["id"]]
