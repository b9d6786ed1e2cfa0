"""Custom webhook routes as a use case: list, show, create, change and remove them.

A route's functions are checked when they are saved: a source that does not
compile is refused with the engine's message, so a typo shows up in the
response instead of as silent non-delivery later. The check runs in the same
sandbox that later runs the functions (see `webhooks.sandbox`); without one
(unit tests, or a process that runs no routes) sources are stored unchecked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mailwire.domain.webhook_routes import WebhookRoute
from mailwire.errors import InputError, NotFoundError
from mailwire.store.store import Store
from mailwire.store.webhook_routes import RoutePage

#: Compiles one function source; returns None when it compiles, else the error text.
ScriptCheck = Callable[[str], Awaitable[str | None]]

#: The fields that hold function sources, by the API's name for them.
_SCRIPTS = {"filter_fn": "content.fn", "map_fn": "content.map"}


def not_found() -> NotFoundError:
    return NotFoundError("No webhook route has this id", code="WebhookRouteNotFound")


class WebhookRouteService:
    def __init__(self, store: Store, *, check: ScriptCheck | None = None) -> None:
        self._store = store
        self._check = check

    def attach_check(self, check: ScriptCheck) -> None:
        """Check function sources with `check` from now on (the runtime attaches the
        process's sandbox once it exists)."""
        self._check = check

    async def list(self, *, page: int, page_size: int) -> RoutePage:
        return await self._store.webhook_routes.page(offset=page * page_size, limit=page_size)

    async def get(self, route_id: str) -> WebhookRoute:
        route = await self._store.webhook_routes.get(route_id)
        if route is None:
            raise not_found()
        return route

    async def create(self, fields: Mapping[str, Any]) -> WebhookRoute:
        await self._check_scripts(fields)
        return await self._store.webhook_routes.create(fields)

    async def update(self, route_id: str, fields: Mapping[str, Any]) -> WebhookRoute:
        await self._check_scripts(fields)
        route = await self._store.webhook_routes.update(route_id, fields)
        if route is None:
            raise not_found()
        return route

    async def delete(self, route_id: str) -> None:
        if not await self._store.webhook_routes.delete(route_id):
            raise not_found()

    async def _check_scripts(self, fields: Mapping[str, Any]) -> None:
        if self._check is None:
            return
        for field, key in _SCRIPTS.items():
            source = fields.get(field)
            if source:
                problem = await self._check(source)
                if problem is not None:
                    raise InputError(f"The function does not compile: {problem}", key=key)
