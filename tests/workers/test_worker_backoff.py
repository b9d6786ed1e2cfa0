"""Backoff with full jitter and the authentication breaker, with injected randomness."""

from __future__ import annotations

from mailwire.workers.backoff import AuthBreaker, Backoff, BackoffPolicy

POLICY = BackoffPolicy(base=1.0, cap=8.0, healthy_after=30.0, auth_base=60.0, auth_cap=240.0)


def test_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(POLICY, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_delay_is_drawn_below_the_ceiling() -> None:
    draws = iter([0.0, 0.5, 0.25])
    backoff = Backoff(POLICY, rng=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(3)] == [0.0, 1.0, 1.0]


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(POLICY, rng=lambda: 1.0)
    backoff.failures = 10_000
    assert backoff.next_delay() == 8.0


def test_only_a_healthy_connection_resets() -> None:
    backoff = Backoff(POLICY, rng=lambda: 1.0)
    for _ in range(3):
        backoff.next_delay()
    backoff.connected_for(29.0)
    assert backoff.ceiling() == 8.0
    backoff.connected_for(30.0)
    assert backoff.next_delay() == 1.0


def test_breaker_backs_off_long_and_opens_at_the_threshold() -> None:
    breaker = AuthBreaker(BackoffPolicy(auth_base=60.0, auth_cap=200.0, auth_threshold=3))
    delays = []
    while not breaker.open:
        delays.append(breaker.failed())
    assert delays == [60.0, 120.0, 200.0]
    breaker.succeeded()
    assert not breaker.open
