"""Connection state of accounts, written by their worker with the events it raises.

Every change goes through `transition`, one transaction that (1) checks the
account still exists and is leased to the calling node, (2) updates `state`
and the other columns named, and (3) appends the events to the outbox. A
worker whose lease was taken over therefore cannot overwrite the new owner's
state, and an event exists exactly when the state change it reports does.

Deduplication follows the reference:
- `authenticationError` and `connectError` are not raised again while the
  stored `last_error` has the same `serverResponseCode` (or equal data);
- `authenticationSuccess` is raised when a login succeeds for the first time
  ever or after an error. `last_error` tells them apart: NULL means the account
  never connected, `{}` means the last connection succeeded, anything else is
  the error the account is in (cleared once the account is `connected`). The
  worker says whether it already announced success since its last failed
  login, so retries against a server that fails after login raise it once;
- `accountInitialized` is raised once, when the account first reaches
  `connected`, together with setting `initialized`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailwire.domain.accounts import AccountState
from mailwire.domain.events import Event, EventName
from mailwire.store.database import Database
from mailwire.store.outbox import append_events
from mailwire.store.schema import accounts
from mailwire.types import Clock, now_ms

#: Marker for "leave this column as it is".
_KEEP: Any = object()


class AccountStateStore:
    """State transitions of accounts owned by one node."""

    def __init__(self, database: Database, node: str, *, clock: Clock = now_ms) -> None:
        self._db = database
        self.node = node
        self._clock = clock

    async def transition(
        self,
        account_id: str,
        state: AccountState,
        *,
        last_error: Mapping[str, Any] | None = _KEEP,
        events: Iterable[Event] = (),
        initialized: bool | None = None,
        sync_time: int | None = None,
    ) -> bool:
        """Write the state (and the columns given) and append `events`; False if not ours."""
        async with self._db.write() as conn:
            return await self._apply(
                conn, account_id, state, last_error, list(events), initialized, sync_time
            )

    async def _apply(
        self,
        conn: AsyncConnection,
        account_id: str,
        state: AccountState,
        last_error: Mapping[str, Any] | None,
        events: list[Event],
        initialized: bool | None,
        sync_time: int | None,
    ) -> bool:
        values: dict[str, Any] = {"state": str(state)}
        if last_error is not _KEEP:
            values["last_error"] = None if last_error is None else dict(last_error)
        if initialized is not None:
            values["initialized"] = initialized
        if sync_time is not None:
            values["sync_time"] = sync_time
        result = await conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id, accounts.c.owner == self.node)
            .values(**values)
        )
        if result.rowcount != 1:
            return False
        await append_events(conn, events, now=self._clock())
        return True

    async def _row(self, conn: AsyncConnection, account_id: str) -> sa.RowMapping | None:
        statement = sa.select(accounts.c.last_error, accounts.c.initialized).where(
            accounts.c.id == account_id, accounts.c.owner == self.node
        )
        row = (await conn.execute(statement)).first()
        return None if row is None else row._mapping

    async def failed(
        self, account_id: str, state: AccountState, event: EventName, error: Mapping[str, Any]
    ) -> bool:
        """Enter an error state; raise `event` with `error` unless it repeats the stored one.

        Returns whether the event was raised.
        """
        async with self._db.write() as conn:
            row = await self._row(conn, account_id)
            if row is None:
                return False
            events = (
                []
                if _same_error(row["last_error"], error)
                else [Event(account_id, event, dict(error))]
            )
            await self._apply(conn, account_id, state, error, events, None, None)
        return bool(events)

    async def authenticated(self, account_id: str, user: str, *, announce: bool = True) -> bool:
        """A login succeeded: enter `syncing`; raise `authenticationSuccess` when due.

        Due when `announce` (the worker has not announced this streak of
        successes yet) and the account never connected or is in an error. The
        stored error stays until `connected`, so a server that accepts logins
        but fails right after still has its `connectError` deduplicated.
        """
        async with self._db.write() as conn:
            row = await self._row(conn, account_id)
            if row is None:
                return False
            stored = row["last_error"]
            due = announce and (stored is None or bool(stored))
            events = [Event(account_id, EventName.AUTHENTICATION_SUCCESS, {"user": user})]
            error = {} if stored is None else _KEEP
            await self._apply(
                conn, account_id, AccountState.SYNCING, error, events if due else [], None, None
            )
        return due

    async def connected(self, account_id: str) -> bool:
        """The initial sync is done: enter `connected` (clearing the error), raise
        `accountInitialized` the first time."""
        async with self._db.write() as conn:
            row = await self._row(conn, account_id)
            if row is None:
                return False
            first = not row["initialized"]
            events = (
                [Event(account_id, EventName.ACCOUNT_INITIALIZED, {"initialized": True})]
                if first
                else []
            )
            await self._apply(
                conn, account_id, AccountState.CONNECTED, {}, events, True, self._clock()
            )
        return first


def _same_error(stored: Mapping[str, Any] | None, error: Mapping[str, Any]) -> bool:
    if not stored:
        return False
    if dict(stored) == dict(error):
        return True
    code = error.get("serverResponseCode")
    return code is not None and stored.get("serverResponseCode") == code
