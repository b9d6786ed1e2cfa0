"""Tokenizer for one complete IMAP server response (RFC 3501 section 9, RFC 9051 section 9).

This is the parser's hot path, kept behind a narrow interface (`Lexer` with
`read_value`, `read_atom`, `read_string`, `expect`, `rest`) so that a native
implementation can sit beside it later. It only ever sees a *complete*
response: `parser.ResponseParser` frames lines and literals first, so a
literal's announced octets are always present here.

`read_value` turns the generic IMAP value grammar into a small tree:

- `Atom` (a `bytes` subclass) for atoms and numbers, including flags such as
  `\\Seen` and fetch attributes with a section such as `BODY[HEADER]<0>`;
- `bytes` for quoted strings and literals (`literal8` too, RFC 3516 section 4.2);
- `None` for NIL;
- `tuple` for parenthesised lists.

Depth and item count of lists are bounded by the limits passed in.

Lists are read in two ways behind `read_list`: a regex scan (`_TOKEN`, one
`re.findall` per line, so the byte scanning runs in C) for well-formed input,
and the byte loop `_read_list_careful`, the reference, for anything the scan
defers on. Tests hold the two to the same results and errors.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from mailwire.protocols.imap.errors import LimitExceededError, ProtocolError

#: Bytes quoted in error messages, at most.
SNIPPET = 60


class Atom(bytes):
    """An atom or number as sent (RFC 3501 section 9, `atom`, `number`, `flag`)."""

    __slots__ = ()


Value: TypeAlias = "Atom | bytes | tuple[Value, ...] | None"

# RFC 3501 section 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials. We accept list-wildcards ("%" "*") and "\" inside
# atoms because flags (`\Seen`, `\*`) and LIST patterns use them; "[" opens a section.
_ATOM_STOP = frozenset(b'(){ "]\r\n[') | frozenset(range(0x20)) | {0x7F}
_MAX_NUMBER_DIGITS = 20  # number64 (RFC 9051 section 9) fits in 20 digits

# One token of a parenthesised list, for `re.findall` (the scan runs in C). A
# value or "(" carries the SP before it, so the separator rules are checked per
# token; a literal announcement `{n}` / `~{n}` / `{n+}` (RFC 3501 section 4.3,
# RFC 3516 section 4.2, RFC 7888) always ends a line, so its CRLF is part of the
# token and the octets that follow are taken by count. Anything this pattern does
# not cover exactly (escapes, sections spanning a lone CR, an atom opening with
# "[") lands in the last group and sends the list to the careful byte loop,
# which is the reference: the fast scan either returns what it would, or defers.
_TOKEN = re.compile(
    rb"""
    (\ ?)(?:                                        # 1: the SP before a value or "("
        (")([^"\\\r\n]*)"                           # 2, 3: quoted without escapes
      | (\()                                        # 4: "("
      | ([^(){\ "\]\[\x00-\x1f\x7f~][^(){\ "\]\[\x00-\x1f\x7f]*   # 5: atom ...
         (?:\[[^\]\r\n]*\](?:<[^>\r\n]*>)?)?)       #    ... with [section]<partial>
      | (~?\{([0-9]{1,20})\+?\}\r\n)                # 6, 7: literal announcement
    )
  | (\))                                            # 8: ")"
  | ([\s\S])                                        # 9: anything else
    """,
    re.VERBOSE,
)
_NILS = frozenset({b"NIL", b"NIl", b"NiL", b"Nil", b"nIL", b"nIl", b"niL", b"nil"})
#: Lines longer than this are read by the careful loop, so a flood of tiny tokens
#: never becomes a large token list ahead of the `max_list_items` check.
_SCAN_MAX = 256 * 1024
#: A list that ends this many tokens before its line does turns the fast scan off
#: for the rest of the response (each later list would rescan the same tail).
_SCAN_WASTE = 64


class _Defer(Exception):
    """The fast scan met input it does not model; the careful loop decides."""


def snippet(data: bytes, pos: int = 0) -> str:
    """The offending input for an error message, at most `SNIPPET` bytes, printable."""
    return repr(bytes(data[pos : pos + SNIPPET]))


def parse_number(raw: bytes) -> int:
    """`number` / `number64` (RFC 3501 section 9, RFC 9051 section 9)."""
    if not raw or len(raw) > _MAX_NUMBER_DIGITS or not raw.isdigit():
        raise ProtocolError(f"expected a number, got {snippet(raw)}")
    return int(raw)


class Lexer:
    """Reads values from one complete response, starting at `pos`."""

    __slots__ = ("_scan", "data", "max_depth", "max_items", "pos")

    def __init__(self, data: bytes, pos: int = 0, *, max_depth: int, max_items: int) -> None:
        self.data = data
        self.pos = pos
        self.max_depth = max_depth
        self.max_items = max_items
        self._scan = True  # whether `read_list` tries the regex scan first

    # ------------------------------------------------------------------ cursor

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        """The next byte, or -1 at the end."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def fail(self, what: str) -> ProtocolError:
        return ProtocolError(f"{what} at {snippet(self.data, self.pos)}")

    def expect(self, token: bytes) -> None:
        if not self.data.startswith(token, self.pos):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def skip(self, token: bytes) -> bool:
        """Consume `token` if it comes next."""
        if self.data.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def rest(self) -> bytes:
        """Everything left (used for free text, `text` in RFC 3501 section 9)."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    # ------------------------------------------------------------------ tokens

    def read_atom(self) -> Atom:
        """An atom, with a `[section]<partial>` suffix kept in it (RFC 3501 section 7.4.2)."""
        data, start, pos, end = self.data, self.pos, self.pos, len(self.data)
        while pos < end and data[pos] not in _ATOM_STOP:
            pos += 1
        if pos < end and data[pos] == 0x5B:  # "[" section-spec, may contain parens
            close = data.find(b"]", pos)
            if close < 0 or data.find(b"\r\n", pos, close) >= 0:
                raise self.fail("unterminated section")
            pos = close + 1
            if pos < end and data[pos] == 0x3C:  # "<" partial
                close = data.find(b">", pos)
                if close < 0:
                    raise self.fail("unterminated partial")
                pos = close + 1
        if pos == start:
            raise self.fail("expected an atom")
        self.pos = pos
        return Atom(data[start:pos])

    def read_number(self) -> int:
        return parse_number(self.read_atom())

    def read_quoted(self) -> bytes:
        """`quoted` (RFC 3501 section 9): DQUOTE *QUOTED-CHAR DQUOTE, `\\` escapes."""
        data = self.data
        start = self.pos + 1
        close = data.find(b'"', start)
        if close < 0:
            raise self.fail("unterminated quoted string")
        backslash = data.find(b"\\", start, close)
        if backslash < 0:
            body = data[start:close]
            if b"\r" in body or b"\n" in body:
                raise self.fail("CR or LF in quoted string")
            self.pos = close + 1
            return body
        out = bytearray()
        pos = start
        while True:
            if pos >= len(data):
                raise self.fail("unterminated quoted string")
            c = data[pos]
            if c == 0x22:
                break
            if c == 0x5C:
                pos += 1
                if pos >= len(data) or data[pos] not in b'"\\':
                    raise self.fail("bad escape in quoted string")
                c = data[pos]
            elif c in b"\r\n":
                raise self.fail("CR or LF in quoted string")
            out.append(c)
            pos += 1
        self.pos = pos + 1
        return bytes(out)

    def read_literal(self) -> bytes:
        """`literal` / `literal8`: "{" number ["+"] "}" CRLF *OCTET (RFC 3501, RFC 7888)."""
        self.skip(b"~")
        self.expect(b"{")
        close = self.data.find(b"}", self.pos)
        if close < 0:
            raise self.fail("unterminated literal")
        size = parse_number(self.data[self.pos : close].removesuffix(b"+"))
        self.pos = close + 1
        self.expect(b"\r\n")
        if self.pos + size > len(self.data):
            raise self.fail("truncated literal")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def read_string(self) -> bytes:
        """`string` = quoted / literal."""
        c = self.peek()
        if c == 0x22:
            return self.read_quoted()
        if c in (0x7B, 0x7E):
            return self.read_literal()
        raise self.fail("expected a string")

    def read_value(self, depth: int = 0) -> Value:
        """One value: atom/number, NIL, string, or a parenthesised list of values."""
        c = self.peek()
        if c == 0x28:  # "("
            return self.read_list(depth + 1)
        if c in (0x22, 0x7B, 0x7E):
            return self.read_string()
        atom = self.read_atom()
        return None if atom.upper() == b"NIL" else atom

    def read_list(self, depth: int) -> tuple[Value, ...]:
        """A parenthesised list, nested lists included, read without recursion.

        This is the hottest code (FETCH, ENVELOPE, BODYSTRUCTURE): `_scan_list`
        reads well-formed lists from regex tokens; whatever it defers on (bad
        input, limits, rare syntax) is read again by `_read_list_careful`, which
        raises the documented errors.
        """
        if self._scan:
            try:
                return self._scan_list(depth)
            except _Defer:
                pass
        return self._read_list_careful(depth)

    def _scan_list(self, depth: int) -> tuple[Value, ...]:  # noqa: PLR0912, PLR0915 - hot loop, inlined
        """`read_list` over `_TOKEN`s, one `re.findall` per line; raises only `_Defer`."""
        data, pos = self.data, self.pos
        room = self.max_depth - depth  # lists that may open inside this one
        if room < 0 or not data.startswith(b"(", pos):
            raise _Defer
        budget = self.max_items  # tokens, so no list can pass max_list_items unseen
        stack: list[list[Value]] = []
        items: list[Value] = []
        want = b""  # the SP a value needs: none after "(", one after a value or ")"
        start = pos + 1
        while True:
            eol = data.find(b"\r\n", start)
            end = len(data) if eol < 0 else eol + 2
            if end - start > _SCAN_MAX:
                raise _Defer
            tokens = _findall(data, start, end)
            budget -= len(tokens)
            if budget < 0:
                raise _Defer
            start = -1
            it = iter(tokens)
            for sp, quote, text, open_, atom, literal, size, close, _other in it:
                if quote:
                    if sp != want:
                        raise _Defer
                    items.append(text)
                    want = b" "
                elif atom:
                    if sp != want:
                        raise _Defer
                    items.append(None if atom in _NILS else Atom(atom))
                    want = b" "
                elif open_:
                    if sp and not want:
                        raise _Defer
                    stack.append(items)
                    if len(stack) > room:
                        raise _Defer
                    items = []
                    want = b""
                elif close:
                    done = tuple(items)
                    if not stack:
                        rest = list(it)
                        if len(rest) > _SCAN_WASTE:
                            self._scan = False
                        self.pos = end - _length(rest)
                        return done
                    items = stack.pop()
                    items.append(done)
                    want = b" "
                elif literal:  # always the line's last token
                    if sp != want:
                        raise _Defer
                    start = end + int(size)
                    if start > len(data):
                        raise _Defer
                    items.append(data[end:start])
                    want = b" "
                else:
                    raise _Defer
            if start < 0:  # the line ended inside the list
                raise _Defer

    def _read_list_careful(self, depth: int) -> tuple[Value, ...]:
        """`read_list` byte by byte, with an explicit stack; the reference behaviour."""
        data, end, pos = self.data, len(self.data), self.pos
        if pos >= end or data[pos] != 0x28:
            raise self.fail("expected '('")
        self._check_depth(depth)
        pos += 1
        stack: list[list[Value]] = []
        items: list[Value] = []
        after_sp = False
        while True:
            c = data[pos] if pos < end else -1
            if c == 0x29 and not after_sp:  # ")" closes the innermost list
                pos += 1
                done = tuple(items)
                if not stack:
                    self.pos = pos
                    return done
                items = stack.pop()
                items.append(done)
            elif c == 0x28:  # "(" opens a nested list
                stack.append(items)
                self._check_depth(depth + len(stack))
                items = []
                pos += 1
                after_sp = False
                continue
            else:
                value: Value
                close = data.find(b'"', pos + 1) if c == 0x22 else -1
                if close > 0 and not _needs_slow_quoted(data, pos + 1, close):
                    value = data[pos + 1 : close]
                    pos = close + 1
                else:
                    self.pos = pos
                    value = self.read_value(depth + len(stack))
                    pos = self.pos
                items.append(value)
            if len(items) > self.max_items:
                raise LimitExceededError(
                    "max_list_items", f"a list holds more than {self.max_items} items"
                )
            # After a value: SP, or ")" / "(" directly (body-type-mpart = 1*body SP subtype).
            c = data[pos] if pos < end else -1
            if c == 0x20:
                pos += 1
                after_sp = True
            elif c in (0x28, 0x29):
                after_sp = False
            else:
                self.pos = pos
                raise self.fail("expected ' ' or ')'")

    def _check_depth(self, depth: int) -> None:
        if depth > self.max_depth:
            raise LimitExceededError(
                "max_nesting_depth", f"lists nested deeper than {self.max_depth}"
            )


_findall = _TOKEN.findall


def _length(tokens: list[tuple[bytes, ...]]) -> int:
    """Bytes covered by the `_TOKEN` matches left in `tokens` (group 3 is in quotes)."""
    return sum(
        len(sp)
        + 2 * len(quote)
        + len(text)
        + len(open_)
        + len(atom)
        + len(lit)
        + len(close)
        + len(other)
        for sp, quote, text, open_, atom, lit, _size, close, other in tokens
    )


def _needs_slow_quoted(data: bytes, start: int, close: int) -> bool:
    """Whether a quoted string holds escapes or CR/LF (handled by `read_quoted`)."""
    return (
        data.find(b"\\", start, close) >= 0
        or data.find(b"\r", start, close) >= 0
        or data.find(b"\n", start, close) >= 0
    )
