"""The per-account protocol log: order, limits by count, age and line length."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from mailwire.config import Settings
from mailwire.store.account_logs import (
    MAX_APPEND_LINES,
    MAX_LINE_LENGTH,
    MAX_LOG_AGE_MS,
    READ_BATCH,
    TRUNCATION_MARK,
    AccountLogStore,
    LogLine,
)
from mailwire.store.accounts import AccountValues
from mailwire.store.store import Store, open_store

START = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(make_settings: Callable[..., Settings], clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(make_settings(), clock=clock)
    for account in ("alice", "bob"):
        await opened.accounts.create_or_update(
            account, AccountValues(name=account, email=None, settings={}, notify_from=0), {}
        )
    yield opened
    await opened.close()


async def test_lines_come_back_oldest_first_per_account(store: Store) -> None:
    logs = store.account_logs
    await logs.append("alice", [(START, "c", "A1 LOGIN alice ****"), (START + 1, "s", "A1 OK")])
    await logs.append("bob", [(START, "c", "B1 NOOP")])
    await logs.append("alice", [(START + 2, "c", "A2 LOGOUT")])

    assert await logs.read("alice") == [
        LogLine(START, "c", "A1 LOGIN alice ****"),
        LogLine(START + 1, "s", "A1 OK"),
        LogLine(START + 2, "c", "A2 LOGOUT"),
    ]
    assert [line.msg for line in await logs.read("alice", limit=2)] == ["A1 OK", "A2 LOGOUT"]
    assert await logs.clear("alice") == 3
    assert await logs.read("alice") == []
    assert len(await logs.read("bob")) == 1


async def test_long_lines_are_cut_and_marked(store: Store) -> None:
    await store.account_logs.append("alice", [(START, "s", "x" * (MAX_LINE_LENGTH * 3))])

    (line,) = await store.account_logs.read("alice")

    assert len(line.msg) == MAX_LINE_LENGTH
    assert line.msg.endswith(TRUNCATION_MARK)


async def test_bad_source_is_refused_and_large_batches_are_split(store: Store) -> None:
    with pytest.raises(ValueError, match="source"):
        await store.account_logs.append("alice", [(START, "x", "?")])
    assert await store.account_logs.read("alice") == []
    lines = [(START, "c", f"A{n} NOOP") for n in range(MAX_APPEND_LINES + 1)]
    assert await store.account_logs.append("alice", lines) == MAX_APPEND_LINES + 1
    assert len(await store.account_logs.read("alice")) == MAX_APPEND_LINES + 1


async def test_lines_of_an_unknown_account_are_dropped(store: Store) -> None:
    assert await store.account_logs.append("nobody", [(START, "c", "A1 NOOP")]) == 0
    assert await store.account_logs.read("nobody") == []


async def test_count_limit_keeps_the_newest_lines(store: Store, clock: Clock) -> None:
    logs = AccountLogStore(store.database, clock=clock, max_lines=5, trim_every=1)
    for index in range(12):
        await logs.append("alice", [(START, "c", f"line {index}")])

    # The newest five survive the trim that ran after the last append.
    assert [line.msg for line in await logs.read("alice", limit=100)] == [
        f"line {index}" for index in range(7, 12)
    ]


async def test_trimming_waits_for_every_nth_append(store: Store, clock: Clock) -> None:
    logs = AccountLogStore(store.database, clock=clock, max_lines=2, trim_every=3)
    for index in range(4):
        await logs.append("alice", [(START, "c", f"line {index}")])

    # Trimmed on the first append (nothing to drop) and the fourth.
    assert [line.msg for line in await logs.read("alice", limit=100)] == ["line 2", "line 3"]


async def test_old_lines_expire(store: Store, clock: Clock) -> None:
    await store.account_logs.append("alice", [(START, "c", "old"), (START + 10, "c", "newer")])
    clock.now = START + MAX_LOG_AGE_MS + 5

    assert [line.msg for line in await store.account_logs.read("alice")] == ["newer"]
    # A fresh store trims on its first append to an account: the old row is deleted.
    fresh = AccountLogStore(store.database, clock=clock)
    await fresh.append("alice", [(clock.now, "s", "now")])
    clock.now = START
    assert [line.msg for line in await fresh.read("alice")] == ["newer", "now"]


async def test_streaming_crosses_batches(store: Store) -> None:
    total = READ_BATCH * 2 + 3
    lines = [(START + i, "c", f"{i}") for i in range(total)]
    for offset in range(0, total, MAX_APPEND_LINES):
        await store.account_logs.append("alice", lines[offset : offset + MAX_APPEND_LINES])

    found = [line.msg async for line in store.account_logs.stream("alice")]

    assert found == [str(i) for i in range(total)]
