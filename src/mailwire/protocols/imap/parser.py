"""The sans-io IMAP response parser (RFC 3501 section 7, RFC 9051 section 7).

Theory of operation: `receive_data` appends to a buffer. `next_event` first
*frames* one complete response: it scans for CRLF; when a line ends with a
literal announcement `{n}` (RFC 3501 section 4.3) it waits for n more octets
and then for the next line, until a line ends without one. Only a complete
response reaches `lexer.Lexer`, so splits at any byte boundary are invisible
to the grammar. Framing enforces the line, literal and buffer limits before
anything grows; the lexer enforces nesting depth and list length.

The first response must be the greeting (RFC 3501 section 7.1). After any
error the parser is dead and every further call raises again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, NoReturn

from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError
from mailwire.protocols.imap.fetch import FetchMemo, parse_fetch
from mailwire.protocols.imap.lexer import Atom, Lexer, Value, parse_number, snippet
from mailwire.protocols.imap.responses import (
    Capability,
    Continuation,
    Enabled,
    ESearch,
    Event,
    Exists,
    Expunge,
    Flags,
    Greeting,
    ListMailbox,
    Recent,
    ResponseCode,
    Search,
    SequenceSet,
    Status,
    Tagged,
    UnknownUntagged,
    Untagged,
    UntaggedStatus,
    Vanished,
)
from mailwire.protocols.imap.values import (
    as_flags,
    as_mailbox,
    as_number,
    as_str,
    as_text,
    as_tuple,
    as_words,
    trailing_values,
)

__all__ = ["NEED_DATA", "Limits", "NeedData", "ResponseParser"]


class NeedData(Enum):
    """Sentinel type: `next_event` needs more bytes (h11's `NEED_DATA`)."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA

_KIB = 1024
_MIB = 1024 * _KIB


@dataclass(frozen=True, slots=True)
class Limits:
    """Named limits of the parser; exceeding one raises `LimitExceededError(name, ...)`.

    RFC 3501 and RFC 9051 set no maximum on lines or literals; RFC 2683
    section 3.2.1.5 and RFC 7162 section 4 ask clients to accept long lines
    (at least 8192 octets; SEARCH, ESEARCH and VANISHED results on large
    mailboxes run to megabytes), so the defaults are generous but finite.
    """

    #: One line, CRLF and literal data excluded (RFC 7162 section 4: at least 8192).
    max_line_length: int = 16 * _MIB
    #: One literal's announced size (RFC 3501 section 4.3: "{" number "}").
    max_literal_size: int = 100 * _MIB
    #: Nesting depth of parenthesised lists (BODYSTRUCTURE nests per MIME level).
    max_nesting_depth: int = 64
    #: Items in one parenthesised list (flags, labels, multipart parts, ...).
    max_list_items: int = 100_000
    #: Bytes of one response held while it is incomplete (lines plus literals).
    max_buffered: int = 128 * _MIB


# RFC 3501 section 9: literal = "{" number "}" CRLF; RFC 7888 adds "+"; RFC 3516 "~".
_LITERAL_TAIL = re.compile(rb"\{(\d{1,20})\+?\}\Z")
_STATUSES = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})
_NUMBER_CODES = frozenset({"UIDVALIDITY", "UIDNEXT", "UNSEEN", "HIGHESTMODSEQ"})
_LIST_CODES = frozenset({"PERMANENTFLAGS", "BADCHARSET"})
_COUNTED: dict[str, type[Exists | Recent | Expunge]] = {
    "EXISTS": Exists,
    "RECENT": Recent,
    "EXPUNGE": Expunge,
}


