"""Request and answer models of `POST /v1/account/{account}/submit` and `/v1/outbox`.

The message fields are the upload's (`api.models.uploads`): addresses, subject,
text, html, attachments (base64 or stored), custom headers, `reference` for a
reply or forward, `raw`. Submit adds the delivery: `envelope`, `sendAt`,
`deliveryAttempts`, `gateway`, `copy`/`sentMailPath`, `dsn`, `dryRun`.

Content may come from a stored `template` and be rendered (`render`), and
`mailMerge` sends one message per entry. Fields of the reference that Mailwire
does not do yet (tracking, list ids, proxies and local addresses) are not in
the model, so a request that uses them is refused with 400 instead of being
queued without them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from mailwire.api.models.common import (
    OneLine,
    RequestModel,
    ResponseModel,
    Single,
    refuse_controls,
)
from mailwire.api.models.messages import lowercase
from mailwire.api.models.search import HeaderName
from mailwire.api.models.uploads import (
    MAX_ADDRESS_LENGTH,
    MAX_BODY_LENGTH,
    MAX_LOCALE_LENGTH,
    MAX_SUBJECT_LENGTH,
    MAX_UPLOAD_ATTACHMENTS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_HEADERS,
    Address,
    AddressList,
    Base64,
    HeaderValue,
    RfcMessageId,
    UploadAttachment,
    UploadReference,
    Verbatim,
    content_size,
)
from mailwire.domain.sending import MAX_DELIVERY_ATTEMPTS

#: The route body limit: the largest message in base64 plus the JSON around it.
SUBMIT_BODY_LIMIT = MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024
MAX_GATEWAY_ID_LENGTH = 256
MAX_PATH_LENGTH = 1024
MAX_DSN_ID_LENGTH = 256
#: RFC 5321 section 4.5.3.1.8: a server must take at least 100 recipients per
#: message; more than this in one envelope is refused.
MAX_ENVELOPE_RECIPIENTS = 1000

EnvelopeAddress = Annotated[
    str,
    Field(max_length=MAX_ADDRESS_LENGTH, pattern=r"^[^\s@<>]+@[^\s@<>]+$"),
    AfterValidator(refuse_controls),
]


class SmtpEnvelope(RequestModel):
    """MAIL FROM and RCPT TO, when they should differ from the header's addresses."""

    from_: EnvelopeAddress | None = Field(None, alias="from")
    to: Annotated[Single[EnvelopeAddress], Field(max_length=MAX_ENVELOPE_RECIPIENTS)] | None = None


class DsnRequest(RequestModel):
    """Delivery status notifications (RFC 3461), when the server offers DSN."""

    id: Annotated[OneLine, Field(max_length=MAX_DSN_ID_LENGTH)] | None = None
    return_: Annotated[Literal["headers", "full"], BeforeValidator(lowercase)] = Field(
        alias="return"
    )
    notify: (
        Annotated[
            Single[
                Annotated[
                    Literal["never", "success", "failure", "delay"], BeforeValidator(lowercase)
                ]
            ],
            Field(max_length=4),
        ]
        | None
    ) = None
    recipient: EnvelopeAddress | None = None


#: Variables for the template renderer: a JSON object, bounded in size.
RenderValues = dict[str, Any]
#: Most entries of one mail merge.
MAX_MAIL_MERGE = 1000
#: JSON size of one set of render values.
MAX_PARAMS_BYTES = 1024 * 1024
MAX_TEMPLATE_ID_LENGTH = 256
MAX_PREVIEW_LENGTH = 1024


def _bounded_params(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, default=str)) > MAX_PARAMS_BYTES:
        raise ValueError(f"render values are limited to {MAX_PARAMS_BYTES} bytes of JSON")
    return value


Params = Annotated[RenderValues, AfterValidator(_bounded_params)]


class TemplateRender(RequestModel):
    """How to render the content: the renderer's values (`params`)."""

    format: Literal["html", "markdown"] = "html"
    params: Params | None = None


class MailMergeEntry(RequestModel):
    to: Address
    messageId: RfcMessageId | None = None
    params: Params | None = None
    sendAt: datetime | None = None


