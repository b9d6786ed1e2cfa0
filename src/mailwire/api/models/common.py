"""Shapes shared by many routes: strict request models, list wrapping, times, error bodies,
and the field types that several groups of routes validate alike (mailbox paths, message ids).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from mailwire.domain.messages import MESSAGE_ID_LENGTH, decode_message_id

T = TypeVar("T")


def _single(value: object) -> object:
    # The reference accepts a lone value wherever a list is expected ("single").
    if value is None or isinstance(value, list):
        return value
    return [value]


#: A list that also accepts one bare value (`"api"` means `["api"]`).
Single = Annotated[list[T], BeforeValidator(_single)]


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused and strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


def iso_time(ms: int) -> str:
    """Milliseconds since the epoch as `2021-02-17T13:43:18.860Z`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def pages(total: int, page_size: int) -> int:
    return -(-total // page_size)


class ValidationErrorField(ResponseModel):
    message: str
    key: str


class ErrorResponse(ResponseModel):
    statusCode: int = Field(examples=[403])
    error: str = Field(examples=["Forbidden"])
    message: str
    code: str | None = None


class ValidationErrorResponse(ErrorResponse):
    fields: list[ValidationErrorField] | None = None


class RateLimitErrorResponse(ErrorResponse):
    ttl: int | None = Field(None, description="Seconds until the limit resets")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    described = {
        400: ("The input did not pass validation", ValidationErrorResponse),
        401: ("No valid access token was presented", ErrorResponse),
        403: ("The token does not allow this operation", ErrorResponse),
        404: ("The addressed entity does not exist", ErrorResponse),
        413: ("The request body is over the size limit", ErrorResponse),
        429: ("Too many requests with this token", RateLimitErrorResponse),
        409: ("The current state does not allow this change", ErrorResponse),
        500: ("An unexpected error; details are in the server log", ErrorResponse),
        502: ("The mail server failed while serving the request", ErrorResponse),
        503: (
            "The store, the mail server or the account's connection is not available now",
            ErrorResponse,
        ),
    }
    return {
        status: {"description": described[status][0], "model": described[status][1]}
        for status in statuses
    }


STANDARD_ERRORS = (400, 401, 403, 429, 500)


# Shared field types of the mailbox, message and search bodies. Each refuses at
# the edge what could split an IMAP command line or a message header.

#: Longest mailbox path, as for an account's `path` list.
MAX_MAILBOX_PATH_LENGTH = 1024
#: The reference's limit on a message id in a path or body.
MAX_MESSAGE_ID_PARAM_LENGTH = 256

_LINE_BREAKS = frozenset("\r\n\x00")
_CONTROLS = frozenset(chr(code) for code in (*range(0x20), 0x7F))


def refuse_line_breaks(value: str) -> str:
    """Refuse CR, LF and NUL: they would end an IMAP command or a header line."""
    if not _LINE_BREAKS.isdisjoint(value):
        raise ValueError("must not contain CR, LF or NUL characters")
    return value


def refuse_controls(value: str) -> str:
    """Refuse every C0 control character and DEL (stricter than `refuse_line_breaks`)."""
    if not _CONTROLS.isdisjoint(value):
        raise ValueError("must not contain control characters")
    return value


def _message_id(value: str) -> str:
    if decode_message_id(value) is None:
        raise ValueError("is not a message id")
    return value


#: Text that ends up inside a command line or a header: no CR, LF or NUL.
OneLine = Annotated[str, AfterValidator(refuse_line_breaks)]
#: A mailbox path as IMAP names it (`INBOX`, `Parent/Child`), without control characters.
MailboxPath = Annotated[
    str,
    Field(min_length=1, max_length=MAX_MAILBOX_PATH_LENGTH, examples=["INBOX"]),
    AfterValidator(refuse_controls),
]
#: The opaque id Mailwire gives a message (16 characters of URL-safe base64).
MessageId = Annotated[
    str,
    Field(
        min_length=MESSAGE_ID_LENGTH,
        max_length=MESSAGE_ID_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        examples=["AAAAAQAAAeEAAAAH"],
    ),
    AfterValidator(_message_id),
]
