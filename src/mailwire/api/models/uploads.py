"""Request and answer models of `POST /v1/account/{account}/message` (upload).

A message to store in a folder, built from fields (addresses, subject, text,
html, attachments, headers) or given whole as `raw`, optionally answering or
forwarding a stored message (`reference`). Base64 content must decode, and the
upload's decoded size is bounded as a whole (`MAX_UPLOAD_BYTES`); text and html
are kept exactly as sent.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from mailwire.api.models.common import (
    MailboxPath,
    MessageId,
    OneLine,
    RequestModel,
    ResponseModel,
    Single,
    refuse_controls,
)
from mailwire.api.models.messages import MAX_FLAGS, AttachmentId, Flag, lowercase
from mailwire.api.models.search import MAX_HEADER_NAME_LENGTH, HeaderName, Moment, ProviderId

#: Limits the reference gives, then ours where it is silent.
MAX_SUBJECT_LENGTH = 10240
MAX_BODY_LENGTH = 5 * 1024 * 1024
MAX_BASE64_LENGTH = 5 * 1024 * 1024
MAX_NAME_LENGTH = 256
MAX_FILENAME_LENGTH = 256
MAX_CONTENT_TYPE_LENGTH = 256
MAX_CID_LENGTH = 256
#: RFC 5322 section 2.1.1: a header line holds at most 998 characters (the reference's 996
#: leaves room for "<" and ">" folding).
MAX_MESSAGE_ID_LENGTH = 996
MAX_LOCALE_LENGTH = 100
#: RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_ADDRESS_LENGTH = 254
#: Recipients in one list of an uploaded message.
MAX_RECIPIENTS = 1000
#: Attachments of an uploaded message, as many as the index lists per message.
MAX_UPLOAD_ATTACHMENTS = 100
#: Custom headers of an uploaded message, as for an account's webhook headers.
MAX_UPLOAD_HEADERS = 100
#: A folded header value; 16 continuation lines of RFC 5322's 998.
MAX_HEADER_VALUE_LENGTH = 16 * 1024
#: Decoded bytes of an upload (raw, text, html and attachments together): the
#: message size most providers take (Gmail and Microsoft 365 stop at 25 MB).
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
#: Route body limit for the upload: the largest upload in base64 plus the JSON around it.
UPLOAD_BODY_LIMIT = MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024
# RFC 2045 section 5.1: type "/" subtype, then parameters.
_CONTENT_TYPE = r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(\s*;.*)?$"


def false_as_none(value: Any) -> Any:
    return None if value is False else value


def decoded_size(value: str) -> int:
    """Bytes that a padded base64 string (as `_base64` leaves it) decodes to."""
    return len(value) // 4 * 3 - value[-2:].count("=")


_WHITESPACE = re.compile(r"[ \t\r\n]+")


def _base64(value: str) -> str:
    """Check base64 and return it padded and without line breaks.

    Line-wrapped base64 (as MIME tools write it) and missing padding are taken,
    as Node's decoder takes them; any other character is refused.
    """
    compact = _WHITESPACE.sub("", value)
    padded = compact + "=" * (-len(compact) % 4)
    try:
        base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    return padded


HeaderValue = Annotated[OneLine, Field(max_length=MAX_HEADER_VALUE_LENGTH)]
#: Body text is kept as given: `RequestModel` trims other strings, which would eat a final newline.
Verbatim = Annotated[str, StringConstraints(strip_whitespace=False)]
RfcMessageId = Annotated[OneLine, Field(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]
Base64 = Annotated[str, Field(max_length=MAX_BASE64_LENGTH), AfterValidator(_base64)]


class Address(RequestModel):
    name: Annotated[OneLine, Field(max_length=MAX_NAME_LENGTH)] | None = None
    address: Annotated[
        str,
        Field(
            max_length=MAX_ADDRESS_LENGTH,
            pattern=r"^[^\s@<>]+@[^\s@<>]+$",
            examples=["user@example.com"],
        ),
        AfterValidator(refuse_controls),
    ]


AddressList = Annotated[Single[Address], Field(max_length=MAX_RECIPIENTS)]


class UploadAttachment(RequestModel):
    """One attachment: base64 `content`, or `reference` to an attachment already stored."""

    filename: Annotated[OneLine, Field(max_length=MAX_FILENAME_LENGTH)] | None = None
    contentType: (
        Annotated[
            OneLine,
            BeforeValidator(lowercase),
            Field(max_length=MAX_CONTENT_TYPE_LENGTH, pattern=_CONTENT_TYPE),
        ]
        | None
    ) = None
    contentDisposition: (
        Annotated[Literal["inline", "attachment"], BeforeValidator(lowercase)] | None
    ) = None
    cid: Annotated[OneLine, Field(max_length=MAX_CID_LENGTH)] | None = None
    encoding: Literal["base64"] = "base64"
    reference: Annotated[AttachmentId | None, BeforeValidator(false_as_none)] = None
    content: Base64 | None = None

    @model_validator(mode="after")
    def _one_source(self) -> UploadAttachment:
        if (self.content is None) == (self.reference is None):
            raise ValueError("give exactly one of content and reference")
        return self


UploadAction = Literal["forward", "reply", "reply-all"]


class UploadReference(RequestModel):
    """The message an upload answers or forwards (threading headers, quoted text)."""

    message: MessageId | None = None
    action: Annotated[Literal["forward", "reply", "reply-all"], BeforeValidator(lowercase)] = (
        "reply"
    )
    inline: bool = Field(False, description="Quote the referenced text in the new body")
    forwardAttachments: bool = False
    ignoreMissing: bool = Field(False, description="Go on if the referenced message is gone")
    messageId: RfcMessageId | None = None
    threadId: ProviderId | None = Field(None, description="Gmail thread to file the message in")

    @model_validator(mode="after")
    def _names_something(self) -> UploadReference:
        if self.message is None and self.messageId is None and self.threadId is None:
            raise ValueError("give message, messageId or threadId")
        return self


class MessageUpload(RequestModel):
    """Body of `POST /message`: a message to store in a folder (IMAP APPEND and kin)."""

    path: MailboxPath = Field(description="Folder to store the message in")
    flags: list[Flag] | None = Field(None, max_length=MAX_FLAGS, examples=[["\\Seen"]])
    internalDate: Moment | None = None
    reference: UploadReference | None = None
    raw: Base64 | None = Field(None, description="The whole message (RFC 5322), in base64")
    from_: Address | None = Field(None, alias="from")
    # Not in the reference's upload body, but in its submit body; accepted so one
    # address shape serves both.
    replyTo: AddressList | None = None
    to: AddressList | None = None
    cc: AddressList | None = None
    bcc: AddressList | None = None
    subject: Annotated[OneLine, Field(max_length=MAX_SUBJECT_LENGTH)] | None = None
    text: Verbatim | None = Field(None, max_length=MAX_BODY_LENGTH)
    html: Verbatim | None = Field(None, max_length=MAX_BODY_LENGTH)
    attachments: list[UploadAttachment] | None = Field(None, max_length=MAX_UPLOAD_ATTACHMENTS)
    messageId: RfcMessageId | None = None
    headers: dict[HeaderName, HeaderValue] | None = Field(
        None,
        max_length=MAX_UPLOAD_HEADERS,
        examples=[{"X-Campaign": "spring"}],
        description=f"Extra header fields (names up to {MAX_HEADER_NAME_LENGTH} characters)",
    )
    locale: str | None = Field(None, max_length=MAX_LOCALE_LENGTH, pattern=r"^[A-Za-z0-9_-]*$")
    tz: str | None = Field(None, max_length=MAX_LOCALE_LENGTH, pattern=r"^[A-Za-z0-9_+/-]*$")

    @model_validator(mode="after")
    def _bounded(self) -> MessageUpload:
        if self.size() > MAX_UPLOAD_BYTES:
            raise ValueError(f"the message would be over {MAX_UPLOAD_BYTES} bytes")
        return self

    def size(self) -> int:
        """Decoded bytes of the content (before MIME encoding)."""
        return content_size(self.text, self.html, self.raw, self.attachments)


def content_size(
    text: str | None,
    html: str | None,
    raw: str | None,
    attachments: list[UploadAttachment] | None,
) -> int:
    """Decoded bytes of a message's content (before MIME encoding): text and html as
    UTF-8, raw and attachments as their base64 decodes."""
    total = sum(len(part.encode()) for part in (text, html) if part)
    total += decoded_size(raw) if raw else 0
    return total + sum(
        decoded_size(attachment.content) for attachment in attachments or () if attachment.content
    )


class UploadReferenceResult(ResponseModel):
    message: str | None = None
    threadId: str | None = None
    success: bool | None = None
    error: str | None = None


class MessageUploadResponse(ResponseModel):
    """Answer of `POST /message`."""

    id: str | None = None
    path: str | None = None
    uid: int | None = None
    uidValidity: str | None = None
    seq: int | None = None
    messageId: str | None = None
    reference: UploadReferenceResult | None = None
