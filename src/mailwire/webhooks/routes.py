"""Custom routes at relay time: which routes an event goes to, and with what body.

Each enabled route with a target and a filter function is offered every event
(the default route's `webhookEvents`/`inboxNewOnly` do not apply to routes).
The functions see the formatted envelope with `eventId` and `_route: {id}`
added, and the `scriptEnv` setting as `env`. A filter that returns a truthy
value makes a match; the map function, if any, then gives the request body,
and a falsy result or a failure sends the plain envelope instead.

Every function runs in the sandbox (`webhooks.sandbox`): a function that
throws, loops or runs out of memory fails that route for that event only. The
failure is recorded on the route (its error flag and log, visible through the
API) and every other route and the default route go on.

The routes are read from the store and kept until their change signature
(`WebhookRouteStore.versions`) moves; the signature is checked at most every
`REFRESH_INTERVAL_S`, so an edit takes effect within that time on every process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from mailwire.domain.webhook_routes import RouteError, WebhookRoute
from mailwire.logs import get_logger
from mailwire.store.webhook_routes import WebhookRouteStore
from mailwire.types import Clock, now_ms
from mailwire.webhooks.relay import RouteMatch

log = get_logger(__name__)

REFRESH_INTERVAL_S = 1.0


class ScriptOutcome(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def value(self) -> Any: ...
    @property
    def error(self) -> str | None: ...


class ScriptRunner(Protocol):
    async def run(self, source: str, payload: Any, *, env: Mapping[str, Any]) -> ScriptOutcome: ...


#: Gives the current `scriptEnv` (parsed), read per batch of evaluations.
EnvSource = Callable[[], Awaitable[Mapping[str, Any]]]


class SandboxRoutes:
    """A `RouteEvaluator` that runs the routes' functions in a sandbox."""

    def __init__(
        self,
        store: WebhookRouteStore,
        runner: ScriptRunner,
        *,
        env: EnvSource,
        clock: Clock = now_ms,
        refresh_interval: float = REFRESH_INTERVAL_S,
    ) -> None:
        self._store = store
        self._runner = runner
        self._env = env
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._routes: list[WebhookRoute] = []
        self._signature: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._refreshing = asyncio.Lock()

    async def evaluate(self, payload: Mapping[str, Any]) -> list[RouteMatch]:
        routes = await self._current()
        if not routes:
            return []
        env = await self._env()
        matches: list[RouteMatch] = []
        counts: Counter[str] = Counter()
        for route in routes:
            match = await self._offer(route, payload, env)
            if match is not None:
                matches.append(match)
                counts[route.id] += 1
        if counts:
            await self._store.count_matches(counts)
        return matches

    async def _offer(
        self, route: WebhookRoute, payload: Mapping[str, Any], env: Mapping[str, Any]
    ) -> RouteMatch | None:
        if route.filter_fn is None or route.target_url is None:
            return None  # not a firing route (see WebhookRoute.can_fire)
        offered = {**payload, "_route": {"id": route.id}}
        chosen = await self._call(route, "filter", route.filter_fn, offered, env)
        if chosen is None or not chosen.value:
            return None
        body: Any = None
        if route.map_fn:
            mapped = await self._call(route, "map", route.map_fn, offered, env)
            if mapped is not None and mapped.value:
                body = mapped.value
        return RouteMatch(
            route_id=route.id,
            target_url=route.target_url,
            custom_headers=route.custom_headers,
            body=body,
        )

    async def _call(
        self,
        route: WebhookRoute,
        function: str,
        source: str,
        payload: dict[str, Any],
        env: Mapping[str, Any],
    ) -> ScriptOutcome | None:
        """The function's outcome, or None after recording its failure on the route.

        The sandbox receives the payload serialised, so a function that changes its
        input cannot change what the next function (or the delivery) sees."""
        outcome = await self._runner.run(source, payload, env=env)
        if outcome.ok:
            return outcome
        message = outcome.error or "the function failed"
        log.info("webhooks.route_function_failed", route=route.id, function=function)
        await self._store.record_error(
            route.id, RouteError(kind="exec", message=message, at=self._clock(), function=function)
        )
        return None

    async def _current(self) -> list[WebhookRoute]:
        # The relay evaluates a batch's events concurrently: one refresh at a time,
        # and the others wait for its result instead of reading a list not yet loaded.
        async with self._refreshing:
            if time.monotonic() - self._checked >= self._refresh_interval:
                signature = await self._store.versions()
                if signature != self._signature:
                    self._routes = await self._store.firing()
                    self._signature = signature
                self._checked = time.monotonic()
            return self._routes
