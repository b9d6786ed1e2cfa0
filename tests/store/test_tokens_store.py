"""Token rows on a real database: round trip, listing, use tracking, shared rate counters."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import Callable

from mailwire.config import Settings
from mailwire.domain.tokens import (
    Action,
    Group,
    Permissions,
    RateLimit,
    Restrictions,
    Scope,
    TokenRecord,
)
from mailwire.store.store import Store, open_store
from mailwire.store.tokens import TOUCH_INTERVAL_MS

Factory = Callable[..., Settings]


def record(n: int, **fields: object) -> TokenRecord:
    values: dict[str, object] = {
        "id": hashlib.sha256(str(n).encode()).hexdigest(),
        "description": f"token {n}",
        "scopes": frozenset({Scope.API}),
        "created_at": 1_700_000_000_000 + n,
    }
    values.update(fields)
    return TokenRecord(**values)  # type: ignore[arg-type]


async def test_round_trip_keeps_every_field(store: Store) -> None:
    full = record(
        1,
        account="alice",
        scopes=frozenset({Scope.API, Scope.SMTP}),
        restrictions=Restrictions(
            referrers=("https://*.example.com/*",),
            addresses=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")),
            rate_limit=RateLimit(max_requests=5, window_seconds=60),
        ),
        permissions=Permissions(
            actions=frozenset({Action.READ}), groups=frozenset({Group.MESSAGE})
        ),
        metadata='{"k": "v"}',
        ip="192.0.2.1",
        remote_address="127.0.0.1",
        expires_at=1_800_000_000_000,
    )
    await store.tokens.insert(full)
    assert await store.tokens.get(full.id) == full
    assert await store.tokens.get("f" * 64) is None


async def test_list_filters_pages_and_orders_newest_first(store: Store) -> None:
    for n in range(1, 8):
        await store.tokens.insert(record(n, account="alice" if n % 2 else None))
    page = await store.tokens.list(account=None, query=None, offset=0, limit=3)
    assert page.total == 7
    assert [r.description for r in page.records] == ["token 7", "token 6", "token 5"]
    bound = await store.tokens.list(account="alice", query=None, offset=0, limit=10)
    assert bound.total == 4
    assert all(r.account == "alice" for r in bound.records)
    by_text = await store.tokens.list(account=None, query="TOKEN 3", offset=0, limit=10)
    assert [r.description for r in by_text.records] == ["token 3"]
    by_id = await store.tokens.list(
        account=None, query=record(5).id[:12].upper(), offset=0, limit=10
    )
    assert [r.description for r in by_id.records] == ["token 5"]


async def test_list_query_treats_like_wildcards_literally(store: Store) -> None:
    await store.tokens.insert(record(1, description="100% done"))
    await store.tokens.insert(record(2, description="1000 done"))
    found = await store.tokens.list(account=None, query="100%", offset=0, limit=10)
    assert [r.description for r in found.records] == ["100% done"]
    underscore = await store.tokens.list(account=None, query="_", offset=0, limit=10)
    assert underscore.total == 0


async def test_delete(store: Store) -> None:
    await store.tokens.insert(record(1))
    assert await store.tokens.delete(record(1).id)
    assert not await store.tokens.delete(record(1).id)
    assert await store.tokens.get(record(1).id) is None


async def test_touch_is_throttled_but_follows_a_new_address(store: Store) -> None:
    await store.tokens.insert(record(1))
    now = 1_700_000_100_000
    await store.tokens.touch(record(1), now_ms=now, address="127.0.0.1")
    seen = await store.tokens.get(record(1).id)
    assert seen is not None
    assert (seen.last_used_at, seen.last_used_ip) == (now, "127.0.0.1")
    await store.tokens.touch(seen, now_ms=now + 1000, address="127.0.0.1")
    assert (await store.tokens.get(seen.id)) == seen  # unchanged: too soon
    await store.tokens.touch(seen, now_ms=now + 2000, address="10.0.0.1")
    moved = await store.tokens.get(seen.id)
    assert moved is not None
    assert moved.last_used_ip == "10.0.0.1"
    await store.tokens.touch(moved, now_ms=now + 2000 + TOUCH_INTERVAL_MS, address="10.0.0.1")
    later = await store.tokens.get(seen.id)
    assert later is not None
    assert later.last_used_at == now + 2000 + TOUCH_INTERVAL_MS


async def test_hit_counter_is_shared_between_stores_and_windows_reset(
    make_settings: Factory,
) -> None:
    first = await open_store(make_settings())
    second = await open_store(make_settings())  # another process or node, same database
    try:
        await first.tokens.insert(record(1))
        counts = await asyncio.gather(
            *(s.tokens.hit(record(1).id, window_start=1000) for s in [first, second] * 10)
        )
        assert sorted(counts) == list(range(1, 21))  # no lost update, no duplicate
        assert await first.tokens.hit(record(1).id, window_start=2000) == 1
        # Deleting the token removes its counters (foreign key cascade).
        assert await first.tokens.delete(record(1).id)
    finally:
        await first.close()
        await second.close()
