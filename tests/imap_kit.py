"""Shared helpers of the tests that run the sync engine or command pools on the real Dovecot.

- `Opener`: a `connect` as the account worker provides it (logged-in
  connections to the private Dovecot's plain port), counting what it opened.
- `running_sync`: an `AccountSync` session on a store until the block ends,
  yielding its wake-up event once the initial sync is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.folder import Index
from mailwire.backends.imap.sync import AccountSync
from mailwire.domain.accounts import Account
from mailwire.store.store import Store
from mailwire.testing.dovecot import Dovecot, MailUser

#: Longest wait for a session to become ready.
READY_S = 20.0


class Opener:
    """Logged-in connections to `dovecot` as `user`, counted (opened, open now)."""

    def __init__(self, dovecot: Dovecot, user: MailUser) -> None:
        self.dovecot, self.user = dovecot, user
        self.opened = 0
        self.open_now = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[ImapConnection]:
        conn = await ImapConnection.open(self.dovecot.host, self.dovecot.imap_port, security="none")
        self.opened += 1
        self.open_now += 1
        try:
            await conn.login(self.user.name, self.user.password)
            yield conn
        finally:
            self.open_now -= 1
            await conn.logout()


@asynccontextmanager
async def running_sync(
    store: Store,
    account: Account,
    user: MailUser,
    *,
    connect: Opener | None = None,
    index: Index | None = None,
) -> AsyncIterator[asyncio.Event]:
    """Run a sync session until the block ends; yields its wake-up event once ready."""
    imap = account.imap()
    assert imap is not None
    conn = await ImapConnection.open(imap.host, imap.port, security="none")
    await conn.login(user.name, user.password)
    ready = asyncio.Event()
    wake = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    session = AccountSync(account, conn, index or store.index, connect=connect)
    task = asyncio.create_task(session.run(on_ready, wake))
    try:
        async with asyncio.timeout(READY_S):
            waiter = asyncio.create_task(ready.wait())
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                waiter.cancel()
                task.result()  # raises the session's error
        yield wake
    finally:
        task.cancel()
        outcomes = await asyncio.gather(task, return_exceptions=True)
        await conn.close()
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncio.CancelledError
            ):
                raise outcome
