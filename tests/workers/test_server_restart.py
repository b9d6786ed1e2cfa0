"""A mail server restart under the supervisor: the worker reconnects and resyncs.

The account runs the real sync session against a private Dovecot (this test
stops it, so it must not be the session's shared one). Two messages arrive
while it is connected; Dovecot is stopped; while it is down a third message is
delivered and the first one is flagged, both straight in the Maildir as another
program on the server would; Dovecot is started again on the same ports. The
outbox must then hold one `messageNew` per message, never a second one for the
two it had announced, and one `messageUpdated` for the flag set while down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import imaplib
import secrets
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from worker_kit import Accounts, eventually, running

from mailwire.backends.imap.sync import sync_session
from mailwire.testing.dovecot import Dovecot, MailUser, scratch_directory
from mailwire.testing.tls import TLSCertificate

ACCOUNT = "restarted"
#: States of an account whose server went away: dropped, then refused on reconnect.
DOWN_STATES = {"disconnected", "connectError"}
#: Long enough for a spurious event to show up: several IDLE wake-ups and a sweep.
SETTLE_S = 2.5


@pytest.fixture
def private_dovecot(tls_cert: TLSCertificate) -> Iterator[tuple[Dovecot, MailUser]]:
    """A Dovecot of this test's own, with one user; stopped at teardown if still up."""
    with scratch_directory() as root:
        server = Dovecot(root, tls=tls_cert)
        user = server.add_user(f"restart-{secrets.token_hex(4)}", secrets.token_urlsafe(12))
        with server:
            yield server, user


def _message(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    message.set_content(f"body of {subject}")
    return bytes(message)


def _append(server: Dovecot, user: MailUser, *subjects: str) -> None:
    client = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    try:
        client.login(user.name, user.password)
        for subject in subjects:
            now = imaplib.Time2Internaldate(dt.datetime.now(dt.UTC))
            status, _ = client.append("INBOX", "", now, _message(subject))
            assert status == "OK"
    finally:
        client.logout()


def _flag_in_maildir(maildir: Path, subject: str, letter: str) -> None:
    """Add a Maildir flag letter to the one file holding `subject` (server down)."""
    marker = f"Subject: {subject}\n".encode()
    found = [
        path
        for folder in ("new", "cur")
        for path in (maildir / folder).iterdir()
        if marker in path.read_bytes().replace(b"\r\n", b"\n")
    ]
    assert len(found) == 1, found
    path = found[0]
    base, _, flags = path.name.partition(":2,")
    path.rename(maildir / "cur" / f"{base}:2,{''.join(sorted(set(flags + letter)))}")


def _named(events: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [data for event, data in events if event == name]


async def test_restart_reconnects_and_resyncs_without_repeating_events(
    accounts_: Accounts, private_dovecot: tuple[Dovecot, MailUser]
) -> None:
    server, user = private_dovecot
    ports = (server.imap_port, server.imaps_port)
    await accounts_.add(
        ACCOUNT, host=server.host, port=server.imap_port, user=user.name, password=user.password
    )
    store = accounts_.store

    async def named(name: str) -> list[dict[str, Any]]:
        return _named(await accounts_.events(ACCOUNT), name)

    def state_in(*wanted: str):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            return await accounts_.state(ACCOUNT) in wanted

        return check

    def count_is(name: str, wanted: int):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            found = len(await named(name))
            assert found <= wanted, f"{found} {name} events, expected {wanted}"
            return found == wanted

        return check

    async with running(store, session=functools.partial(sync_session, store.index)):
        await eventually(state_in("connected"), "the account to connect")
        await asyncio.to_thread(_append, server, user, "one", "two")
        await eventually(count_is("messageNew", 2), "a messageNew for each appended message")

        await asyncio.to_thread(server.stop)
        await eventually(state_in(*DOWN_STATES), "the account to notice the server is gone")
        # Down for real: a reconnect attempt has been refused since.
        await eventually(state_in("connectError"), "a refused reconnect")
        server.deliver(user.name, _message("three"))
        _flag_in_maildir(server.maildir(user.name), "one", "F")

        await asyncio.to_thread(server.start)
        assert (server.imap_port, server.imaps_port) == ports
        await eventually(state_in("connected"), "the account to reconnect")
        await eventually(count_is("messageNew", 3), "a messageNew for the message sent while down")
        await eventually(count_is("messageUpdated", 1), "a messageUpdated for the flag")
        await asyncio.sleep(SETTLE_S)
        events = await accounts_.events(ACCOUNT)
        assert await accounts_.state(ACCOUNT) == "connected"

    new = _named(events, "messageNew")
    assert [data["subject"] for data in new] == ["one", "two", "three"]
    assert len({data["id"] for data in new}) == 3
    updated = _named(events, "messageUpdated")
    assert len(updated) == 1
    assert updated[0]["id"] == new[0]["id"]
    assert updated[0]["changes"]["flags"]["added"] == ["\\Flagged"]
    assert _named(events, "messageDeleted") == []
    # Initialised once, not again on the reconnect; the refused reconnects were reported.
    assert len(_named(events, "accountInitialized")) == 1
    assert _named(events, "connectError")
