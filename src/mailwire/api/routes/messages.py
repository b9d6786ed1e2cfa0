"""`/v1/account/{account}/mailboxes` and `/messages`: folders and message lists.

Both are answered from the on-disk index (`services.messages`): no request
here waits for the mail server. Operation ids, tags and parameters are the
reference's; a token bound to one account reaches only that account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.models.mailboxes import MailboxesQuery, MailboxesResponse
from mailwire.api.models.messages import MessageList, MessagesQuery
from mailwire.api.routing import MailwireRoute, operation, services
from mailwire.domain.accounts import MAX_ACCOUNT_ID_LENGTH
from mailwire.domain.tokens import Action, Group
from mailwire.services.container import Services

AccountId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH, description="The account's id"),
]
Svc = Annotated[Services, Depends(services)]

router = APIRouter(route_class=MailwireRoute)

_WITH_404 = error_responses(*STANDARD_ERRORS, 404)


@router.get(
    "/v1/account/{account}/mailboxes",
    operation_id="getV1AccountAccountMailboxes",
    summary="List mailboxes",
    description="Every folder of the account as last listed by its server, from the index.",
    tags=["Mailbox"],
    response_model=MailboxesResponse,
    response_model_exclude_none=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.MAILBOX, Action.READ),
)
async def list_mailboxes(
    account: AccountId, query: Annotated[MailboxesQuery, Query()], svc: Svc
) -> dict[str, Any]:
    return {"mailboxes": await svc.messages.folders(account, counters=query.counters)}


@router.get(
    "/v1/account/{account}/messages",
    operation_id="getV1AccountAccountMessages",
    summary="List messages in a folder",
    description=(
        "A page of the folder's messages, newest first, from the index. Page with"
        " `nextPageCursor`/`prevPageCursor` to walk a folder without repeats or gaps"
        " while mail arrives; `page` counts from the newest message."
    ),
    tags=["Message"],
    response_model=MessageList,
    response_model_exclude_none=True,
    responses=_WITH_404,
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def list_messages(
    account: AccountId, query: Annotated[MessagesQuery, Query()], svc: Svc
) -> dict[str, Any]:
    return await svc.messages.list_messages(
        account,
        path=query.path,
        page=query.page,
        page_size=query.pageSize,
        cursor=query.cursor,
    )
