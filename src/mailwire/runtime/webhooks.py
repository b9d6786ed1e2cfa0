"""Webhook delivery in a running process: the relay and the `notify` job runner.

Every process runs both. Relays in several processes (or nodes) may redo each
other's batches, but the jobs' dedupe keys keep one job per event and route
(`webhooks.relay`); runners share the queue through leases (`jobs.runner`).
The egress policy comes from `MAILWIRE_WEBHOOK_ALLOW_PRIVATE` and
`MAILWIRE_WEBHOOK_ALLOW`.
"""

from __future__ import annotations

import asyncio

from mailwire.config import Settings
from mailwire.jobs.runner import JobRunner, RunnerOptions
from mailwire.net.egress import EgressPolicy
from mailwire.services.container import Services
from mailwire.services.webhook_payloads import WebhookPayloads
from mailwire.store.store import Store
from mailwire.webhooks.config import SettingsCache
from mailwire.webhooks.delivery import DEFAULT_TIMEOUT_S, Delivery
from mailwire.webhooks.relay import NOTIFY_QUEUE, NoRoutes, Relay, RouteEvaluator
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
        timeout: float = DEFAULT_TIMEOUT_S,
        options: RunnerOptions | None = None,
    ) -> None:
        cache = SettingsCache(store.settings)
        self.sender = GuardedSender(EgressPolicy.from_settings(settings))
        self.relay = Relay(
            store.outbox,
            store.jobs,
            cache,
            routes=routes or NoRoutes(),
            enricher=WebhookPayloads(services.content),
        )
        self.delivery = Delivery(
            settings=cache,
            accounts=store.accounts,
            sender=self.sender,
            routes=store.webhook_routes,
            timeout=timeout,
        )
        self.runner = JobRunner(
            store.jobs,
            NOTIFY_QUEUE,
            self.delivery.handle,
            owner=owner,
            options=options,
        )
        self._stopping = asyncio.Event()

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
