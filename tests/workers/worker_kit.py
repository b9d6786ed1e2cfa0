"""Helpers of the worker tests: accounts written as plain rows, waits, a running supervisor.

Accounts are inserted with SQLAlchemy directly (the account store belongs to
another module); credentials go through the real `SecretStore`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from mailwire.domain.accounts import CREDENTIAL_SCOPE
from mailwire.store.schema import account_logs, accounts
from mailwire.store.store import Store
from mailwire.workers.account import ConnectTimeouts
from mailwire.workers.backoff import BackoffPolicy
from mailwire.workers.session import Session, idle_session
from mailwire.workers.supervisor import Supervisor, SupervisorOptions

#: Short delays so that retries, backoff and the breaker play out within a test.
FAST = SupervisorOptions(
    poll_interval=0.1,
    stop_timeout=5.0,
    policy=BackoffPolicy(
        base=0.05, cap=0.2, healthy_after=60.0, auth_base=0.05, auth_cap=0.2, auth_threshold=3
    ),
    timeouts=ConnectTimeouts(connect=5.0, greeting=1.0, command=3.0),
    log_flush_interval=0.1,
)
#: Upper bound on any wait for a condition (the suite's timeout is 60 s).
WAIT_S = 30.0


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, limit: float = WAIT_S
) -> None:
    """Poll `check` until it holds; fail with `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Accounts:
    """Writes and reads account rows the way the API and the workers would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._created = 0

    async def add(
        self,
        account_id: str,
        *,
        host: str,
        port: int,
        user: str,
        password: str | None,
        logs: bool = False,
        disabled: bool = False,
    ) -> None:
        self._created += 1
        settings = {
            "logs": logs,
            "imap": {
                "host": host,
                "port": port,
                "secure": False,
                "disabled": disabled,
                "auth": {"user": user},
                "tls": {"rejectUnauthorized": False},
            },
        }
        async with self.store.database.write() as conn:
            await conn.execute(
                accounts.insert().values(
                    id=account_id,
                    name=account_id,
                    email=None,
                    kind="imap",
                    settings=settings,
                    state="init",
                    last_error=None,
                    notify_from=0,
                    created_at=self._created,
                    updated_at=0,
                    initialized=False,
                    revision=0,
                    sync_seq=0,
                )
            )
        if password is not None:
            await self.set_password(account_id, password)

    async def set_password(self, account_id: str, password: str) -> None:
        await self.store.secrets.put(CREDENTIAL_SCOPE, account_id, "imap.pass", password)

    async def bump(self, account_id: str, column: str) -> None:
        """Increase `revision` or `sync_seq`, as a PUT or a sync request does."""
        column_ = accounts.c[column]
        async with self.store.database.write() as conn:
            await conn.execute(
                accounts.update().where(accounts.c.id == account_id).values({column: column_ + 1})
            )

    async def delete(self, account_id: str) -> None:
        async with self.store.database.write() as conn:
            await conn.execute(accounts.delete().where(accounts.c.id == account_id))

    async def row(self, account_id: str) -> sa.RowMapping:
        async with self.store.database.read() as conn:
            result = await conn.execute(accounts.select().where(accounts.c.id == account_id))
            return result.one()._mapping

    async def state(self, account_id: str) -> str:
        return str((await self.row(account_id))["state"])

    async def events(self, account_id: str) -> list[tuple[str, dict[str, Any]]]:
        found = await self.store.outbox.read_after(0, account=account_id)
        return [(str(event.event), dict(event.data)) for event in found]

    async def log_lines(self, account_id: str) -> list[tuple[str, str]]:
        statement = (
            sa.select(account_logs.c.src, account_logs.c.msg)
            .where(account_logs.c.account == account_id)
            .order_by(account_logs.c.id)
        )
        async with self.store.database.read() as conn:
            return [(row.src, row.msg) for row in (await conn.execute(statement)).all()]


@asynccontextmanager
async def running(
    store: Store, *, session: Session = idle_session, options: SupervisorOptions = FAST
) -> AsyncIterator[Supervisor]:
    """A supervisor running in a TaskGroup for the block, then stopped in order."""
    supervisor = Supervisor(store, session=session, options=options)
    async with asyncio.TaskGroup() as group:
        group.create_task(supervisor.run())
        try:
            async with asyncio.timeout(WAIT_S):
                await supervisor.started.wait()
            yield supervisor
        finally:
            supervisor.stop()
