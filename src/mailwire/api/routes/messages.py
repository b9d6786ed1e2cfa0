"""Folders, message lists, and one message's details, text, source and attachments.

`/mailboxes` and `/messages` are answered from the on-disk index
(`services.messages`) in any process. A message's details, text, raw source
and attachments need the mail server: those routes take the account through
`OwnedAccount`, so they run where the account's worker runs (the request is
forwarded there otherwise), on one of its command connections
(`services.message_content`). Downloads are streamed. Operation ids, tags and
parameters are the reference's; a token bound to one account reaches only
that account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from mailwire.api.forwarding import OwnedAccount
from mailwire.api.models.common import STANDARD_ERRORS, MessageId, error_responses
from mailwire.api.models.mailboxes import MailboxesQuery, MailboxesResponse
from mailwire.api.models.messages import (
    AttachmentId,
    MessageDetails,
    MessageList,
    MessageQuery,
    MessagesQuery,
    TextId,
    TextQuery,
    TextResponse,
)
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.protocols.mime.filenames import content_disposition, safe_filename
from mailwire.services.message_content import Download

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


_SERVER_ERRORS = error_responses(*STANDARD_ERRORS, 404, 502, 503)


@router.get(
    "/v1/account/{account}/message/{message}",
    operation_id="getV1AccountAccountMessageMessage",
    summary="Get message information",
    description=(
        "The message's details with its headers, from the index and the mail server;"
        " its text when `textType` asks for it."
    ),
    tags=["Message"],
    response_model=MessageDetails,
    response_model_exclude_none=True,
    responses=_SERVER_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def get_message(
    account: OwnedAccount,
    message: Annotated[MessageId, Path(description="The message's id")],
    query: Annotated[MessageQuery, Query()],
    svc: Svc,
) -> dict[str, Any]:
    return await svc.content.details(
        account,
        message,
        text_type=query.textType,
        max_bytes=query.maxBytes,
        mark_as_seen=query.markAsSeen,
        web_safe=query.webSafeHtml,
        embed_images=query.embedAttachedImages,
    )


@router.get(
    "/v1/account/{account}/message/{message}/source",
    operation_id="getV1AccountAccountMessageMessageSource",
    summary="Download raw message",
    description="The message exactly as the server stores it (RFC 5322), streamed.",
    tags=["Message"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"message/rfc822": {}}, "description": "The raw message"},
        **_SERVER_ERRORS,
    },
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def get_source(
    account: OwnedAccount,
    message: Annotated[MessageId, Path(description="The message's id")],
    svc: Svc,
) -> StreamingResponse:
    download = await svc.content.source(account, message)
    return _streamed(download, f"{message}.eml")


@router.get(
    "/v1/account/{account}/text/{text}",
    operation_id="getV1AccountAccountTextText",
    summary="Retrieve message text",
    description="The message's text parts, decoded to Unicode.",
    tags=["Message"],
    response_model=TextResponse,
    response_model_exclude_none=True,
    responses=_SERVER_ERRORS,
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def get_text(
    account: OwnedAccount,
    text: Annotated[TextId, Path(description="The text's id (from the message's `text.id`)")],
    query: Annotated[TextQuery, Query()],
    svc: Svc,
) -> dict[str, Any]:
    return await svc.content.text(
        account,
        text,
        text_type=query.textType,
        max_bytes=query.maxBytes,
        web_safe=query.webSafeHtml,
    )


@router.get(
    "/v1/account/{account}/attachment/{attachment}",
    operation_id="getV1AccountAccountAttachmentAttachment",
    summary="Download attachment",
    description="One attachment, decoded, streamed, with its type and a safe file name.",
    tags=["Message"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The attachment"},
        **_SERVER_ERRORS,
    },
    openapi_extra=operation(Group.MESSAGE, Action.READ),
)
async def get_attachment(
    account: OwnedAccount,
    attachment: Annotated[AttachmentId, Path(description="The attachment's id")],
    svc: Svc,
) -> StreamingResponse:
    download = await svc.content.attachment(account, attachment)
    return _streamed(download, download.filename)


def _streamed(download: Download, filename: str | None) -> StreamingResponse:
    """A download: never shown inline by a browser, and never sniffed into HTML."""
    return StreamingResponse(
        download.chunks,
        media_type=download.content_type,
        headers={
            "Content-Disposition": content_disposition("attachment", safe_filename(filename)),
            "X-Content-Type-Options": "nosniff",
        },
    )
