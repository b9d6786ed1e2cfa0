"""What runs on an account's connection once it is logged in: the session.

The worker opens and authenticates the connection, then hands it to a
`Session`: `await session(account, connection, ready, wakeup, connect=...)`.

- `ready()` is awaited by the session once its initial sync is done; the
  worker then moves the account to `connected` (and raises
  `accountInitialized` the first time).
- `wakeup` is an `asyncio.Event` the worker sets when a sync was requested
  for the account (its `sync_seq` grew); the session clears it and syncs.
- `connect()` opens another logged-in connection of the same account (for
  subconnections), as an async context manager that closes it. It takes one
  of the account's connection slots and a token of the host's rate limiter,
  so it may wait; it raises the connection's errors.

A session runs until the connection fails (it raises the connection's error)
or it is cancelled (the worker is stopping or reconnecting). It never catches
`CancelledError`. The sync engine provides the real session; `idle_session`
below keeps a connection alive with IDLE and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from mailwire.backends.imap.connection import ImapConnection
from mailwire.domain.accounts import Account
from mailwire.protocols.imap import commands

Ready = Callable[[], Awaitable[None]]
Connect = Callable[[], AbstractAsyncContextManager[ImapConnection]]


class Session(Protocol):
    def __call__(
        self,
        account: Account,
        connection: ImapConnection,
        ready: Ready,
        wakeup: asyncio.Event,
        /,
        *,
        connect: Connect,
    ) -> Awaitable[None]: ...


#: IDLE is re-issued this often (seconds): RFC 2177 section 3 lets servers drop
#: an IDLE after 30 minutes of inactivity.
IDLE_RENEW_S = 25 * 60.0
#: How long to wait for one untagged response before checking the wakeup (seconds).
IDLE_POLL_S = 1.0


async def idle_session(
    account: Account,
    connection: ImapConnection,
    ready: Ready,
    wakeup: asyncio.Event,
    *,
    connect: Connect | None = None,
    renew: float = IDLE_RENEW_S,
) -> None:
    """SELECT INBOX, report ready, then IDLE forever; NOOP between IDLEs checks liveness.

    It keeps to its one connection: `connect` is accepted and not used.
    """
    await connection.execute(commands.select("INBOX"))
    await ready()
    loop = asyncio.get_running_loop()
    while True:
        if "IDLE" not in connection.capabilities:
            await _poll(connection, wakeup, renew)
            continue
        deadline = loop.time() + renew
        async with connection.idle() as idle:
            while loop.time() < deadline and not idle.ended and not wakeup.is_set():
                await idle.next(IDLE_POLL_S)
        wakeup.clear()
        await connection.execute(commands.noop())


async def _poll(connection: ImapConnection, wakeup: asyncio.Event, interval: float) -> None:
    """Without IDLE: NOOP every `interval`, sooner when woken."""
    try:
        async with asyncio.timeout(interval):
            await wakeup.wait()
    except TimeoutError:
        pass
    wakeup.clear()
    await connection.execute(commands.noop())
