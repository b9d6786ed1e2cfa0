"""Helpers shared by the end-to-end tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from mailwire.testing.dovecot import Dovecot
from mailwire.testing.server import MailwireServer

#: How long the change stream may stay quiet before it is taken as read to the end.
QUIET_S = 1.0


def change_events(server: MailwireServer, account: str) -> list[dict[str, Any]]:
    """Every change event of `account` so far (`/v1/changes` read until it goes quiet)."""
    found: list[dict[str, Any]] = []
    timeout = httpx.Timeout(5.0, read=QUIET_S)
    headers = {"Authorization": f"Bearer {server.token}", "Last-Event-ID": "0"}
    try:
        with httpx.stream(
            "GET", f"{server.url}/v1/changes", headers=headers, timeout=timeout
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    body = json.loads(line[6:])
                    if body.get("account") == account:
                        found.append(body)
    except httpx.ReadTimeout:
        pass
    return found


def dovecot_imap(dovecot: Dovecot, user: str, password: str) -> dict[str, Any]:
    """The `imap` section that registers a user of the test Dovecot (plain IMAP on
    loopback, the rig's self-signed certificate accepted)."""
    return {
        "host": dovecot.host,
        "port": dovecot.imap_port,
        "secure": False,
        "tls": {"rejectUnauthorized": False},
        "auth": {"user": user, "pass": password},
    }