class ResponseParser:
    """Turns server bytes into `responses` events; see the module docstring."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._buf = bytearray()
        self._line_start = 0  # start of the line being scanned (after literals)
        self._scan = 0  # where the CRLF search resumes
        self._literal_end = 0  # end of an announced literal still arriving
        self._greeted = False
        self._dead: ProtocolError | None = None
        self._memo = FetchMemo()  # repeated flags, addresses, zones of FETCH data

    def receive_data(self, data: bytes) -> None:
        self._check_alive()
        self._buf += data
        if len(self._buf) > self.limits.max_buffered:
            self._die(
                LimitExceededError(
                    "max_buffered", f"more than {self.limits.max_buffered} bytes buffered"
                )
            )

    def next_event(self) -> Event | Literal[NeedData.NEED_DATA]:
        self._check_alive()
        try:
            raw = self._frame()
            if raw is None:
                return NEED_DATA
            return self._parse(raw)
        except ProtocolError as exc:
            self._die(exc)
        except (ValueError, IndexError) as exc:  # defensive: malformed input, never a crash
            self._die(ProtocolError(f"malformed response: {exc}"))

    # ------------------------------------------------------------------ state

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise ProtocolError(f"parser unusable after an earlier error: {self._dead}")

    def _die(self, exc: ProtocolError) -> NoReturn:
        self._dead = exc
        self._buf.clear()
        raise exc

    # ------------------------------------------------------------------ framing

    def _frame(self) -> bytes | None:
        """One complete response (line, literals, lines...), or None if incomplete."""
        buf, limits = self._buf, self.limits
        while True:
            if self._literal_end:
                if len(buf) < self._literal_end:
                    return None
                self._line_start = self._scan = self._literal_end
                self._literal_end = 0
            eol = buf.find(b"\r\n", self._scan)
            if eol < 0:
                if len(buf) - self._line_start > limits.max_line_length:
                    raise LimitExceededError(
                        "max_line_length", f"a line is longer than {limits.max_line_length}"
                    )
                self._scan = max(self._line_start, len(buf) - 1)
                return None
            if eol - self._line_start > limits.max_line_length:
                raise LimitExceededError(
                    "max_line_length", f"a line is longer than {limits.max_line_length}"
                )
            tail = buf.rfind(b"{", self._line_start, eol)
            match = _LITERAL_TAIL.match(buf, tail, eol) if tail >= 0 else None
            if match is None:
                raw = bytes(buf[: eol + 2])
                del buf[: eol + 2]
                self._line_start = self._scan = 0
                return raw
            size = int(match.group(1))
            if size > limits.max_literal_size:
                raise LimitExceededError(
                    "max_literal_size", f"a literal of {size} bytes exceeds the limit"
                )
            self._literal_end = eol + 2 + size
            if self._literal_end > limits.max_buffered:
                raise LimitExceededError(
                    "max_buffered", f"a response exceeds {limits.max_buffered} bytes"
                )

    # ------------------------------------------------------------------ grammar

    def _lexer(self, raw: bytes) -> Lexer:
        return Lexer(
            raw, 0, max_depth=self.limits.max_nesting_depth, max_items=self.limits.max_list_items
        )

    def _parse(self, raw: bytes) -> Event:
        lx = self._lexer(raw[:-2])
        if not self._greeted:
            return self._greeting(lx)
        if lx.skip(b"+"):
            lx.skip(b" ")
            return Continuation(as_text(lx.rest()))
        if lx.skip(b"* "):
            return self._untagged(lx)
        tag = lx.read_atom()
        lx.expect(b" ")
        status = lx.read_atom().decode("ascii", "replace").upper()
        if status not in ("OK", "NO", "BAD"):
            raise ProtocolError(f"bad tagged status {snippet(raw)}")
        code, text = self._resp_text(lx)
        return Tagged(tag.decode("ascii", "replace"), status, code, text)

    def _greeting(self, lx: Lexer) -> Greeting:
        status = ""
        if lx.skip(b"* ") and lx.peek() > 0x20:
            status = lx.read_atom().decode("ascii", "replace").upper()
        if status not in ("OK", "PREAUTH", "BYE"):
            raise lx.fail("bad greeting")
        self._greeted = True
        code, text = self._resp_text(lx)
        return Greeting(status, code, text)

    def _resp_text(self, lx: Lexer) -> tuple[ResponseCode | None, str]:
        """`resp-text` = ["[" resp-text-code "]" SP] text (RFC 3501 section 9)."""
        if not lx.skip(b" "):
            return None, ""
        code = None
        if lx.peek() == 0x5B:
            close = lx.data.find(b"]", lx.pos)
            # Without "]" it is not a code; keep it as text rather than drop the session.
            if close > 0:
                code = self._code(lx.data[lx.pos + 1 : close])
                lx.pos = close + 1
                lx.skip(b" ")
        return code, as_text(lx.rest())

    def _code(self, body: bytes) -> ResponseCode:
        name_raw, _, arg = body.partition(b" ")
        name = name_raw.decode("ascii", "replace").upper()
        if name in _NUMBER_CODES:
            return ResponseCode(name, arg, number=parse_number(arg))
        if name == "CAPABILITY":
            return ResponseCode(name, arg, items=as_words(arg, upper=True))
        if name in _LIST_CODES and arg:
            items = self._lexer(arg).read_value()
            if not isinstance(items, tuple):
                items = (items,)
            return ResponseCode(name, arg, items=tuple(as_str(v) for v in items))
        if name == "APPENDUID":
            validity, _, uids = arg.partition(b" ")
            return ResponseCode(
                name, arg, uidvalidity=parse_number(validity), destination=SequenceSet.parse(uids)
            )
        if name == "COPYUID":
            parts = arg.split(b" ")
            if len(parts) != 3:
                raise ProtocolError(f"bad COPYUID {snippet(arg)}")
            return ResponseCode(
                name,
                arg,
                uidvalidity=parse_number(parts[0]),
                source=SequenceSet.parse(parts[1]),
                destination=SequenceSet.parse(parts[2]),
            )
        return ResponseCode(name, arg or None)

    def _untagged(self, lx: Lexer) -> Untagged:
        first = lx.read_atom()
        if first.isdigit():
            number = parse_number(first)
            lx.expect(b" ")
            keyword = lx.read_atom().decode("ascii", "replace").upper()
            counted = _COUNTED.get(keyword)
            if counted is not None and lx.at_end():
                return counted(number)
            if keyword == "FETCH":
                lx.expect(b" ")
                return parse_fetch(number, lx, self._memo)
            return UnknownUntagged(keyword, number, lx.rest())
        keyword = first.decode("ascii", "replace").upper()
        if keyword in _STATUSES:
            code, text = self._resp_text(lx)
            return UntaggedStatus(keyword, code, text)
        handler = _UNTAGGED.get(keyword)
        if handler is None:
            return UnknownUntagged(keyword, None, lx.rest().removeprefix(b" "))
        return handler(keyword, lx)


# --------------------------------------------------------------------------- untagged data
def _capability(keyword: str, lx: Lexer) -> Untagged:
    words = as_words(lx.rest(), upper=True)
    return Capability(words) if keyword == "CAPABILITY" else Enabled(words)


def _flags(keyword: str, lx: Lexer) -> Untagged:
    lx.expect(b" ")
    flags = as_flags(lx.read_value())
    return Flags(flags)


def _list(keyword: str, lx: Lexer) -> Untagged:
    """`mailbox-list` (RFC 3501 section 7.2.2; RFC 5258 section 9 extended data)."""
    values = trailing_values(lx)
    if len(values) < 3:
        raise ProtocolError(f"short {keyword} response")
    delimiter = values[1]
    if not (delimiter is None or type(delimiter) is bytes):
        raise ProtocolError("bad LIST delimiter")
    return ListMailbox(
        keyword, as_flags(values[0]), delimiter, as_mailbox(values[2]), tuple(values[3:])
    )


def _status(keyword: str, lx: Lexer) -> Untagged:
    """`mailbox-data` STATUS (RFC 3501 section 7.2.4, RFC 9051 section 7.3.5)."""
    values = trailing_values(lx)
    if len(values) != 2 or not isinstance(values[1], tuple) or len(values[1]) % 2:
        raise ProtocolError("bad STATUS response")
    pairs = values[1]
    attrs = tuple(
        (as_str(pairs[i]).upper(), as_number(pairs[i + 1])) for i in range(0, len(pairs), 2)
    )
    return Status(as_mailbox(values[0]), attrs)


def _search(keyword: str, lx: Lexer) -> Untagged:
    """`SEARCH` *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"] (RFC 7162 7)."""
    numbers: list[int] = []
    modseq = None
    for value in trailing_values(lx):
        if isinstance(value, tuple) and len(value) == 2 and as_str(value[0]).upper() == "MODSEQ":
            modseq = as_number(value[1])
        else:
            numbers.append(as_number(value))
    return Search(tuple(numbers), modseq)


