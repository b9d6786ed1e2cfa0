"""`POST`, `PUT` and `DELETE /v1/account/{account}/mailbox`: create, rename or
(un)subscribe, and delete a folder.

The changes run on the mail server over one of the account's command
connections and are recorded in the index before the answer
(`services.folders`), so the account runs where its worker runs
(`OwnedAccount`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mailwire.api.forwarding import OwnedAccount
from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.models.mailboxes import (
    CreateMailbox,
    CreateMailboxResponse,
    DeleteMailboxResponse,
    MailboxPathQuery,
    ModifyMailbox,
    ModifyMailboxResponse,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group

router = APIRouter(route_class=MailwireRoute)

_ERRORS = error_responses(*STANDARD_ERRORS, 404, 502, 503)


@router.post(
    "/v1/account/{account}/mailbox",
    operation_id="postV1AccountAccountMailbox",
    summary="Create mailbox",
    description=(
        "Creates a folder from its path segments, joined with the server's delimiter"
        " (missing parents come with it). A folder that exists already answers"
        " `created: false`."
    ),
    tags=["Mailbox"],
    response_model=CreateMailboxResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MAILBOX, Action.WRITE),
)
async def create_mailbox(account: OwnedAccount, body: CreateMailbox, svc: Svc) -> dict[str, Any]:
    return await svc.folders.create(account, body.path)


@router.put(
    "/v1/account/{account}/mailbox",
    operation_id="putV1AccountAccountMailbox",
    summary="Modify mailbox",
    description="Renames a folder to `newPath`, changes its subscription, or both.",
    tags=["Mailbox"],
    response_model=ModifyMailboxResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MAILBOX, Action.WRITE),
)
async def modify_mailbox(account: OwnedAccount, body: ModifyMailbox, svc: Svc) -> dict[str, Any]:
    return await svc.folders.modify(
        account, body.path, new_path=body.newPath, subscribed=body.subscribed
    )


@router.delete(
    "/v1/account/{account}/mailbox",
    operation_id="deleteV1AccountAccountMailbox",
    summary="Delete mailbox",
    description="Deletes a folder and the messages in it. INBOX cannot be deleted.",
    tags=["Mailbox"],
    response_model=DeleteMailboxResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MAILBOX, Action.DESTRUCTIVE),
)
async def delete_mailbox(
    account: OwnedAccount, query: Annotated[MailboxPathQuery, Query()], svc: Svc
) -> dict[str, Any]:
    return await svc.folders.delete(account, query.path)
