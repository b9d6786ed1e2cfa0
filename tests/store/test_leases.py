"""LeaseStore: nodes, fair shares and conditional claims on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mailwire.store.leases import LEASE_TTL_MS, NODE_TTL_MS, LeaseStore
from mailwire.store.schema import accounts, nodes
from mailwire.store.store import Store


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def insert_accounts(store: Store, *ids: str) -> None:
    rows = [
        {
            "id": account_id,
            "name": account_id,
            "email": None,
            "kind": "imap",
            "settings": {"imap": {"host": "localhost", "port": 143, "auth": {"user": "u"}}},
            "state": "init",
            "last_error": None,
            "notify_from": 0,
            "created_at": index,
            "updated_at": index,
            "initialized": False,
            "revision": 0,
            "sync_seq": 0,
        }
        for index, account_id in enumerate(ids)
    ]
    async with store.database.write() as conn:
        await conn.execute(accounts.insert(), rows)


async def owners(store: Store) -> dict[str, str | None]:
    async with store.database.read() as conn:
        rows = (await conn.execute(sa.select(accounts.c.id, accounts.c.owner))).all()
    return {row.id: row.owner for row in rows}


async def test_register_heartbeat_and_unregister(store: Store) -> None:
    clock = FakeClock()
    leases = LeaseStore(store.database, clock=clock)
    await leases.register("n1", host="h", pid=1)
    await leases.register("n2", host="h", pid=2)
    assert await leases.live_nodes() == 2
    clock.now += NODE_TTL_MS + 1
    await leases.heartbeat("n1")
    assert await leases.live_nodes() == 1
    await leases.unregister("n1")
    async with store.database.read() as conn:
        left = (await conn.execute(sa.select(nodes.c.id))).scalars().all()
    assert left == ["n2"]


async def test_heartbeat_of_a_forgotten_node_raises(store: Store) -> None:
    leases = LeaseStore(store.database)
    with pytest.raises(LookupError):
        await leases.heartbeat("ghost")


async def test_fair_share_splits_between_live_nodes(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a", "b", "c", "d", "e")
    await leases.register("n1", host="h", pid=1)
    assert await leases.fair_share() == 5
    await leases.register("n2", host="h", pid=2)
    assert await leases.fair_share() == 3


async def test_claim_takes_only_free_accounts(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a", "b", "c")
    assert await leases.claim("n1", 2) == ["a", "b"]
    assert await leases.claim("n2", 5) == ["c"]
    assert await leases.claim("n2", 5) == []
    assert await owners(store) == {"a": "n1", "b": "n1", "c": "n2"}
    assert [account.id for account in await leases.list_owned("n1")] == ["a", "b"]


async def test_concurrent_claims_never_share_an_account(store: Store) -> None:
    await insert_accounts(store, *(f"acct{i:02}" for i in range(30)))
    stores = [LeaseStore(store.database) for _ in range(3)]
    results = await asyncio.gather(*(leases.claim(f"n{i}", 30) for i, leases in enumerate(stores)))
    won = [account for result in results for account in result]
    assert sorted(won) == sorted(set(won))
    assert len(won) == 30


async def test_expired_lease_is_taken_over_and_renewal_prevents_it(store: Store) -> None:
    clock = FakeClock()
    leases = LeaseStore(store.database, clock=clock)
    await insert_accounts(store, "a", "b")
    await leases.claim("n1", 2)
    clock.now += LEASE_TTL_MS // 2
    await leases.renew("n1")
    clock.now += LEASE_TTL_MS // 2 + 1
    assert await leases.claim("n2", 2) == []
    clock.now += LEASE_TTL_MS
    assert await leases.claim("n2", 2) == ["a", "b"]
    assert await leases.renew("n1") == 0
    assert await leases.list_owned("n1") == []


async def test_release_marks_open_connections_disconnected(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a", "b")
    await leases.claim("n1", 2)
    async with store.database.write() as conn:
        await conn.execute(accounts.update().where(accounts.c.id == "a").values(state="connected"))
        await conn.execute(
            accounts.update().where(accounts.c.id == "b").values(state="authenticationError")
        )
    await leases.release("n1")
    async with store.database.read() as conn:
        rows = (await conn.execute(sa.select(accounts.c.id, accounts.c.state))).all()
    assert dict(tuple(row) for row in rows) == {"a": "disconnected", "b": "authenticationError"}


async def test_release_gives_back_named_or_all_leases(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a", "b", "c")
    await leases.claim("n1", 3)
    assert await leases.release("n1", ["b"]) == 1
    assert await owners(store) == {"a": "n1", "b": None, "c": "n1"}
    assert await leases.release("n2") == 0
    await leases.register("n1", host="h", pid=1)
    await leases.unregister("n1")
    assert set((await owners(store)).values()) == {None}


async def test_owner_of_names_the_lease_holder_and_its_address(store: Store) -> None:
    clock = FakeClock()
    leases = LeaseStore(store.database, clock=clock)
    await insert_accounts(store, "a", "b")
    await leases.register("n1", host="h", pid=1, address="http://127.0.0.1:4001")
    assert await leases.owner_of("a") is None  # not leased yet
    assert await leases.claim("n1", 1) == ["a"]
    owner = await leases.owner_of("a")
    assert owner is not None
    assert (owner.node, owner.address) == ("n1", "http://127.0.0.1:4001")
    assert await leases.owner_of("b") is None
    assert await leases.owner_of("no-such-account") is None


async def test_owner_of_ignores_an_expired_lease(store: Store) -> None:
    clock = FakeClock()
    leases = LeaseStore(store.database, clock=clock)
    await insert_accounts(store, "a")
    await leases.register("n1", host="h", pid=1, address="http://127.0.0.1:4001")
    await leases.claim("n1", 1)
    clock.now += LEASE_TTL_MS
    assert await leases.owner_of("a") is not None  # still valid at the last millisecond
    clock.now += 1
    assert await leases.owner_of("a") is None


async def test_owner_of_a_node_without_an_address(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a")
    await leases.register("n1", host="h", pid=1)
    await leases.claim("n1", 1)
    owner = await leases.owner_of("a")
    assert owner is not None
    assert (owner.node, owner.address) == ("n1", None)


async def test_owner_of_after_release_and_unregister(store: Store) -> None:
    leases = LeaseStore(store.database)
    await insert_accounts(store, "a", "b")
    await leases.register("n1", host="h", pid=1, address="http://10.0.0.1:4001")
    await leases.claim("n1", 2)
    await leases.release("n1", ["a"])
    assert await leases.owner_of("a") is None
    assert await leases.owner_of("b") is not None
    await leases.unregister("n1")
    assert await leases.owner_of("b") is None
