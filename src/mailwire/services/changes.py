"""The change stream: outbox events, in order, for as long as a client listens.

Readers poll the outbox (every `POLL_INTERVAL_S`) rather than being pushed to,
because the events may be written by another worker process or another node.
A client resumes after a disconnect by sending the last `seq` it saw (the
SSE `Last-Event-ID`); events older than the outbox's retention are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from mailwire.domain.events import StoredEvent
from mailwire.store.store import Store
from mailwire.webhooks.envelope import envelope

__all__ = ["ChangeService", "envelope"]

POLL_INTERVAL_S = 0.25
#: A stream with nothing to say sends a keep-alive this often, so proxies keep it open.
KEEPALIVE_S = 15.0


class ChangeService:
    def __init__(self, store: Store, *, poll_interval: float = POLL_INTERVAL_S) -> None:
        self._store = store
        self._poll_interval = poll_interval

    async def start_position(self, last_seen: int | None) -> int:
        """Where a new stream begins: after `last_seen`, else at the newest event."""
        if last_seen is not None:
            return max(0, last_seen)
        return await self._store.outbox.last_seq()

    async def follow(
        self, after: int, *, account: str | None = None
    ) -> AsyncIterator[StoredEvent | None]:
        """Events after `after`, forever; yields None when `KEEPALIVE_S` passed quietly."""
        position = after
        quiet = 0.0
        while True:
            batch = await self._store.outbox.read_after(position)
            if batch:
                position = batch[-1].seq
                quiet = 0.0
                for event in batch:
                    if account is None or event.account == account:
                        yield event
                continue
            await asyncio.sleep(self._poll_interval)
            quiet += self._poll_interval
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield None
