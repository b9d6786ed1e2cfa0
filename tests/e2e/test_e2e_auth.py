"""Authentication and authorisation over a real socket: 401, 403 and 429 with their envelopes.

Only admin endpoints exist yet, so a token the API can mint (account-bound, or
narrowed with `permissions`) never gets past authorisation. Tokens that must
get past it while carrying restrictions are seeded into the store (see
`seed_token` in conftest.py).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mailwire.domain.tokens import RateLimit, Restrictions, Scope
from mailwire.testing.server import MailwireServer, mailwire_cli

IssueToken = Callable[..., dict[str, Any]]
SeedToken = Callable[..., str]
RegisterAccount = Callable[..., str]

#: The accounts this module binds tokens to; a token needs a registered account.
ACCOUNTS = ("acc-revoked", "acc-expiring", "acc-bound", "acc-order", "acc-referrer")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", autouse=True)
def _accounts(server: MailwireServer, register_account: RegisterAccount) -> None:
    for account in ACCOUNTS:
        register_account(server, account)


def assert_envelope(response: httpx.Response, status: int, error: str) -> str:
    """The reference's error shape; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["statusCode"] == status
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


def assert_401(response: httpx.Response) -> str:
    message = assert_envelope(response, 401, "Unauthorized")
    assert set(response.json()) == {"statusCode", "error", "message"}
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    return message


def net(*addresses: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(a) for a in addresses)


# ------------------------------------------------------------------ 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
        pytest.param({"Authorization": "Bearer garbage"}, id="garbage"),
        pytest.param({"Authorization": f"Bearer {'9' * 64}"}, id="unknown"),
        pytest.param({"Authorization": f"Bearer {'Z' * 64}"}, id="not-hex"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic-scheme"),
    ],
)
def test_without_a_valid_token_answers_401(anon: httpx.Client, headers: dict[str, str]) -> None:
    assert_401(anon.get("/v1/tokens", headers=headers))


def test_every_token_route_needs_a_token(anon: httpx.Client) -> None:
    some_id = "a" * 64
    assert_401(anon.get("/v1/tokens"))
    assert_401(anon.post("/v1/tokens", json={"description": "x", "scopes": ["api"]}))
    assert_401(anon.get(f"/v1/tokens/{some_id}"))
    assert_401(anon.delete(f"/v1/tokens/{some_id}"))


def test_token_in_query_string_is_accepted(anon: httpx.Client, server: MailwireServer) -> None:
    accepted = anon.get("/v1/tokens", params={"access_token": server.token})
    garbage = anon.get("/v1/tokens", params={"access_token": "garbage"})

    assert accepted.status_code == 200, accepted.text
    assert "tokens" in accepted.json()
    assert_401(garbage)


def test_authorization_header_wins_over_query_string(
    anon: httpx.Client, server: MailwireServer
) -> None:
    response = anon.get(
        "/v1/tokens", params={"access_token": server.token}, headers=bearer("9" * 64)
    )

    assert_401(response)


def test_revoked_token_answers_401(
    issue: IssueToken, api: httpx.Client, anon: httpx.Client
) -> None:
    created = issue(account="acc-revoked", description="soon gone", scopes=["api"])
    assert api.delete(f"/v1/tokens/{created['id']}").json() == {"deleted": True}

    message = assert_401(anon.get("/v1/tokens", headers=bearer(created["token"])))
    assert_401(anon.get("/v1/tokens", params={"access_token": created["token"]}))
    assert "not valid" in message


@pytest.mark.slow
def test_cli_revocation_applies_to_the_running_server(
    server: MailwireServer, anon: httpx.Client
) -> None:
    token = server.issue_token("--description", "revoked from the shell")
    assert anon.get("/v1/tokens", headers=bearer(token)).status_code == 200

    revoked = mailwire_cli(
        "tokens", "revoke", token, "--data-dir", str(server.data_dir), env=server.env
    )

    assert revoked.returncode == 0, revoked.stderr
    assert_401(anon.get("/v1/tokens", headers=bearer(token)))


def test_expired_token_answers_401(issue: IssueToken, anon: httpx.Client) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    created = issue(
        account="acc-expiring",
        description="short-lived",
        scopes=["api"],
        expires=expires.isoformat(),
    )
    # Known and valid for now: refused for its account binding, not for its age.
    before = anon.get("/v1/tokens", headers=bearer(created["token"]))
    assert_envelope(before, 403, "Forbidden")

    while datetime.now(UTC) < expires + timedelta(milliseconds=200):
        time.sleep(0.1)

    message = assert_401(anon.get("/v1/tokens", headers=bearer(created["token"])))
    assert "expired" in message


# ------------------------------------------------------------------ 403


def test_token_without_api_scope_answers_403(server: MailwireServer, anon: httpx.Client) -> None:
    smtp_only = server.issue_token("--scope", "smtp", "--description", "smtp only")

    message = assert_envelope(anon.get("/v1/tokens", headers=bearer(smtp_only)), 403, "Forbidden")

    assert "api" in message
    assert "scope" in message


def test_account_bound_token_cannot_manage_tokens(issue: IssueToken, anon: httpx.Client) -> None:
    created = issue(account="acc-bound", description="bound", scopes=["*"])
    some_id = "b" * 64

    for response in (
        anon.get("/v1/tokens", headers=bearer(created["token"])),
        anon.get(f"/v1/tokens/{some_id}", headers=bearer(created["token"])),
        anon.delete(f"/v1/tokens/{some_id}", headers=bearer(created["token"])),
        anon.post(
            "/v1/tokens",
            headers=bearer(created["token"]),
            json={"account": "acc-bound", "description": "child", "scopes": ["api"]},
        ),
    ):
        assert "account" in assert_envelope(response, 403, "Forbidden")


