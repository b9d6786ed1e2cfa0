"""`POST /v1/account/{account}/submit` and `/v1/outbox`: queue messages, watch the queue.

The body (`SubmitMessage`) becomes the service's `Submission` here. A submit
answers once the message is built and queued (`services.submit`); delivery
happens in the background (`services.sending`). An `Idempotency-Key` header
makes a repeated request return the first answer instead of queueing the
message again; the request's digest (body and key, canonical JSON) tells a
replay from another request that reuses a key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query

from mailwire.api.forwarding import OwnedAccount
from mailwire.api.models.common import (
    STANDARD_ERRORS,
    MessageId,
    epoch_ms,
    error_responses,
    iso_time,
    pages,
)
from mailwire.api.models.submit import (
    SUBMIT_BODY_LIMIT,
    DeleteOutboxEntryResponse,
    OutboxEntry,
    OutboxListResponse,
    SubmitDraft,
    SubmitMessage,
    SubmitResponse,
)
from mailwire.api.routes.uploads import message_fields
from mailwire.api.routing import AccountId, MailwireRoute, Svc, operation
from mailwire.domain.sending import QueuedSend
from mailwire.domain.tokens import Action, Group
from mailwire.errors import InputError, NotFoundError
from mailwire.protocols.mime import headers as mime
from mailwire.services.submit import MergeEntry, Submission
from mailwire.store.send_queue import Attempts

router = APIRouter(route_class=MailwireRoute)

#: The reference's bound on Idempotency-Key.
MAX_IDEMPOTENCY_KEY_LENGTH = 1024
QueueId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$", description="Queue id")
]


@router.post(
    "/v1/account/{account}/submit",
    operation_id="postV1AccountAccountSubmit",
    summary="Submit message for delivery",
    description=(
        "Builds the message and queues it for delivery through the account's SMTP server"
        " (or the gateway named). The answer means queued, not sent: follow the outbox or"
        " the messageSent, messageDeliveryError and messageFailed webhooks."
    ),
    tags=["Submit"],
    response_model=SubmitResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS, 404, 409, 413),
    openapi_extra=operation(Group.SUBMIT, Action.SEND, body_limit=SUBMIT_BODY_LIMIT),
)
async def submit_message(
    account: AccountId,
    body: SubmitMessage,
    svc: Svc,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY_LENGTH),
    ] = None,
) -> dict[str, Any]:
    key = idempotency_key.strip() if idempotency_key else None
    if key and body.mailMerge:
        raise InputError(
            "An Idempotency-Key cannot be used with mailMerge: submit each message alone",
            key="mailMerge",
        )
    return await svc.submit.submit(account, _submission(body, key or None))


def _submission(body: SubmitMessage, key: str | None) -> Submission:
    draft, stored, reference = message_fields(body)
    envelope = body.envelope
    return Submission(
        draft=draft,
        raw=base64.b64decode(body.raw) if body.raw is not None else None,
        stored_attachments=stored,
        reference=reference,
        envelope_from=envelope.from_ if envelope else None,
        envelope_to=tuple(envelope.to or ()) if envelope else (),
        send_at=epoch_ms(body.sendAt) if body.sendAt is not None else None,
        delivery_attempts=body.deliveryAttempts,
        gateway=body.gateway,
        copy=body.copy_,
        sent_mail_path=body.sentMailPath,
        dsn=body.dsn.model_dump(by_alias=True, exclude_none=True) if body.dsn else None,
        dry_run=body.dryRun,
        idempotency_key=key,
        request_hash=_digest(body, key) if key else None,
        template=body.template,
        render=False if body.render is False else (True if body.mailMerge else None),
        params=body.render.params if body.render else None,
        preview_text=body.previewText,
        mail_merge=tuple(
            MergeEntry(
                to=mime.Address(entry.to.address, entry.to.name),
                params=entry.params,
                message_id=entry.messageId,
                send_at=epoch_ms(entry.sendAt) if entry.sendAt is not None else None,
            )
            for entry in body.mailMerge or ()
        ),
    )


def _digest(body: SubmitMessage | SubmitDraft, key: str) -> str:
    canonical = json.dumps(
        [key, body.model_dump(mode="json", by_alias=True, exclude_none=True)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/v1/account/{account}/message/{message}/submit",
    operation_id="postV1AccountAccountMessageMessageSubmit",
    summary="Submit a stored draft for delivery",
    description=(
        "Queues a draft (a message in the Drafts folder or flagged \\Draft) as it is;"
        " once it is sent, it is filed in Sent and removed from Drafts."
    ),
    tags=["Submit"],
    response_model=SubmitResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS, 404, 409, 502, 503),
    openapi_extra=operation(Group.SUBMIT, Action.SEND),
)
async def submit_draft(
    account: OwnedAccount,
    message: Annotated[MessageId, Path(description="The draft's id")],
    svc: Svc,
    body: SubmitDraft | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY_LENGTH),
    ] = None,
) -> dict[str, Any]:
    draft = body or SubmitDraft()
    key = idempotency_key.strip() if idempotency_key else None
    submission = Submission(
        envelope_from=draft.envelope.from_ if draft.envelope else None,
        envelope_to=tuple(draft.envelope.to or ()) if draft.envelope else (),
        send_at=epoch_ms(draft.sendAt) if draft.sendAt is not None else None,
        delivery_attempts=draft.deliveryAttempts,
        gateway=draft.gateway,
        copy=draft.copy_,
        sent_mail_path=draft.sentMailPath,
        dsn=draft.dsn.model_dump(by_alias=True, exclude_none=True) if draft.dsn else None,
        idempotency_key=key or None,
        request_hash=_digest(draft, key) if key else None,
    )
    return await svc.submit.submit_draft(account, message, submission)


@router.get(
    "/v1/outbox",
    operation_id="getV1Outbox",
    summary="List queued messages",
    tags=["Outbox"],
    response_model=OutboxListResponse,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.OUTBOX, Action.READ),
)
async def list_outbox(
    svc: Svc,
    page: Annotated[int, Query(ge=0, le=1_048_576, description="Zero-based page")] = 0,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Entries per page")] = 20,
) -> OutboxListResponse:
    found = await svc.submit.pending(page=page, page_size=pageSize)
    return OutboxListResponse(
        total=found.total,
        page=page,
        pages=pages(found.total, pageSize),
        messages=[outbox_entry(entry, attempts) for entry, attempts in found.entries],
    )


@router.get(
    "/v1/outbox/{queueId}",
    operation_id="getV1OutboxQueueid",
    summary="Get queued message",
    tags=["Outbox"],
    response_model=OutboxEntry,
    response_model_exclude_none=True,
    responses=error_responses(*STANDARD_ERRORS, 404),
    openapi_extra=operation(Group.OUTBOX, Action.READ),
)
async def get_outbox_entry(queueId: QueueId, svc: Svc) -> OutboxEntry:
    found = await svc.submit.entry(queueId)
    if found is None:
        raise NotFoundError("No queued message has this id", code="MessageNotFound")
    return outbox_entry(*found)


@router.delete(
    "/v1/outbox/{queueId}",
    operation_id="deleteV1OutboxQueueid",
    summary="Remove a message",
    description="Takes a message out of the queue before it is sent.",
    tags=["Outbox"],
    response_model=DeleteOutboxEntryResponse,
    responses=error_responses(*STANDARD_ERRORS),
    openapi_extra=operation(Group.OUTBOX, Action.DESTRUCTIVE),
)
async def delete_outbox_entry(queueId: QueueId, svc: Svc) -> DeleteOutboxEntryResponse:
    return DeleteOutboxEntryResponse(deleted=await svc.submit.cancel(queueId))


def outbox_entry(entry: QueuedSend, attempts: Attempts) -> OutboxEntry:
    next_attempt: str | Literal[False] | None = None
    if attempts.next_run is not None:
        next_attempt = iso_time(attempts.next_run)
    elif attempts.made >= entry.max_attempts:
        next_attempt = False
    return OutboxEntry(
        queueId=entry.queue_id,
        account=entry.account,
        messageId=entry.message_id,
        envelope=entry.envelope.as_dict(),
        subject=entry.subject,
        gateway=entry.gateway,
        idempotencyKey=entry.idempotency_key,
        created=iso_time(entry.created_at),
        scheduled=iso_time(entry.send_at),
        nextAttempt=next_attempt,
        attemptsMade=attempts.made,
        attempts=entry.max_attempts,
        progress=dict(entry.progress) if entry.progress else None,
    )
