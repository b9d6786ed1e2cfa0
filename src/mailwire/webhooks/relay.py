"""The relay: outbox events in, delivery jobs out, exactly once per event and route.

Theory of operation. The relay's position is a cursor (`relay.notify`) kept
by the job store. Each step reads the events after it, builds each event's
webhook payload once (envelope, enrichment, the `messageNew` rules), asks the
route evaluator which custom routes match, and hands the jobs to the job
store together with the new cursor: both are written in one transaction.
A crash before that commit leaves the cursor where it was and the next relay
redoes the batch; after it, the jobs and the position are both there. No job
is lost and none is made twice.

Every job carries a dedupe key (`<eventId>:default`, `<eventId>:route:<id>`),
unique in the jobs table, and a duplicate is skipped on insert. That is what
makes two relays running at once harmless (two processes, or two nodes on one
PostgreSQL): they may redo each other's work, but never produce a second job
for the same event and route. Per-account order is kept by the ordering key:
the account for default-route jobs, account and route for route jobs.

Deviation: while `webhooksEnabled` is off, and for events the default route
does not send (`webhookEvents`, `inboxNewOnly`), no default-route job is made
at all, rather than a job that completes without sending; every condition is
checked again at delivery (`webhooks.delivery`), so a setting turned off
after queueing still stops the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailwire.domain.events import EventName, StoredEvent
from mailwire.jobs.model import NewJob
from mailwire.logs import get_logger
from mailwire.webhooks.config import Header, SettingsCache, WebhookSettings
from mailwire.webhooks.envelope import format_payload, in_inbox, webhook_envelope

log = get_logger(__name__)

NOTIFY_QUEUE = "notify"
RELAY_CURSOR = "relay.notify"
#: One try plus nine retries, as the reference.
MAX_ATTEMPTS = 10
BATCH_SIZE = 500
#: How often an idle relay reads the outbox. It is the largest share of the
#: webhook path's latency (0.25 s made APPEND -> webhook p50 761 ms against 512 ms
#: to the outbox; 0.05 s gives 546 ms) for 20 small indexed reads a second.
POLL_INTERVAL_S = 0.05
#: Enrichment fetches running at once within one batch.
ENRICH_CONCURRENCY = 8
#: After a failed step (database unreachable...), wait this long before the next.
ERROR_PAUSE_S = 2.0


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A custom route that accepted an event."""

    route_id: str
    target_url: str
    custom_headers: tuple[Header, ...] = ()
    #: The map function's result (sent as the body); None sends the envelope.
    body: Any = None


class RouteEvaluator(Protocol):
    async def evaluate(self, payload: Mapping[str, Any]) -> list[RouteMatch]: ...


class NoRoutes:
    """No custom routes: only the default route delivers."""

    async def evaluate(self, payload: Mapping[str, Any]) -> list[RouteMatch]:
        return []


class Enricher(Protocol):
    """Adds to a `messageNew` envelope what the settings ask for and the event lacks."""

    async def enrich(
        self, event: StoredEvent, payload: dict[str, Any], settings: WebhookSettings
    ) -> dict[str, Any]: ...


class NoEnrichment:
    async def enrich(
        self, event: StoredEvent, payload: dict[str, Any], settings: WebhookSettings
    ) -> dict[str, Any]:
        return payload


class OutboxReader(Protocol):
    async def read_after(self, seq: int, *, limit: int = ...) -> list[StoredEvent]: ...


class JobSink(Protocol):
    """The part of the job store the relay uses (`Store.jobs`)."""

    async def enqueue(
        self, new_jobs: Sequence[NewJob], *, cursor: tuple[str, int] | None = None
    ) -> int: ...

    async def cursor(self, name: str) -> int: ...


def default_dedupe_key(event_id: str) -> str:
    return f"{event_id}:default"


def route_dedupe_key(event_id: str, route_id: str) -> str:
    return f"{event_id}:route:{route_id}"


