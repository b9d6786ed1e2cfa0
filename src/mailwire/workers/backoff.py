"""Reconnect delays: exponential backoff with full jitter, and the authentication breaker.

Full jitter (a delay drawn uniformly from [0, min(cap, base * 2**n)]) spreads
the reconnects of many accounts that failed together (a mail server restart)
instead of bringing them back in waves. A connection that stayed healthy for
`healthy_after` seconds resets the sequence, so an account that drops once a
day reconnects quickly every time.

Authentication failures are different: retrying a wrong password soon only
gets the account (or the server's address) locked out. `AuthBreaker` counts
consecutive failures, backs off much longer, and after `threshold` failures
opens: no login is attempted until the account's configuration changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: First reconnect delay ceiling after a connection failure (seconds).
BACKOFF_BASE_S = 1.5
#: Longest reconnect delay after connection failures (seconds).
BACKOFF_CAP_S = 300.0
#: A connection that stayed up this long resets the backoff (seconds).
HEALTHY_AFTER_S = 60.0
#: First delay after an authentication failure (seconds), doubling each time.
AUTH_BACKOFF_BASE_S = 60.0
#: Longest delay between authentication attempts (seconds).
AUTH_BACKOFF_CAP_S = 3600.0
#: Consecutive authentication failures that open the breaker.
AUTH_BREAKER_THRESHOLD = 3

#: Draws a float in [0, 1); injected so tests can make jitter deterministic.
Random = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Every delay the worker waits, in seconds; tests pass short ones."""

    base: float = BACKOFF_BASE_S
    cap: float = BACKOFF_CAP_S
    healthy_after: float = HEALTHY_AFTER_S
    auth_base: float = AUTH_BACKOFF_BASE_S
    auth_cap: float = AUTH_BACKOFF_CAP_S
    auth_threshold: int = AUTH_BREAKER_THRESHOLD


class Backoff:
    """Exponential backoff with full jitter for connection failures."""

    def __init__(self, policy: BackoffPolicy, *, rng: Random = random.random) -> None:
        self._policy = policy
        self._rng = rng
        self.failures = 0

    def ceiling(self) -> float:
        """The largest delay the next failure may draw."""
        exponent = min(self.failures, 62)
        return float(min(self._policy.cap, self._policy.base * 2**exponent))

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next attempt."""
        delay = self._rng() * self.ceiling()
        self.failures += 1
        return delay

    def connected_for(self, seconds: float) -> None:
        """Report how long a connection stayed up; a healthy one resets the sequence."""
        if seconds >= self._policy.healthy_after:
            self.reset()

    def reset(self) -> None:
        self.failures = 0


class AuthBreaker:
    """Consecutive authentication failures, their delays, and the open breaker."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self._policy = policy
        self.failures = 0

    @property
    def open(self) -> bool:
        """True once `auth_threshold` consecutive logins failed: stop trying."""
        return self.failures >= self._policy.auth_threshold

    def failed(self) -> float:
        """Record a failed login; return the delay before the next one."""
        delay = float(
            min(self._policy.auth_cap, self._policy.auth_base * 2 ** min(self.failures, 62))
        )
        self.failures += 1
        return delay

    def succeeded(self) -> None:
        self.failures = 0
