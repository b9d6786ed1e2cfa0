"""Custom webhook routes: where matching events go, and the functions that pick them.

A route sends a copy of every event its filter function accepts to its own
target URL, optionally reshaped by its map function (both JavaScript, run in
the sandbox). Limits follow the reference: names up to 256 characters,
descriptions up to 1024, each function's source up to 1 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1024
MAX_SCRIPT_BYTES = 1024 * 1024
MAX_ROUTE_ID_LENGTH = 64
#: Failures kept per route (the reference keeps the last 20), newest first.
ERROR_LOG_SIZE = 20
#: Characters of an error message kept in the log.
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True, slots=True)
class RouteError:
    """One failure of a route: its function threw or timed out (`exec`), or a
    delivery to its target failed (`delivery`)."""

    kind: str
    message: str
    at: int
    #: For function failures: "filter" or "map".
    function: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    id: str
    name: str
    description: str | None
    target_url: str | None
    enabled: bool
    custom_headers: tuple[tuple[str, str], ...]
    filter_fn: str | None
    map_fn: str | None
    version: int
    match_count: int
    error: RouteError | None
    error_log: tuple[RouteError, ...]
    created_at: int
    updated_at: int

    @property
    def can_fire(self) -> bool:
        """Only enabled routes with a target and a filter are ever evaluated."""
        return self.enabled and bool(self.target_url) and bool(self.filter_fn)