def default_route_sends(settings: WebhookSettings, payload: Mapping[str, Any]) -> bool:
    """The default route's own filters: `webhookEvents` and `inboxNewOnly`."""
    event = str(payload.get("event"))
    if not settings.default_route_wants(event):
        return False
    return not (
        event == EventName.MESSAGE_NEW and settings.inbox_new_only and not in_inbox(payload)
    )


def jobs_for(
    event: StoredEvent, payload: dict[str, Any], matches: Sequence[RouteMatch], *, default: bool
) -> list[NewJob]:
    """The jobs of one event: each matching route's, then the default route's."""
    common = {"eventId": event.event_id, "account": event.account, "event": str(event.event)}
    specs = []
    for match in matches:
        job: dict[str, Any] = {
            **common,
            "payload": payload,
            "route": {
                "id": match.route_id,
                "url": match.target_url,
                "headers": [list(pair) for pair in match.custom_headers],
            },
        }
        if match.body is not None:
            job["body"] = match.body
        specs.append(
            NewJob(
                NOTIFY_QUEUE,
                job,
                ordering_key=f"{event.account}:route:{match.route_id}",
                dedupe_key=route_dedupe_key(event.event_id, match.route_id),
                max_attempts=MAX_ATTEMPTS,
            )
        )
    if default:
        specs.append(
            NewJob(
                NOTIFY_QUEUE,
                {**common, "payload": payload},
                ordering_key=event.account,
                dedupe_key=default_dedupe_key(event.event_id),
                max_attempts=MAX_ATTEMPTS,
            )
        )
    return specs


@dataclass
class Relay:
    outbox: OutboxReader
    jobs: JobSink
    settings: SettingsCache
    routes: RouteEvaluator = field(default_factory=NoRoutes)
    enricher: Enricher = field(default_factory=NoEnrichment)
    batch_size: int = BATCH_SIZE
    poll_interval: float = POLL_INTERVAL_S

    async def run(self) -> None:
        """Relay until cancelled; a failed step is logged and retried after a pause."""
        while True:
            try:
                moved = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the relay must outlive any one failure
                log.warning("webhooks.relay_failed", error=str(error))
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if moved == 0:
                await asyncio.sleep(self.poll_interval)

    async def step(self) -> int:
        """Relay one batch; returns how many events it covered (0: nothing new)."""
        position = await self.jobs.cursor(RELAY_CURSOR)
        events = await self.outbox.read_after(position, limit=self.batch_size)
        if not events:
            return 0
        settings = await self.settings.get()
        specs: list[NewJob] = []
        if settings.enabled:
            gate = asyncio.Semaphore(ENRICH_CONCURRENCY)
            prepared = await asyncio.gather(
                *(self._jobs_of(event, settings, gate) for event in events)
            )
            specs = [spec for batch in prepared for spec in batch]
        created = await self.jobs.enqueue(specs, cursor=(RELAY_CURSOR, events[-1].seq))
        log.debug("webhooks.relayed", events=len(events), jobs=created, seq=events[-1].seq)
        return len(events)

    async def _jobs_of(
        self, event: StoredEvent, settings: WebhookSettings, gate: asyncio.Semaphore
    ) -> list[NewJob]:
        payload = webhook_envelope(event, settings.service_url)
        default = default_route_sends(settings, payload)
        if event.event == EventName.MESSAGE_NEW and (
            default or not isinstance(self.routes, NoRoutes)
        ):
            async with gate:
                payload = await self.enricher.enrich(event, payload, settings)
        payload = format_payload(payload, settings)
        matches = await self._evaluate(event, payload)
        return jobs_for(event, payload, matches, default=default)

    async def _evaluate(self, event: StoredEvent, payload: dict[str, Any]) -> list[RouteMatch]:
        try:
            return await self.routes.evaluate({**payload, "eventId": event.event_id})
        except Exception as error:  # noqa: BLE001 - a broken evaluator must not stop the relay
            log.warning("webhooks.routes_failed", event_id=event.event_id, error=str(error))
            return []
