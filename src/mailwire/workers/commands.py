"""`CommandPool`: an account's command connections, beside its sync connection.

Theory of operation. API reads and changes that need the mail server (message
bodies, attachments, flags, moves, uploads) run on command connections, never
on the connection that syncs and IDLEs, so they neither wait for a sync nor
stall it. Each account worker owns one pool:

- connections open on demand, up to `size` at once; a caller beyond that waits
  for one to be handed back (bounded by `acquire_timeout`, then
  `PoolTimeoutError`), so parallel requests share the account's few
  connections instead of opening more than its server allows;
- each connection is opened by the worker's `connect` (the same host limiter,
  connection cap, TLS settings and login as the sync connection), so the
  pool's connections count against the account's cap;
- a connection handed back healthy is kept for the next caller; one that broke
  (timeout, protocol error, lost, cancelled mid-command) is closed and
  forgotten; one idle for longer than `idle_timeout` is closed by the reaper,
  and one idle for longer than `check_after` is checked with NOOP before
  reuse, so a connection the server dropped quietly costs a reopen, not an
  error;
- `close()` (the worker stopping) closes every connection; callers waiting
  get `PoolClosedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from mailwire.backends.imap.connection import ImapConnection
from mailwire.backends.imap.errors import ImapConnectionError
from mailwire.errors import MailwireError
from mailwire.logs import get_logger
from mailwire.protocols.imap import commands
from mailwire.workers.session import Connect

log = get_logger(__name__)

#: Command connections per account by default (within the account's connection cap).
POOL_SIZE = 2
#: A connection unused this long is closed (seconds).
IDLE_TIMEOUT_S = 300.0
#: A connection unused this long is checked with NOOP before it is handed out (seconds).
CHECK_AFTER_S = 30.0
#: How long a caller waits for a connection before giving up (seconds).
ACQUIRE_TIMEOUT_S = 60.0


class PoolTimeoutError(MailwireError):
    """Every command connection of the account stayed busy for too long."""


class PoolClosedError(MailwireError):
    """The account's worker stopped (or moved to another node) meanwhile."""


@dataclass(eq=False)
class _Held:
    conn: ImapConnection
    stack: AsyncExitStack
    used_at: float = field(default_factory=time.monotonic)


class CommandPool:
    """Command connections of one account; see the module docstring."""

    def __init__(
        self,
        connect: Connect,
        *,
        size: int = POOL_SIZE,
        idle_timeout: float = IDLE_TIMEOUT_S,
        check_after: float = CHECK_AFTER_S,
        acquire_timeout: float = ACQUIRE_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one connection")
        self._connect = connect
        self.size = size
        self._idle_timeout = idle_timeout
        self._check_after = check_after
        self._acquire_timeout = acquire_timeout
        self._turns = asyncio.Semaphore(size)
        self._idle: list[_Held] = []
        self._busy: set[_Held] = set()
        self._closed = False
        self._reaper: asyncio.Task[None] | None = None
        #: Connections opened over the pool's life (for tests and metrics).
        self.opened = 0

    @property
    def open_connections(self) -> int:
        return len(self._idle) + len(self._busy)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[ImapConnection]:
        """A logged-in command connection for the block's duration."""
        self._check_open()
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await self._turns.acquire()
                try:
                    self._check_open()
                    held = await self._take()
                except BaseException:
                    self._turns.release()
                    raise
        except TimeoutError as error:
            raise PoolTimeoutError(
                f"no command connection became free in {self._acquire_timeout:g} s"
            ) from error
        self._busy.add(held)
        try:
            yield held.conn
        finally:
            self._busy.discard(held)
            await self._give_back(held)
            self._turns.release()

    async def close(self) -> None:
        """Close every connection; the pool refuses new callers from now on."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        held, self._idle = self._idle, []
        for item in held:
            await _close(item)

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the account's worker has stopped")

    async def _take(self) -> _Held:
        while self._idle:
            held = self._idle.pop()
            if time.monotonic() - held.used_at < self._check_after:
                return held
            try:
                await held.conn.execute(commands.noop())
                return held
            except ImapConnectionError:
                log.info("command_connection_stale")
                await _close(held)
        return await self._open()

    async def _open(self) -> _Held:
        stack = AsyncExitStack()
        try:
            conn = await stack.enter_async_context(self._connect())
        except BaseException:
            await stack.aclose()
            raise
        self.opened += 1
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap())
        return _Held(conn, stack)

    async def _give_back(self, held: _Held) -> None:
        if held.conn.broken or self._closed:
            await _close(held)
            return
        held.used_at = time.monotonic()
        self._idle.append(held)

    async def _reap(self) -> None:
        """Close connections idle for longer than `idle_timeout`, forever."""
        while True:
            await asyncio.sleep(max(self._idle_timeout / 4, 0.05))
            now = time.monotonic()
            expired = [held for held in self._idle if now - held.used_at >= self._idle_timeout]
            for held in expired:
                self._idle.remove(held)
                await _close(held)


async def _close(held: _Held) -> None:
    """Close one connection (LOGOUT when healthy, bounded by the worker's `connect`)."""
    try:
        await held.stack.aclose()
    except (ImapConnectionError, OSError) as error:
        log.info("command_connection_close_failed", error=str(error))
