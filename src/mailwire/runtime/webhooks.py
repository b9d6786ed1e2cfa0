"""Webhook delivery in a running process: the relay and the `notify` job runner.

Every process runs both. Relays in several processes (or nodes) may redo each
other's batches, but the jobs' dedupe keys keep one job per event and route
(`webhooks.relay`); runners share the queue through leases (`jobs.runner`).
The egress policy comes from `MAILWIRE_WEBHOOK_ALLOW_PRIVATE` and
`MAILWIRE_WEBHOOK_ALLOW`. Custom routes' functions run in this process's
sandbox (`webhooks.sandbox`), whose child processes start on the first call,
so a process with no routes runs none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from mailwire.config import Settings
from mailwire.jobs.runner import JobRunner, RunnerOptions
from mailwire.net.egress import EgressPolicy
from mailwire.services.container import Services
from mailwire.services.webhook_payloads import WebhookPayloads
from mailwire.store.store import Store
from mailwire.webhooks.config import SettingsCache
from mailwire.webhooks.delivery import Delivery
from mailwire.webhooks.relay import NOTIFY_QUEUE, Relay, RouteEvaluator
from mailwire.webhooks.routes import SandboxRoutes
from mailwire.webhooks.sandbox import Sandbox
from mailwire.webhooks.sender import GuardedSender


class WebhookPipeline:
    """`run()` relays and delivers until `stop()`; then running deliveries drain."""

    def __init__(
        self,
        store: Store,
        services: Services,
        settings: Settings,
        *,
        owner: str,
        routes: RouteEvaluator | None = None,
        timeout: float | None = None,
        options: RunnerOptions | None = None,
    ) -> None:
        cache = SettingsCache(store.settings)
        self.sandbox = Sandbox()

        async def script_env() -> Mapping[str, Any]:
            return parse_script_env((await store.settings.values()).get("scriptEnv"))

        services.webhook_routes.attach_check(self.syntax_error)
        self.sender = GuardedSender(EgressPolicy.from_settings(settings))
        self.relay = Relay(
            store.outbox,
            store.jobs,
            cache,
            routes=routes or SandboxRoutes(store.webhook_routes, self.sandbox, env=script_env),
            enricher=WebhookPayloads(services.content),
        )
        self.delivery = Delivery(
            settings=cache,
            accounts=store.accounts,
            sender=self.sender,
            routes=store.webhook_routes,
            timeout=settings.webhook_timeout if timeout is None else timeout,
        )
        self.runner = JobRunner(
            store.jobs,
            NOTIFY_QUEUE,
            self.delivery.handle,
            owner=owner,
            options=options,
        )
        self._stopping = asyncio.Event()

    async def syntax_error(self, source: str) -> str | None:
        """The engine's complaint when `source` does not compile, else None.

        The engine compiles a function only to run it, so the source runs once in
        the sandbox with an empty payload; only a SyntaxError counts, since a
        function may well fail on a payload that is not a real event."""
        result = await self.sandbox.run(source, {}, env={})
        if not result.ok and result.error is not None and "SyntaxError" in result.error:
            return result.error
        return None

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                relaying = group.create_task(self.relay.run(), name="webhook-relay")
                group.create_task(self.runner.run(), name="webhook-runner")
                await self._stopping.wait()
                relaying.cancel()
                self.runner.stop()
        finally:
            await self.sender.aclose()
            await self.sandbox.aclose()


def parse_script_env(value: object) -> Mapping[str, Any]:
    """The `scriptEnv` setting (a JSON object in a string) as route functions see it."""
    if not isinstance(value, str) or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}  # the settings API refuses anything but an object; be safe all the same
    return parsed if isinstance(parsed, dict) else {}