def _esearch(keyword: str, lx: Lexer) -> Untagged:
    """`esearch-response` (RFC 4731 section 3.1; MODSEQ from RFC 7162 section 3.1.5)."""
    values = trailing_values(lx)
    tag = None
    if values and isinstance(values[0], tuple):
        correlator = as_tuple(values.pop(0))
        if len(correlator) != 2 or as_str(correlator[0]).upper() != "TAG":
            raise ProtocolError("bad ESEARCH correlator")
        tag = as_str(correlator[1])
    uid = bool(values) and isinstance(values[0], Atom) and values[0].upper() == b"UID"
    if uid:
        values.pop(0)
    if len(values) % 2:
        raise ProtocolError("bad ESEARCH return data")
    fields: dict[str, int | SequenceSet] = {}
    other: list[tuple[str, Value]] = []
    for i in range(0, len(values), 2):
        name, value = as_str(values[i]).upper(), values[i + 1]
        if name in ("MIN", "MAX", "COUNT", "MODSEQ"):
            fields[name] = as_number(value)
        elif name == "ALL" and isinstance(value, Atom):
            fields[name] = SequenceSet.parse(value)
        else:
            other.append((name, value))

    def num(name: str) -> int | None:
        v = fields.get(name)
        return v if isinstance(v, int) else None

    all_ = fields.get("ALL")
    return ESearch(
        tag,
        uid,
        min=num("MIN"),
        max=num("MAX"),
        count=num("COUNT"),
        all=all_ if isinstance(all_, SequenceSet) else None,
        modseq=num("MODSEQ"),
        other=tuple(other),
    )


def _vanished(keyword: str, lx: Lexer) -> Untagged:
    """`VANISHED [(EARLIER)] known-uids` (RFC 7162 section 3.2.10)."""
    lx.expect(b" ")
    earlier = lx.skip(b"(EARLIER) ") or lx.skip(b"(earlier) ")
    uids = SequenceSet.parse(lx.read_atom())
    if not lx.at_end():
        raise lx.fail("unexpected input")
    return Vanished(earlier, uids)


_UNTAGGED = {
    "CAPABILITY": _capability,
    "ENABLED": _capability,
    "FLAGS": _flags,
    "LIST": _list,
    "LSUB": _list,
    "STATUS": _status,
    "SEARCH": _search,
    "ESEARCH": _esearch,
    "VANISHED": _vanished,
}
