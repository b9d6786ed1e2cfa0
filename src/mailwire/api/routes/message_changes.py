"""Changing messages: flags and labels, moves and deletes, of one message or of a search.

Every route needs the mail server, so the account comes through `OwnedAccount`
(the request runs where the account's worker runs, or is forwarded there).
The change is made on the server and recorded in the index before the answer,
with exactly one event per changed message (`services.message_changes`). Bulk
routes act on the messages of the `path` folder that the `search` object
matches in the index, at most `MAX_BULK_MESSAGES` per request (a larger match
is refused with 400). Operation ids, tags and shapes are the reference's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from mailwire.api.forwarding import OwnedAccount
from mailwire.api.models.common import STANDARD_ERRORS, MessageId, error_responses
from mailwire.api.models.messages import (
    BulkDeleteQuery,
    BulkQuery,
    BulkUpdateResponse,
    DeleteMessageQuery,
    MessageDeleteResponse,
    MessageMove,
    MessageMoveResponse,
    MessagesDelete,
    MessagesDeleteResponse,
    MessagesMove,
    MessagesMoveResponse,
    MessagesUpdate,
    MessageUpdate,
    MessageUpdateResponse,
)
from mailwire.api.models.search import SearchQuery
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.services.message_changes import MAX_BULK_MESSAGES

Message = Annotated[MessageId, Path(description="The message's id")]

router = APIRouter(route_class=MailwireRoute)

_ERRORS = error_responses(*STANDARD_ERRORS, 404, 409, 502, 503)
_BULK = f" At most {MAX_BULK_MESSAGES} messages per request; a search matching more is refused."


def _search(search: SearchQuery) -> dict[str, Any]:
    return search.model_dump(by_alias=True, exclude_none=True)


def _update(update: MessageUpdate | None) -> dict[str, Any]:
    return {} if update is None else update.model_dump(exclude_none=True)


@router.put(
    "/v1/account/{account}/message/{message}",
    operation_id="putV1AccountAccountMessageMessage",
    summary="Update message",
    description=(
        "Add, remove or replace the message's flags; add or remove labels on Gmail"
        " accounts (other servers answer 409). Answers which changes ran and the"
        " resulting flags."
    ),
    tags=["Message"],
    response_model=MessageUpdateResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.WRITE),
)
async def update_message(
    account: OwnedAccount, message: Message, body: MessageUpdate, svc: Svc
) -> dict[str, Any]:
    return await svc.message_changes.update(account, message, _update(body))


@router.put(
    "/v1/account/{account}/message/{message}/move",
    operation_id="putV1AccountAccountMessageMessageMove",
    summary="Move a message to a specified folder",
    description="Moves the message to the folder `path`; answers its id and UID there.",
    tags=["Message"],
    response_model=MessageMoveResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.WRITE),
)
async def move_message(
    account: OwnedAccount, message: Message, body: MessageMove, svc: Svc
) -> dict[str, Any]:
    return await svc.message_changes.move(account, message, body.path)


@router.delete(
    "/v1/account/{account}/message/{message}",
    operation_id="deleteV1AccountAccountMessageMessage",
    summary="Delete message",
    description=(
        "Moves the message to the account's Trash folder; a message already in Trash,"
        " or any message with `force`, is deleted for good. Without a Trash folder and"
        " without `force` the request is refused (409 `TrashNotFound`), so that no"
        " message is destroyed by accident."
    ),
    tags=["Message"],
    response_model=MessageDeleteResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.DESTRUCTIVE),
)
async def delete_message(
    account: OwnedAccount,
    message: Message,
    query: Annotated[DeleteMessageQuery, Query()],
    svc: Svc,
) -> dict[str, Any]:
    return await svc.message_changes.delete(account, message, force=query.force)


@router.put(
    "/v1/account/{account}/messages",
    operation_id="putV1AccountAccountMessages",
    summary="Update messages",
    description="The same flag or label change on every message of `path` matching the search."
    + _BULK,
    tags=["Multi Message Actions"],
    response_model=BulkUpdateResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.WRITE),
)
async def update_messages(
    account: OwnedAccount,
    query: Annotated[BulkQuery, Query()],
    body: MessagesUpdate,
    svc: Svc,
) -> dict[str, Any]:
    return await svc.message_changes.update_many(
        account, query.path, _search(body.search), _update(body.update)
    )


@router.put(
    "/v1/account/{account}/messages/move",
    operation_id="putV1AccountAccountMessagesMove",
    summary="Move messages",
    description=(
        "Moves every message of `path` (query) matching the search to the folder `path`"
        " (body); `idMap` pairs each old id with the new one." + _BULK
    ),
    tags=["Multi Message Actions"],
    response_model=MessagesMoveResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.WRITE),
)
async def move_messages(
    account: OwnedAccount,
    query: Annotated[BulkQuery, Query()],
    body: MessagesMove,
    svc: Svc,
) -> dict[str, Any]:
    return await svc.message_changes.move_many(account, query.path, _search(body.search), body.path)


@router.put(
    "/v1/account/{account}/messages/delete",
    operation_id="putV1AccountAccountMessagesDelete",
    summary="Delete messages",
    description=(
        "Moves every message of `path` matching the search to Trash, or deletes them for"
        " good when `path` is the Trash folder or `force` is set (refused with 409 when"
        " the account has no Trash folder and `force` is not set)." + _BULK
    ),
    tags=["Multi Message Actions"],
    response_model=MessagesDeleteResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.DESTRUCTIVE),
)
async def delete_messages(
    account: OwnedAccount,
    query: Annotated[BulkDeleteQuery, Query()],
    body: MessagesDelete,
    svc: Svc,
) -> dict[str, Any]:
    return await svc.message_changes.delete_many(
        account, query.path, _search(body.search), force=query.force
    )