class SubmitMessage(RequestModel):
    """Body of `POST /submit`: a message to queue for delivery."""

    reference: UploadReference | None = None
    raw: Base64 | None = Field(None, description="The whole message (RFC 5322), in base64")
    from_: Address | None = Field(None, alias="from")
    replyTo: AddressList | None = None
    to: AddressList | None = None
    cc: AddressList | None = None
    bcc: AddressList | None = None
    subject: Annotated[OneLine, Field(max_length=MAX_SUBJECT_LENGTH)] | None = None
    text: Verbatim | None = Field(None, max_length=MAX_BODY_LENGTH)
    html: Verbatim | None = Field(None, max_length=MAX_BODY_LENGTH)
    attachments: list[UploadAttachment] | None = Field(None, max_length=MAX_UPLOAD_ATTACHMENTS)
    messageId: RfcMessageId | None = None
    headers: dict[HeaderName, HeaderValue] | None = Field(None, max_length=MAX_UPLOAD_HEADERS)
    envelope: SmtpEnvelope | None = None
    sendAt: datetime | None = Field(None, description="Send at this time instead of now")
    deliveryAttempts: int | None = Field(
        None, ge=1, le=MAX_DELIVERY_ATTEMPTS, description="Attempts before giving up (10)"
    )
    gateway: (
        Annotated[str, Field(max_length=MAX_GATEWAY_ID_LENGTH, pattern=r"^[A-Za-z0-9._-]+$")] | None
    ) = None
    copy_: bool | None = Field(
        None, alias="copy", description="File a copy in the Sent folder (default yes)"
    )
    sentMailPath: Annotated[OneLine, Field(max_length=MAX_PATH_LENGTH)] | None = None
    dsn: DsnRequest | None = None
    dryRun: bool = Field(False, description="Build the message and return it; queue nothing")
    previewText: Annotated[OneLine, Field(max_length=MAX_PREVIEW_LENGTH)] | None = None
    template: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_ID_LENGTH)] | None = Field(
        None, description="Stored template to take the content from"
    )
    render: TemplateRender | Literal[False] | None = Field(
        None, description="Render the content with these values; false: send it as written"
    )
    mailMerge: list[MailMergeEntry] | None = Field(None, min_length=1, max_length=MAX_MAIL_MERGE)
    locale: str | None = Field(None, max_length=MAX_LOCALE_LENGTH, pattern=r"^[A-Za-z0-9_-]*$")
    tz: str | None = Field(None, max_length=MAX_LOCALE_LENGTH, pattern=r"^[A-Za-z0-9_+/-]*$")

    @model_validator(mode="after")
    def _bounded(self) -> SubmitMessage:
        if content_size(self.text, self.html, self.raw, self.attachments) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the message would be over {MAX_UPLOAD_BYTES} bytes")
        moments = [self.sendAt, *(entry.sendAt for entry in self.mailMerge or ())]
        if any(moment is not None and moment.tzinfo is None for moment in moments):
            raise ValueError("sendAt needs a time zone (e.g. a trailing Z)")
        if self.render and self.render.format == "markdown":
            raise ValueError("markdown rendering is not supported yet: send html")
        if self.raw is not None and (self.template or self.render or self.mailMerge):
            raise ValueError("raw cannot be combined with template, render or mailMerge")
        if self.mailMerge:
            taken = [
                name
                for name, value in (
                    ("messageId", self.messageId),
                    ("envelope", self.envelope),
                    ("to", self.to),
                    ("cc", self.cc),
                    ("bcc", self.bcc),
                    ("render", self.render),
                )
                if value is not None
            ]
            if taken:
                raise ValueError(
                    "with mailMerge each entry gives its own recipient and values: "
                    + ", ".join(taken)
                    + " cannot be set on the message"
                )
        return self


class MailMergeResult(ResponseModel):
    success: bool
    to: dict[str, str]
    messageId: str | None = None
    queueId: str | None = None
    sendAt: str | None = None
    preview: str | None = None
    error: str | None = None


class SubmitDraft(RequestModel):
    """Body of `POST /message/{message}/submit`: how to deliver a stored draft."""

    envelope: SmtpEnvelope | None = None
    copy_: bool | None = Field(None, alias="copy")
    sentMailPath: Annotated[OneLine, Field(max_length=MAX_PATH_LENGTH)] | None = None
    sendAt: datetime | None = None
    deliveryAttempts: int | None = Field(None, ge=1, le=MAX_DELIVERY_ATTEMPTS)
    gateway: (
        Annotated[str, Field(max_length=MAX_GATEWAY_ID_LENGTH, pattern=r"^[A-Za-z0-9._-]+$")] | None
    ) = None
    dsn: DsnRequest | None = None

    @model_validator(mode="after")
    def _zoned(self) -> SubmitDraft:
        if self.sendAt is not None and self.sendAt.tzinfo is None:
            raise ValueError("sendAt needs a time zone (e.g. a trailing Z)")
        return self


class IdempotencyResult(ResponseModel):
    key: str
    status: Literal["MISS", "HIT"]


class ReferenceResult(ResponseModel):
    message: str | None = None
    success: bool | None = None
    error: str | None = None


class SubmitResponse(ResponseModel):
    response: str
    messageId: str | None = None
    queueId: str | None = None
    sendAt: str | None = None
    reference: ReferenceResult | None = None
    preview: str | None = None
    idempotency: IdempotencyResult | None = None
    mailMerge: list[MailMergeResult] | None = None


class OutboxEntry(ResponseModel):
    queueId: str
    account: str
    source: dict[str, Any] | None = None
    messageId: str | None = None
    envelope: dict[str, Any]
    subject: str | None = None
    gateway: str | None = None
    proxy: str | None = None
    localAddress: str | None = None
    idempotencyKey: str | None = None
    created: str
    scheduled: str
    nextAttempt: str | Literal[False] | None = None
    attemptsMade: int
    attempts: int
    progress: dict[str, Any] | None = None


class OutboxListResponse(ResponseModel):
    total: int
    page: int
    pages: int
    messages: list[OutboxEntry]


class DeleteOutboxEntryResponse(ResponseModel):
    deleted: bool
