"""An account's command connections against the real Dovecot: reuse, limits, repair, close."""

from __future__ import annotations

import asyncio

import pytest
from test_account_worker import add_alice, state_is
from worker_kit import Accounts, eventually, running

from imap_kit import Opener
from mailwire.protocols.imap import commands
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.workers.commands import CommandPool, PoolClosedError, PoolTimeoutError
from mailwire.workers.limits import ConnectionCap


@pytest.fixture
def opener(dovecot: Dovecot, dovecot_user: MailUser) -> Opener:
    return Opener(dovecot, dovecot_user)


async def test_connections_open_on_demand_and_are_reused(opener: Opener) -> None:
    pool = CommandPool(opener, size=2)
    assert opener.open_now == 0
    async with pool.connection() as first:
        await first.execute(commands.noop())
    async with pool.connection() as again:
        assert again is first
    assert (pool.opened, opener.open_now) == (1, 1)
    await pool.close()
    assert opener.open_now == 0
    with pytest.raises(PoolClosedError):
        async with pool.connection():
            pass


async def test_callers_beyond_the_size_wait_their_turn(opener: Opener) -> None:
    pool = CommandPool(opener, size=2, acquire_timeout=0.5)
    peak = 0
    release = asyncio.Event()

    async def use() -> None:
        nonlocal peak
        async with pool.connection() as conn:
            peak = max(peak, opener.open_now)
            await release.wait()
            await conn.execute(commands.noop())

    users = [asyncio.create_task(use()) for _ in range(2)]
    await asyncio.sleep(0.2)
    with pytest.raises(PoolTimeoutError):  # both busy past the wait: a third gives up
        async with pool.connection():
            pass
    waiting = asyncio.create_task(use())  # this one waits its turn and gets it
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.gather(*users, waiting)
    assert peak == 2
    assert pool.opened == 2
    await pool.close()


async def test_broken_and_stale_connections_are_replaced(opener: Opener) -> None:
    pool = CommandPool(opener, size=1, check_after=0.0)
    async with pool.connection() as conn:
        await conn.close()  # broken while in use: not handed out again
    async with pool.connection() as second:
        assert second is not conn
    await second.close()  # dropped while idle: the NOOP check finds out
    async with pool.connection() as third:
        assert third is not second
        await third.execute(commands.noop())
    assert pool.opened == 3
    await pool.close()
    assert opener.open_now == 0


async def test_idle_connections_are_closed(opener: Opener) -> None:
    pool = CommandPool(opener, size=2, idle_timeout=0.2)
    async with pool.connection():
        pass
    assert opener.open_now == 1

    async def closed() -> bool:
        return opener.open_now == 0

    await eventually(closed, "the idle connection closed", limit=5.0)
    assert pool.open_connections == 0
    await pool.close()


async def test_the_worker_pool_counts_against_the_account_cap(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    await add_alice(accounts_, dovecot, dovecot_user)
    async with running(accounts_.store) as supervisor:
        await eventually(state_is(accounts_, "alice", "connected"), "alice connected")
        pool = supervisor.commands("alice")
        assert pool is not None
        assert supervisor.commands("nobody") is None
        caps: ConnectionCap = supervisor.context.caps
        async with pool.connection() as conn:
            await conn.execute(commands.select("INBOX"))
            assert caps.in_use("alice") == 2  # the sync connection and this one
    assert pool.open_connections == 0  # the worker's end closed its pool
