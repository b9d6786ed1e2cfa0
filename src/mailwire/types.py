"""Small shared types that every layer may use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeAlias

#: Returns the current time in integer milliseconds since the epoch (UTC).
Clock: TypeAlias = Callable[[], int]

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]


def now_ms() -> int:
    """The system clock as a `Clock`."""
    return time.time_ns() // 1_000_000
