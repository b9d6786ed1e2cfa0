"""Typed search criteria and their translation into UID SEARCH keys (RFC 3501 section 6.4.4).

`SearchCriteria` is what a request may ask for; `search_keys` validates every
field and returns the command arguments plus whether CHARSET UTF-8 is needed.
Validation happens here, before anything reaches the connection: strings with
CR, LF or NUL are refused (the encoder would send them safely as literals, but
no legitimate search contains them, and refusing keeps the wire predictable),
lengths are bounded so a search always fits the RFC 7162 section 4 command
line budget, header names must be RFC 5322 field names and keywords atoms.
Several fields are ANDed, as IMAP does for a list of keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from mailwire.backends.imap.operation_errors import OperationInputError
from mailwire.protocols.imap import commands
from mailwire.protocols.imap.errors import CommandError

#: Longest search string, in UTF-8 octets. Several of them must fit one command
#: line (RFC 7162 section 4 asks clients for at most 8192 octets).
MAX_SEARCH_STRING = 1024
#: Most HEADER keys in one search.
MAX_HEADER_KEYS = 5
#: Longest header field name; RFC 5322 section 2.1.1 bounds a line at 998 octets,
#: real field names are far shorter.
MAX_HEADER_NAME = 200
#: RFC 3501 section 9: `number` is an unsigned 32-bit integer (LARGER, SMALLER).
MAX_SIZE = 2**32 - 1
#: RFC 5322 section 3.6.8: field-name = 1*ftext, printable US-ASCII except ":".
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FORBIDDEN = frozenset("\r\n\x00")


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """What to search for; unset fields do not constrain. All set fields must match.

    Booleans map to SEEN/UNSEEN, FLAGGED/UNFLAGGED and so on. `headers` are
    (field name, substring) pairs; an empty substring matches any message that
    has the field (RFC 3501 section 6.4.4, HEADER). `since`/`before` compare
    the internal date, `sent_since`/`sent_before` the Date header, both by day
    in the server's view. `uids` restricts to a UID set (`*` allowed as the
    open end of a range).
    """

    seen: bool | None = None
    flagged: bool | None = None
    answered: bool | None = None
    draft: bool | None = None
    deleted: bool | None = None
    from_: str | None = None
    to: str | None = None
    cc: str | None = None
    bcc: str | None = None
    subject: str | None = None
    body: str | None = None
    text: str | None = None
    headers: Sequence[tuple[str, str]] = ()
    since: date | None = None
    before: date | None = None
    sent_since: date | None = None
    sent_before: date | None = None
    larger: int | None = None
    smaller: int | None = None
    uids: commands.SequenceSet | None = None
    keyword: str | None = None
    unkeyword: str | None = None


@dataclass(frozen=True, slots=True)
class SearchKeys:
    """The validated keys of a search and whether one of them needs CHARSET UTF-8."""

    keys: tuple[commands.Arg, ...]
    non_ascii: bool


_FLAG_KEYS = (
    ("seen", "SEEN", "UNSEEN"),
    ("flagged", "FLAGGED", "UNFLAGGED"),
    ("answered", "ANSWERED", "UNANSWERED"),
    ("draft", "DRAFT", "UNDRAFT"),
    ("deleted", "DELETED", "UNDELETED"),
)
_STRING_KEYS = (
    ("from_", "FROM"),
    ("to", "TO"),
    ("cc", "CC"),
    ("bcc", "BCC"),
    ("subject", "SUBJECT"),
    ("body", "BODY"),
    ("text", "TEXT"),
)
_DATE_KEYS = (
    ("since", "SINCE"),
    ("before", "BEFORE"),
    ("sent_since", "SENTSINCE"),
    ("sent_before", "SENTBEFORE"),
)


def search_keys(criteria: SearchCriteria) -> SearchKeys:
    """Validate `criteria` and build its keys; `OperationInputError` names a bad field."""
    keys: list[commands.Arg] = []
    for name, yes, no in _FLAG_KEYS:
        value = getattr(criteria, name)
        if value is not None:
            keys.append(commands.Atom(yes if _boolean(name, value) else no))
    non_ascii = _text_keys(criteria, keys)
    for name, key in _DATE_KEYS:
        value = getattr(criteria, name)
        if value is not None:
            keys += [commands.Atom(key), commands.Atom(_imap_date(name, value))]
    for name, key in (("larger", "LARGER"), ("smaller", "SMALLER")):
        value = getattr(criteria, name)
        if value is not None:
            keys += [commands.Atom(key), _size(name, value)]
    if criteria.uids is not None:
        if not isinstance(criteria.uids, commands.SequenceSet):
            raise OperationInputError("uids must be a sequence set", key="uids")
        keys += [commands.Atom("UID"), criteria.uids]
    for name, key in (("keyword", "KEYWORD"), ("unkeyword", "UNKEYWORD")):
        value = getattr(criteria, name)
        if value is not None:
            keys += [commands.Atom(key), _keyword(name, value)]
    return SearchKeys(tuple(keys) or (commands.Atom("ALL"),), non_ascii)


def _text_keys(criteria: SearchCriteria, keys: list[commands.Arg]) -> bool:
    """Append the string keys (FROM ... TEXT, HEADER); whether one is not ASCII."""
    non_ascii = False
    for name, key in _STRING_KEYS:
        value = getattr(criteria, name)
        if value is not None:
            keys += [commands.Atom(key), commands.String(_string(name, value))]
            non_ascii |= not value.isascii()
    if len(criteria.headers) > MAX_HEADER_KEYS:
        raise OperationInputError(f"at most {MAX_HEADER_KEYS} header keys", key="headers")
    for header, value in criteria.headers:
        keys += [
            commands.Atom("HEADER"),
            commands.String(_header_name(header)),
            commands.String(_string("headers", value, allow_empty=True)),
        ]
        non_ascii |= not value.isascii()
    return non_ascii


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise OperationInputError(f"{name} must be true or false", key=name)
    return value


def _string(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise OperationInputError(f"{name} must be text", key=name)
    if _FORBIDDEN.intersection(value):
        raise OperationInputError(f"{name} cannot contain CR, LF or NUL", key=name)
    if not value and not allow_empty:
        raise OperationInputError(f"{name} cannot be empty", key=name)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SEARCH_STRING:
        raise OperationInputError(f"{name} is longer than {MAX_SEARCH_STRING} octets", key=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise OperationInputError(f"{name} is not valid Unicode text", key=name) from error
    return value


def _header_name(value: object) -> str:
    if not isinstance(value, str) or not _FIELD_NAME.match(value):
        raise OperationInputError(
            "a header name is printable ASCII without ':' (RFC 5322 section 3.6.8)", key="headers"
        )
    if len(value) > MAX_HEADER_NAME:
        raise OperationInputError(f"header name longer than {MAX_HEADER_NAME}", key="headers")
    return value


def _imap_date(name: str, value: object) -> str:
    """`date` (RFC 3501 section 9): day-month-year, e.g. `5-Jul-2025`."""
    if not isinstance(value, date):
        raise OperationInputError(f"{name} must be a date", key=name)
    return f"{value.day}-{_MONTHS[value.month - 1]}-{value.year:04d}"


def _size(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SIZE:
        raise OperationInputError(f"{name} must be an integer from 0 to {MAX_SIZE}", key=name)
    return value


def _keyword(name: str, value: object) -> commands.Flag:
    if not isinstance(value, str) or value.startswith("\\"):
        raise OperationInputError(f"{name} must be a keyword (an IMAP atom)", key=name)
    try:
        return commands.Flag(value)
    except CommandError as error:
        raise OperationInputError(f"{name} is not a valid IMAP keyword", key=name) from error


__all__ = ["SearchCriteria", "SearchKeys", "search_keys"]