def test_token_with_permissions_cannot_manage_tokens(
    issue: IssueToken, anon: httpx.Client, token_total: Callable[[], int]
) -> None:
    created = issue(
        description="narrowed",
        scopes=["api"],
        permissions={"actions": ["read", "write", "destructive"], "groups": ["account"]},
    )
    before = token_total()

    listed = anon.get("/v1/tokens", headers=bearer(created["token"]))
    minted = anon.post(
        "/v1/tokens",
        headers=bearer(created["token"]),
        json={"account": "x", "description": "escalation", "scopes": ["api"]},
    )
    deleted = anon.delete(f"/v1/tokens/{created['id']}", headers=bearer(created["token"]))

    for response in (listed, minted, deleted):
        assert "administrative" in assert_envelope(response, 403, "Forbidden")
    assert token_total() == before


def test_address_restriction_is_checked_before_the_account_binding(
    issue: IssueToken, anon: httpx.Client
) -> None:
    elsewhere = issue(
        account="acc-order",
        description="other network",
        scopes=["api"],
        restrictions={"addresses": ["10.0.0.0/8", "2001:db8::/32"]},
    )
    here = issue(
        account="acc-order",
        description="loopback",
        scopes=["api"],
        restrictions={"addresses": ["127.0.0.1"]},
    )

    refused_address = anon.get("/v1/tokens", headers=bearer(elsewhere["token"]))
    refused_account = anon.get("/v1/tokens", headers=bearer(here["token"]))

    assert "address" in assert_envelope(refused_address, 403, "Forbidden")
    assert "account" in assert_envelope(refused_account, 403, "Forbidden")


def test_referrer_restriction_is_checked_before_the_account_binding(
    issue: IssueToken, anon: httpx.Client
) -> None:
    created = issue(
        account="acc-referrer",
        description="web app",
        scopes=["api"],
        restrictions={"referrers": ["https://app.example.com/*"]},
    )
    headers = bearer(created["token"])

    missing = anon.get("/v1/tokens", headers=headers)
    wrong = anon.get("/v1/tokens", headers={**headers, "Referer": "https://evil.example/"})
    right = anon.get("/v1/tokens", headers={**headers, "Referer": "https://APP.example.com/inbox"})

    assert "referrer" in assert_envelope(missing, 403, "Forbidden")
    assert "referrer" in assert_envelope(wrong, 403, "Forbidden")
    assert "account" in assert_envelope(right, 403, "Forbidden")


def test_address_restriction_on_a_token_that_reaches_the_endpoint(
    seed_token: SeedToken, anon: httpx.Client
) -> None:
    matching = seed_token(restrictions=Restrictions(addresses=net("127.0.0.0/8")))
    other = seed_token(restrictions=Restrictions(addresses=net("192.0.2.0/24", "::1/128")))

    allowed = anon.get("/v1/tokens", headers=bearer(matching))
    refused = anon.get("/v1/tokens", headers=bearer(other))

    assert allowed.status_code == 200, allowed.text
    assert "address" in assert_envelope(refused, 403, "Forbidden")


def test_forwarded_headers_do_not_lift_an_address_restriction(
    seed_token: SeedToken, anon: httpx.Client
) -> None:
    # No trusted proxy is configured, so X-Forwarded-For must not be believed.
    token = seed_token(restrictions=Restrictions(addresses=net("198.51.100.7/32")))

    response = anon.get(
        "/v1/tokens",
        headers={
            **bearer(token),
            "X-Forwarded-For": "198.51.100.7",
            "Forwarded": "for=198.51.100.7",
        },
    )

    assert "address" in assert_envelope(response, 403, "Forbidden")


def test_referrer_restriction_on_a_token_that_reaches_the_endpoint(
    seed_token: SeedToken, anon: httpx.Client
) -> None:
    token = seed_token(restrictions=Restrictions(referrers=("https://app.example.com/*",)))

    allowed = anon.get(
        "/v1/tokens", headers={**bearer(token), "Referer": "https://app.example.com/x"}
    )
    refused = anon.get("/v1/tokens", headers=bearer(token))

    assert allowed.status_code == 200, allowed.text
    assert "referrer" in assert_envelope(refused, 403, "Forbidden")


# ------------------------------------------------------------------ 429


def test_rate_limit_answers_429_with_ttl(seed_token: SeedToken, anon: httpx.Client) -> None:
    # A one-day window: the test cannot straddle a window boundary in practice.
    token = seed_token(
        restrictions=Restrictions(rate_limit=RateLimit(max_requests=2, window_seconds=86_400)),
        scopes=frozenset({Scope.ALL}),
    )
    headers = bearer(token)

    statuses = [anon.get("/v1/tokens", headers=headers).status_code for _ in range(2)]
    limited = anon.get("/v1/tokens", headers=headers)
    again = anon.get("/v1/tokens", params={"access_token": token})

    assert statuses == [200, 200]
    assert_envelope(limited, 429, "Too Many Requests")
    body = limited.json()
    assert 1 <= body["ttl"] <= 86_400
    assert limited.headers["retry-after"] == str(body["ttl"])
    assert again.status_code == 429
