"""Bodies and query parameters of the mailbox routes (`/v1/account/{account}/mailbox(es)`).

Field names, defaults and limits follow the reference. A new or renamed folder
is given as a list of name segments (or one bare string), which the service
joins with the server's hierarchy delimiter; an existing folder is named by its
full path. Neither may hold control characters: a folder name travels inside an
IMAP command line.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from mailwire.api.models.common import (
    MailboxPath,
    RequestModel,
    ResponseModel,
    Single,
    refuse_controls,
)

#: The reference's limit on one segment of a new folder path.
MAX_SEGMENT_LENGTH = 256
#: Our own bound on nesting depth when creating or renaming (the reference sets none);
#: deeper trees are not something any mail client shows.
MAX_PATH_SEGMENTS = 32

PathSegment = Annotated[
    str,
    Field(min_length=1, max_length=MAX_SEGMENT_LENGTH),
    AfterValidator(refuse_controls),
]
SegmentList = Single[PathSegment]
SpecialUse = Literal[
    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Inbox"
]
SpecialUseSource = Literal["user", "extension", "name"]


class MailboxesQuery(RequestModel):
    """Query of `GET /mailboxes`."""

    counters: bool = Field(False, description="Also report message and unseen counts")


class MailboxPathQuery(RequestModel):
    """Query of `DELETE /mailbox`: the folder to remove."""

    path: MailboxPath


class CreateMailbox(RequestModel):
    """Body of `POST /mailbox`."""

    path: SegmentList = Field(
        min_length=1,
        max_length=MAX_PATH_SEGMENTS,
        description="Segments of the new folder's path, outermost first",
        examples=[["Projects", "2024"]],
    )


class ModifyMailbox(RequestModel):
    """Body of `PUT /mailbox`: rename a folder, change its subscription, or both."""

    path: MailboxPath = Field(description="The folder to change")
    newPath: SegmentList | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATH_SEGMENTS,
        description="Segments of the new path, outermost first",
    )
    subscribed: bool | None = Field(None, description="Subscribe to or unsubscribe from it")


class MailboxStatus(ResponseModel):
    messages: int | None = None
    unseen: int | None = None
    error: str | None = None


class MailboxEntry(ResponseModel):
    """One folder in the listing."""

    path: str
    id: str | None = Field(None, description="The provider's folder id, where it has one")
    delimiter: str | None = None
    parentPath: str | None = None
    name: str
    listed: bool | None = None
    subscribed: bool | None = None
    noSelect: bool | None = None
    specialUse: SpecialUse | None = None
    specialUseSource: SpecialUseSource | None = None
    noInferiors: bool | None = None
    # `false` when the count is not known, as in the reference.
    messages: int | Literal[False] | None = None
    uidNext: int | Literal[False] | None = None
    status: MailboxStatus | None = None


class MailboxesResponse(ResponseModel):
    """Answer of `GET /mailboxes`."""

    mailboxes: list[MailboxEntry]


class CreateMailboxResponse(ResponseModel):
    path: str
    mailboxId: str | None = None
    created: bool | None = None


class ModifyMailboxResponse(ResponseModel):
    path: str | None = None
    newPath: str | None = None
    mailboxId: str | None = None
    renamed: bool | None = None
    subscribed: bool | None = None


class DeleteMailboxResponse(ResponseModel):
    path: str
    mailboxId: str | None = None
    deleted: bool | None = None
