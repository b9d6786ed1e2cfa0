"""`/v1/settings` through a running `mailwire serve --workers 2`: a change made through
one request is seen by every later request, whichever worker process answers it, and
no credential comes back in an answer or goes into the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from mailwire.testing.server import MailwireServer

StartServer = Callable[..., MailwireServer]

PLANTED_SECRET = "planted-E2E-ServiceSecret-51f0"
PLANTED_PASSWORD = "planted-E2E-UrlPass-9a2c"
#: Parallel readers after each change: enough that both workers answer some.
READERS = 24


@pytest.mark.slow
def test_settings_take_effect_on_every_worker(start_server: StartServer) -> None:
    server = start_server(args=("--workers", "2"))
    deadline = time.monotonic() + 30
    while server.logs().count('"runtime.listening"') < 2:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    headers = {"Authorization": f"Bearer {server.token}"}

    def post(body: dict[str, Any]) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            response = client.post("/v1/settings", json=body)
        assert response.status_code == 200, response.text

    def read(_: int) -> dict[str, Any]:
        # A new connection per read, so that the kernel spreads them over the workers.
        params = {"webhooksEnabled": "true", "webhooks": "true", "serviceSecret": "true"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            response = client.get("/v1/settings", params=params)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    post(
        {
            "webhooksEnabled": True,
            "webhooks": f"https://hooks:{PLANTED_PASSWORD}@hooks.example/in",
            "serviceSecret": PLANTED_SECRET,
        }
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(read, range(READERS)))
    assert (
        answers
        == [
            {
                "webhooksEnabled": True,
                "webhooks": "https://hooks:******@hooks.example/in",
                "serviceSecret": True,
            }
        ]
        * READERS
    )

    post({"webhooksEnabled": False})
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(read, range(READERS)))
    assert {answer["webhooksEnabled"] for answer in answers} == {False}

    logs = server.logs()
    assert '"settings.updated"' in logs
    assert PLANTED_SECRET not in logs
    assert PLANTED_PASSWORD not in logs
