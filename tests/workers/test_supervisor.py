"""Supervisors on one database: accounts split between nodes, never run twice, taken over."""

from __future__ import annotations

import asyncio

from worker_kit import FAST, Accounts, eventually

from mailwire.store.leases import LEASE_TTL_MS, NODE_TTL_MS, LeaseStore
from mailwire.store.store import Store, open_store
from mailwire.testing.dovecot import Dovecot, MailUser
from mailwire.types import now_ms
from mailwire.workers.supervisor import Supervisor

ACCOUNTS = [f"acct{i}" for i in range(4)]


class Watch:
    """Samples both supervisors' workers and remembers any account run by both at once."""

    def __init__(self, *supervisors: Supervisor) -> None:
        self.supervisors = supervisors
        self.doubled: set[str] = set()

    async def run(self) -> None:
        while True:
            first, second = (set(s.workers) for s in self.supervisors)
            self.doubled |= first & second
            await asyncio.sleep(0.01)


async def test_two_nodes_split_the_accounts_and_one_takes_over(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser, db_settings: object
) -> None:
    for account_id in ACCOUNTS:
        await accounts_.add(
            account_id,
            host=dovecot.host,
            port=dovecot.imap_port,
            user=dovecot_user.name,
            password=dovecot_user.password,
        )
    # A second store on the same database, as a second process would open.
    other_store: Store = await open_store(db_settings())  # type: ignore[operator]
    try:
        one = Supervisor(accounts_.store, options=FAST)
        two = Supervisor(other_store, options=FAST)
        watch = Watch(one, two)
        async with asyncio.TaskGroup() as group:
            group.create_task(one.run())
            watching = group.create_task(watch.run())
            await asyncio.wait_for(one.started.wait(), 30)

            async def one_has_all() -> bool:
                return len(one.workers) == 4

            await eventually(one_has_all, "the first node to take every account")
            second = group.create_task(two.run())

            async def split() -> bool:
                return len(one.workers) == 2 and len(two.workers) == 2

            await eventually(split, "the accounts to be split between the nodes")

            async def all_connected() -> bool:
                states = [await accounts_.state(a) for a in ACCOUNTS]
                return states == ["connected"] * 4

            await eventually(all_connected, "every account connected after the split")
            owners = {(await accounts_.row(a))["owner"] for a in ACCOUNTS}
            assert owners == {one.node_id, two.node_id}

            one.stop()

            async def two_has_all() -> bool:
                return len(two.workers) == 4 and await all_connected()

            await eventually(two_has_all, "the second node to take over")
            two.stop()
            await second
            watching.cancel()
        assert watch.doubled == set()
        # accountInitialized once per account, whichever node connected it first.
        for account_id in ACCOUNTS:
            names = [name for name, _ in await accounts_.events(account_id)]
            assert names.count("accountInitialized") == 1
    finally:
        await other_store.close()


class Skewed:
    """A clock running `offset` ms ahead: to it, every other node looks long dead."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __call__(self) -> int:
        return now_ms() + self.offset


async def test_expired_leases_of_a_silent_node_are_taken_over(
    accounts_: Accounts, dovecot: Dovecot, dovecot_user: MailUser
) -> None:
    for account_id in ACCOUNTS[:2]:
        await accounts_.add(
            account_id,
            host=dovecot.host,
            port=dovecot.imap_port,
            user=dovecot_user.name,
            password=dovecot_user.password,
        )
    store = accounts_.store
    one = Supervisor(store, options=FAST)
    late = Skewed(LEASE_TTL_MS + NODE_TTL_MS + 1)
    two = Supervisor(store, options=FAST, clock=late, leases=LeaseStore(store.database, clock=late))
    async with asyncio.TaskGroup() as group:
        group.create_task(one.run())

        async def one_has_all() -> bool:
            return len(one.workers) == 2

        await eventually(one_has_all, "the first node to take both accounts")
        group.create_task(two.run())

        async def taken_over() -> bool:
            owners = {(await accounts_.row(a))["owner"] for a in ACCOUNTS[:2]}
            return owners == {two.node_id} and not one.workers and len(two.workers) == 2

        await eventually(taken_over, "the second node to take the expired leases")
        one.stop()
        two.stop()
