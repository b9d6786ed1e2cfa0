"""HostRateLimiter (token bucket per host, injected clock) and ConnectionCap."""

from __future__ import annotations

import asyncio

import pytest

from mailwire.workers.limits import ConnectionCap, HostRateLimiter


class FakeTime:
    """A monotonic clock whose `sleep` advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_rate() -> None:
    time = FakeTime()
    limiter = HostRateLimiter(burst=3, rate=2.0, clock=time)
    assert [limiter.try_acquire("mail.example") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("mail.example") == pytest.approx(0.5)
    time.now += 0.5
    assert limiter.try_acquire("mail.example") == 0.0
    assert limiter.try_acquire("mail.example") == pytest.approx(0.5)


def test_hosts_have_their_own_buckets() -> None:
    limiter = HostRateLimiter(burst=1, rate=1.0, clock=FakeTime())
    assert limiter.try_acquire("a.example") == 0.0
    assert limiter.try_acquire("b.example") == 0.0
    assert limiter.try_acquire("a.example") > 0


def test_bucket_refills_no_higher_than_the_burst() -> None:
    time = FakeTime()
    limiter = HostRateLimiter(burst=2, rate=1.0, clock=time)
    limiter.try_acquire("h")
    time.now += 1_000
    assert [limiter.try_acquire("h") for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.try_acquire("h") > 0


async def test_acquire_ramps_up_many_opens_at_the_rate() -> None:
    time = FakeTime()
    limiter = HostRateLimiter(burst=10, rate=5.0, clock=time, sleep=time.sleep)
    for _ in range(30):
        await limiter.acquire("MAIL.example")
    # 10 at once, the other 20 at 5 per second: 4 s of (simulated) waiting.
    assert time.now - 100.0 == pytest.approx(4.0)
    assert len(limiter) == 1


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        HostRateLimiter(burst=0)
    with pytest.raises(ValueError, match="limit"):
        ConnectionCap(0)


async def test_connection_cap_blocks_the_extra_connection() -> None:
    cap = ConnectionCap(2)
    release = asyncio.Event()
    entered: list[int] = []
    two_in = asyncio.Event()

    async def hold(number: int) -> None:
        async with cap.slot("acct"):
            entered.append(number)
            if len(entered) == 2:
                two_in.set()
            await release.wait()

    async with asyncio.TaskGroup() as group:
        for number in range(3):
            group.create_task(hold(number))
        async with asyncio.timeout(10):
            await two_in.wait()
        await asyncio.sleep(0.05)
        assert len(entered) == 2
        assert cap.in_use("acct") == 2
        async with cap.slot("other"):
            assert cap.in_use("other") == 1
        release.set()
    assert sorted(entered) == [0, 1, 2]
    assert cap.in_use("acct") == 0
