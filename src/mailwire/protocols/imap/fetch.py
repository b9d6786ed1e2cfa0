"""FETCH responses (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2): message data items,
ENVELOPE, BODYSTRUCTURE, body sections, and the Gmail and RFC 8474 object ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from mailwire.protocols.imap.errors import ProtocolError
from mailwire.protocols.imap.lexer import Lexer, Value, parse_number
from mailwire.protocols.imap.responses import (
    Address,
    BodySection,
    BodyStructure,
    Disposition,
    Envelope,
    Fetch,
    Multipart,
    SinglePart,
)
from mailwire.protocols.imap.values import as_flags, as_mailbox, as_number, as_str, as_tuple

# --------------------------------------------------------------------------- FETCH

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
# RFC 3501 section 9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
#                                 SP time SP zone DQUOTE
_DATE_TIME = re.compile(
    rb"\A ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)


def _internaldate(value: Value) -> datetime:
    match = _DATE_TIME.match(value) if type(value) is bytes else None
    if match is None:
        raise ProtocolError(f"bad INTERNALDATE {value!r:.60}")
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    month_no = _MONTHS.get(month.decode("ascii").upper())
    if month_no is None:
        raise ProtocolError(f"bad INTERNALDATE month {value!r:.60}")
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == b"-" else 1)
    try:
        return datetime(
            int(year), month_no, int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset)
        )
    except ValueError as exc:
        raise ProtocolError(f"bad INTERNALDATE {value!r:.60}") from exc


def as_nstring(value: Value) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return None if value is None else bytes(value)
    raise ProtocolError(f"expected a string or NIL, got {value!r:.60}")


def _addresses(value: Value) -> tuple[Address, ...]:
    if value is None:
        return ()
    out = []
    for item in as_tuple(value):
        parts = as_tuple(item)
        if len(parts) != 4:
            raise ProtocolError("an address has four fields")
        out.append(Address(*(as_nstring(p) for p in parts)))
    return tuple(out)


def _envelope(value: Value) -> Envelope:
    """`envelope` (RFC 3501 section 9): ten fields, address lists or NIL."""
    f = as_tuple(value)
    if len(f) != 10:
        raise ProtocolError("an ENVELOPE has ten fields")
    return Envelope(
        as_nstring(f[0]),
        as_nstring(f[1]),
        _addresses(f[2]),
        _addresses(f[3]),
        _addresses(f[4]),
        _addresses(f[5]),
        _addresses(f[6]),
        _addresses(f[7]),
        as_nstring(f[8]),
        as_nstring(f[9]),
    )


def _params(value: Value) -> tuple[tuple[str, bytes | None], ...]:
    """`body-fld-param` = "(" string SP string *(SP string SP string) ")" / nil."""
    if value is None:
        return ()
    items = as_tuple(value)
    if len(items) % 2:
        raise ProtocolError("odd body parameter list")
    return tuple(
        (as_str(items[i]).upper(), as_nstring(items[i + 1])) for i in range(0, len(items), 2)
    )


def _disposition(value: Value) -> Disposition | None:
    if value is None:
        return None
    items = as_tuple(value)
    if not items:
        raise ProtocolError("empty disposition")
    return Disposition(as_str(items[0]).upper(), _params(items[1] if len(items) > 1 else None))


def _language(value: Value) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):
        return tuple(as_nstring(v) or b"" for v in value)
    return (as_nstring(value) or b"",)


def _at(values: tuple[Value, ...], index: int) -> Value:
    return values[index] if index < len(values) else None


def _bodystructure(value: Value, depth: int = 0) -> BodyStructure:
    """`body` (RFC 3501 section 9; RFC 9051 section 9), nested multiparts included."""
    f = as_tuple(value)
    if f and isinstance(f[0], tuple):
        count = 0
        while count < len(f) and isinstance(f[count], tuple):
            count += 1
        parts = tuple(_bodystructure(p, depth + 1) for p in f[:count])
        ext = f[count + 1 :]
        return Multipart(
            parts,
            as_str(_at(f, count) or b"").upper(),
            _params(_at(ext, 0)),
            _disposition(_at(ext, 1)),
            _language(_at(ext, 2)),
            as_nstring(_at(ext, 3)),
            ext[4:],
        )
    if len(f) < 7:
        raise ProtocolError("a body part has at least seven fields")
    type_, subtype = as_str(f[0]).upper(), as_str(f[1]).upper()
    size = as_number(f[6]) if f[6] is not None else 0
    lines = envelope = body = None
    rest = f[7:]
    if type_ == "MESSAGE" and subtype in ("RFC822", "GLOBAL") and len(rest) >= 3:
        envelope, body, lines = _envelope(rest[0]), _bodystructure(rest[1]), as_number(rest[2])
        rest = rest[3:]
    elif type_ == "TEXT" and rest:
        lines, rest = as_number(rest[0]), rest[1:]
    encoding = as_nstring(f[5])
    return SinglePart(
        type_,
        subtype,
        _params(f[2]),
        as_nstring(f[3]),
        as_nstring(f[4]),
        None if encoding is None else encoding.decode("ascii", "replace").upper(),
        size,
        lines,
        envelope,
        body,
        as_nstring(_at(rest, 0)),
        _disposition(_at(rest, 1)),
        _language(_at(rest, 2)),
        as_nstring(_at(rest, 3)),
        rest[4:],
    )


def _section(name: str, value: Value) -> BodySection:
    """`BODY[section]<origin>` / `BINARY[section]<origin>` (RFC 3501 7.4.2, RFC 3516 4.2)."""
    kind, _, spec = name.partition("[")
    section, _, partial = spec.partition("]")
    origin = None
    if partial:
        if not (partial.startswith("<") and partial.endswith(">")):
            raise ProtocolError(f"bad section origin {name[:60]!r}")
        origin = parse_number(partial[1:-1].encode())
    return BodySection(kind, section, origin, as_nstring(value))


def _objectid(value: Value) -> str | None:
    """`objectid` in parens, or NIL for THREADID (RFC 8474 sections 5.1, 5.2)."""
    if value is None:
        return None
    items = as_tuple(value)
    if len(items) != 1:
        raise ProtocolError("an object id is one value in parens")
    return as_str(items[0])


def parse_fetch(seq: int, lx: Lexer) -> Fetch:
    """`msg-att` (RFC 3501 section 9); unknown items are kept raw in `other`."""
    items = as_tuple(lx.read_value())
    if not lx.at_end():
        raise lx.fail("unexpected input after FETCH")
    if len(items) % 2:
        raise ProtocolError("FETCH items come in name/value pairs")
    fields: dict[str, object] = {}
    sections: list[BodySection] = []
    other: list[tuple[str, Value]] = []
    for i in range(0, len(items), 2):
        name, value = as_str(items[i]).upper(), items[i + 1]
        if "[" in name:
            if name.startswith(("BODY[", "BINARY[")):
                sections.append(_section(name, value))
            else:
                other.append((name, value))
            continue
        handler = _FETCH_ITEMS.get(name)
        if handler is None:
            other.append((name, value))
        else:
            attr, convert = handler
            fields[attr] = convert(value)
    return Fetch(seq, sections=tuple(sections), other=tuple(other), **fields)  # type: ignore[arg-type]


def _modseq(value: Value) -> int:
    items = as_tuple(value)
    if len(items) != 1:
        raise ProtocolError("MODSEQ is one number in parens")
    return as_number(items[0])


def _labels(value: Value) -> tuple[bytes, ...]:
    return tuple(as_mailbox(v) for v in as_tuple(value))


_FETCH_ITEMS: dict[str, tuple[str, Callable[[Value], object]]] = {
    "UID": ("uid", as_number),
    "FLAGS": ("flags", as_flags),
    "RFC822.SIZE": ("rfc822_size", as_number),
    "INTERNALDATE": ("internaldate", _internaldate),
    "MODSEQ": ("modseq", _modseq),
    "ENVELOPE": ("envelope", _envelope),
    "BODYSTRUCTURE": ("bodystructure", _bodystructure),
    "BODY": ("bodystructure", _bodystructure),
    "X-GM-MSGID": ("x_gm_msgid", as_number),
    "X-GM-THRID": ("x_gm_thrid", as_number),
    "X-GM-LABELS": ("x_gm_labels", _labels),
    "EMAILID": ("email_id", _objectid),
    "THREADID": ("thread_id", _objectid),
}
