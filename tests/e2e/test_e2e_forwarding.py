"""`mailwire serve --workers 2`: a request reaching the process that does not own its account.

Both worker processes share one port (SO_REUSEPORT), and the kernel hands each
new connection to one of them by hash, so an application cannot choose the
process. Several Dovecot accounts are registered until each process owns some;
then every account's message source and a body search (routes that need the
account's own IMAP connection; the search has a JSON body) are requested over
several fresh connections: every answer must be the message, whichever
process took the connection, and the logs must show that requests were
forwarded to the owner.
"""

from __future__ import annotations

import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_kit import dovecot_imap

from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.server import MailwireServer

WAIT_S = 45.0
ACCOUNTS = 4
#: Fresh connections per account; with two processes all landing on the owner
#: has odds of 2**-(ACCOUNTS * REQUESTS).
REQUESTS = 6

RegisterAccount = Callable[..., str]
StartServer = Callable[..., MailwireServer]


def _imap(dovecot: Dovecot, user: MailUser) -> dict[str, Any]:
    return dovecot_imap(dovecot, user.name, user.password)


def _message(user: MailUser) -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = f"{user.name}@example.com"
    message["Subject"] = f"forwarded to the owner of {user.name}"
    message.set_content("hello from the owner\n")
    return bytes(message)


def _rows(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "mailwire.db") as db:
        return db.execute(query).fetchall()


def _free_port_pair() -> int:
    """A port p with p and p + 1 free right now (the node ports of two workers)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    pytest.fail("no two consecutive free ports")


def _wait(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_each_process_answers_for_the_accounts_the_other_owns(
    start_server: StartServer, register_account: RegisterAccount, dovecot: Dovecot
) -> None:
    base = _free_port_pair()
    env = {"MAILWIRE_LOG_LEVEL": "debug", "MAILWIRE_NODE_PORT": str(base)}
    server = start_server(args=("--workers", "2"), env=env)
    auth = {"Authorization": f"Bearer {server.token}"}
    users = [
        dovecot.add_user(f"fw-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
        for _ in range(ACCOUNTS)
    ]
    for user in users:
        dovecot.deliver(user.name, _message(user))
        assert register_account(server, user.name, imap=_imap(dovecot, user)) == "new"

    # Worker i listens for other nodes on NODE_PORT + i.
    addresses = {address for (address,) in _rows(server.data_dir, "SELECT address FROM nodes")}
    assert addresses == {f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"}

    def split_and_indexed() -> dict[str, str] | None:
        owners = dict(_rows(server.data_dir, "SELECT id, owner FROM accounts"))
        if len(set(owners.values()) - {None}) != 2:
            return None
        for user in users:
            listed = httpx.get(
                f"{server.url}/v1/account/{user.name}/messages",
                params={"path": "INBOX"},
                headers=auth,
            )
            if listed.status_code != 200 or not listed.json()["messages"]:
                return None
        return owners

    owners = _wait("both processes to own synced accounts", split_and_indexed)
    assert set(owners) == {user.name for user in users}

    for user in users:
        listed = httpx.get(
            f"{server.url}/v1/account/{user.name}/messages",
            params={"path": "INBOX"},
            headers=auth,
        ).json()
        message_id = listed["messages"][0]["id"]
        for _ in range(REQUESTS):
            # A new connection each time: the kernel picks the process afresh.
            source = httpx.get(
                f"{server.url}/v1/account/{user.name}/message/{message_id}/source",
                headers=auth,
                timeout=30,
            )
            assert source.status_code == 200, source.text
            assert f"forwarded to the owner of {user.name}".encode() in source.content
            assert b"hello from the owner" in source.content
            # A body search runs on the owner's IMAP connection: the JSON body travels too.
            found = httpx.post(
                f"{server.url}/v1/account/{user.name}/search",
                params={"path": "INBOX"},
                json={"search": {"body": "hello from the owner"}},
                headers=auth,
                timeout=30,
            )
            assert found.status_code == 200, found.text
            assert [m["id"] for m in found.json()["messages"]] == [message_id]

    logs = server.logs()
    assert "forwarding.forwarded" in logs
    assert "forwarding.owner_unreachable" not in logs
    assert server.token not in logs
