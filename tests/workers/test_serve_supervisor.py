"""`mailwire serve` runs the account supervisor in every worker process and stops it in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from worker_kit import Accounts, eventually

from mailwire.store.schema import nodes
from mailwire.store.store import open_store
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.testing.postgres import settings_for
from mailwire.testing.server import MailwireServer

ACCOUNTS = ["first", "second"]


@pytest.mark.parametrize("workers", [1, 2])
async def test_serve_connects_accounts_and_releases_them_on_sigterm(
    tmp_path: Path, dovecot: Dovecot, dovecot_user: MailUser, workers: int
) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir, secret=None))
    try:
        accounts = Accounts(store)
        for account_id in ACCOUNTS:
            await accounts.add(
                account_id,
                host=dovecot.host,
                port=dovecot.imap_port,
                user=dovecot_user.name,
                password=dovecot_user.password,
            )
        server = MailwireServer(data_dir, args=("--workers", str(workers)))
        await asyncio.to_thread(server.start)
        try:

            async def settled() -> bool:
                rows = [await accounts.row(a) for a in ACCOUNTS]
                # With two processes, each ends up with one account (ceil(2 / 2)).
                owners = {row["owner"] for row in rows}
                states = [row["state"] for row in rows]
                return states == ["connected"] * 2 and None not in owners and len(owners) == workers

            await eventually(settled, "both accounts connected, split between the processes")
        finally:
            assert await asyncio.to_thread(server.stop) == 0
        assert {(await accounts.row(a))["owner"] for a in ACCOUNTS} == {None}
        async with store.database.read() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(nodes))).scalar() == 0
    finally:
        await store.close()
