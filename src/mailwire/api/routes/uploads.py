"""`POST /v1/account/{account}/message`: store a message in a folder (upload).

The body (`MessageUpload`) is turned into the service's `Upload` here: the
message's fields into a MIME `Draft`, base64 into bytes. The service builds
the message, APPENDs it on one of the account's command connections and
indexes it at once (`services.uploads`), so the account runs where its worker
runs (`OwnedAccount`). The route's body limit is `UPLOAD_BODY_LIMIT`, the
largest upload in base64 with its JSON, instead of the app-wide default.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter

from mailwire.api.forwarding import OwnedAccount
from mailwire.api.models.common import STANDARD_ERRORS, error_responses
from mailwire.api.models.submit import SubmitMessage
from mailwire.api.models.uploads import (
    UPLOAD_BODY_LIMIT,
    Address,
    MessageUpload,
    MessageUploadResponse,
)
from mailwire.api.routing import MailwireRoute, Svc, operation
from mailwire.domain.tokens import Action, Group
from mailwire.protocols.mime import headers as mime
from mailwire.protocols.mime.build import Attachment, Draft
from mailwire.services.uploads import Reference, StoredAttachment, Upload

router = APIRouter(route_class=MailwireRoute)


@router.post(
    "/v1/account/{account}/message",
    operation_id="postV1AccountAccountMessage",
    summary="Upload message",
    description=(
        "Stores a message in a folder: built from the fields given, or `raw` as it is."
        " The new message is in the message list when the answer arrives."
    ),
    tags=["Message"],
    response_model=MessageUploadResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS, 404, 413, 502, 503),
    openapi_extra=operation(Group.MESSAGE, Action.WRITE, body_limit=UPLOAD_BODY_LIMIT),
)
async def upload_message(account: OwnedAccount, body: MessageUpload, svc: Svc) -> dict[str, Any]:
    return await svc.uploads.upload(account, _upload(body))


def _upload(body: MessageUpload) -> Upload:
    draft, stored, reference = message_fields(body)
    common: dict[str, Any] = {
        "path": body.path,
        "flags": tuple(body.flags or ()),
        "internal_date": body.internalDate,
        "reference": reference,
    }
    if body.raw is not None:
        # Fields sent beside `raw` replace the matching header fields in it.
        return Upload(raw=base64.b64decode(body.raw), draft=draft, **common)
    return Upload(draft=draft, stored_attachments=stored, **common)


def message_fields(
    body: MessageUpload | SubmitMessage,
) -> tuple[Draft, tuple[StoredAttachment, ...], Reference | None]:
    """The message fields upload and submit share: the MIME draft (base64 decoded),
    attachments to read from stored messages, and the reply/forward reference."""
    reference = None
    if body.reference is not None and body.reference.message is not None:
        reference = Reference(
            message=body.reference.message,
            action=body.reference.action,
            inline=body.reference.inline,
            message_id=body.reference.messageId,
            forward_attachments=body.reference.forwardAttachments,
            ignore_missing=body.reference.ignoreMissing,
        )
    attachments = []
    stored = []
    for item in body.attachments or ():
        if item.content is not None:
            attachments.append(
                Attachment.from_base64(
                    item.content,
                    filename=item.filename,
                    content_type=item.contentType,
                    disposition=item.contentDisposition,
                    cid=item.cid,
                )
            )
        elif item.reference is not None:
            stored.append(
                StoredAttachment(
                    item.reference,
                    item.filename,
                    item.contentType,
                    item.contentDisposition,
                    item.cid,
                )
            )
    draft = Draft(
        from_=_address(body.from_) if body.from_ else None,
        to=_addresses(body.to),
        cc=_addresses(body.cc),
        bcc=_addresses(body.bcc),
        reply_to=_addresses(body.replyTo),
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=tuple(attachments),
        headers=tuple((body.headers or {}).items()),
        message_id=body.messageId,
    )
    return draft, tuple(stored), reference


def _address(value: Address) -> mime.Address:
    return mime.Address(value.address, value.name)


def _addresses(values: list[Address] | None) -> tuple[mime.Address, ...]:
    return tuple(_address(value) for value in values or ())
