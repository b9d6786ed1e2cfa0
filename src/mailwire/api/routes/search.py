"""`POST /v1/account/{account}/search`: the messages of one folder that match a search.

The index answers what it holds; the rest goes to the mail server on one of
the account's command connections (`services.search`). The account is a plain
path parameter rather than `OwnedAccount`: any node can answer a search the
index covers, so only a search that needs the server and lands on a process
without the account's worker goes through `owned_account`, which forwards the
whole request to the owner (or answers 503 `AccountNotConnected`). A server
that fails the search answers 502 `MailServerError`, never 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from mailwire.api.forwarding import owned_account
from mailwire.api.models.common import STANDARD_ERRORS, ErrorResponse, error_responses
from mailwire.api.models.messages import MessageList
from mailwire.api.models.search import SearchBody, SearchParams
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.services.container import Services
from mailwire.services.search import AccountNotConnectedError

router = APIRouter(route_class=MailwireRoute)

_RESPONSES = error_responses(*STANDARD_ERRORS, 404)
_RESPONSES[502] = {"description": "The mail server failed the search", "model": ErrorResponse}
_RESPONSES[503] = {
    "description": "The search needs the mail server and the account is not connected here",
    "model": ErrorResponse,
}


@router.post(
    "/v1/account/{account}/search",
    operation_id="postV1AccountAccountSearch",
    summary="Search for messages",
    description=(
        "The messages of one folder (`path`, INBOX when left out) that meet every given"
        " criterion, newest first, in the same shape as the message list. Flags, sender,"
        " subject, size, dates, UIDs, ids and labels are matched in the index; body,"
        " recipients and other header fields are searched on the mail server. Page with"
        " `page` or with the cursors of an earlier answer to the same search."
    ),
    tags=["Message"],
    response_model=MessageList,
    response_model_exclude_none=True,
    responses=_RESPONSES,
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def search_messages(
    request: Request,
    account: AccountId,
    query: Annotated[SearchParams, Query()],
    body: SearchBody,
    svc: Svc,
) -> dict[str, Any]:
    search = body.search.model_dump(by_alias=True, exclude_none=True)
    try:
        return await _search(svc, account, search, query)
    except AccountNotConnectedError:
        # Forwards to the owner, or refuses with 503 (both by raising `ShortCircuit`);
        # returns only when the account's worker started here meanwhile.
        await owned_account(request, account)
        return await _search(svc, account, search, query)


async def _search(
    svc: Services, account: str, search: dict[str, Any], query: SearchParams
) -> dict[str, Any]:
    return await svc.search.search(
        account,
        search,
        path=query.path,
        page=query.page,
        page_size=query.pageSize,
        cursor=query.cursor,
    )
