"""The per-account protocol log (`logs: true`): append lines, read them back, clear them.

Each line is one row (time in epoch ms, `src` "c" for what Mailwire sent and "s"
for what the server sent, the already-masked text). The log is bounded per
account by line count (`MAX_LOG_LINES`) and age (`MAX_LOG_AGE_MS`). Trimming
costs a count and a delete, so an account trims only on every
`TRIM_EVERY_APPENDS`th append (and on its first append in a process); between
trims it may run over the count limit by at most that many batches, never
without bound, and reads return the newest lines within the limit only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.store.database import Database
from mailwire.store.schema import account_logs, accounts
from mailwire.types import Clock

#: Lines kept per account.
MAX_LOG_LINES = 10_000
#: Lines older than this are dropped (24 hours).
MAX_LOG_AGE_MS = 24 * 60 * 60 * 1000
#: Longest stored line; longer ones are cut and marked with `TRUNCATION_MARK`.
MAX_LINE_LENGTH = 4096
TRUNCATION_MARK = "[…truncated]"
#: Trim an account's log on every Nth append to it (per process).
TRIM_EVERY_APPENDS = 50
#: Lines per query when reading; keeps memory flat however long the log is.
READ_BATCH = 500
#: Lines one append may carry.
MAX_APPEND_LINES = 1000

#: Who produced a line: Mailwire (the client) or the mail server.
SOURCES = frozenset({"c", "s"})


@dataclass(frozen=True, slots=True)
class LogLine:
    time: int
    src: str
    msg: str


class AccountLogStore:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        max_lines: int = MAX_LOG_LINES,
        trim_every: int = TRIM_EVERY_APPENDS,
    ) -> None:
        self._db = database
        self._clock = clock
        self._max_lines = max_lines
        self._trim_every = max(1, trim_every)
        self._appends: dict[str, int] = {}

    async def append(self, account: str, entries: Sequence[tuple[int, str, str]]) -> int:
        """Store `(time_ms, src, msg)` lines for `account`; returns how many.

        Lines of an account deleted meanwhile are dropped, not an error: a
        worker's last flush may race the deletion.
        """
        stored = 0
        for start in range(0, len(entries), MAX_APPEND_LINES):
            stored += await self._append_batch(account, entries[start : start + MAX_APPEND_LINES])
        return stored

    async def _append_batch(self, account: str, entries: Sequence[tuple[int, str, str]]) -> int:
        if not entries:
            return 0
        rows = [
            {"account": account, "time": time, "src": _source(src), "msg": _capped(msg)}
            for time, src, msg in entries
        ]
        count = self._appends.get(account, 0) + 1
        self._appends[account] = count % self._trim_every
        async with self._db.write() as conn:
            found = await conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account))
            if found.first() is None:
                return 0
            await conn.execute(account_logs.insert(), rows)
            if count == 1:
                await self._trim(conn, account)
        return len(rows)

    async def read(self, account: str, *, limit: int = MAX_LOG_LINES) -> list[LogLine]:
        """Up to `limit` of the newest lines that are not expired, oldest first."""
        return [line async for line in self.stream(account, limit=limit)]

    async def stream(self, account: str, *, limit: int = MAX_LOG_LINES) -> AsyncIterator[LogLine]:
        """Like `read`, in batches of `READ_BATCH` lines so memory stays flat."""
        start = await self._first_id(account, limit)
        if start is None:
            return
        oldest = self._clock() - MAX_LOG_AGE_MS
        after, left = start - 1, limit
        while left > 0:
            statement = (
                sa.select(
                    account_logs.c.id, account_logs.c.time, account_logs.c.src, account_logs.c.msg
                )
                .where(
                    account_logs.c.account == account,
                    account_logs.c.id > after,
                    account_logs.c.time >= oldest,
                )
                .order_by(account_logs.c.id)
                .limit(min(READ_BATCH, left))
            )
            async with self._db.read() as conn:
                rows = (await conn.execute(statement)).all()
            for row_id, time, src, msg in rows:
                yield LogLine(time=int(time), src=src, msg=msg)
                after = row_id
            left -= len(rows)
            if len(rows) < READ_BATCH:
                return

    async def clear(self, account: str) -> int:
        async with self._db.write() as conn:
            result = await conn.execute(
                account_logs.delete().where(account_logs.c.account == account)
            )
        self._appends.pop(account, None)
        return result.rowcount

    async def _first_id(self, account: str, limit: int) -> int | None:
        """The id of the oldest line within the newest `limit` lines."""
        newest = (
            sa.select(account_logs.c.id)
            .where(account_logs.c.account == account)
            .order_by(account_logs.c.id.desc())
            .limit(max(1, limit))
            .subquery()
        )
        async with self._db.read() as conn:
            value = (await conn.execute(sa.select(sa.func.min(newest.c.id)))).scalar()
        return None if value is None else int(value)

    async def _trim(self, conn: AsyncConnection, account: str) -> None:
        mine = account_logs.c.account == account
        await conn.execute(
            account_logs.delete().where(mine, account_logs.c.time < self._clock() - MAX_LOG_AGE_MS)
        )
        # The id of the newest line that no longer fits, found through the
        # (account, id) index; everything at or below it goes.
        threshold = (
            await conn.execute(
                sa.select(account_logs.c.id)
                .where(mine)
                .order_by(account_logs.c.id.desc())
                .offset(self._max_lines)
                .limit(1)
            )
        ).scalar()
        if threshold is not None:
            await conn.execute(account_logs.delete().where(mine, account_logs.c.id <= threshold))


def _source(src: str) -> str:
    if src not in SOURCES:
        raise ValueError(f"log source must be one of {sorted(SOURCES)}")
    return src


def _capped(msg: str) -> str:
    if len(msg) <= MAX_LINE_LENGTH:
        return msg
    return msg[: MAX_LINE_LENGTH - len(TRUNCATION_MARK)] + TRUNCATION_MARK
