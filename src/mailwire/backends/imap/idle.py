"""The IDLE exchange (RFC 2177) on top of a connection's event loop.

`ImapConnection.idle()` sends IDLE and yields an `IdleSession`; `next(wait)`
returns each untagged response as it arrives (EXISTS, EXPUNGE, FETCH, ...).
Leaving the block sends DONE and reads up to the tagged OK; what arrived in
between lands in `backlog`. If the server ends IDLE by itself, `ended` is set.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from mailwire.backends.imap.errors import (
    CommandFailedError,
    ImapConnectionError,
    ImapProtocolError,
)
from mailwire.protocols.imap.responses import Continuation, Event, Greeting, Tagged, Untagged


class EventLoop(Protocol):
    """What IDLE needs of the connection."""

    async def next_event(self) -> Event: ...

    def fail(self, error: ImapConnectionError) -> ImapConnectionError: ...

    def note_untagged(self, event: Untagged, command: str) -> None: ...


class IdleSession:
    """The server's untagged responses while IDLE runs; see `ImapConnection.idle`."""

    def __init__(self, conn: EventLoop, tag: str) -> None:
        self._conn = conn
        self._tag = tag
        #: Whether the tagged response arrived (after DONE, or the server ended IDLE).
        self.ended = False
        #: Untagged responses that arrived with the IDLE's start or end.
        self.backlog: list[Untagged] = []

    async def started(self) -> None:
        while True:
            event = await self._conn.next_event()
            if isinstance(event, Continuation):
                return
            if isinstance(event, Tagged):
                self._tagged(event)
                raise self._conn.fail(ImapProtocolError("IDLE ended before it started"))
            self._untagged(event)

    async def next(self, wait: float) -> Untagged | None:
        """The next untagged response, or None if none came within `wait` seconds."""
        if self.backlog:
            return self.backlog.pop(0)
        if self.ended:
            return None
        try:
            async with asyncio.timeout(wait):
                event = await self._conn.next_event()
        except TimeoutError:
            return None
        if isinstance(event, Continuation):
            raise self._conn.fail(ImapProtocolError("continuation during IDLE"))
        if isinstance(event, Tagged):
            self._tagged(event)
            return None
        if isinstance(event, Greeting):
            raise self._conn.fail(ImapProtocolError("a second greeting"))
        self._conn.note_untagged(event, "IDLE")
        return event

    async def finish(self) -> None:
        """Read up to the tagged response that follows DONE."""
        while not self.ended:
            event = await self._conn.next_event()
            if isinstance(event, Continuation):
                raise self._conn.fail(ImapProtocolError("continuation after DONE"))
            if isinstance(event, Tagged):
                self._tagged(event)
            else:
                self._untagged(event)

    def _untagged(self, event: Event) -> None:
        if isinstance(event, Greeting):
            raise self._conn.fail(ImapProtocolError("a second greeting"))
        assert not isinstance(event, Tagged | Continuation)
        self._conn.note_untagged(event, "IDLE")
        self.backlog.append(event)

    def _tagged(self, event: Tagged) -> None:
        if event.tag != self._tag:
            raise self._conn.fail(ImapProtocolError(f"unexpected tag {event.tag!r}"))
        self.ended = True
        if event.status != "OK":
            raise CommandFailedError("IDLE", event.status, event.text)
