"""`GET /v1/changes`: every account change as Server-Sent Events.

Each event is one SSE message: `id` is the outbox sequence number (send it back
as `Last-Event-ID` to resume), `event` the event name and `data` the JSON
envelope (`account`, `date`, `path`, `specialUse`, `event`, `data`). A comment
line keeps quiet streams open. A token bound to an account sees only that
account's events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.routing import PRINCIPAL_KEY, MailwireRoute, operation, services
from mailwire.domain.events import StoredEvent
from mailwire.domain.tokens import Action, Group, TokenRecord
from mailwire.services.changes import envelope
from mailwire.services.container import Services

router = APIRouter(route_class=MailwireRoute, tags=["Account"])

#: Longest accepted Last-Event-ID (a decimal sequence number).
MAX_EVENT_ID_LENGTH = 20


@router.get(
    "/v1/changes",
    operation_id="getV1Changes",
    summary="Stream account changes",
    description="A Server-Sent Events stream of every change Mailwire records, until the "
    "client disconnects. Send `Last-Event-ID` to resume after the given event.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **error_responses(*STANDARD_ERRORS),
    },
    openapi_extra=operation(Group.EVENTS, Action.READ),
)
async def get_changes(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    last_event_id: Annotated[str | None, Header(max_length=MAX_EVENT_ID_LENGTH)] = None,
) -> StreamingResponse:
    principal: TokenRecord = request.scope[PRINCIPAL_KEY]
    last_seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    start = await svc.changes.start_position(last_seen)
    events = svc.changes.follow(start, account=principal.account)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse(events), media_type="text/event-stream", headers=headers)


async def _sse(events: AsyncIterator[StoredEvent | None]) -> AsyncIterator[bytes]:
    yield b": connected\n\n"
    async for event in events:
        if event is None:
            yield b": keep-alive\n\n"
            continue
        data = json.dumps(envelope(event), ensure_ascii=False, separators=(",", ":"))
        yield f"id: {event.seq}\nevent: {event.event}\ndata: {data}\n\n".encode()
