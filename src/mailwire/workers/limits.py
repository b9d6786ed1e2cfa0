"""Limits on connections: opens per mail-server host, and open connections per account.

`HostRateLimiter` is a token bucket per host: `burst` opens go out at once, then
`rate` per second. After a restart with thousands of accounts on one provider
the connections ramp up at the provider's pace instead of all at once (which
gets the address throttled) and without a fixed delay per account (which would
make the last account wait for hours). Buckets of hosts that have been idle
long enough to be full again are dropped, so the map stays small.

`ConnectionCap` bounds the connections one account holds at a time (the sync
connection plus command connections): servers allow only a few per user, and
going over makes them refuse logins for all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

#: Opens per host allowed at once.
HOST_BURST = 10
#: Opens per host per second after the burst.
HOST_RATE_PER_S = 5.0
#: Connections one account may hold at once (sync + command connections).
MAX_CONNECTIONS_PER_ACCOUNT = 3

_EPSILON = 1e-9

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class HostRateLimiter:
    """A token bucket per host; `await acquire(host)` waits for a token."""

    def __init__(
        self,
        *,
        burst: int = HOST_BURST,
        rate: float = HOST_RATE_PER_S,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("burst must be at least 1 and rate positive")
        self._burst = float(burst)
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}

    def try_acquire(self, host: str) -> float:
        """Take a token if one is there (returns 0.0); else return the wait in seconds.

        A caller that waits must call again: the token is not reserved, so
        waiters compete fairly with newcomers and none is lost to cancellation.
        """
        now = self._clock()
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        # The epsilon absorbs float rounding after a wait of exactly the computed length.
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            self._forget_full(now)
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    async def acquire(self, host: str) -> None:
        while (wait := self.try_acquire(host.lower())) > 0:
            await self._sleep(wait)

    def _forget_full(self, now: float) -> None:
        refill = self._burst / self._rate
        if len(self._buckets) > 1024:
            for host, bucket in list(self._buckets.items()):
                if now - bucket.updated >= refill:
                    del self._buckets[host]

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionCap:
    """At most `limit` connections open at once per account."""

    def __init__(self, limit: int = MAX_CONNECTIONS_PER_ACCOUNT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}
        self._held: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, account: str) -> AsyncIterator[None]:
        """Hold one of the account's connection slots for the block's duration."""
        semaphore = self._semaphores.setdefault(account, asyncio.Semaphore(self.limit))
        self._users[account] = self._users.get(account, 0) + 1
        try:
            async with semaphore:
                self._held[account] = self._held.get(account, 0) + 1
                try:
                    yield
                finally:
                    self._held[account] -= 1
        finally:
            self._users[account] -= 1
            if not self._users[account]:
                del self._users[account]
                del self._semaphores[account]
                self._held.pop(account, None)

    def in_use(self, account: str) -> int:
        """How many slots of `account` are taken right now."""
        return self._held.get(account, 0)
