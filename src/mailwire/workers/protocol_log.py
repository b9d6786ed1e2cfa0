"""The protocol log of accounts with `logs: true`: lines buffered in memory, flushed in batches.

The connection calls `ProtocolLog.on_line` for every command and response
line (already masked by the transcript renderer). Writing each line in its own
transaction would make a busy account hammer the database, so lines wait in a
bounded buffer and one `ProtocolLogFlusher` per supervisor writes the buffers
of all accounts every `FLUSH_INTERVAL_S`, and once more when a connection
ends. When the buffer is full the oldest lines go, and a note says how many
were dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from mailwire.errors import StoreError
from mailwire.logs import get_logger
from mailwire.types import Clock, now_ms

log = get_logger(__name__)

#: How often buffered lines are written (seconds).
FLUSH_INTERVAL_S = 2.0
#: Lines kept in memory between flushes; older ones are dropped beyond this.
MAX_BUFFERED_LINES = 2_000
#: Longest line stored (characters); the rest is cut with a note.
MAX_LINE_CHARS = 2_000

Entries = Sequence[tuple[int, str, str]]
#: Writes lines `(time ms, src, msg)` of one account: `writer(account_id, entries)`.
LogWriter = Callable[[str, Entries], Awaitable[object]]


class ProtocolLog:
    """One account's buffered protocol lines; see the module docstring."""

    def __init__(self, account_id: str, *, clock: Clock = now_ms) -> None:
        self.account_id = account_id
        self._clock = clock
        self._lines: deque[tuple[int, str, str]] = deque(maxlen=MAX_BUFFERED_LINES)
        self._dropped = 0

    def on_line(self, src: str, text: str) -> None:
        """The connection's `LineHook`: record one line (never blocks)."""
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f"... ({len(text) - MAX_LINE_CHARS} more characters)"
        if len(self._lines) == self._lines.maxlen:
            self._dropped += 1
        self._lines.append((self._clock(), src, text))

    def take(self) -> list[tuple[int, str, str]]:
        """Remove and return what is buffered, led by a note if lines were dropped."""
        entries = list(self._lines)
        self._lines.clear()
        if self._dropped:
            entries.insert(0, (self._clock(), "s", f"[{self._dropped} lines dropped]"))
            self._dropped = 0
        return entries


class ProtocolLogFlusher:
    """Writes the buffered lines of every open `ProtocolLog` every `interval` seconds.

    One flusher serves all the accounts of a supervisor, so the periodic
    writes are one task, not one per account.
    """

    def __init__(
        self, writer: LogWriter, *, clock: Clock = now_ms, interval: float = FLUSH_INTERVAL_S
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._interval = interval
        self._logs: dict[int, ProtocolLog] = {}

    def open(self, account_id: str) -> ProtocolLog:
        """A new buffer for one connection of `account_id`, flushed until `close`."""
        protocol_log = ProtocolLog(account_id, clock=self._clock)
        self._logs[id(protocol_log)] = protocol_log
        return protocol_log

    async def close(self, protocol_log: ProtocolLog) -> None:
        """Stop flushing `protocol_log` and write what it still holds."""
        self._logs.pop(id(protocol_log), None)
        await self._write(protocol_log)

    async def flush(self) -> None:
        for protocol_log in list(self._logs.values()):
            await self._write(protocol_log)

    async def run(self) -> None:
        """Flush every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def _write(self, protocol_log: ProtocolLog) -> None:
        entries = protocol_log.take()
        if not entries:
            return
        try:
            await self._writer(protocol_log.account_id, entries)
        except StoreError as error:  # the log must never take a connection down
            log.warning(
                "protocol_log.write_failed", account=protocol_log.account_id, error=str(error)
            )
