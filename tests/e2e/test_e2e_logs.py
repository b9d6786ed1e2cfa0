"""The server's logs over a full request cycle carry no secret, and are JSON lines.

The server runs with `MAILWIRE_SECRET` set; requests plant tokens in the
Authorization header, in `?access_token=` and in the URL path, and a
password-like value in a JSON body. The captured log (the process's stderr)
is then searched for every planted value, raw and URL-encoded.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mailwire.testing.server import MailwireServer

PLANTED_PASSWORD = "Planted-Secret-123"
SERVICE_SECRET = "svc-" + secrets.token_hex(16)

ServerFactory = Callable[..., AbstractContextManager[MailwireServer]]
RegisterAccount = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def log_lines(server: MailwireServer) -> list[dict[str, Any]]:
    """The server's log, parsed: every line must be one JSON object."""
    parsed = []
    for line in server.logs().splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def wait_for_request_line(server: MailwireServer, request_id: str) -> dict[str, Any]:
    """The access line of one request. It is written after the response is sent,
    so the test may be ahead of it: wait (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        for entry in log_lines(server):
            if entry.get("event") == "http.request" and entry.get("request_id") == request_id:
                return entry
        assert time.monotonic() < deadline, f"no access line for {request_id}"
        time.sleep(0.05)


def assert_absent(log: str, *values: str) -> None:
    for value in values:
        for form in {value, quote(value, safe=""), value.upper()}:
            assert form not in log, f"a planted secret is in the log: {value[:6]}..."


@pytest.fixture(scope="module")
def secret_server(
    server_factory: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
    register_account: RegisterAccount,
) -> Iterator[MailwireServer]:
    data_dir = tmp_path_factory.mktemp("e2e-logs") / "data"
    with server_factory(data_dir, env={"MAILWIRE_SECRET": SERVICE_SECRET}) as running:
        for account in ("acc-logs", "acc-path"):
            register_account(running, account)
        yield running


def test_request_cycle_logs_no_secret(secret_server: MailwireServer) -> None:
    root = secret_server.token
    with httpx.Client(base_url=secret_server.url, timeout=15) as client:
        listed = client.get("/v1/tokens", headers={**bearer(root), "X-Request-Id": "logs-1"})
        queried = client.get(
            "/v1/tokens", params={"access_token": root}, headers={"X-Request-Id": "logs-2"}
        )
        created = client.post(
            "/v1/tokens",
            headers={**bearer(root), "X-Request-Id": "logs-3"},
            json={
                "account": "acc-logs",
                "description": "carries a password",
                "scopes": ["api"],
                "metadata": json.dumps({"password": PLANTED_PASSWORD}),
            },
        )
        new = created.json()
        refused = client.get(
            "/v1/tokens",
            params={"access_token": new["token"]},
            headers={"X-Request-Id": "logs-4"},
        )
        invalid = client.post(
            "/v1/tokens",
            headers={**bearer(root), "X-Request-Id": "logs-5"},
            json={"description": "bad", "scopes": ["api"], "password": PLANTED_PASSWORD},
        )
        revoked = client.delete(
            f"/v1/tokens/{new['id']}", headers={**bearer(root), "X-Request-Id": "logs-6"}
        )
    assert [r.status_code for r in (listed, queried, created, refused, invalid, revoked)] == [
        200,
        200,
        200,
        403,
        400,
        200,
    ]

    request_lines = [wait_for_request_line(secret_server, f"logs-{n}") for n in range(1, 7)]

    assert_absent(secret_server.logs(), root, new["token"], SERVICE_SECRET, PLANTED_PASSWORD)
    assert [line["status"] for line in request_lines] == [200, 200, 200, 403, 400, 200]
    for line in request_lines:
        assert {"time", "level", "logger", "event", "method", "path"} <= set(line)
        assert "?" not in line["path"]
    # Token ids are public hashes, logged for auditing; the token itself never.
    assert request_lines[0]["token_id"] == hashlib.sha256(root.encode()).hexdigest()


def test_every_line_is_a_json_object_with_the_common_fields(
    secret_server: MailwireServer,
) -> None:
    with httpx.Client(base_url=secret_server.url, timeout=15) as client:
        client.get("/health", headers={"X-Request-Id": "logs-shape"})
    wait_for_request_line(secret_server, "logs-shape")

    lines = log_lines(secret_server)

    assert lines
    for entry in lines:
        assert {"time", "level", "logger", "event"} <= set(entry)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
        assert entry["level"] in {"debug", "info", "warning", "error"}


def test_generated_request_ids_tie_the_response_to_its_log_line(
    secret_server: MailwireServer,
) -> None:
    with httpx.Client(base_url=secret_server.url, timeout=15) as client:
        response = client.get("/v1/tokens", headers=bearer(secret_server.token))
    request_id = response.headers["x-request-id"]

    line = wait_for_request_line(secret_server, request_id)

    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert line["path"] == "/v1/tokens"
    assert line["status"] == 200
    assert line["client"] == "127.0.0.1"


def issue_live_token(server: MailwireServer) -> str:
    response = httpx.post(
        f"{server.url}/v1/tokens",
        headers=bearer(server.token),
        json={"account": "acc-path", "description": "live", "scopes": ["api"]},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def test_a_token_in_the_url_path_is_not_logged(secret_server: MailwireServer) -> None:
    # DELETE /v1/tokens/{token} accepts the token itself, and a user may well
    # GET /v1/tokens/{token} by mistake: the path then carries a live token.
    live = issue_live_token(secret_server)
    with httpx.Client(base_url=secret_server.url, timeout=15) as client:
        shown = client.get(
            f"/v1/tokens/{live}",
            headers={**bearer(secret_server.token), "X-Request-Id": "logs-path-1"},
        )
        anonymous = client.delete(f"/v1/tokens/{live}", headers={"X-Request-Id": "logs-path-2"})
    assert shown.status_code == 404
    assert anonymous.status_code == 401

    wait_for_request_line(secret_server, "logs-path-1")
    wait_for_request_line(secret_server, "logs-path-2")

    assert_absent(secret_server.logs(), live)


def test_a_token_in_a_path_with_a_trailing_slash_is_not_logged(
    secret_server: MailwireServer,
) -> None:
    # The router answers a trailing slash with a redirect before any route
    # matches, so there are no path parameters to mask by name.
    live = issue_live_token(secret_server)
    with httpx.Client(base_url=secret_server.url, timeout=15) as client:
        slash = client.get(
            f"/v1/tokens/{live}/",
            headers={**bearer(secret_server.token), "X-Request-Id": "logs-path-3"},
        )
    assert slash.status_code in (307, 404)

    wait_for_request_line(secret_server, "logs-path-3")

    assert_absent(secret_server.logs(), live)
