"""Bodies, query parameters and answers of the message routes.

`/v1/account/{account}/messages` (list, bulk update), `/messages/move`,
`/messages/delete`, `/message/{message}` (read, update, delete),
`/message/{message}/move`, `/message/{message}/source`, `/text/{text}` and
`/attachment/{attachment}`, field for field as in the reference, with its
limits where it gives them and ours (named below) where it is silent. The
upload (`POST /message`) has its own module, `uploads`.

Ids are checked at the edge: a message id (and a text id, which is the message
id) is Mailwire's 16-character URL-safe base64 id, an attachment id is that id
followed by the IMAP part number (RFC 3501 section 6.4.5). Flags follow RFC
3501's flag syntax; anything that goes into a command line refuses CR, LF and
NUL.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from mailwire.api.models.common import (
    MailboxPath,
    MessageId,
    RequestModel,
    ResponseModel,
    Single,
)
from mailwire.api.models.search import (
    Label,
    PagingQuery,
    SearchQuery,
)
from mailwire.domain.messages import MESSAGE_ID_LENGTH, decode_message_id

#: Limits the reference gives.
MAX_FLAG_LENGTH = 128
MAX_TEXT_BYTES = 1024 * 1024 * 1024
MAX_ATTACHMENT_ID_LENGTH = 2048
#: Our own bounds where the reference is silent.
#: Flags or labels changed in one request: far above what a message carries.
MAX_FLAGS = 100
MAX_LABELS = 100
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


def lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


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
TextType = Annotated[Literal["html", "plain", "*"], BeforeValidator(lowercase)]
FlagList = Single[Flag]
LabelList = Single[Label]


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
