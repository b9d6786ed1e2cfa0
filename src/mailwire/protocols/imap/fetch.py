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
    # The extension fields, NIL when absent; NIL skips the converters (the hot path).
    md5, dsp, language, location = (
        rest[:4] if len(rest) >= 4 else (*rest, None, None, None, None)[:4]
    )
    return SinglePart(
        type_,
        subtype,
        () if f[2] is None else _params(f[2]),
        as_nstring(f[3]),
        as_nstring(f[4]),
        None if encoding is None else encoding.decode("ascii", "replace").upper(),
        size,
        lines,
        envelope,
        body,
        None if md5 is None else as_nstring(md5),
        None if dsp is None else _disposition(dsp),
        () if language is None else _language(language),
        None if location is None else as_nstring(location),
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


def parse_fetch(seq: int, lx: Lexer, memo: FetchMemo | None = None) -> Fetch:
    """`msg-att` (RFC 3501 section 9); unknown items are kept raw in `other`.

    `_fast_fetch` reads the common shapes straight from the bytes; when it
    declines (odd spelling, bad input, a limit), the generic reading below
    starts over from the same position and has the last word, errors included.
    """
    start = lx.pos
    if memo is not None and lx.max_depth >= _FAST_DEPTH and lx.max_items >= _FAST_ITEMS:
        try:
            return _fast_fetch(seq, lx, memo)
        except (_Decline, ProtocolError):
            lx.pos = start
    return _generic_fetch(seq, lx)


def _generic_fetch(seq: int, lx: Lexer) -> Fetch:
    items = as_tuple(lx.read_value())
    if not lx.at_end():
        raise lx.fail("unexpected input after FETCH")
    if len(items) % 2:
        raise ProtocolError("FETCH items come in name/value pairs")
    fields: dict[str, object] = {}
    sections: list[BodySection] = []
    other: list[tuple[str, Value]] = []
    for i in range(0, len(items), 2):
        _store(as_str(items[i]).upper(), items[i + 1], fields, sections, other)
    return Fetch(seq, sections=tuple(sections), other=tuple(other), **fields)  # type: ignore[arg-type]


def _store(
    name: str,
    value: Value,
    fields: dict[str, object],
    sections: list[BodySection],
    other: list[tuple[str, Value]],
) -> None:
    """Convert one `msg-att` item into `fields`, `sections` or `other`."""
    if "[" in name:
        if name.startswith(("BODY[", "BINARY[")):
            sections.append(_section(name, value))
        else:
            other.append((name, value))
        return
    handler = _FETCH_ITEMS.get(name)
    if handler is None:
        other.append((name, value))
    else:
        attr, convert = handler
        fields[attr] = convert(value)


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

# --------------------------------------------------------------------------- fast path
#
# An initial sync parses tens of thousands of FETCH responses with the same few
# items, so `_fast_fetch` matches each common item, value included, with one
# compiled pattern (the scan runs in C) instead of building the generic value
# tree and walking it. The patterns accept only a strict subset of the grammar:
# upper-case names, quoted strings without escapes, NIL spelled "NIL". Anything
# else is read by the lexer in place; any error makes `parse_fetch` start over
# with the generic reading, so errors and results never depend on this path.

#: The generic reading's limits the fast path needs room for: an address sits at
#: depth 4 (FETCH list, ENVELOPE, address list, address); an ENVELOPE has 10 fields.
_FAST_DEPTH = 4
_FAST_ITEMS = 10
#: Entries kept per `FetchMemo` table before it starts afresh, and the longest key
#: kept, so a hostile server's huge address lists cannot pile up in memory.
_MEMO_SIZE = 4096
_MEMO_KEY = 512

_Q = rb'(?:"([^"\\\r\n]*)"|NIL)'  # nstring, captured: None for NIL
_QN = rb'(?:"[^"\\\r\n]*"|NIL)'
_ADDR = rb"\(" + rb" ".join([_QN] * 4) + rb"\)"
_ALIST = rb"(NIL|\(" + _ADDR + rb"(?: ?" + _ADDR + rb")*\))"  # raw, parsed via the memo
_FLAG = rb'[^(){ "\]\[\x00-\x1f\x7f~][^(){ "\]\[\x00-\x1f\x7f]*'  # lexer.read_atom, no section
_NUMBER = rb"([0-9]{1,20})"  # parse_number: at most 20 digits
_ITEM = re.compile(
    rb"UID " + _NUMBER + rb"()"  # 1, 2
    rb"|RFC822\.SIZE " + _NUMBER + rb"()"  # 3, 4
    rb"|FLAGS \(((?:" + _FLAG + rb"(?: " + _FLAG + rb")*)?)\)()"  # 5, 6
    rb'|INTERNALDATE " ?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})'  # 7, 8, 9
    rb' ([0-9][0-9]):([0-9][0-9]):([0-9][0-9]) ([+-][0-9][0-9][0-9][0-9])"()'  # 10-13, 14
    rb"|ENVELOPE \("
    + _Q
    + rb" "
    + _Q
    + rb" "
    + rb" ".join([_ALIST] * 6)  # 15, 16, 17-22
    + rb" "
    + _Q
    + rb" "
    + _Q
    + rb"\)()"  # 23, 24, 25
    rb"|MODSEQ \(" + _NUMBER + rb"\)()"  # 26, 27
    rb"|(?:BODYSTRUCTURE|BODY) (?=\()()"  # 28: the value is read by the lexer
)
_ADDRESS = re.compile(rb"\(" + rb" ".join([_Q] * 4) + rb"\)")
_MONTH_NUMBERS = {m.encode(): n for m, n in _MONTHS.items()}
_FLAG_NILS = frozenset({b"NIL", b"NIl", b"NiL", b"Nil", b"nIL", b"nIl", b"niL", b"nil"})


class _Decline(Exception):
    """The fast path does not model this input; `parse_fetch` reads it generically."""


class FetchMemo:
    """Values that repeat across one session's FETCH responses, each table bounded.

    Frozen results only (flag tuples, address tuples, time zones), so sharing
    them between events is safe. One per `ResponseParser`.
    """

    __slots__ = ("addresses", "flags", "zones")

    def __init__(self) -> None:
        self.flags: dict[bytes, tuple[str, ...]] = {}
        self.addresses: dict[bytes, tuple[Address, ...]] = {}
        self.zones: dict[bytes, timezone] = {}

    def flag_tuple(self, raw: bytes) -> tuple[str, ...]:
        out = self.flags.get(raw)
        if out is None:
            words = raw.split(b" ") if raw else []
            out = tuple("NIL" if w in _FLAG_NILS else w.decode("utf-8", "replace") for w in words)
            if len(raw) <= _MEMO_KEY:
                if len(self.flags) >= _MEMO_SIZE:
                    self.flags.clear()
                self.flags[raw] = out
        return out

    def address_tuple(self, raw: bytes) -> tuple[Address, ...]:
        out = self.addresses.get(raw)
        if out is None:
            out = () if raw == b"NIL" else tuple(Address(*m.groups()) for m in _each_address(raw))
            if len(raw) <= _MEMO_KEY:
                if len(self.addresses) >= _MEMO_SIZE:
                    self.addresses.clear()
                self.addresses[raw] = out
        return out

    def zone(self, raw: bytes) -> timezone:
        out = self.zones.get(raw)
        if out is None:
            minutes = int(raw[1:3]) * 60 + int(raw[3:5])
            out = timezone(timedelta(minutes=-minutes if raw[0] == 0x2D else minutes))
            self.zones[raw] = out  # at most 2 * 100 * 100 spellings
        return out


_each_address = _ADDRESS.finditer


def _fast_fetch(seq: int, lx: Lexer, memo: FetchMemo) -> Fetch:
    """`parse_fetch` for the common items; raises `_Decline` or `ProtocolError` otherwise."""
    data, pos, end = lx.data, lx.pos, len(lx.data)
    if not data.startswith(b"(", pos):
        raise _Decline
    fields: dict[str, object] = {}
    sections: list[BodySection] = []
    other: list[tuple[str, Value]] = []
    budget = lx.max_items
    while True:
        budget -= 2  # name and value, as the generic list counts them
        if budget < 0:
            raise _Decline
        m = _ITEM.match(data, pos + 1)
        if m is None:  # the lexer reads the item, `_store` converts it
            lx.pos = pos + 1
            name = as_str(lx.read_value(1)).upper()
            lx.expect(b" ")
            _store(name, lx.read_value(1), fields, sections, other)
        else:
            lx.pos = m.end()
            _fast_item(m, lx, memo, fields)
        pos = lx.pos
        if data.startswith(b")", pos) and pos + 1 == end:
            lx.pos = end
            return Fetch(seq, sections=tuple(sections), other=tuple(other), **fields)  # type: ignore[arg-type]
        if not data.startswith(b" ", pos):
            raise _Decline


def _fast_item(m: re.Match[bytes], lx: Lexer, memo: FetchMemo, fields: dict[str, object]) -> None:
    """Store the item `m` matched (an `_ITEM` alternative, told apart by its marker group)."""
    kind = m.lastindex
    if kind == 2:
        fields["uid"] = int(m[1])
    elif kind == 6:
        if m[5].count(b" ") >= lx.max_items:  # leave max_list_items to the generic reading
            raise _Decline
        fields["flags"] = memo.flag_tuple(m[5])
    elif kind == 4:
        fields["rfc822_size"] = int(m[3])
    elif kind == 14:
        fields["internaldate"] = _fast_date(m, memo)
    elif kind == 25:
        fields["envelope"] = _fast_envelope(m, memo, lx.max_items)
    elif kind == 27:
        fields["modseq"] = int(m[26])
    else:  # BODYSTRUCTURE or BODY, at depth 2 inside the FETCH list
        fields["bodystructure"] = _bodystructure(lx.read_list(2))


def _fast_date(m: re.Match[bytes], memo: FetchMemo) -> datetime:
    day, month, year, hh, mm, ss, zone = m.group(7, 8, 9, 10, 11, 12, 13)
    month_no = _MONTH_NUMBERS.get(month.upper())
    if month_no is None:
        raise _Decline
    try:
        return datetime(
            int(year), month_no, int(day), int(hh), int(mm), int(ss), tzinfo=memo.zone(zone)
        )
    except ValueError as exc:
        raise _Decline from exc


def _fast_envelope(m: re.Match[bytes], memo: FetchMemo, max_items: int) -> Envelope:
    from_, sender, reply_to, to, cc, bcc = (memo.address_tuple(m[i]) for i in range(17, 23))
    if max(len(from_), len(sender), len(reply_to), len(to), len(cc), len(bcc)) > max_items:
        raise _Decline
    return Envelope(m[15], m[16], from_, sender, reply_to, to, cc, bcc, m[23], m[24])
