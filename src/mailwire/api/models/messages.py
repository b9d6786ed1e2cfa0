"""Bodies, query parameters and answers of the message routes.

`/v1/account/{account}/messages` (list, bulk update), `/messages/move`,
`/messages/delete`, `/message` (upload), `/message/{message}` (read, update,
delete), `/message/{message}/move`, `/message/{message}/source`,
`/text/{text}` and `/attachment/{attachment}`, field for field as in the
reference, with its limits where it gives them and ours (named below) where it
is silent.

Ids are checked at the edge: a message id (and a text id, which is the message
id) is Mailwire's 16-character URL-safe base64 id, an attachment id is that id
followed by the IMAP part number (RFC 3501 section 6.4.5). Flags follow RFC
3501's flag syntax; anything that goes into a header or a command line refuses
CR, LF and NUL; base64 content must decode, and an upload's decoded size is
bounded as a whole.
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
from mailwire.api.models.search import (
    MAX_HEADER_NAME_LENGTH,
    HeaderName,
    Label,
    Moment,
    PagingQuery,
    ProviderId,
    SearchQuery,
)
from mailwire.domain.messages import MESSAGE_ID_LENGTH, decode_message_id

#: Limits the reference gives.
MAX_FLAG_LENGTH = 128
MAX_TEXT_BYTES = 1024 * 1024 * 1024
MAX_SUBJECT_LENGTH = 10240
MAX_BODY_LENGTH = 5 * 1024 * 1024
MAX_BASE64_LENGTH = 5 * 1024 * 1024
MAX_NAME_LENGTH = 256
MAX_FILENAME_LENGTH = 256
MAX_CONTENT_TYPE_LENGTH = 256
MAX_CID_LENGTH = 256
MAX_ATTACHMENT_ID_LENGTH = 2048
#: RFC 5322 section 2.1.1: a header line holds at most 998 characters (the reference's 996
#: leaves room for "<" and ">" folding).
MAX_MESSAGE_ID_LENGTH = 996
MAX_LOCALE_LENGTH = 100
#: Our own bounds where the reference is silent.
#: Flags or labels changed in one request: far above what a message carries.
MAX_FLAGS = 100
MAX_LABELS = 100
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
#: Levels of an IMAP part number (`1.2.3`), and digits of one level.
MAX_PART_DEPTH = 32
MAX_PART_DIGITS = 6

# RFC 3501 section 9: flag-keyword = atom; flag-extension = "\" atom; ATOM-CHAR is any
# CHAR except atom-specials: "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
_ATOM = r"[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+"
_FLAG = re.compile(rf"\\?{_ATOM}")
_PART = rf"[1-9][0-9]{{0,{MAX_PART_DIGITS - 1}}}"
_ATTACHMENT_ID = re.compile(
    rf"[A-Za-z0-9_-]{{{MESSAGE_ID_LENGTH}}}{_PART}(?:\.{_PART}){{0,{MAX_PART_DEPTH - 1}}}"
)
# RFC 2045 section 5.1: type "/" subtype, then parameters.
_CONTENT_TYPE = r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(\s*;.*)?$"


def _flag(value: str) -> str:
    if not _FLAG.fullmatch(value):
        raise ValueError("is not an IMAP flag (RFC 3501: a keyword or a backslash and a keyword)")
    if value.lower() == "\\recent":
        raise ValueError("\\Recent is set by the server only (RFC 3501 section 2.3.2)")
    return value


def _attachment_id(value: str) -> str:
    if not _ATTACHMENT_ID.fullmatch(value) or decode_message_id(value[:MESSAGE_ID_LENGTH]) is None:
        raise ValueError("is not an attachment id")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _false_as_none(value: Any) -> Any:
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


Flag = Annotated[
    str,
    Field(min_length=1, max_length=MAX_FLAG_LENGTH, examples=["\\Seen"]),
    AfterValidator(_flag),
]
AttachmentId = Annotated[
    str,
    Field(max_length=MAX_ATTACHMENT_ID_LENGTH, examples=["AAAAAQAAAeEAAAAH2"]),
    AfterValidator(_attachment_id),
]
#: A text id names the text parts of one message; Mailwire uses the message id.
TextId = MessageId
TextType = Annotated[Literal["html", "plain", "*"], BeforeValidator(_lower)]
Base64 = Annotated[str, Field(max_length=MAX_BASE64_LENGTH), AfterValidator(_base64)]
FlagList = Single[Flag]
LabelList = Single[Label]
HeaderValue = Annotated[OneLine, Field(max_length=MAX_HEADER_VALUE_LENGTH)]
#: Body text is kept as given: `RequestModel` trims other strings, which would eat a final newline.
Verbatim = Annotated[str, StringConstraints(strip_whitespace=False)]
RfcMessageId = Annotated[OneLine, Field(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]


# ---------------------------------------------------------------- query parameters


class MessagesQuery(PagingQuery):
    """Query of `GET /messages`."""

    path: MailboxPath = Field(description="Folder to list")


class MessageQuery(RequestModel):
    """Query of `GET /message/{message}`."""

    maxBytes: int | None = Field(None, ge=0, le=MAX_TEXT_BYTES, description="Cut text longer")
    textType: TextType | None = Field(None, description="Which text parts to include")
    webSafeHtml: bool = Field(False, description="Sanitised HTML safe to show in a browser")
    embedAttachedImages: bool | None = Field(None, description="Inline cid: images as data URIs")
    preProcessHtml: bool = Field(False, description="Tidy the HTML before answering")
    markAsSeen: bool = Field(False, description="Also set \\Seen on the message")


class TextQuery(RequestModel):
    """Query of `GET /text/{text}`."""

    maxBytes: int | None = Field(None, ge=0, le=MAX_TEXT_BYTES)
    textType: TextType = "*"
    webSafeHtml: bool = False


class DeleteMessageQuery(RequestModel):
    """Query of `DELETE /message/{message}`."""

    force: bool = Field(False, description="Delete at once instead of moving to Trash")


class BulkQuery(RequestModel):
    """Query of `PUT /messages` and `PUT /messages/move`: the folder to act in."""

    path: MailboxPath


class BulkDeleteQuery(BulkQuery):
    """Query of `PUT /messages/delete`."""

    force: bool = Field(False, description="Delete at once instead of moving to Trash")


# ---------------------------------------------------------------- request bodies


class FlagUpdate(RequestModel):
    add: FlagList | None = Field(None, max_length=MAX_FLAGS)
    delete: FlagList | None = Field(None, max_length=MAX_FLAGS)
    set: FlagList | None = Field(None, max_length=MAX_FLAGS, description="Replace all flags")


class LabelUpdate(RequestModel):
    add: LabelList | None = Field(None, max_length=MAX_LABELS)
    delete: LabelList | None = Field(None, max_length=MAX_LABELS)


class MessageUpdate(RequestModel):
    """Body of `PUT /message/{message}`, and `update` of `PUT /messages`."""

    flags: FlagUpdate | None = None
    labels: LabelUpdate | None = Field(None, description="Gmail labels")


class MessageMove(RequestModel):
    """Body of `PUT /message/{message}/move`."""

    path: MailboxPath = Field(description="Destination folder")
    source: MailboxPath | None = Field(None, description="Folder the message is in")


class MessagesUpdate(RequestModel):
    """Body of `PUT /messages`."""

    search: SearchQuery
    update: MessageUpdate | None = None


class MessagesMove(RequestModel):
    """Body of `PUT /messages/move`."""

    search: SearchQuery
    path: MailboxPath = Field(description="Destination folder")


class MessagesDelete(RequestModel):
    """Body of `PUT /messages/delete`."""

    search: SearchQuery


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
            BeforeValidator(_lower),
            Field(max_length=MAX_CONTENT_TYPE_LENGTH, pattern=_CONTENT_TYPE),
        ]
        | None
    ) = None
    contentDisposition: (
        Annotated[Literal["inline", "attachment"], BeforeValidator(_lower)] | None
    ) = None
    cid: Annotated[OneLine, Field(max_length=MAX_CID_LENGTH)] | None = None
    encoding: Literal["base64"] = "base64"
    reference: Annotated[AttachmentId | None, BeforeValidator(_false_as_none)] = None
    content: Base64 | None = None

    @model_validator(mode="after")
    def _one_source(self) -> UploadAttachment:
        if (self.content is None) == (self.reference is None):
            raise ValueError("give exactly one of content and reference")
        return self


class UploadReference(RequestModel):
    """The message an upload answers or forwards (threading headers, quoted text)."""

    message: MessageId | None = None
    action: Annotated[Literal["forward", "reply", "reply-all"], BeforeValidator(_lower)] = "reply"
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
        total = sum(len(part.encode()) for part in (self.text, self.html) if part)
        total += decoded_size(self.raw) if self.raw else 0
        return total + sum(
            decoded_size(attachment.content)
            for attachment in self.attachments or ()
            if attachment.content
        )


# ---------------------------------------------------------------- responses


class AddressEntry(ResponseModel):
    name: str | None = None
    address: str | None = None


class AttachmentEntry(ResponseModel):
    id: str
    contentType: str | None = None
    encodedSize: int | None = None
    embedded: bool | None = None
    inline: bool | None = None
    encodedInMessage: bool | None = None
    contentId: str | None = None
    filename: str | None = None
    method: str | None = Field(None, description="iTIP method of a calendar part")


class TextSizes(ResponseModel):
    plain: int | None = None
    html: int | None = None


class TextInfo(ResponseModel):
    id: str | None = None
    encodedSize: TextSizes | None = None


class TextInfoDetails(TextInfo):
    plain: str | None = None
    html: str | None = None
    hasMore: bool | None = None
    webSafe: bool | None = None


class BounceResult(ResponseModel):
    message: str | None = None
    status: str | None = None


class BounceEntry(ResponseModel):
    message: str
    recipient: str | None = None
    action: str | None = None
    response: BounceResult | None = None
    date: str | None = None


SpecialUse = Literal[
    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Inbox"
]
MessageSpecialUse = Literal["\\Drafts", "\\Junk", "\\Sent", "\\Trash", "\\Inbox"]
Category = Literal["primary", "social", "promotions", "updates", "forums"]


class MessageListEntry(ResponseModel):
    """One message of a list or search answer."""

    id: str
    uid: int | None = None
    emailId: str | None = None
    threadId: str | None = None
    path: str | None = None
    date: str | None = None
    draft: bool | None = None
    unseen: bool | None = None
    flagged: bool | None = None
    answered: bool | None = None
    size: int | None = None
    subject: str | None = None
    from_: AddressEntry | None = Field(None, alias="from")
    replyTo: list[AddressEntry] | None = None
    to: list[AddressEntry] | None = None
    cc: list[AddressEntry] | None = None
    messageId: str | None = None
    inReplyTo: str | None = None
    flags: list[str] | None = None
    labels: list[str] | None = None
    attachments: list[AttachmentEntry] | None = None
    text: TextInfo | None = None
    preview: str | None = None
    category: Category | None = None
    messageSpecialUse: MessageSpecialUse | None = None
    isAutoReply: bool | None = None
    bounces: list[BounceEntry] | None = None


class MessageDetails(MessageListEntry):
    """Answer of `GET /message/{message}`."""

    sender: AddressEntry | None = None
    bcc: list[AddressEntry] | None = None
    headers: dict[str, list[str]] | None = None
    text: TextInfoDetails | None = None
    specialUse: SpecialUse | None = Field(None, description="Special use of the folder")


class MessageList(ResponseModel):
    """Answer of `GET /messages` and `POST /search`."""

    total: int | None = None
    page: int | None = None
    pages: int | None = None
    nextPageCursor: str | None = None
    prevPageCursor: str | None = None
    messages: list[MessageListEntry]


class TextResponse(ResponseModel):
    """Answer of `GET /text/{text}`."""

    plain: str | None = None
    html: str | None = None
    webSafe: bool | None = None
    hasMore: bool | None = None


class FlagUpdateResult(ResponseModel):
    add: bool | list[str] | None = None
    delete: bool | list[str] | None = None
    set: bool | list[str] | None = None


class FlagUpdateResponseFlags(FlagUpdateResult):
    result: list[str] | None = Field(None, description="The flags after the change")


class MessageUpdateResponse(ResponseModel):
    """Answer of `PUT /message/{message}`."""

    flags: FlagUpdateResponseFlags | None = None
    labels: FlagUpdateResponseFlags | None = None


class BulkUpdateResponse(ResponseModel):
    """Answer of `PUT /messages`."""

    flags: FlagUpdateResult | None = None
    labels: FlagUpdateResult | None = None
    emailIds: list[str] | None = None


class MessageMoveResponse(ResponseModel):
    """Answer of `PUT /message/{message}/move`."""

    path: str
    id: str | None = None
    uid: int | None = None


IdPair = Annotated[list[str], Field(min_length=2, max_length=2)]


class MessagesMoveResponse(ResponseModel):
    """Answer of `PUT /messages/move`: old and new id of every moved message."""

    path: str
    idMap: list[IdPair] | None = None
    emailIds: list[str] | None = None


class MovedToTrash(ResponseModel):
    destination: str | None = None
    message: str | None = None


class MessageDeleteResponse(ResponseModel):
    """Answer of `DELETE /message/{message}`."""

    deleted: bool | None = None
    moved: MovedToTrash | None = None


class MessagesMovedToTrash(ResponseModel):
    destination: str
    idMap: list[IdPair] | None = None
    emailIds: list[str] | None = None


class MessagesDeleted(ResponseModel):
    emailIds: list[str] | None = None


class MessagesDeleteResponse(ResponseModel):
    """Answer of `PUT /messages/delete`."""

    deleted: bool | None = None
    moved: MessagesMovedToTrash | None = None
    deletedMessages: MessagesDeleted | None = None


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
