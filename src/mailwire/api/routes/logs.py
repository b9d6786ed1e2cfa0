"""`GET /v1/logs/{account}`: the account's recorded protocol exchange.

The answer is `text/plain` holding one JSON object per line (NDJSON), oldest
first: `{"time": <epoch ms>, "src": "c"|"s", "msg": "..."}`, where `src` "c" is
what Mailwire sent and "s" what the server sent. Lines are masked before they
are stored. The body is streamed from the store in batches, so a long log never
sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.store.account_logs import LogLine

router = APIRouter(route_class=MailwireRoute, tags=["Logs"])


@router.get(
    "/v1/logs/{account}",
    operation_id="getV1LogsAccount",
    summary="Show an account's protocol log",
    description="One JSON object per line: `time` (epoch milliseconds), `src` (`c` for "
    "Mailwire, `s` for the server) and `msg`. Empty unless the account has `logs: true`.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(*STANDARD_ERRORS, 404),
    },
    openapi_extra=operation(Group.LOGS, Action.READ),
)
async def get_logs(account: AccountId, svc: Svc) -> StreamingResponse:
    lines = await svc.accounts.log_lines(account.strip())
    return StreamingResponse(_ndjson(lines), media_type="text/plain; charset=utf-8")


async def _ndjson(lines: AsyncIterator[LogLine]) -> AsyncIterator[bytes]:
    async for line in lines:
        entry = {"time": line.time, "src": line.src, "msg": line.msg}
        yield (json.dumps(entry, ensure_ascii=False) + "\n").encode()
