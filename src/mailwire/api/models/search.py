"""The `search` object and the search route's query (`POST /v1/account/{account}/search`).

The same `search` object selects the messages of the bulk routes (update, move,
delete), so it lives here on its own. Limits are the reference's where it gives
them and ours (named below) where it is silent. Strings that the IMAP backend
sends in a SEARCH command refuse CR, LF and NUL; sequence and UID sets must be
RFC 3501 sequence sets; dates are ISO 8601 (a date or a date-time) or epoch
milliseconds. `gmailRaw` is accepted here and refused by the service on
accounts that are not Gmail.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from mailwire.api.models.common import (
    MailboxPath,
    OneLine,
    RequestModel,
    Single,
    refuse_controls,
)

#: Limits the reference gives.
MAX_SEQUENCE_SET_LENGTH = 8192
MAX_ADDRESS_TERM_LENGTH = 256
MAX_BODY_TERM_LENGTH = 256
MAX_SUBJECT_TERM_LENGTH = 2560
MAX_SIZE_TERM = 1024 * 1024 * 1024
MAX_PROVIDER_ID_LENGTH = 256
MAX_GMAIL_RAW_LENGTH = 1024
MAX_LABEL_LENGTH = 128
MAX_CURSOR_LENGTH = 1024 * 1024
MAX_PAGE = 1024 * 1024
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20
#: Our own bounds where the reference is silent.
#: Header criteria: each becomes one `HEADER name value` term of the SEARCH command.
MAX_HEADER_TERMS = 20
#: RFC 5322 sets no limit on a field name short of the 998-octet line; real ones are short.
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_TERM_LENGTH = 1024
#: Labels to require or exclude, and explicit email ids: one page's worth at most.
MAX_LABEL_TERMS = 100
MAX_EMAIL_IDS = MAX_PAGE_SIZE
#: RFC 7162 section 3.1.1: a mod-sequence is a positive 63-bit number.
MAX_MODSEQ = 2**63 - 1
#: Epoch milliseconds of 9999-12-31T23:59:59.999Z, the last moment ISO 8601 dates reach.
MAX_EPOCH_MS = 253_402_300_799_999

# RFC 3501 section 9: sequence-set = (seq-number / seq-range) *("," sequence-set),
# seq-number = nz-number / "*".
_SEQ_NUMBER = r"(?:[1-9][0-9]{0,9}|\*)"
_SEQUENCE_SET = re.compile(
    rf"{_SEQ_NUMBER}(?::{_SEQ_NUMBER})?(?:,{_SEQ_NUMBER}(?::{_SEQ_NUMBER})?)*"
)
# RFC 5322 section 3.6.8: field-name = 1*ftext, printable US-ASCII except ":".
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_EPOCH = re.compile(r"[+-]?[0-9]+")


def _sequence_set(value: str) -> str:
    if not _SEQUENCE_SET.fullmatch(value):
        raise ValueError('must be a sequence set such as "1:10" or "1,3,5:*"')
    return value


def _moment(value: Any) -> Any:
    """ISO 8601 date or date-time, or epoch milliseconds, as an aware UTC datetime.

    A date or a date-time without an offset is read as UTC (the reference leaves
    the zone unsaid; a server-local zone would make answers depend on the host).
    """
    if isinstance(value, bool):
        return value  # left for pydantic to refuse
    if isinstance(value, str) and _EPOCH.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_EPOCH_MS:
            raise ValueError("is out of range for a time in epoch milliseconds")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO 8601 date or date-time, or epoch ms") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


#: A point in time given as ISO 8601 (`2024-08-09`, `2024-08-09T10:00:00Z`) or epoch ms.
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_moment),
    Field(examples=["2024-08-09", "2021-07-08T07:06:34.336Z"]),
]
SequenceSet = Annotated[
    str, Field(min_length=1, max_length=MAX_SEQUENCE_SET_LENGTH), AfterValidator(_sequence_set)
]
#: Provider ids (Gmail's decimal ids, Graph's base64 ids, RFC 8474 object ids): printable ASCII.
ProviderId = Annotated[
    str, Field(min_length=1, max_length=MAX_PROVIDER_ID_LENGTH, pattern=r"^[\x21-\x7e]+$")
]
Label = Annotated[
    str, Field(min_length=1, max_length=MAX_LABEL_LENGTH), AfterValidator(refuse_controls)
]


def _field_name(value: str) -> str:
    if not _FIELD_NAME.fullmatch(value):
        raise ValueError("is not a header field name (printable ASCII without colon or space)")
    return value


HeaderName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_HEADER_NAME_LENGTH),
    AfterValidator(_field_name),
]


def _presence(value: Any) -> Any:
    # RFC 3501 section 6.4.4: HEADER with an empty string matches every message
    # that has the field, which is what `true` asks for.
    return "" if value is True else value


#: A header criterion: text the field must contain, or `true` for "the field is present".
HeaderTerm = Annotated[
    OneLine, BeforeValidator(_presence), Field(max_length=MAX_HEADER_TERM_LENGTH)
]
Cursor = Annotated[str, Field(max_length=MAX_CURSOR_LENGTH, pattern=r"^[\x21-\x7e]*$")]


class LabelFilter(RequestModel):
    """Gmail labels the message must carry (`has`) or must not carry (`not`)."""

    has: Single[Label] | None = Field(None, max_length=MAX_LABEL_TERMS)
    not_: Single[Label] | None = Field(None, alias="not", max_length=MAX_LABEL_TERMS)


class SearchQuery(RequestModel):
    """Criteria that a message must all meet (an AND of every field given)."""

    seq: SequenceSet | None = Field(None, description="Sequence numbers (IMAP only)")
    answered: bool | None = None
    deleted: bool | None = None
    draft: bool | None = None
    unseen: bool | None = None
    flagged: bool | None = None
    seen: bool | None = None
    from_: Annotated[OneLine, Field(max_length=MAX_ADDRESS_TERM_LENGTH)] | None = Field(
        None, alias="from", examples=["nyan.cat@example.com"]
    )
    to: Annotated[OneLine, Field(max_length=MAX_ADDRESS_TERM_LENGTH)] | None = None
    cc: Annotated[OneLine, Field(max_length=MAX_ADDRESS_TERM_LENGTH)] | None = None
    bcc: Annotated[OneLine, Field(max_length=MAX_ADDRESS_TERM_LENGTH)] | None = None
    body: Annotated[OneLine, Field(max_length=MAX_BODY_TERM_LENGTH)] | None = None
    subject: Annotated[OneLine, Field(max_length=MAX_SUBJECT_TERM_LENGTH)] | None = None
    larger: int | None = Field(None, ge=0, le=MAX_SIZE_TERM, description="Bytes")
    smaller: int | None = Field(None, ge=0, le=MAX_SIZE_TERM, description="Bytes")
    uid: SequenceSet | None = Field(None, description="UIDs (IMAP only)")
    modseq: int | None = Field(None, ge=0, le=MAX_MODSEQ, description="Changed since (CONDSTORE)")
    before: Moment | None = Field(None, description="Received before this day")
    since: Moment | None = Field(None, description="Received on or after this day")
    sentBefore: Moment | None = Field(None, description="Dated before this day")
    sentSince: Moment | None = Field(None, description="Dated on or after this day")
    emailId: ProviderId | None = None
    threadId: ProviderId | None = None
    header: dict[HeaderName, HeaderTerm] | None = Field(
        None,
        max_length=MAX_HEADER_TERMS,
        examples=[{"Message-ID": "<1DAF52A51E674A2@example.com>"}],
    )
    gmailRaw: Annotated[OneLine, Field(max_length=MAX_GMAIL_RAW_LENGTH)] | None = Field(
        None, description="A Gmail search expression (Gmail accounts only)"
    )
    labels: LabelFilter | None = None
    emailIds: Single[ProviderId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_EMAIL_IDS,
        description="Exactly these messages; every other criterion is then ignored",
    )


class PagingQuery(RequestModel):
    """Paging of a message list: a cursor, or a page number (ignored when a cursor is given)."""

    cursor: Cursor | None = Field(None, description="Paging cursor from an earlier answer")
    page: int = Field(0, ge=0, le=MAX_PAGE, description="Page number, from 0")
    pageSize: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class SearchParams(PagingQuery):
    """Query of `POST /search`."""

    path: MailboxPath | None = Field(
        None, description="Folder to search; every folder where the provider allows it"
    )
    useOutlookSearch: bool | None = Field(
        None, description="Microsoft Graph: use $search instead of $filter"
    )


class SearchBody(RequestModel):
    """Body of `POST /search`."""

    search: SearchQuery
